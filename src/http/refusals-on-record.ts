import { RateLimitedError, withoutStack } from "../core/errors.js";
import type { AdmissionController } from "../limits/admission.js";
import { bearerToken, hashApiKey, looksLikeApiKey } from "../tenancy/api-keys.js";
import type { FailedAuthLimiter } from "../tenancy/failed-auth-limiter.js";
import type { KeyDirectory } from "../tenancy/key-directory.js";
import type { VerifiedKey, VerifiedKeyCache } from "../tenancy/verified-key-cache.js";

/** A request this instance can refuse from what it already knows, and whom the refusal is for. */
export interface RefusalOnRecord {
  refusal: RateLimitedError;
  /** The key's verified copy, when the refusal is its tenant's or its own (a used-up window). */
  key?: VerifiedKey;
  /** The flow the refused connection is held in (refused-reads.ts): the tenant, else the address. */
  flow: string;
}

/**
 * The cheapest refusals there are (issue 16: a tenant refused almost everything still took the
 * instance, because each refusal cost a full request), answered from this instance's memory with
 * no counter read, no database and no body:
 * - a key held verified whose tenant's or key's window this instance has seen used up until it
 *   resets (AdmissionController.refusalOnRecord): the 429 admission would give;
 * - a key this instance does not know, from an address it has seen blocked for failed
 *   authentications (FailedAuthLimiter.blockedOnRecord): the 429 authentication would give.
 * A revoked key is never refused here (its 401 must not become a 429 it could tell apart), nor a
 * suspended tenant's key (its answer is the 403 that says so, not a window used up before the
 * suspension), nor a known key for its address's failures (a NAT's other clients do not block it).
 * Anything else is for authentication and admission, as before.
 */
export class RefusalsOnRecord {
  constructor(
    private readonly admission: AdmissionController,
    private readonly keys: VerifiedKeyCache,
    private readonly directory?: KeyDirectory,
    private readonly failedAuth?: FailedAuthLimiter,
  ) {}

  /** The refusal for a request with this Authorization header from this address, if on record. */
  find(authorization: string | undefined, address: () => string | undefined): RefusalOnRecord | undefined {
    // The common case, nothing on record: no key is hashed for it.
    if (!this.admission.hasRefusalsOnRecord() && !this.failedAuth?.hasBlocksOnRecord()) return undefined;
    const presented = bearerToken(authorization);
    if (!presented || !looksLikeApiKey(presented)) return undefined;
    const keyHash = hashApiKey(presented);
    const key = this.keys.peek(keyHash);
    if (key) {
      if (key.revoked || key.suspended) return undefined;
      const refusal = this.admission.refusalOnRecord(key.tenantId, key.keyId, key.quota);
      return refusal ? { refusal, key, flow: key.tenantId } : undefined;
    }
    if (!this.failedAuth || this.directory?.knows(keyHash)) return undefined;
    const from = address();
    const blockedFor = from === undefined ? undefined : this.failedAuth.blockedOnRecord(from);
    if (blockedFor === undefined) return undefined;
    return { refusal: withoutStack(() => new RateLimitedError("rate_limit", blockedFor)), flow: from! };
  }
}
