import { z } from "zod";

/**
 * The eval's HTTP client for a running Fence: the admin calls that create and delete its tenants,
 * and the tenant calls a customer would make (batch upload, job polling, chat, stored cases).
 * Responses are validated with zod, so a target that answers in an unexpected shape stops the run
 * with the route named instead of scoring garbage. 429 and 503 are waited out as the README tells
 * clients to: after `Retry-After`, a bounded number of times.
 */

export class TargetError extends Error {
  override name = "TargetError";
}

interface Reply {
  status: number;
  json: unknown;
  text: string;
}

const MAX_RETRIES = 5;
const MAX_RETRY_WAIT_MS = 30_000;

async function call(baseUrl: string, bearer: string, method: string, path: string, json?: unknown): Promise<Reply> {
  for (let attempt = 0; ; attempt++) {
    const response = await fetch(baseUrl + path, {
      method,
      headers: { authorization: `Bearer ${bearer}`, ...(json === undefined ? {} : { "content-type": "application/json" }) },
      body: json === undefined ? undefined : JSON.stringify(json),
    }).catch((error: unknown) => {
      throw new TargetError(`${method} ${path}: cannot reach ${baseUrl} (${(error as Error).message})`);
    });
    const text = await response.text();
    if ((response.status === 429 || response.status === 503) && attempt < MAX_RETRIES) {
      const seconds = Number(response.headers.get("retry-after"));
      await sleep(Math.min(MAX_RETRY_WAIT_MS, Number.isFinite(seconds) && seconds > 0 ? seconds * 1000 : 1000 * 2 ** attempt));
      continue;
    }
    let parsed: unknown;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      parsed = undefined;
    }
    return { status: response.status, json: parsed, text };
  }
}

function expectStatus<T>(reply: Reply, what: string, statuses: number[], schema: z.ZodType<T>): T {
  if (!statuses.includes(reply.status)) {
    const error = (reply.json as { error?: { code?: string; message?: string } } | undefined)?.error;
    throw new TargetError(`${what}: HTTP ${reply.status}${error ? ` ${error.code}: ${error.message}` : ""}`);
  }
  const parsed = schema.safeParse(reply.json);
  if (!parsed.success) throw new TargetError(`${what}: unexpected response shape (${parsed.error.issues[0]?.path.join(".")}: ${parsed.error.issues[0]?.message})`);
  return parsed.data;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const Ready = z.object({ status: z.string(), checks: z.object({ embedding_model: z.string() }).partial().optional() });

/** The target's readiness and embedding model (`GET /readyz` needs no credentials). */
export async function readTargetInfo(baseUrl: string): Promise<{ embeddingModel: string | undefined }> {
  const response = await fetch(`${baseUrl}/readyz`).catch((error: unknown) => {
    throw new TargetError(`cannot reach ${baseUrl} (${(error as Error).message})`);
  });
  const body = Ready.safeParse(await response.json().catch(() => undefined));
  if (response.status !== 200 || !body.success) throw new TargetError(`${baseUrl}/readyz: not ready (HTTP ${response.status})`);
  return { embeddingModel: body.data.checks?.embedding_model };
}

export class AdminClient {
  constructor(
    private readonly baseUrl: string,
    private readonly adminKey: string,
  ) {}

  async createTenant(name: string): Promise<{ id: string }> {
    const reply = await call(this.baseUrl, this.adminKey, "POST", "/v1/admin/tenants", { name });
    return expectStatus(reply, "create tenant", [201], z.object({ id: z.string() }));
  }

  async issueKey(tenantId: string): Promise<string> {
    const reply = await call(this.baseUrl, this.adminKey, "POST", `/v1/admin/tenants/${tenantId}/keys`, { name: "quality-eval", environment: "test" });
    return expectStatus(reply, "issue key", [201], z.object({ key: z.string() })).key;
  }

  async deleteTenant(tenantId: string): Promise<void> {
    const reply = await call(this.baseUrl, this.adminKey, "DELETE", `/v1/admin/tenants/${tenantId}`);
    if (reply.status !== 204 && reply.status !== 404) throw new TargetError(`delete tenant: HTTP ${reply.status}`);
  }
}

const JobJson = z.object({
  id: z.string(),
  status: z.enum(["queued", "running", "succeeded", "failed", "cancelled"]),
  source_id: z.string().nullable(),
  result: z.object({ document_id: z.string() }).nullable(),
  error: z.object({ code: z.string(), message: z.string() }).nullable(),
});

const ChatJson = z.object({
  answer: z.string(),
  citations: z.array(z.object({ document_id: z.string() })),
  no_answer: z.boolean(),
  mode: z.string(),
  model: z.string().nullable(),
  request_id: z.string().optional(),
});
export type ChatReply = z.infer<typeof ChatJson>;

/** A case a tenant stored from one of its runs (`POST /v1/evals/cases`); extra fields are ignored. */
export const StoredCase = z.object({
  id: z.string().optional(),
  question: z.string().min(1),
  expected_document_ids: z.array(z.string()).default([]),
  must_contain: z.array(z.string()).default([]),
  must_not_contain: z.array(z.string()).default([]),
  /** Optional explicit expectation; without it, a case with nothing to find expects a don't-know. */
  expect: z.enum(["answer", "dont_know"]).optional(),
  expect_no_answer: z.boolean().optional(),
});
export type StoredCase = z.infer<typeof StoredCase>;

const StoredCasePage = z.union([
  z.object({ cases: z.array(StoredCase), next_cursor: z.string().nullable().optional() }),
  z.array(StoredCase).transform((cases) => ({ cases, next_cursor: null })),
]);

export const STORED_CASES_PATH = "/v1/evals/cases";

export class TenantClient {
  constructor(
    private readonly baseUrl: string,
    private readonly key: string,
  ) {}

  /** Queues the documents as one batch and waits until every job has ended; returns source_id → document id. */
  async uploadAndWait(documents: { title: string; text: string; source_id: string }[], timeoutMs: number): Promise<Map<string, string>> {
    const reply = await call(this.baseUrl, this.key, "POST", "/v1/documents/batch", { documents });
    const batch = expectStatus(reply, "upload batch", [202], z.object({ batch_id: z.string() }));
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const list = expectStatus(
        await call(this.baseUrl, this.key, "GET", `/v1/jobs?batch_id=${encodeURIComponent(batch.batch_id)}&limit=100`),
        "list jobs",
        [200],
        z.object({ jobs: z.array(JobJson) }),
      );
      const failed = list.jobs.find((j) => j.status === "failed" || j.status === "cancelled");
      if (failed) throw new TargetError(`ingestion of ${failed.source_id} ${failed.status}: ${failed.error?.code ?? "no error code"}`);
      if (list.jobs.length === documents.length && list.jobs.every((j) => j.status === "succeeded")) {
        return new Map(list.jobs.map((j) => [j.source_id!, j.result!.document_id]));
      }
      if (Date.now() > deadline) throw new TargetError(`ingestion not finished after ${timeoutMs} ms`);
      await sleep(200);
    }
  }

  async chat(question: string): Promise<ChatReply> {
    const reply = await call(this.baseUrl, this.key, "POST", "/v1/chat", { question });
    return expectStatus(reply, "chat", [200], ChatJson);
  }

  /** The tenant's stored eval cases, or null when the target has no such route (404). */
  async storedCases(): Promise<StoredCase[] | null> {
    const cases: StoredCase[] = [];
    let cursor: string | null | undefined;
    do {
      const query = `?limit=100${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`;
      const reply = await call(this.baseUrl, this.key, "GET", STORED_CASES_PATH + query);
      if (reply.status === 404 && cases.length === 0) return null;
      const page = expectStatus(reply, "list stored eval cases", [200], StoredCasePage);
      cases.push(...page.cases);
      cursor = page.next_cursor;
    } while (cursor);
    return cases;
  }
}
