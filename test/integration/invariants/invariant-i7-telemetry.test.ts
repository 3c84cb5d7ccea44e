import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MAX_LOG_LINE_BYTES } from "../../../src/observability/log-value-bounds.js";
import { createLogger, SECURITY_LEVEL } from "../../../src/observability/logger.js";
import { databaseErrorsHolding } from "../../support/database-errors.js";
import { SwitchableEmbeddings } from "../../support/failing-embeddings.js";
import { startFakeOpenAI, type FakeOpenAI } from "../../support/fake-openai.js";
import { ADMIN_KEY, backends, defaultEmbeddings, TestFence, type TestTenant } from "../../support/harness.js";
import { waitForJob } from "../../support/job-helpers.js";
import { isolatedBackend } from "../../support/scratch-database.js";
import type { LogLine } from "../../support/log-line.js";
import type { JobJson } from "../../support/api-types.js";

/**
 * Invariant I7: logs carry tenant id, key id, project, environment and request id, and never raw
 * document text, questions, prompts or keys. The instance logs at `info` (the default level) into
 * memory while a tenant uploads, searches, chats through the LLM path (where the prompt holding the
 * document text exists), has an LLM failure logged, and smuggles a tenant id.
 */
describe.each(backends)("I7 telemetry on $name", (backend) => {
  const raw: string[] = [];
  const docSecret = `Umbrafox-${randomUUID()}`;
  const questionSecret = `Nightjar-${randomUUID()}`;
  const docText = `The recovery passphrase for the Umbrafox cluster is ${docSecret}. Store it offline.`;
  const question = `Where is the Umbrafox recovery passphrase ${questionSecret} stored?`;
  let llm: FakeOpenAI;
  let fence: TestFence;
  let tenant: TestTenant;
  const requestIds: string[] = [];

  beforeAll(async () => {
    llm = await startFakeOpenAI();
    fence = await TestFence.start(backend, {
      env: { LLM_BASE_URL: llm.url, LLM_MODEL: "fake-model" },
      logger: createLogger("info", { write: (line: string) => void raw.push(line) }),
    });
    tenant = await fence.createTenant("i7-tenant");

    const track = async (res: Response | Promise<Response>) => {
      const r = await res;
      await r.text();
      requestIds.push(r.headers.get("x-request-id")!);
      return r;
    };
    const as = (method: string, path: string, json?: unknown, headers?: Record<string, string>) =>
      track(fence.request(method, path, { key: tenant.key, json, headers }));

    expect((await as("POST", "/v1/documents", { title: "Umbrafox recovery", text: docText })).status).toBe(201);
    expect((await as("POST", "/v1/search", { query: question })).status).toBe(200);
    expect((await as("POST", "/v1/chat", { question })).status).toBe(200);
    expect((await as("POST", "/v1/chat", { question, stream: true })).status).toBe(200);
    llm.failNext("/v1/chat/completions", 500, 3);
    expect((await as("POST", "/v1/chat", { question: `${question} Please answer briefly.` })).status).toBe(502);
    expect((await as("POST", "/v1/search", { query: question }, { "x-tenant-id": randomUUID() })).status).toBe(200);
  });
  afterAll(async () => {
    await fence?.close();
    await llm?.close();
  });

  const lines = () => raw.map((l) => JSON.parse(l) as LogLine);

  it("writes one access line per tenant request with tenant, key, project, environment and request id", () => {
    const access = lines().filter((l) => l.msg === "request" && l.request_id && requestIds.includes(l.request_id));
    expect(access.map((l) => l.request_id).sort()).toEqual([...requestIds].sort());
    for (const line of access) {
      expect(line).toMatchObject({ tenant_id: tenant.id, key_id: tenant.keyId, project: "default", environment: "prod" });
      expect(line.route).toMatch(/^\/v1\/(documents|search|chat)$/);
      expect(line.status).toEqual(expect.any(Number));
      expect(line.latency_ms).toBeGreaterThanOrEqual(0);
    }
  });

  it("puts tenant and request ids on the error line of a failed request", () => {
    const errors = lines().filter((l) => l.level >= 50 && l.request_id && requestIds.includes(l.request_id));
    expect(errors.length).toBeGreaterThan(0);
    for (const line of errors) expect(line).toMatchObject({ tenant_id: tenant.id, key_id: tenant.keyId });
  });

  it("reports the smuggled tenant id as a security event carrying tenant and request ids", () => {
    const events = lines().filter((l) => l.security_event === "smuggled_tenant_id");
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ level: SECURITY_LEVEL, tenant_id: tenant.id, request_id: requestIds[requestIds.length - 1] });
  });

  it("never logs document text, the question, the prompt, the tenant key or the admin key", () => {
    // The prompt really existed: the LLM received the document text, so a leak had something to leak.
    expect(llm.requests.some((r) => JSON.stringify(r.body).includes(docSecret))).toBe(true);
    const all = raw.join("\n");
    expect(all.length).toBeGreaterThan(0);
    for (const secret of [docSecret, questionSecret, "recovery passphrase", tenant.key, ADMIN_KEY]) {
      expect(all).not.toContain(secret);
    }
  });
});

/**
 * Invariant I7 when the database fails on a document: its errors quote the values they failed on
 * (drizzle's message lists every parameter; Postgres quotes keys in `detail` and values in its
 * message), and a request that logged one once wrote a 3.9 MB line holding the document. Real
 * errors of the backend under test, from statements whose parameters hold a canary document, are
 * made to fail uploads — in the request (the HTTP error handler logs them) and in a job (the job
 * runner does) — and no line may hold the canary, in any encoding, or exceed the line bound. On a
 * server the suite has a database of its own, so no other suite's job worker claims the failing job.
 */
describe.each(backends)("I7 telemetry: database errors on $name", (baseBackend) => {
  const raw: string[] = [];
  const canary = `Gannetfold-${randomUUID()}`;
  // Large, like the batch that was logged whole: a cut line would still hold its start.
  const document = `Board minutes, ${canary}. ${"The committee reviewed the quarterly figures in detail. ".repeat(1_200)}`;
  const encodings = [
    canary,
    [...new TextEncoder().encode(canary)].join(","), // a byte array in drizzle's message
    Buffer.from(canary).toString("hex"), // bytea in Postgres' detail
    "The committee reviewed",
  ];
  let fence: TestFence;
  let tenant: TestTenant;
  let embeddings: SwitchableEmbeddings;
  let errorCount = 0;
  const requestIds: string[] = [];
  let job: JobJson;
  let drop: () => Promise<void> = async () => undefined;

  beforeAll(async () => {
    const isolated = await isolatedBackend(baseBackend, "fence_i7_errors");
    drop = isolated.drop;
    embeddings = new SwitchableEmbeddings(await defaultEmbeddings());
    fence = await TestFence.start(isolated.backend, {
      env: { FENCE_JOB_POLL_MS: "50", FENCE_JOB_RETRY_BASE_MS: "50" },
      embeddings,
      logger: createLogger("info", { write: (line: string) => void raw.push(line) }),
    });
    tenant = await fence.createTenant("i7-db-errors", "enterprise");
    const errors = await databaseErrorsHolding(fence.fence.db, canary, document);
    errorCount = errors.length;
    // The errors really hold the canary: a leak had something to leak.
    for (const error of errors) expect(`${error.message} ${JSON.stringify(error.cause ?? {})}`).toMatch(/Gannetfold|,\d+,\d+,/);

    for (const error of errors) {
      embeddings.failWith = error;
      const res = await fence.request("POST", "/v1/documents", { key: tenant.key, json: { title: "Board minutes", text: document } });
      expect(res.status).toBe(500);
      expect(await res.text()).not.toContain(canary);
      requestIds.push(res.headers.get("x-request-id")!);
    }
    embeddings.failWith = errors[0];
    const queued = await fence.request("POST", "/v1/documents", {
      key: tenant.key,
      json: { title: "Board minutes, queued", text: document },
      headers: { prefer: "respond-async" },
    });
    expect(queued.status).toBe(202);
    job = await waitForJob(async (path) => fence.request("GET", path, { key: tenant.key }), ((await queued.json()) as JobJson).id);
    expect(job.status).toBe("failed");
    embeddings.failWith = undefined;
  });
  afterAll(async () => {
    await fence?.close();
    await drop();
  });

  const lines = () => raw.map((l) => JSON.parse(l) as LogLine & { err?: Record<string, unknown> });

  it("writes no line holding the document or the canary, in any encoding", () => {
    const all = raw.join("\n");
    for (const leak of encodings) expect(all, leak).not.toContain(leak);
  });

  it("keeps every line under the line bound", () => {
    expect(raw.length).toBeGreaterThan(0);
    for (const line of raw) expect(Buffer.byteLength(line)).toBeLessThan(MAX_LOG_LINE_BYTES);
  });

  it("logs each failed request's database error by its SQLSTATE code, with tenant and request ids", () => {
    const failures = lines().filter((l) => l.level >= 50 && l.request_id && requestIds.includes(l.request_id) && l.err);
    expect(failures).toHaveLength(errorCount);
    for (const line of failures) {
      expect(line).toMatchObject({ tenant_id: tenant.id, err: { type: "DatabaseError", code: expect.stringMatching(/^[0-9A-Z]{5}$/) } });
      expect(line.err).not.toHaveProperty("detail");
    }
    expect(failures.map((l) => l.err!.code).sort()).toEqual(["22021", "22P02", "23505", "23505"]);
    expect(failures.find((l) => l.err!.code === "23505")!.err!.constraint).toMatch(/^canary_(docs|payloads)_pkey$/);
  });

  it("logs the failed job's database error by its code, with the job and tenant ids", () => {
    const jobLines = lines().filter((l) => l.job_id === job.id && l.err);
    expect(jobLines.length).toBeGreaterThan(0);
    for (const line of jobLines) expect(line).toMatchObject({ tenant_id: tenant.id, err: { type: "DatabaseError", code: "23505" } });
  });
});
