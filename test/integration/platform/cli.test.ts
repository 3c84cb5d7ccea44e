import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ADMIN_KEY, serveOnLoopback, TestFence } from "../../support/harness.js";

const run = promisify(execFile);

/**
 * The admin CLI (`npx fence …`, src/cli.ts) against a served Fence over HTTP, as a platform
 * engineer scripts it: a tenant, a scoped expiring key that works for its scope only, and a bad
 * scope refused with the API's 400 and a non-zero exit; then a tenant's owner managing its keys
 * with its own key and no admin key.
 */
describe("the fence CLI", () => {
  let fence: TestFence;
  let server: { url: string; close(): Promise<void> };

  beforeAll(async () => {
    fence = await TestFence.start({ name: "pglite", databaseUrl: undefined }, { env: { FENCE_JOB_WORKERS: "0" } });
    server = await serveOnLoopback(fence.fence);
  });
  afterAll(async () => {
    await server?.close();
    await fence?.close();
  });

  const cli = (...args: string[]) =>
    run("npx", ["tsx", "src/cli.ts", ...args], { env: { ...process.env, FENCE_URL: server.url, FENCE_ADMIN_KEY: ADMIN_KEY } });
  /** As a tenant's owner: its key and no admin key. */
  const ownerCli = (apiKey: string, ...args: string[]) =>
    run("npx", ["tsx", "src/cli.ts", ...args], { env: { ...process.env, FENCE_URL: server.url, FENCE_ADMIN_KEY: "", FENCE_API_KEY: apiKey } });

  it("creates a tenant and issues it a scoped, expiring key that works within its scope only", async () => {
    const tenant = JSON.parse((await cli("tenants", "create", "--name", "cli-acme")).stdout) as { id: string };
    const issued = JSON.parse(
      (await cli("keys", "issue", tenant.id, "--name", "web", "--scopes", "query,read", "--expires-at", "2999-01-01T00:00:00Z", "--description", "front end")).stdout,
    ) as { key: string; scopes: string[]; expires_at: string; description: string };
    expect(issued).toMatchObject({ scopes: ["query", "read"], expires_at: "2999-01-01T00:00:00.000Z", description: "front end" });
    expect((await fence.request("POST", "/v1/search", { key: issued.key, json: { query: "anything" } })).status).toBe(200);
    expect((await fence.request("POST", "/v1/documents", { key: issued.key, json: { text: "not mine to add" } })).status).toBe(403);

    const refused = await cli("keys", "issue", tenant.id, "--name", "bad", "--scopes", "query,root").catch((error: { code: number; stderr: string }) => error);
    expect(refused).toMatchObject({ code: 1 });
    expect((refused as { stderr: string }).stderr).toMatch(/→ 400 .*validation_error/);
  });

  it("suspends a tenant, whose key then answers 403 tenant_suspended, and resumes it", async () => {
    const tenant = await fence.createTenant("cli-suspended");
    const suspended = JSON.parse((await cli("tenants", "suspend", tenant.id)).stdout) as { id: string; suspended_at: string | null };
    expect(suspended).toMatchObject({ id: tenant.id, suspended_at: expect.any(String) });
    expect((await fence.request("GET", "/v1/documents", { key: tenant.key })).status).toBe(403);
    expect(JSON.parse((await cli("tenants", "resume", tenant.id)).stdout)).toMatchObject({ id: tenant.id, suspended_at: null });
    expect((await fence.request("GET", "/v1/documents", { key: tenant.key })).status).toBe(200);
  });

  it("lets a tenant's owner make, list, rotate and revoke its keys and read its trail, with its own key only", async () => {
    const tenant = JSON.parse((await cli("tenants", "create", "--name", "cli-owner")).stdout) as { id: string };
    const ownerKey = (JSON.parse((await cli("keys", "issue", tenant.id, "--name", "owner")).stdout) as { key: string }).key;
    const made = JSON.parse((await ownerCli(ownerKey, "keys", "create", "--name", "pipeline", "--scopes", "ingest")).stdout) as { id: string; key: string };
    expect((await fence.request("POST", "/v1/documents", { key: made.key, json: { text: "Pipeline notes." } })).status).toBe(201);

    const listed = JSON.parse((await ownerCli(ownerKey, "keys", "list")).stdout) as { keys: { id: string }[] };
    expect(listed.keys.map((k) => k.id)).toContain(made.id);
    const rotated = JSON.parse((await ownerCli(ownerKey, "keys", "rotate", made.id, "--grace-seconds", "0")).stdout) as { id: string; key: string };
    expect(rotated.id).toBe(made.id);
    expect((await fence.request("POST", "/v1/documents", { key: made.key, json: { text: "Old secret." } })).status).toBe(401);
    expect((await ownerCli(ownerKey, "keys", "revoke", made.id)).stdout).toContain("ok");
    expect((await fence.request("POST", "/v1/documents", { key: rotated.key, json: { text: "Revoked." } })).status).toBe(401);

    const trail = JSON.parse((await ownerCli(ownerKey, "audit", "list")).stdout) as { events: { action: string }[] };
    expect(trail.events.map((e) => e.action)).toEqual(["key.revoked", "key.rotated", "key.created", "key.created", "tenant.created"]);
    // The owner's key is no admin key, and the admin commands say which credential they need.
    const refused = await ownerCli(ownerKey, "tenants", "list").catch((error: { code: number; stderr: string }) => error);
    expect(refused).toMatchObject({ code: 2 });
    expect((refused as { stderr: string }).stderr).toContain("FENCE_ADMIN_KEY is not set");
  });

  it("lets a tenant's owner change a key's limits and its own settings, and refuses what is not a number or beyond the plan", async () => {
    const tenant = JSON.parse((await cli("tenants", "create", "--name", "cli-settings")).stdout) as { id: string };
    const ownerKey = (JSON.parse((await cli("keys", "issue", tenant.id, "--name", "owner")).stdout) as { key: string }).key;
    const made = JSON.parse((await ownerCli(ownerKey, "keys", "create", "--name", "batch", "--scopes", "query", "--tokens-per-month", "5000")).stdout) as {
      id: string;
      tokens_per_month: number;
    };
    expect(made.tokens_per_month).toBe(5000);
    const updated = JSON.parse((await ownerCli(ownerKey, "keys", "update", made.id, "--tokens-per-month", "none", "--spend-per-month-micros", "250")).stdout);
    expect(updated).toMatchObject({ id: made.id, tokens_per_month: null, spend_per_month_micros: 250 });
    const notANumber = await ownerCli(ownerKey, "keys", "update", made.id, "--requests-per-minute", "lots").catch((error: { code: number }) => error);
    expect(notANumber).toMatchObject({ code: 2 });

    const settings = JSON.parse((await ownerCli(ownerKey, "settings", "patch", '{"persona":"Terse.","features":{"chat.streaming":false}}')).stdout);
    expect(settings).toMatchObject({ persona: "Terse.", features: { "chat.streaming": { enabled: false, in_plan: true } } });
    expect(JSON.parse((await ownerCli(ownerKey, "settings", "get")).stdout)).toEqual(settings);
    const beyond = await ownerCli(ownerKey, "settings", "patch", '{"plan":"enterprise"}').catch((error: { code: number; stderr: string }) => error);
    expect(beyond).toMatchObject({ code: 1 });
    expect((beyond as { stderr: string }).stderr).toContain("beyond_plan");
  });
});
