import { Client } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { uniquePlanName } from "../../support/admission-helpers.js";
import { CheapEmbeddings } from "../../support/cheap-embeddings.js";
import { backends, serveOnLoopback, TestFence, type TestTenant } from "../../support/harness.js";
import { createApp } from "../../../src/http/app.js";
import { RefusedReads } from "../../../src/flow/refused-reads.js";

/**
 * Issue 16: a refused flood must not take the event loop from other tenants. After a refusal
 * (401, 429, 503) the connection's next request is read at low priority (RefusedReads). Over real
 * sockets — the hold is the Node server's, and only works if it comes after Node has finished the
 * response and drained an unread body, which would otherwise resume the socket — a connection's
 * sequential requests are spaced by the rate while each is refused, and not when they are answered.
 *
 * The app is Fence's own (createApp over the instance's services) with a RefusedReads that is
 * always busy and always over its target: one read per interval of INTERVAL_MS after the first,
 * so a hold shows as whole intervals, far above a request's own latency here.
 */
const INTERVAL_MS = 250;
const REQUESTS = 4;
// The first read is the allowance's; each of the next REQUESTS - 2 waits for a tick of the rate.
const HELD_AT_LEAST_MS = (REQUESTS - 2) * INTERVAL_MS - 50;

// Socket handling does not depend on the database: the embedded one is enough.
const backend = backends.find((b) => b.name === "pglite")!;

describe("refused connections are read again at low priority (Node server)", () => {
  let fence: TestFence;
  let server: { url: string; close(): Promise<void> };
  let reads: RefusedReads;

  beforeAll(async () => {
    fence = await TestFence.start(backend, { env: { FENCE_JOB_WORKERS: "0" }, embeddings: new CheapEmbeddings() });
    reads = new RefusedReads({ busy: () => true, perTurn: 1, targetUtilization: 0.5, intervalMs: INTERVAL_MS, loopUtilization: () => 1 });
    const app = createApp({ ...fence.fence, refusedReads: reads });
    server = await serveOnLoopback(app.fetch);
  });
  afterAll(async () => {
    await server?.close();
    await fence?.close();
  });

  async function tenantOnPlan(requestsPerMinute: number): Promise<TestTenant> {
    const plan = uniquePlanName("held");
    const res = await fence.admin("PUT", `/plans/${plan}`, { tokens_per_day: null, tokens_per_month: null, spend_per_month_micros: null, requests_per_minute: requestsPerMinute });
    expect(res.status).toBeLessThan(300);
    return fence.createTenant(undefined, plan);
  }

  /** `REQUESTS` requests one after another on one keep-alive connection: their statuses and the time they took. */
  async function inSequence(request: Parameters<Client["request"]>[0]): Promise<{ statuses: number[]; ms: number }> {
    const client = new Client(server.url, { pipelining: 1 });
    try {
      const statuses: number[] = [];
      const started = performance.now();
      for (let i = 0; i < REQUESTS; i++) {
        const res = await client.request(request);
        await res.body.text();
        statuses.push(res.statusCode);
      }
      return { statuses, ms: performance.now() - started };
    } finally {
      await client.close();
    }
  }

  const searchBy = (tenant: TestTenant) => ({
    method: "POST" as const,
    path: "/v1/search",
    headers: { authorization: `Bearer ${tenant.key}`, "content-type": "application/json" },
    body: JSON.stringify({ query: "refund window" }),
  });

  it("a tenant refused for its rate limit: its next requests on the connection wait for the rate (a POST whose body is never read)", async () => {
    const tenant = await tenantOnPlan(1);
    expect((await fence.request("POST", "/v1/search", { key: tenant.key, json: { query: "refund window" } })).status).toBe(200);
    const { statuses, ms } = await inSequence(searchBy(tenant));
    expect(statuses).toEqual(Array(REQUESTS).fill(429));
    expect(ms).toBeGreaterThanOrEqual(HELD_AT_LEAST_MS);
  });

  it("a client with a key that does not exist (401): held too", async () => {
    const { statuses, ms } = await inSequence({ method: "GET", path: "/v1/limits", headers: { authorization: `Bearer fence_${"x".repeat(40)}` } });
    expect(statuses).toEqual(Array(REQUESTS).fill(401));
    expect(ms).toBeGreaterThanOrEqual(HELD_AT_LEAST_MS);
  });

  it("a tenant whose requests are answered is never held, on the same server at the same time", async () => {
    const tenant = await tenantOnPlan(600);
    const { statuses, ms } = await inSequence(searchBy(tenant));
    expect(statuses).toEqual(Array(REQUESTS).fill(200));
    expect(ms).toBeLessThan(HELD_AT_LEAST_MS);
  });
});
