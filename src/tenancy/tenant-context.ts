/**
 * The verified identity of a tenant request (invariant I1).
 *
 * A TenantContext is made only by `issueTenantContext`, which authentication calls after a key has
 * been verified. The brand makes a hand-built object a type error; the registry below makes it a
 * run-time error too, so `{ tenantId: "…" } as TenantContext` cannot open a tenant transaction.
 *
 * This module imports nothing, so `db` can check contexts without depending on the rest of tenancy.
 */
declare const tenantContextBrand: unique symbol;

export type KeyEnvironment = "prod" | "test" | "sandbox";

export interface TenantContext {
  readonly tenantId: string;
  readonly keyId: string;
  readonly project: string;
  readonly environment: KeyEnvironment;
  readonly requestId: string;
  readonly [tenantContextBrand]: true;
}

const issued = new WeakSet<object>();
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function isUuid(value: string): boolean {
  return UUID.test(value);
}

export function issueTenantContext(fields: {
  tenantId: string;
  keyId: string;
  project: string;
  environment: KeyEnvironment;
  requestId: string;
}): TenantContext {
  if (!isUuid(fields.tenantId)) throw new TypeError("tenantId must be a UUID");
  const ctx = Object.freeze({ ...fields }) as TenantContext;
  issued.add(ctx);
  return ctx;
}

/** Throws unless `ctx` was issued by authentication. Called by every tenant-scoped entry point. */
export function assertTenantContext(ctx: unknown): asserts ctx is TenantContext {
  if (typeof ctx !== "object" || ctx === null || !issued.has(ctx)) {
    throw new TypeError("A verified TenantContext is required");
  }
}
