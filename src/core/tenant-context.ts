/**
 * The verified identity of a tenant request (invariant I1).
 *
 * A TenantContext is made only by `issueTenantContext`, which authentication calls after a key has
 * been verified. The brand makes a hand-built object a type error; the registry below makes it a
 * run-time error too, so `{ tenantId: "…" } as TenantContext` cannot open a tenant transaction.
 *
 * This module imports only core/scopes' type, so `db` can check contexts without depending on the
 * rest of tenancy.
 */
import type { Scope } from "./scopes.js";

declare const tenantContextBrand: unique symbol;

export type KeyEnvironment = "prod" | "test" | "sandbox";

export interface TenantContext {
  readonly tenantId: string;
  readonly keyId: string;
  readonly project: string;
  readonly environment: KeyEnvironment;
  /** What the verified key may do (core/scopes.ts); routes check it before any work. */
  readonly scopes: readonly Scope[];
  readonly requestId: string;
  readonly [tenantContextBrand]: true;
}

const issued = new WeakSet<object>();
/**
 * Each context's tenant cache secret, read from the tenant's row with the key. Kept beside the
 * context rather than in it, so that logging or serialising a context can never write the secret.
 */
const cacheSecrets = new WeakMap<object, string>();
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function isUuid(value: string): boolean {
  return UUID.test(value);
}

export function issueTenantContext(fields: {
  tenantId: string;
  keyId: string;
  project: string;
  environment: KeyEnvironment;
  scopes: readonly Scope[];
  requestId: string;
  /** The tenant's current cache secret (tenants.cache_secret); without one, nothing is cached. */
  cacheSecret?: string | undefined;
}): TenantContext {
  if (!isUuid(fields.tenantId)) throw new TypeError("tenantId must be a UUID");
  const { cacheSecret, ...identity } = fields;
  const ctx = Object.freeze({ ...identity, scopes: Object.freeze([...identity.scopes]) }) as TenantContext;
  issued.add(ctx);
  if (cacheSecret) cacheSecrets.set(ctx, cacheSecret);
  return ctx;
}

/**
 * The secret that tenant cache keys are hashed with (invariant I5). It changes when the tenant's
 * content is deleted, which makes every cached entry of the tenant unreachable on every instance.
 */
export function tenantCacheSecret(ctx: TenantContext): string | undefined {
  return cacheSecrets.get(ctx);
}

/** Throws unless `ctx` was issued by authentication. Called by every tenant-scoped entry point. */
export function assertTenantContext(ctx: unknown): asserts ctx is TenantContext {
  if (typeof ctx !== "object" || ctx === null || !issued.has(ctx)) {
    throw new TypeError("A verified TenantContext is required");
  }
}
