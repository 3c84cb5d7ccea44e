import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ADMIN_KEY, backends, TestFence, type TestTenant } from "../../support/harness.js";
import { parseExposition, sumOf } from "../../support/prometheus-text.js";
import { isolatedBackend } from "../../support/scratch-database.js";

/**
 * Large bodies (over 64 KiB) are read and handled only with one of a few places
 * (FENCE_MAX_LARGE_BODIES, 2 by default), one tenant's one at a time
 * (FENCE_MAX_LARGE_BODIES_PER_TENANT, 1; http/middleware/request-body.ts), so one tenant's flood
 * of 10 MB uploads cannot take the cores every other tenant needs (issues 14 and 16). The places
 * must not become a resource one tenant can hold: a tenant's stalled bodies hold one place, never
 * the one another tenant's upload takes; a body has to arrive in time (5 s + 1 s a MiB) or gets
 * 408 and frees its place; small requests never wait for one; and a refused body stores nothing.
 */
const nodeBackends = backends.filter((b) => b.name !== "worker");
const DECLARED = 200_000;

describe.each(nodeBackends)("large-body places on $name", (baseBackend) => {
  let fence: TestFence;
  let drop: () => Promise<void> = async () => undefined;

  beforeAll(async () => {
    const isolated = await isolatedBackend(baseBackend, "fence_large_bodies");
    drop = isolated.drop;
    // Large bodies paced at 1 MB/s while another tenant is served: slow enough to time.
    fence = await TestFence.start(isolated.backend, { env: { FENCE_JOB_WORKERS: "0", FENCE_LARGE_BODY_PACE_MB: "1" } });
  });
  afterAll(async () => {
    await fence?.close();
    await drop();
  });

  /** An upload that declares `declared` bytes, sends the first kilobyte, and then nothing. */
  function stalledUpload(tenant: TestTenant, declared = DECLARED): { response: Promise<Response>; end(): void } {
    let close: () => void = () => undefined;
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(new TextEncoder().encode(`{"text":"${"x".repeat(1000)}`));
        close = () => controller.error(new Error("client gone"));
      },
    });
    const request = new Request("http://fence.test/v1/documents", {
      method: "POST",
      headers: { authorization: `Bearer ${tenant.key}`, "content-type": "application/json", "content-length": String(declared), prefer: "respond-async" },
      body,
      duplex: "half",
    } as RequestInit);
    return { response: Promise.resolve(fence.fence.app.request(request)), end: () => close() };
  }

  const largeUpload = async (tenant: TestTenant, sourceId: string): Promise<Response> =>
    await fence.request("POST", "/v1/documents", {
      key: tenant.key,
      json: { title: "Large", text: "Ledger lines for the harbour office. ".repeat(3000), source_id: sourceId },
      headers: { prefer: "respond-async" },
    });

  const jobsOf = async (tenant: TestTenant) =>
    ((await (await fence.request("GET", "/v1/jobs", { key: tenant.key })).json()) as { jobs: unknown[] }).jobs;

  it("a tenant's stalled bodies hold one place, one at a time, delaying no small request and no other tenant's upload; each loses its place at the deadline (408) and stores nothing", async () => {
    const hog = await fence.createTenant("large-body-hog", "enterprise");
    const other = await fence.createTenant("large-body-other", "enterprise");
    // Warm: the first search loads the embedding model. Then the other tenant is gone long enough
    // (the 1 s window) that the hog is alone.
    expect((await fence.request("POST", "/v1/search", { key: other.key, json: { query: "warm up" } })).status).toBe(200);
    await sleep(1_100);
    const stalled = [stalledUpload(hog), stalledUpload(hog)];
    await sleep(300); // the first is being read; the second waits for the hog's one place, unread
    const started = Date.now();

    // Small requests take no place: served at once.
    const search = await fence.request("POST", "/v1/search", { key: other.key, json: { query: "harbour ledger" } });
    expect(search.status).toBe(200);
    const small = await fence.request("POST", "/v1/documents", { key: other.key, json: { title: "Small", text: "A short note about the harbour." } });
    expect(small.status).toBe(201);
    expect(Date.now() - started).toBeLessThan(2_000);

    // What an operator sees: one place held by the hog, its second body waiting.
    const samples = parseExposition(await (await fence.request("GET", "/metrics", { key: ADMIN_KEY })).text());
    expect(sumOf(samples, "fence_admission_in_service", { gate: "large_body" })).toBe(1);
    expect(sumOf(samples, "fence_admission_waiting", { gate: "large_body" })).toBe(1);

    // Another tenant's large upload takes the other place at once: no wait behind the stalled bodies.
    const served = await largeUpload(other, "large-1");
    expect(served.status, await served.clone().text()).toBe(202);
    expect(Date.now() - started).toBeLessThan(3_000);

    // The hog's bodies run out of time one after the other: 5 s + 1 s for the declared 200 KB,
    // from the moment each got the place.
    const refused = await Promise.all(
      stalled.map((s) =>
        s.response.then(async (res) => ({ status: res.status, code: ((await res.json()) as { error: { code: string } }).error.code, at: Date.now() - started })),
      ),
    );
    for (const r of refused) expect(r).toMatchObject({ status: 408, code: "request_timeout" });
    const [first, second] = refused.map((r) => r.at).sort((x, y) => x - y);
    expect(first).toBeGreaterThan(5_000);
    expect(first).toBeLessThan(9_000);
    expect(second).toBeGreaterThan(first! + 5_000);
    expect(await jobsOf(hog)).toEqual([]);
    expect(await jobsOf(other)).toHaveLength(1);
  }, 40_000);

  /** A body of unknown length (no Content-Length): sent as a stream of `chunks`. */
  function unsized(tenant: TestTenant, path: string, chunks: Uint8Array[]): Promise<Response> {
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        const next = chunks.shift();
        if (next) controller.enqueue(next);
        else controller.close();
      },
    });
    const request = new Request(`http://fence.test${path}`, {
      method: "POST",
      headers: { authorization: `Bearer ${tenant.key}`, "content-type": "application/json" },
      body,
      duplex: "half",
    } as RequestInit);
    return Promise.resolve(fence.fence.app.request(request));
  }

  it("a body of unknown length takes a place only once it is large, and is refused (413) as soon as it passes the limit", async () => {
    const hog = await fence.createTenant("unsized-hog", "enterprise");
    const other = await fence.createTenant("unsized-other", "enterprise");
    expect((await fence.request("POST", "/v1/search", { key: other.key, json: { query: "warm up" } })).status).toBe(200);
    await sleep(1_100);
    const stalled = [stalledUpload(hog), stalledUpload(hog)];
    await sleep(300);
    const started = Date.now();
    const search = await unsized(other, "/v1/search", [new TextEncoder().encode('{"query":'), new TextEncoder().encode('"harbour"}')]);
    expect(search.status, await search.clone().text()).toBe(200);
    expect(Date.now() - started).toBeLessThan(2_000);
    for (const s of stalled) s.end();
    await Promise.all(stalled.map((s) => s.response));

    // 11 MiB in 1 MiB pieces, over the 10 MiB default: refused once the limit is passed.
    const piece = new Uint8Array(1024 * 1024).fill(0x61);
    const oversized = await unsized(other, "/v1/documents", [new TextEncoder().encode('{"text":"'), ...Array.from({ length: 11 }, () => piece)]);
    expect(oversized.status).toBe(413);
    expect(((await oversized.json()) as { error: { code: string } }).error.code).toBe("payload_too_large");
    expect(await jobsOf(other)).toEqual([]);
  }, 30_000);

  it("a large body is read at its pace while another tenant has a request in service, at full speed once none has", async () => {
    const uploader = await fence.createTenant("paced-uploader", "enterprise");
    const other = await fence.createTenant("paced-other", "enterprise");
    // 2 MB: two seconds at the pace of 1 MB/s.
    const upload = async (sourceId: string) => {
      const started = Date.now();
      const res = await fence.request("POST", "/v1/documents", {
        key: uploader.key,
        json: { text: "Ledger lines for the harbour office. ".repeat(54_000), source_id: sourceId },
        headers: { prefer: "respond-async" },
      });
      expect(res.status, await res.clone().text()).toBe(202);
      return Date.now() - started;
    };
    // The other tenant's request stays in service while its small body (no place of its own) hangs.
    const small = stalledUpload(other, 10_000);
    await sleep(200);
    expect(await upload("paced")).toBeGreaterThanOrEqual(1_900);
    small.end();
    expect((await small.response).status).toBeGreaterThanOrEqual(400);
    // Alone again: no pace.
    expect(await upload("unpaced")).toBeLessThan(1_500);
  }, 30_000);

  it("a place is given back when its request ends any way: many large uploads in a row are all served", async () => {
    const tenant = await fence.createTenant("large-body-serial", "enterprise");
    const gone = stalledUpload(tenant);
    gone.end(); // the client goes away mid-body
    expect((await gone.response).status).toBeGreaterThanOrEqual(400);
    const statuses = await Promise.all(Array.from({ length: 6 }, (_, i) => largeUpload(tenant, `serial-${i}`).then((res) => res.status)));
    expect(statuses).toEqual(Array(6).fill(202));
    // A malformed large body is refused (400) and gives its place back too.
    const malformed = await fence.request("POST", "/v1/documents", {
      key: tenant.key,
      body: `{"text":"${"y".repeat(100_000)}`,
      headers: { "content-type": "application/json" },
    });
    expect(malformed.status).toBe(400);
    const after = await Promise.all(Array.from({ length: 3 }, (_, i) => largeUpload(tenant, `after-${i}`).then((res) => res.status)));
    expect(after).toEqual(Array(3).fill(202));
  }, 30_000);
});
