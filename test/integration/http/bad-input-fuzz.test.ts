import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { queryRows } from "../../../src/db/database.js";
import { countTenantRows, search, type TenantRowCounts } from "../../support/api-contract.js";
import { ADMIN_KEY, backends, TestFence, type TestTenant } from "../../support/harness.js";
import { isolatedBackend } from "../../support/scratch-database.js";
import { generateMalformedRequests, type MalformedRequest } from "../../support/malformed-requests.js";
import type { BatchAcceptedJson, ChatBody, DocumentListJson, IngestedDocumentJson } from "../../support/api-types.js";

/** Fixed, so every run sends the same requests; change it to explore, never to make a run pass. */
const SEED = 0x5eedf3c3;
/** A small body limit, so oversized bodies are cheap to send and must be refused with 413. */
const MAX_BODY_BYTES = 64 * 1024;

interface Outcome {
  request: MalformedRequest;
  status: number;
  text: string;
  requestIdHeader: string | null;
}

/** What is wrong with one response, or undefined when it honours the contract. */
function contractViolation({ request, status, text, requestIdHeader }: Outcome): string | undefined {
  if (status >= 500) return `${status}: ${text.slice(0, 200)}`;
  if (request.expect !== undefined && status !== request.expect) return `expected ${request.expect}, got ${status}: ${text.slice(0, 200)}`;
  if (!requestIdHeader) return "no x-request-id header";
  if (status < 400) return undefined;
  let body: { error?: { code?: unknown; message?: unknown; request_id?: unknown } };
  try {
    body = JSON.parse(text) as typeof body;
  } catch {
    return `${status} with a non-JSON body: ${text.slice(0, 100)}`;
  }
  const error = body.error;
  if (typeof error?.code !== "string" || !/^[a-z_]+$/.test(error.code)) return `${status} without an error code: ${text.slice(0, 200)}`;
  if (typeof error.message !== "string" || error.message === "") return `${status} without a message`;
  if (error.request_id !== requestIdHeader) return `${status} whose request_id does not match the header`;
  return undefined;
}

/** A tenant's jobs as stored (past row-level security), by id. */
async function jobIdsOf(fence: TestFence, tenantId: string): Promise<string[]> {
  const rows = await fence.fence.db.asOwner((tx) =>
    queryRows<{ id: string }>(tx, sql`SELECT id FROM jobs WHERE tenant_id = ${tenantId} ORDER BY id`),
  );
  return rows.map((r) => r.id).sort();
}

describe.each(backends)("bad input fuzz on $name", (backend) => {
  let fence: TestFence;
  let drop: (() => Promise<void>) | undefined;
  let tenant: TestTenant;
  let bystander: TestTenant;
  let bystanderBefore: TenantRowCounts;
  /** Documents the fuzz tenant should own, by id → chunk count, from every successful upload. */
  const expectedDocuments = new Map<string, number>();
  /** Jobs the fuzz tenant should own, from every accepted batch. */
  const expectedJobs = new Set<string>();

  beforeAll(async () => {
    // No job workers, and a database of its own (no other instance's workers either): an accepted
    // batch stays queued, so the rows below are exactly what the requests made.
    const isolated = await isolatedBackend(backend, "fence_fuzz");
    drop = isolated.drop;
    fence = await TestFence.start(isolated.backend, { env: { FENCE_MAX_BODY_BYTES: String(MAX_BODY_BYTES), FENCE_JOB_WORKERS: "0" } });
    // Hundreds of requests in a few seconds: a plan whose rate limit the fuzz stays under.
    tenant = await fence.createTenant("fuzz", "enterprise");
    bystander = await fence.createTenant("bystander");
    const baseline = await fence.upload(tenant, { title: "Baseline", text: "# Lighthouses\n\nLighthouse keepers trimmed the wicks nightly." });
    expectedDocuments.set(baseline.id, baseline.chunk_count);
    await fence.upload(bystander, { text: "The bystander's own document about kayaks." });
    bystanderBefore = await countTenantRows(fence, bystander.id);
  });
  afterAll(async () => {
    await fence?.close();
    await drop?.();
  });

  async function send(request: MalformedRequest): Promise<Outcome> {
    const headers: Record<string, string> = {};
    if (request.auth === "tenant") headers.authorization = `Bearer ${tenant.key}`;
    else if (request.auth === "admin") headers.authorization = `Bearer ${ADMIN_KEY}`;
    else if (request.auth !== "none") headers.authorization = request.auth.header;
    if (request.contentType !== undefined) headers["content-type"] = request.contentType;
    const path = request.path.replaceAll("{tenant}", tenant.id);
    const res = await fence.fence.app.request(path, { method: request.method, headers, body: request.body });
    return { request, status: res.status, text: await res.text(), requestIdHeader: res.headers.get("x-request-id") };
  }

  it("generates the same few hundred requests from the same seed", () => {
    const first = generateMalformedRequests(SEED, { maxBodyBytes: MAX_BODY_BYTES }).map((r) => r.label);
    const second = generateMalformedRequests(SEED, { maxBodyBytes: MAX_BODY_BYTES }).map((r) => r.label);
    expect(second).toEqual(first);
    expect(first.length).toBeGreaterThanOrEqual(300);
  });

  it("answers every malformed request with a 4xx error body (or a valid success), never a 5xx", async () => {
    const requests = generateMalformedRequests(SEED, { maxBodyBytes: MAX_BODY_BYTES });
    const violations: string[] = [];
    const statuses = new Map<number, number>();
    for (const request of requests) {
      const outcome = await send(request);
      statuses.set(outcome.status, (statuses.get(outcome.status) ?? 0) + 1);
      const violation = contractViolation(outcome);
      if (violation) violations.push(`${request.label}: ${violation}`);
      if (outcome.status < 300 && request.method === "POST" && request.path === "/v1/documents") {
        const doc = JSON.parse(outcome.text) as IngestedDocumentJson;
        expectedDocuments.set(doc.id, doc.chunk_count);
      }
      if (outcome.status === 202 && request.path === "/v1/documents/batch") {
        for (const job of (JSON.parse(outcome.text) as BatchAcceptedJson).jobs) expectedJobs.add(job.id);
      }
    }
    expect(violations).toEqual([]);
    // The run exercised the error paths it was written for, not just one of them.
    for (const status of [400, 401, 404, 413, 415]) expect(statuses.get(status) ?? 0, `count of ${status}`).toBeGreaterThan(0);
    expect(statuses.get(400)).toBeGreaterThan(150);
  });

  it("left exactly the rows that successful requests created, and none in another tenant", async () => {
    const expectedChunks = [...expectedDocuments.values()].reduce((a, b) => a + b, 0);
    expect(await countTenantRows(fence, tenant.id)).toMatchObject({ documents: expectedDocuments.size, chunks: expectedChunks });
    expect(await countTenantRows(fence, bystander.id)).toEqual(bystanderBefore);
    expect(expectedJobs.size).toBeGreaterThan(0); // some batches were valid and queued
    expect(await jobIdsOf(fence, tenant.id)).toEqual([...expectedJobs].sort());
    expect(await jobIdsOf(fence, bystander.id)).toEqual([]);

    const listed = await fence.request("GET", "/v1/documents?limit=100", { key: tenant.key });
    const { documents } = (await listed.json()) as DocumentListJson;
    expect(new Map(documents.map((d) => [d.id, d.chunk_count]))).toEqual(expectedDocuments);
  });

  it("still serves valid requests afterwards, with the same key", async () => {
    const doc = await fence.upload(tenant, { title: "After the storm", text: "Sourdough starters need feeding twice a day." });
    expect((await search(fence, tenant.key, "feeding a sourdough starter"))[0]?.document_id).toBe(doc.id);
    const chat = await fence.request("POST", "/v1/chat", { key: tenant.key, json: { question: "How often do lighthouse keepers trim the wicks?" } });
    expect(chat.status).toBe(200);
    expect(((await chat.json()) as ChatBody).answer).toMatch(/nightly/i);
    expect((await fence.admin("POST", "/tenants", { name: "post-fuzz" })).status).toBe(201);
    expect((await fence.request("GET", "/readyz")).status).toBe(200);
  });
});
