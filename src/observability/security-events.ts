import { LRUCache } from "lru-cache";
import type { Logger } from "./logger.js";

export type SecurityEventKind =
  | "assembly_assertion_failed"
  | "smuggled_tenant_id"
  /** A revoked key was presented (it got the same 401 as an unknown key). */
  | "revoked_key_used"
  /** One client address collected many 401s within a short window (key guessing, a leaked old key). */
  | "repeated_unauthorized";

export interface SecurityEventsOptions {
  /**
   * How many proxies in front of Fence append to `X-Forwarded-For`. 0 (the default): the header
   * is ignored, since any client can send one; the socket's peer address is the client.
   */
  trustedProxyHops?: number;
  /** 401s from one address within `unauthorizedWindowMs` that make a `repeated_unauthorized` event. */
  unauthorizedThreshold?: number;
  unauthorizedWindowMs?: number;
  /** Addresses tracked at once; the least recently seen are forgotten first (memory stays bounded). */
  trackedAddresses?: number;
  /** Told of every event's kind (the metrics' counter). */
  onReport?: (kind: SecurityEventKind) => void;
}

interface UnauthorizedWindow {
  startedAt: number;
  count: number;
  reported: boolean;
}

/**
 * Security-relevant events: logged at their own `security` level (see logger.ts) with
 * `security_event` set to the kind, so they can be alerted on apart from ordinary errors, and
 * counted, so a test or the metrics endpoint can see them.
 */
export class SecurityEvents {
  private readonly counts = new Map<SecurityEventKind, number>();
  private readonly unauthorized: LRUCache<string, UnauthorizedWindow>;
  readonly trustedProxyHops: number;
  private readonly threshold: number;
  private readonly windowMs: number;
  private readonly onReport: ((kind: SecurityEventKind) => void) | undefined;

  constructor(
    private readonly logger: Logger,
    options: SecurityEventsOptions = {},
  ) {
    this.onReport = options.onReport;
    this.trustedProxyHops = options.trustedProxyHops ?? 0;
    this.threshold = options.unauthorizedThreshold ?? 10;
    this.windowMs = options.unauthorizedWindowMs ?? 60_000;
    this.unauthorized = new LRUCache({ max: options.trackedAddresses ?? 10_000, ttl: this.windowMs });
  }

  report(kind: SecurityEventKind, fields: Record<string, unknown>): void {
    this.counts.set(kind, this.count(kind) + 1);
    this.onReport?.(kind);
    const record = { security_event: kind, ...fields };
    const message = `security event: ${kind}`;
    // A logger from elsewhere may lack the custom level; the event must still be written.
    if (typeof this.logger.security === "function") this.logger.security(record, message);
    else this.logger.warn(record, message);
  }

  count(kind: SecurityEventKind): number {
    return this.counts.get(kind) ?? 0;
  }

  /**
   * Notes one 401 answered to `clientAddress`. The `threshold`-th within one window reports a
   * `repeated_unauthorized` event — once per window and address, so an attack does not flood the log.
   */
  noteUnauthorized(clientAddress: string | undefined, fields: Record<string, unknown> = {}): void {
    if (!clientAddress) return; // no attributable address (an in-process request): nothing to count
    const now = Date.now();
    let window = this.unauthorized.get(clientAddress);
    if (!window || now - window.startedAt >= this.windowMs) {
      window = { startedAt: now, count: 0, reported: false };
    }
    window.count += 1;
    this.unauthorized.set(clientAddress, window, { ttl: Math.max(1, this.windowMs - (now - window.startedAt)) });
    if (window.count >= this.threshold && !window.reported) {
      window.reported = true;
      this.report("repeated_unauthorized", {
        ...fields,
        client_address: clientAddress,
        unauthorized_count: window.count,
        window_seconds: Math.round(this.windowMs / 1000),
      });
    }
  }
}
