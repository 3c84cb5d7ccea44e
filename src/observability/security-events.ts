import type { Logger } from "./logger.js";

export type SecurityEventKind = "assembly_assertion_failed" | "smuggled_tenant_id";

/**
 * Security-relevant events: logged at `warn` with `security_event` set, so they can be alerted on
 * apart from ordinary errors, and counted, so a test or a metrics endpoint can see them.
 */
export class SecurityEvents {
  private readonly counts = new Map<SecurityEventKind, number>();

  constructor(private readonly logger: Logger) {}

  report(kind: SecurityEventKind, fields: Record<string, unknown>): void {
    this.counts.set(kind, this.count(kind) + 1);
    this.logger.warn({ security_event: kind, ...fields }, `security event: ${kind}`);
  }

  count(kind: SecurityEventKind): number {
    return this.counts.get(kind) ?? 0;
  }
}
