import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ADMIN_KEY, serveOnLoopback, TestFence } from "../../support/harness.js";

const run = promisify(execFile);

/**
 * The admin CLI (`npx fence …`, src/cli.ts) against a served Fence over HTTP, as a platform
 * engineer scripts it: a tenant, a scoped expiring key that works for its scope only, and a bad
 * scope refused with the API's 400 and a non-zero exit.
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
});
