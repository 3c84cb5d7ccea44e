import { randomBytes, randomUUID } from "node:crypto";
import { Hono } from "hono";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { requestContext } from "../../../src/http/middleware/request-context.js";
import type { AppEnv } from "../../../src/http/types.js";
import { createLogger, SECURITY_LEVEL } from "../../../src/observability/logger.js";
import { SecurityEvents } from "../../../src/observability/security-events.js";
import { startFakeOpenAI, type FakeOpenAI } from "../../support/fake-openai.js";
import { ADMIN_KEY, backends, serveOnLoopback, TestFence, type TestTenant } from "../../support/harness.js";
import { waitForJob } from "../../support/job-helpers.js";
import type { LogLine } from "../../support/log-line.js";
import type { IssuedKeyJson, JobJson } from "../../support/api-types.js";

/**
 * Logs carry who and what (tenant, key id, environment, route, status, latency, model, tokens,
 * cache, limit decision) and never personal data: known PII of every kind is fed through every
 * path — uploads (sync and as a job), search, chat, streamed chat, bad requests, bad keys, unknown
 * routes, client-chosen request ids, and the tenant's debug prompt logging — and none of it may
 * reach the captured log stream. Security events (revoked key, repeated 401s) get their own level.
 */
const base62 = (n: number) => [...randomBytes(n)].map((b) => "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"[b % 62]).join("");

/** Known personal data and secrets, one of each kind (several forms for some). Unique per run. */
const tag = randomUUID().slice(0, 8);
const PII = {
  email: `maria.${tag}@example.org`,
  phoneInternational: "+44 20 7946 0958",
  phoneNational: "(415) 555-2671",
  card: "4111 1111 1111 1111",
  cardCompact: "5500005555555559",
  iban: "GB82 WEST 1234 5698 7654 32",
  ibanCompact: "DE89370400440532013000",
  ssn: "123-45-6789",
  nino: "AB123456C",
  fenceKey: `fence_prod_${base62(40)}`,
  providerKey: `sk-proj-${base62(32)}`,
  bearer: `Bearer ${base62(24)}.${base62(12)}`,
  jwt: `eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.${base62(43)}`,
};
/** What must not appear in the log stream: the values, and their distinctive parts. */
const FORBIDDEN = [
  ...Object.values(PII),
  PII.email.split("@")[0]!,
  "7946 0958",
  "555-2671",
  "1111 1111",
  "5500005555555559",
  "WEST 1234",
  "0532013000",
  "45-6789",
  "123456C",
  PII.fenceKey.slice(11),
  PII.providerKey.slice(8),
  PII.bearer.slice(7),
  PII.jwt.slice(-43),
];

const PII_TEXT =
  `Customer record. Reach Maria at ${PII.email} or ${PII.phoneInternational}, office ${PII.phoneNational}. ` +
  `She pays with card ${PII.card} (backup ${PII.cardCompact}) from IBAN ${PII.iban}, old account ${PII.ibanCompact}. ` +
  `SSN ${PII.ssn}, NI number ${PII.nino}. The integration uses ${PII.fenceKey} and ${PII.providerKey}; ` +
  `the gateway sends "Authorization: ${PII.bearer}" and the session token ${PII.jwt}.`;

const QUESTION = `How does Maria (${PII.email}, ${PII.phoneInternational}) pay — card ${PII.card} or IBAN ${PII.iban}?`;

describe.each(backends)("masked logs on $name", (backend) => {
  const raw: string[] = [];
  let llm: FakeOpenAI;
  let fence: TestFence;
  let tenant: TestTenant;
  let testKey: { id: string; key: string };
  let revoked: TestTenant;
  const requestIds = new Set<string>();
  const lines = () => raw.map((l) => JSON.parse(l) as LogLine);
  const accessLine = (requestId: string) => lines().find((l) => l.msg === "request" && l.request_id === requestId);
  const accessLineWhere = (route: string, status: number) =>
    lines().filter((l) => l.msg === "request" && l.route === route && l.status === status);

  async function send(method: string, path: string, init: Parameters<TestFence["request"]>[2] = {}) {
    const res = await fence.request(method, path, init);
    const body = await res.text();
    requestIds.add(res.headers.get("x-request-id")!);
    return { res, body, requestId: res.headers.get("x-request-id")! };
  }

  beforeAll(async () => {
    llm = await startFakeOpenAI();
    fence = await TestFence.start(backend, {
      env: { LLM_BASE_URL: llm.url, LLM_MODEL: "fake-model", FENCE_JOB_POLL_MS: "50" },
      logger: createLogger("info", { write: (line: string) => void raw.push(line) }),
    });
    tenant = await fence.createTenant(`logs-${tag}`, "enterprise");
    const issued = await fence.admin("POST", `/tenants/${tenant.id}/keys`, { name: "ci", environment: "test" });
    testKey = (await issued.json()) as IssuedKeyJson;
    revoked = await fence.createTenant(`logs-revoked-${tag}`);
  });
  afterAll(async () => {
    await fence?.close();
    await llm?.close();
  });

  describe("every path, fed known PII", () => {
    let chatRequestId: string;
    let streamRequestId: string;
    let searchRequestId: string;
    let failedJobId: string;

    beforeAll(async () => {
      const key = tenant.key;
      // Uploads: synchronous, and queued as a job that a worker runs.
      expect((await send("POST", "/v1/documents", { key, json: { title: `Maria ${PII.email}`, text: PII_TEXT, metadata: { owner: PII.email } } })).res.status).toBe(201);
      const queued = await send("POST", "/v1/documents", {
        key,
        json: { title: "Maria, async", text: `${PII_TEXT} Second copy, queued.` },
        headers: { prefer: "respond-async" },
      });
      expect(queued.res.status).toBe(202);
      const job = JSON.parse(queued.body) as JobJson;
      expect((await waitForJob(async (path) => fence.request("GET", path, { key }), job.id)).status).toBe("succeeded");
      // A queued upload that fails in its parse step (not a PDF), named after the customer.
      const form = new FormData();
      form.append("file", new File([`not a pdf: ${PII_TEXT}`], `Maria ${PII.email}.pdf`, { type: "application/pdf" }));
      const broken = await send("POST", "/v1/documents", { key, body: form, headers: { prefer: "respond-async" } });
      expect(broken.res.status, broken.body).toBe(202);
      failedJobId = (JSON.parse(broken.body) as JobJson).id;
      expect((await waitForJob(async (path) => fence.request("GET", path, { key }), failedJobId)).status).toBe("failed");

      const searched = await send("POST", "/v1/search", { key, json: { query: QUESTION } });
      expect(searched.res.status).toBe(200);
      searchRequestId = searched.requestId;
      const chat = await send("POST", "/v1/chat", { key, json: { question: QUESTION } });
      expect(chat.res.status).toBe(200);
      chatRequestId = chat.requestId;
      const stream = await send("POST", "/v1/chat", { key, json: { question: `${QUESTION} Stream it.`, stream: true } });
      expect(stream.res.status).toBe(200);
      expect(stream.body).toContain("event: done");
      streamRequestId = stream.requestId;
      // The same question again: the answer cache.
      expect((await send("POST", "/v1/chat", { key, json: { question: QUESTION } })).res.status).toBe(200);
      // The test-environment key.
      expect((await send("POST", "/v1/search", { key: testKey.key, json: { query: "Maria" } })).res.status).toBe(200);

      // Errors: 400s with PII in the body (schema-invalid and malformed JSON), 401s with key-like
      // strings, 404s with PII in the path, an LLM failure (502, logged at error).
      expect((await send("POST", "/v1/search", { key, json: { query: PII.email, k: PII.card } })).res.status).toBe(400);
      expect(
        (await send("POST", "/v1/chat", { key, body: `{"question": "${PII.iban} ${PII.ssn}", `, headers: { "content-type": "application/json" } })).res.status,
      ).toBe(400);
      expect((await send("POST", "/v1/search", { key: PII.fenceKey, json: { query: "x" } })).res.status).toBe(401);
      expect((await send("GET", "/v1/documents", { headers: { authorization: PII.bearer } })).res.status).toBe(401);
      expect((await send("GET", "/v1/documents", { key: PII.providerKey })).res.status).toBe(401);
      expect((await send("GET", `/v1/documents/${randomUUID()}`, { key })).res.status).toBe(404);
      expect((await send("GET", `/v1/documents/${encodeURIComponent(PII.email)}`, { key })).res.status).toBeGreaterThanOrEqual(400);
      expect((await send("GET", `/v1/customers/${encodeURIComponent(PII.email)}/${PII.cardCompact}`, { key })).res.status).toBe(404);
      llm.failNext("/v1/chat/completions", 500, 3);
      expect((await send("POST", "/v1/chat", { key, json: { question: `${QUESTION} Briefly.` } })).res.status).toBe(502);

      // Client-chosen request ids are well-formed ids that happen to be PII: they are bound to
      // every line of their request, so only masking keeps them out.
      for (const id of [PII.cardCompact, "415-555-2671", PII.fenceKey]) {
        expect((await send("POST", "/v1/search", { key, json: { query: "Maria" }, headers: { "x-request-id": id } })).res.status).toBe(200);
      }
    }, 120_000);

    it("lets no known PII value, key or token reach the log stream", () => {
      const all = raw.join("\n");
      expect(raw.length).toBeGreaterThan(20);
      for (const value of [...FORBIDDEN, tenant.key, testKey.key, ADMIN_KEY]) {
        expect(all, `log stream contains ${value}`).not.toContain(value);
      }
      // The masking really ran on those lines (the client-chosen request ids were PII).
      expect(lines().some((l) => l.request_id === "[card]")).toBe(true);
      expect(lines().some((l) => l.request_id === "[phone]")).toBe(true);
      expect(lines().some((l) => l.request_id === "[api_key]")).toBe(true);
    });

    it("writes one access line per request with tenant, key id, environment, route, status and latency", () => {
      const tenantLines = lines().filter((l) => l.msg === "request" && l.tenant_id === tenant.id);
      expect(tenantLines.length).toBeGreaterThanOrEqual(12);
      for (const line of tenantLines) {
        expect(line).toMatchObject({ project: "default", method: expect.any(String), route: expect.stringMatching(/^\/v1\//), status: expect.any(Number) });
        expect(["prod", "test"]).toContain(line.environment);
        expect(line.key_id === tenant.keyId || line.key_id === testKey.id).toBe(true);
        expect(line.latency_ms).toBeGreaterThanOrEqual(0);
      }
      for (const id of [chatRequestId, streamRequestId, searchRequestId]) expect(accessLine(id), id).toBeDefined();
      expect(new Set(lines().filter((l) => l.msg === "request").map((l) => l.request_id)).size).toBe(
        lines().filter((l) => l.msg === "request").length,
      );
    });

    it("tells production and test traffic apart by the key's environment", () => {
      const byTestKey = lines().filter((l) => l.msg === "request" && l.key_id === testKey.id);
      expect(byTestKey.length).toBe(1);
      expect(byTestKey[0]).toMatchObject({ environment: "test", tenant_id: tenant.id, route: "/v1/search", status: 200 });
      expect(accessLine(chatRequestId)).toMatchObject({ environment: "prod", key_id: tenant.keyId });
    });

    it("logs the route pattern, never the raw path", () => {
      const notFound = lines().filter((l) => l.msg === "request" && l.status === 404 && l.tenant_id === tenant.id);
      expect(notFound.length).toBeGreaterThanOrEqual(2);
      for (const line of notFound) expect(line.error_code).toBe("not_found");
      expect(notFound.some((l) => l.route === "/v1/documents/:id")).toBe(true);
    });

    it("records model, tokens and cache on chat lines, and the cache on search lines", () => {
      expect(accessLine(chatRequestId)).toMatchObject({ model: "fake-model", cache: "miss", status: 200 });
      expect(accessLine(chatRequestId)!.prompt_tokens).toBeGreaterThan(0);
      expect(accessLine(chatRequestId)!.completion_tokens).toBeGreaterThan(0);
      const cachedChats = accessLineWhere("/v1/chat", 200).filter((l) => l.cache === "hit");
      expect(cachedChats).toHaveLength(1);
      expect(accessLine(searchRequestId)?.cache).toMatch(/^(hit|miss)$/);
    });

    it("logs a streamed chat when its stream has ended, with the model's figures", () => {
      const line = accessLine(streamRequestId)!;
      expect(line).toMatchObject({ model: "fake-model", status: 200, cache: "miss" });
      expect(line.completion_tokens).toBeGreaterThan(0);
    });

    it("records the error code of refused and failed requests; repeated refusals are sampled, and counted", async () => {
      expect(accessLineWhere("/v1/search", 400).some((l) => l.error_code === "validation_error")).toBe(true);
      expect(accessLineWhere("/v1/chat", 502).map((l) => l.error_code)).toEqual(["upstream_error"]);
      // The two 401s on GET /v1/documents are one kind: the first is written, the second is counted
      // in a "requests repeated" line once its second is over.
      const unauthorizedLines = () => lines().filter((l) => (l.msg === "request" || l.msg === "requests repeated") && l.status === 401);
      const counted = () => unauthorizedLines().reduce((n, l) => n + (l.msg === "request" ? 1 + Number(l.repeated ?? 0) : Number(l.repeated)), 0);
      for (let waited = 0; counted() < 3 && waited < 3000; waited += 50) await new Promise((r) => setTimeout(r, 50));
      expect(counted()).toBeGreaterThanOrEqual(3);
      expect(unauthorizedLines().some((l) => l.msg === "requests repeated")).toBe(true);
      const unauthorized = unauthorizedLines();
      for (const line of unauthorized) {
        expect(line.error_code).toBe("unauthorized");
        expect(line.tenant_id).toBeUndefined();
      }
    });

    it("logs each job's start and end with tenant, job id, kind, attempt, environment and latency", () => {
      const jobLines = lines().filter((l) => l.job_id !== undefined && l.tenant_id === tenant.id);
      const started = jobLines.filter((l) => l.msg === "job started");
      const succeeded = jobLines.filter((l) => l.msg === "job succeeded");
      const failed = jobLines.filter((l) => l.msg === "job failed");
      expect(started).toHaveLength(2);
      expect(succeeded).toHaveLength(1);
      expect(failed).toHaveLength(1);
      for (const line of jobLines) {
        expect(line).toMatchObject({ kind: "ingest_document", attempt: 1, key_id: tenant.keyId, environment: "prod", project: "default" });
      }
      expect(succeeded[0]!.latency_ms).toBeGreaterThanOrEqual(0);
      expect(failed[0]).toMatchObject({ job_id: failedJobId, step: "parse", code: "unprocessable_document", level: 40 });
      expect(failed[0]!.latency_ms).toBeGreaterThanOrEqual(0);
    });

    it("logs no prompt at all while the tenant's debug flag is off", () => {
      expect(lines().filter((l) => l.debug_prompt)).toHaveLength(0);
    });
  });

  describe("debug prompt logging", () => {
    const patch = (overrides: Record<string, unknown>) =>
      fence.request("PATCH", `/v1/admin/tenants/${tenant.id}/config`, { key: ADMIN_KEY, json: overrides });

    it("refuses to switch it on for more than 24 hours", async () => {
      const res = await patch({ debug_log_prompts_until: new Date(Date.now() + 25 * 3600_000).toISOString() });
      expect(res.status).toBe(400);
      expect(await res.text()).toContain("debug_log_prompts_until");
      const bad = await patch({ debug_log_prompts_until: "tomorrow" });
      expect(bad.status).toBe(400);
    });

    it("logs the masked question and the context's chunk ids until the flag expires, then nothing", async () => {
      const until = new Date(Date.now() + 3000);
      const on = await patch({ debug_log_prompts_until: until.toISOString() });
      expect(on.status, await on.clone().text()).toBe(200);
      const question = `Debug: does Maria ${PII.email} (${PII.phoneInternational}) pay with ${PII.card}?`;
      const first = await send("POST", "/v1/chat", { key: tenant.key, json: { question } });
      expect(first.res.status).toBe(200);
      const logged = lines().filter((l) => l.debug_prompt && l.request_id === first.requestId);
      expect(logged).toHaveLength(1);
      expect(logged[0]).toMatchObject({ level: 30, tenant_id: tenant.id, environment: "prod" });
      expect(logged[0]!.masked_question).toBe("Debug: does Maria [email] ([phone]) pay with [card]?");
      expect(logged[0]!.context_chunk_ids!.length).toBeGreaterThan(0);
      for (const id of logged[0]!.context_chunk_ids!) expect(id).toMatch(/^[0-9a-f-]{36}$/);

      await new Promise((r) => setTimeout(r, Math.max(0, until.getTime() - Date.now() + 100)));
      const after = await send("POST", "/v1/chat", { key: tenant.key, json: { question: `${question} Again.` } });
      expect(after.res.status).toBe(200);
      expect(lines().filter((l) => l.debug_prompt && l.request_id === after.requestId)).toHaveLength(0);
      expect(raw.join("\n")).not.toContain(PII.email);
    }, 30_000);
  });

  describe("security events", () => {
    it("reports a revoked key at the security level, with the same 401 as an unknown key", async () => {
      const before = fence.fence.securityEvents.count("revoked_key_used");
      expect((await fence.admin("DELETE", `/tenants/${revoked.id}/keys/${revoked.keyId}`)).status).toBe(204);
      const withRevoked = await send("GET", "/v1/documents", { key: revoked.key });
      const withUnknown = await send("GET", "/v1/documents", { key: `fence_prod_${base62(40)}` });
      expect(withRevoked.res.status).toBe(401);
      expect(withUnknown.res.status).toBe(401);
      const strip = (body: string) => {
        const parsed = JSON.parse(body) as { error: Record<string, unknown> };
        delete parsed.error.request_id;
        return parsed;
      };
      expect(strip(withRevoked.body)).toEqual(strip(withUnknown.body));
      expect([...withRevoked.res.headers.keys()].sort()).toEqual([...withUnknown.res.headers.keys()].sort());

      expect(fence.fence.securityEvents.count("revoked_key_used")).toBe(before + 1);
      const events = lines().filter((l) => l.security_event === "revoked_key_used");
      expect(events).toHaveLength(1);
      expect(events[0]).toMatchObject({ level: SECURITY_LEVEL, tenant_id: revoked.id, key_id: revoked.keyId, request_id: withRevoked.requestId });
      expect(raw.join("\n")).not.toContain(revoked.key);
    });

    it("reports repeated 401s from one address once per window, and not for requests without an address", async () => {
      // In-process requests (no socket) have no address to attribute: many 401s, no event.
      for (let i = 0; i < 12; i++) await send("GET", "/v1/documents", { key: `fence_prod_${base62(40)}` });
      expect(fence.fence.securityEvents.count("repeated_unauthorized")).toBe(0);

      const server = await serveOnLoopback(fence.fence);
      try {
        const attempt = async () => {
          const res = await fetch(`${server.url}/v1/documents`, { headers: { authorization: `Bearer fence_prod_${base62(40)}` } });
          await res.text();
          expect(res.status).toBe(401);
        };
        for (let i = 0; i < 9; i++) await attempt();
        expect(fence.fence.securityEvents.count("repeated_unauthorized")).toBe(0);
        await attempt();
        expect(fence.fence.securityEvents.count("repeated_unauthorized")).toBe(1);
        for (let i = 0; i < 5; i++) await attempt();
        expect(fence.fence.securityEvents.count("repeated_unauthorized")).toBe(1);
      } finally {
        await server.close();
      }
      const events = lines().filter((l) => l.security_event === "repeated_unauthorized");
      expect(events).toHaveLength(1);
      // The route the 401s were aimed at (as the metrics name it), not the authenticating middleware's pattern.
      expect(events[0]).toMatchObject({ level: SECURITY_LEVEL, route: "/v1/documents" });
      expect(events[0]!.client_address).toMatch(/127\.0\.0\.1$/);
    });
  });
});

describe("client address for repeated 401s", () => {
  async function unauthorizedServer(trustedProxyHops: number) {
    const raw: string[] = [];
    const logger = createLogger("info", { write: (line: string) => void raw.push(line) });
    const events = new SecurityEvents(logger, { trustedProxyHops, unauthorizedThreshold: 3 });
    const app = new Hono<AppEnv>();
    app.use("*", requestContext(logger, events));
    app.get("/x", (c) => c.json({ error: "no" }, 401));
    const server = await serveOnLoopback(app.fetch);
    const hit = async (forwardedFor: string) => {
      const res = await fetch(`${server.url}/x`, { headers: { "x-forwarded-for": forwardedFor } });
      await res.text();
    };
    const reported = () => raw.map((l) => JSON.parse(l) as LogLine).filter((l) => l.security_event === "repeated_unauthorized");
    return { hit, reported, close: server.close };
  }

  it("ignores X-Forwarded-For unless proxies are trusted: a client cannot spread its 401s over made-up addresses", async () => {
    const s = await unauthorizedServer(0);
    try {
      for (const spoofed of ["198.51.100.1", "198.51.100.2", "198.51.100.3"]) await s.hit(spoofed);
      expect(s.reported()).toHaveLength(1);
      expect(s.reported()[0]!.client_address).toMatch(/127\.0\.0\.1$/);
    } finally {
      await s.close();
    }
  });

  it("behind one trusted proxy, counts by the address that proxy appended, not the client-written entries", async () => {
    const s = await unauthorizedServer(1);
    try {
      // The client writes whatever it likes on the left; the proxy appends the real peer.
      for (const spoofed of ["198.51.100.1", "198.51.100.2", "198.51.100.3"]) await s.hit(`${spoofed}, 203.0.113.9`);
      await s.hit("203.0.113.77");
      expect(s.reported()).toHaveLength(1);
      expect(s.reported()[0]).toMatchObject({ level: SECURITY_LEVEL, client_address: "203.0.113.9" });
    } finally {
      await s.close();
    }
  });
});

describe("the logger itself", () => {
  it("masks the message, format arguments, nested fields, errors and child bindings", () => {
    const raw: string[] = [];
    const logger = createLogger("info", { write: (line: string) => void raw.push(line) });
    const child = logger.child({ customer: PII.email }).child({ card: PII.card });
    child.info({ nested: { deep: [PII.iban] }, err: new Error(`failed for ${PII.ssn}`) }, "paid by %s", PII.phoneInternational);
    child.error(new TypeError(`provider echoed ${PII.providerKey}`));
    child.security({ security_event: "test" }, `saw ${PII.bearer}`);
    const all = raw.join("\n");
    for (const value of FORBIDDEN) expect(all, value).not.toContain(value);
    const [first, second, third] = raw.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(first).toMatchObject({ customer: "[email]", card: "[card]", nested: { deep: ["[iban]"] }, msg: "paid by [phone]" });
    expect((first!.err as { message: string }).message).toBe("failed for [national_id]");
    expect(second).toMatchObject({ level: 50, msg: "provider echoed [api_key]", err: { type: "TypeError" } });
    expect(third).toMatchObject({ level: SECURITY_LEVEL, msg: "saw Bearer [bearer_token]" });
  });

  it("keeps redacting whole free-text fields", () => {
    const raw: string[] = [];
    createLogger("info", { write: (line: string) => void raw.push(line) }).info({ text: "a document", question: "why?" }, "oops");
    expect(JSON.parse(raw[0]!)).toMatchObject({ text: "[redacted]", question: "[redacted]" });
  });
});
