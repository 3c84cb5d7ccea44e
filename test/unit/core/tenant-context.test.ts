import { describe, expect, it } from "vitest";
import { assertTenantContext, issueTenantContext, type TenantContext } from "../../../src/core/tenant-context.js";

const fields = {
  tenantId: "0b9c6c5e-6a8e-4c1a-9f43-2d6f4b1e8a10",
  keyId: "5f0c2f1e-3b7a-4d1e-8c2a-9e4b7d6c5a30",
  project: "default",
  environment: "prod" as const,
  scopes: ["query"] as const,
  requestId: "req-1",
};

describe("TenantContext", () => {
  it("accepts a context issued by authentication and freezes it", () => {
    const ctx = issueTenantContext(fields);
    expect(() => assertTenantContext(ctx)).not.toThrow();
    expect(Object.isFrozen(ctx)).toBe(true);
    expect(() => {
      (ctx as { tenantId: string }).tenantId = "other";
    }).toThrow();
    // A key's scopes cannot grow after it was verified.
    expect(() => (ctx.scopes as string[]).push("owner")).toThrow();
    expect(ctx.scopes).toEqual(["query"]);
  });

  it("rejects a hand-built or copied context at run time", () => {
    const forged = { ...fields } as unknown as TenantContext;
    expect(() => assertTenantContext(forged)).toThrow(/verified TenantContext/);
    expect(() => assertTenantContext({ ...issueTenantContext(fields) })).toThrow();
    expect(() => assertTenantContext(undefined)).toThrow();
    expect(() => assertTenantContext(null)).toThrow();
  });

  it("refuses to issue a context for a tenant id that is not a UUID", () => {
    expect(() => issueTenantContext({ ...fields, tenantId: "' OR 1=1 --" })).toThrow(TypeError);
  });
});
