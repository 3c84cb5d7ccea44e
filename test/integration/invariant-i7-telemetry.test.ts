import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLogger, SECURITY_LEVEL } from "../../src/observability/logger.js";
import { startFakeOpenAI, type FakeOpenAI } from "../support/fake-openai.js";
import { ADMIN_KEY, backends, TestFence, type TestTenant } from "../support/harness.js";
import type { LogLine } from "../support/log-line.js";

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
