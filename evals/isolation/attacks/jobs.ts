import { BOTH_VARIANTS, chat, documentIdsIn, EXTRACTIVE_ONLY, expectStatus, search, type Attack, type AttackContext } from "../attack.js";
import type { Party, Reply } from "../exchange.js";
import type { SeededTenant } from "../seed.js";
import type { BatchAcceptedJson, DocumentJson, DocumentListJson, JobJson, JobListJson } from "../../../test/support/api-types.js";

/**
 * Durable ingestion (invariants I2, I6): B reads, lists, pages, cancels and replays A's jobs —
 * by id, by batch id, by cursor, by A's Idempotency-Key and with A's tenant id smuggled in —
 * first while A's jobs wait in the queue, then after workers have run them into A's corpus.
 * Another tenant's job must answer exactly like a missing one (404, same body but the request
 * id), lists and filters must come back as if A's jobs did not exist, and nothing B does may
 * change A's jobs. Every job of A carries a canary in its title and text, and its id, title and
 * canary are needles (seeded before the detector is built, see `seedJobs`), so a job of A in
 * any reply to B is a detected leak — which is what mode 4 must show.
 *
 * The instance runs no job workers of its own (instance.ts): A's jobs stay queued until an
 * attack runs them with `ctx.runJobs()`, and the attacks that need them queued come first.
 */

export interface SeededJob {
  id: string;
  batchId: string | null;
  title: string;
  canary: string;
  sourceId: string | null;
  /** What running it does: ingest a document, fail (no text), or nothing (cancelled by its owner). */
  outcome: "succeeds" | "fails" | "cancelled";
}

export interface SeededJobs {
  /** The Idempotency-Key of the JSON batch (B resends it). */
  idempotencyKey: string;
  /** The JSON batch: its id is derived from the tenant and the key. */
  keyedBatchId: string;
  /** The multipart batch, sent without a key: a random id only its owner knows. */
  randomBatchId: string;
  jobs: SeededJob[];
  /** An interactive job that stays queued until the jobs are run: the cancel target. */
  queuedId: string;
}

/** A seed request as the tenant, outside the recorded attack traffic (seed.ts's platformCall). */
export type SetupCall = (method: string, path: string, body?: unknown, headers?: Record<string, string>) => Promise<unknown>;

const TOPICS = ["vendor audit", "office relocation plan", "customer escalation log", "archived contract", "board travel schedule", "supplier rebate memo"];

/**
 * Queues a tenant's jobs over HTTP: a JSON batch with an Idempotency-Key (two documents), a
 * multipart batch without one, and three single uploads sent with `Prefer: respond-async` — one
 * left queued, one its owner cancels at once, and one whose blank text fails when it runs. With
 * no workers on the instance, all but the cancelled one are still queued when the attacks start.
 */
export async function seedJobs(
  call: SetupCall,
  tenant: Pick<SeededTenant, "owner" | "corpus">,
  runId: string,
  modeTag: string,
): Promise<SeededJobs> {
  const org = tenant.corpus.tenant;
  const canary = (n: number) => `CANARY-${org.toUpperCase()}-${runId}-JOB${n}-${modeTag.toUpperCase()}`;
  const title = (n: number) => `Job ${canary(n)} ${TOPICS[n - 1]}`;
  const text = (n: number) =>
    `# ${title(n)}\n\nInternal ${TOPICS[n - 1]} of ${org}: reference ${canary(n)}. ` +
    `Only ${org} staff may read this note; it was uploaded as a queued ingestion job.`;
  const jobs: SeededJob[] = [];
  const asJob = (job: JobJson, n: number, outcome: SeededJob["outcome"]) => {
    jobs.push({ id: job.id, batchId: job.batch_id, title: job.title ?? title(n), canary: canary(n), sourceId: job.source_id, outcome });
    return job;
  };

  const idempotencyKey = `eval-jobs-${runId}-${modeTag}-${tenant.owner.toLowerCase()}`;
  const keyed = (await call(
    "POST",
    "/v1/documents/batch",
    { documents: [1, 2].map((n) => ({ title: title(n), text: text(n), ...(n === 1 ? { source_id: `${org}/jobs/batch-1.md` } : {}) })) },
    { "idempotency-key": idempotencyKey },
  )) as BatchAcceptedJson;
  keyed.jobs.forEach((job, i) => asJob(job, i + 1, "succeeds"));

  const form = new FormData();
  form.append("file", new Blob([text(3)], { type: "text/plain" }), `${canary(3)}.txt`);
  form.append("source_id", `${org}/jobs/upload-3.txt`);
  const multipart = (await call("POST", "/v1/documents/batch", form)) as BatchAcceptedJson;
  asJob(multipart.jobs[0]!, 3, "succeeds");

  const async = (n: number, body: string) => call("POST", "/v1/documents", { title: title(n), text: body }, { prefer: "respond-async" }) as Promise<JobJson>;
  const queued = asJob(await async(4, text(4)), 4, "succeeds");
  const cancelled = asJob(await async(5, text(5)), 5, "cancelled");
  // A 409 here would mean a worker took the job: the attacks below rely on the queue standing still.
  await call("POST", `/v1/jobs/${cancelled.id}/cancel`);
  asJob(await async(6, " \n\t "), 6, "fails");

  if (jobs.length !== 6) throw new Error(`seed jobs: ${jobs.length} jobs queued, expected 6`);
  return { idempotencyKey, keyedBatchId: keyed.batch_id, randomBatchId: multipart.batch_id, jobs, queuedId: queued.id };
}

/**
 * The detector's needles for a tenant's jobs, shaped as TenantTruth documents (so a job id is
 * reported as a "document-id"): each job's id, title and canary, and both batch ids. The keyed
 * batch id is derived from the tenant and the key, so another tenant sending the same key must
 * never see it (the Idempotency-Key attack).
 */
export function jobNeedles(jobs: SeededJobs | undefined): { id: string; title: string; canaries: string[] }[] {
  if (!jobs) return [];
  const batch = (id: string) => ({ id, title: jobs.jobs.find((j) => j.batchId === id)!.title, canaries: [] });
  return [...jobs.jobs.map((j) => ({ id: j.id, title: j.title, canaries: [j.canary] })), batch(jobs.keyedBatchId), batch(jobs.randomBatchId)];
}

const HEADER_NAMES = ["x-tenant-id", "x-tenant", "tenant", "tenant-id", "tenant_id", "x-fence-tenant", "x-org-id"];
const QUERY_NAMES = ["tenant_id", "tenantId", "tenant", "TENANT_ID", "tenant_id[]", "x-tenant-id"];
/** Headers that differ between any two responses, missing resource or not. */
const VOLATILE_HEADERS = new Set(["date", "x-request-id", "content-length", "ratelimit-remaining", "ratelimit-reset", "retry-after"]);

function jobsOf(tenant: SeededTenant): SeededJobs {
  if (!tenant.jobs) throw new Error(`tenant ${tenant.owner} was seeded without jobs`);
  return tenant.jobs;
}

/** The reply without what always differs (the request id), to compare a refusal with a miss. */
function comparable(reply: Reply): string {
  const body = reply.json as { error?: Record<string, unknown> } | undefined;
  if (!body?.error) return reply.body;
  const { request_id: _requestId, ...error } = body.error;
  return JSON.stringify({ ...body, error });
}

function stableHeaders(reply: Reply): string {
  return JSON.stringify(Object.entries(reply.headers).filter(([name]) => !VOLATILE_HEADERS.has(name)).sort());
}

/** I6: a reply about A's resource must be byte-for-byte the reply about a resource that does not exist. */
export function expectLikeMissing(ctx: AttackContext, reply: Reply, missing: Reply, what: string): void {
  ctx.expect(
    reply.status === missing.status && comparable(reply) === comparable(missing) && stableHeaders(reply) === stableHeaders(missing),
    `${what}: answered ${reply.status} ${comparable(reply).slice(0, 120)}, unlike a missing one (${missing.status} ${comparable(missing).slice(0, 120)})`,
  );
}

function listOf(reply: Reply): JobListJson | undefined {
  const body = reply.json as Partial<JobListJson> | undefined;
  return Array.isArray(body?.jobs) ? (body as JobListJson) : undefined;
}

/** Every job id a party can list, following every cursor of every status filter. */
async function listEveryJob(ctx: AttackContext, party: Party, query = "", headers: Record<string, string> = {}): Promise<Set<string>> {
  const seen = new Set<string>();
  for (const status of ["", "queued", "running", "succeeded", "failed", "cancelled"]) {
    let cursor: string | null = null;
    for (let page = 0; page < 60; page++) {
      const params = [`limit=${status ? 100 : 3}`, status && `status=${status}`, cursor && `cursor=${cursor}`, query].filter(Boolean).join("&");
      const reply = await ctx.http.send(party, "GET", `/v1/jobs?${params}`, { headers });
      expectStatus(ctx, reply, [200], `${party.label} GET /v1/jobs?${params.slice(0, 60)}`);
      const list = listOf(reply);
      list?.jobs.forEach((j) => seen.add(j.id));
      cursor = list?.next_cursor ?? null;
      if (!cursor) break;
    }
  }
  return seen;
}

function expectNoneOf(ctx: AttackContext, seen: Iterable<string>, forbidden: readonly string[], what: string): void {
  const found = [...seen].filter((id) => forbidden.includes(id));
  ctx.expect(found.length === 0, `${what}: ${found.length} of A's jobs listed (${found[0]})`);
}

export function smuggled(ctx: AttackContext): { headers: Record<string, string>; query: string } {
  return {
    headers: Object.fromEntries(HEADER_NAMES.map((h) => [h, ctx.a.id])),
    query: QUERY_NAMES.map((n) => `${encodeURIComponent(n)}=${ctx.a.id}`).join("&"),
  };
}

async function jobAs(ctx: AttackContext, party: Party, id: string): Promise<JobJson | undefined> {
  const reply = await ctx.http.send(party, "GET", `/v1/jobs/${id}`);
  return reply.status === 200 ? (reply.json as JobJson) : undefined;
}

export const jobAttacks: Attack[] = [
  {
    name: "get A's queued jobs by id",
    path: "GET /v1/jobs/:id",
    kind: "attack",
    variants: EXTRACTIVE_ONLY,
    async run(ctx) {
      const { a, b } = ctx.parties;
      const victim = jobsOf(ctx.a);
      const missing = await ctx.http.send(b, "GET", `/v1/jobs/${crypto.randomUUID()}`);
      expectStatus(ctx, missing, [404], "a random job id");
      for (const job of victim.jobs) {
        const reply = await ctx.http.send(b, "GET", `/v1/jobs/${job.id}`);
        expectStatus(ctx, reply, [404], `get A's job ${job.canary}`);
        expectLikeMissing(ctx, reply, missing, `A's job ${job.id}`);
      }
      const first = victim.jobs[0]!.id;
      const upper = await ctx.http.send(b, "GET", `/v1/jobs/${first.toUpperCase()}`);
      expectStatus(ctx, upper, [404], "upper-case id");
      expectLikeMissing(ctx, upper, missing, "A's job id in upper case");
      for (const suffix of ["%20", "/", "%00", "'%20OR%20'1'%3D'1", "%27--", `,${crypto.randomUUID()}`, "/cancel/..", "?id=" + first]) {
        const reply = await ctx.http.send(b, "GET", `/v1/jobs/${first}${suffix}`);
        ctx.expect(reply.status >= 400 && reply.status < 500, `id${suffix}: status ${reply.status}, expected 4xx`);
      }
      // The ids are real: A reads every one of them (so the 404s above are not "no such job").
      for (const job of victim.jobs) {
        const own = await jobAs(ctx, a, job.id);
        ctx.expectHealthy(own?.id === job.id && own.title === job.title, `A cannot read its own job ${job.id}`);
      }
    },
  },
  {
    name: "list jobs by A's batch ids",
    path: "GET /v1/jobs?batch_id",
    kind: "attack",
    variants: EXTRACTIVE_ONLY,
    async run(ctx) {
      const { b } = ctx.parties;
      const victim = jobsOf(ctx.a);
      const missing = await ctx.http.send(b, "GET", `/v1/jobs?batch_id=${crypto.randomUUID()}`);
      expectStatus(ctx, missing, [200], "a random batch id");
      const missingCursor = await ctx.http.send(b, "GET", `/v1/jobs?batch_id=${crypto.randomUUID()}&cursor=${crypto.randomUUID()}`);
      expectStatus(ctx, missingCursor, [400, 404], "a random batch id and cursor");
      for (const batch of [victim.keyedBatchId, victim.randomBatchId, victim.randomBatchId.toUpperCase()]) {
        for (const extra of ["", "&limit=100", "&status=queued", "&status=cancelled", `&cursor=${victim.jobs[0]!.id}`]) {
          const reply = await ctx.http.send(b, "GET", `/v1/jobs?batch_id=${batch}${extra}`);
          const what = `batch_id=${batch.slice(0, 8)}…${extra.split("=")[0]}`;
          if (extra.startsWith("&cursor")) {
            // A's job id as the cursor: refused like a cursor that does not exist.
            expectLikeMissing(ctx, reply, missingCursor, what);
            continue;
          }
          expectStatus(ctx, reply, [200], what);
          const list = listOf(reply);
          ctx.expect(list?.jobs.length === 0 && list.next_cursor === null, `${what}: ${list?.jobs.length} jobs listed, expected none`);
          ctx.expect(comparable(reply) === comparable(missing), `${what}: reply differs from a random batch id's`);
        }
      }
    },
  },
  {
    name: "page through every job list while A's jobs are queued",
    path: "GET /v1/jobs?status&cursor, POST /v1/search",
    kind: "attack",
    variants: EXTRACTIVE_ONLY,
    async run(ctx) {
      const { b } = ctx.parties;
      const victim = jobsOf(ctx.a);
      const seen = await listEveryJob(ctx, b);
      expectNoneOf(ctx, seen, victim.jobs.map((j) => j.id), "B's job lists");
      // B's lists work: its own seeded jobs are all there, so an empty list is not what "blocked" means.
      const own = jobsOf(ctx.b).jobs.filter((j) => !seen.has(j.id));
      ctx.expect(own.length === 0, `B's own job ${own[0]?.id} is missing from B's lists`);
      // Nothing of a queued job is searchable, by anyone: B's searches for A's job canaries come back empty-handed.
      for (const job of victim.jobs.slice(0, 3)) expectStatus(ctx, await search(ctx, b, job.canary), [200], `search ${job.canary}`);
    },
  },
  {
    name: "A's job ids as list cursors",
    path: "GET /v1/jobs?cursor",
    kind: "attack",
    variants: EXTRACTIVE_ONLY,
    async run(ctx) {
      const { b } = ctx.parties;
      const victim = jobsOf(ctx.a);
      // A cursor that names no job of B's is refused (400 or 404: the API's choice); A's must be refused the same way.
      const missing = await ctx.http.send(b, "GET", `/v1/jobs?limit=100&cursor=${crypto.randomUUID()}`);
      expectStatus(ctx, missing, [400, 404], "a random cursor");
      for (const job of victim.jobs) {
        for (const extra of ["", "&status=queued", "&status=cancelled"]) {
          const reply = await ctx.http.send(b, "GET", `/v1/jobs?limit=100&cursor=${job.id}${extra}`);
          expectLikeMissing(ctx, reply, missing, `A's job ${job.id} as the cursor${extra}`);
        }
      }
      const upper = await ctx.http.send(b, "GET", `/v1/jobs?limit=100&cursor=${victim.queuedId.toUpperCase()}`);
      expectLikeMissing(ctx, upper, missing, "A's job id in upper case as the cursor");
    },
  },
  {
    name: "B cancels A's queued jobs",
    path: "POST /v1/jobs/:id/cancel",
    kind: "attack",
    variants: EXTRACTIVE_ONLY,
    async run(ctx) {
      const { a, b } = ctx.parties;
      const victim = jobsOf(ctx.a);
      const before = new Map<string, JobJson | undefined>();
      for (const job of victim.jobs) before.set(job.id, await jobAs(ctx, a, job.id));
      ctx.expectHealthy(before.get(victim.queuedId)?.status === "queued", `A's job ${victim.queuedId} is not queued before the attack`);

      const missing = await ctx.http.send(b, "POST", `/v1/jobs/${crypto.randomUUID()}/cancel`);
      expectStatus(ctx, missing, [404], "cancel a random job id");
      for (const job of victim.jobs) {
        const reply = await ctx.http.send(b, "POST", `/v1/jobs/${job.id}/cancel`);
        expectStatus(ctx, reply, [404], `cancel A's job ${job.canary}`);
        expectLikeMissing(ctx, reply, missing, `cancel A's job ${job.id}`);
      }
      const { headers, query } = smuggled(ctx);
      for (const path of [`/v1/jobs/${victim.queuedId.toUpperCase()}/cancel`, `/v1/jobs/${victim.queuedId}/cancel?${query}`]) {
        const reply = await ctx.http.send(b, "POST", path, { headers });
        expectStatus(ctx, reply, [404], `POST ${path.slice(0, 60)} (A's id in headers)`);
        expectLikeMissing(ctx, reply, missing, `cancel ${path.slice(0, 60)}`);
      }

      // A's jobs are as they were: none cancelled by B, and the queued one is still queued.
      for (const job of victim.jobs) {
        const was = before.get(job.id);
        const now = await jobAs(ctx, a, job.id);
        const progressed = was?.status === "queued" && now !== undefined && now.status !== "cancelled"; // a worker of another instance may take it
        ctx.expectHealthy(
          now !== undefined && (now.status === was?.status || progressed) && now.title === was?.title && now.batch_id === was?.batch_id,
          `A's job ${job.id} changed: ${was?.status} → ${now?.status ?? "unreadable"}`,
        );
      }
      // Cancel itself works: B cancels a queued job of its own.
      const own = await ctx.http.send(b, "POST", `/v1/jobs/${jobsOf(ctx.b).queuedId}/cancel`);
      ctx.expect(own.status === 200 && (own.json as JobJson | undefined)?.status === "cancelled", `B cannot cancel its own queued job (status ${own.status})`);
    },
  },
  {
    name: "B resends A's Idempotency-Key with its own batch",
    path: "POST /v1/documents/batch Idempotency-Key",
    kind: "attack",
    variants: EXTRACTIVE_ONLY,
    async run(ctx) {
      const { a, b } = ctx.parties;
      const victim = jobsOf(ctx.a);
      const victimIds = victim.jobs.map((j) => j.id);
      const aBatch = async () => listOf(await ctx.http.send(a, "GET", `/v1/jobs?batch_id=${victim.keyedBatchId}&limit=100`))?.jobs.map((j) => j.id).sort();
      const aBefore = await aBatch();

      const titles = ["Globex cafeteria rota", "Globex parking permits"];
      const body = { documents: titles.map((title) => ({ title, text: `${title}: the rota for the week, posted by facilities.` })) };
      const send = () => ctx.http.send(b, "POST", "/v1/documents/batch", { json: body, headers: { "idempotency-key": victim.idempotencyKey } });
      const first = await send();
      expectStatus(ctx, first, [202], "B's batch under A's Idempotency-Key");
      const batch = first.json as BatchAcceptedJson | undefined;
      const ids = batch?.jobs.map((j) => j.id) ?? [];
      ctx.expect(batch?.batch_id !== undefined && batch.batch_id !== victim.keyedBatchId, "B's batch under A's key got A's batch id");
      ctx.expect(ids.length === titles.length, `B's batch came back with ${ids.length} jobs, expected its own ${titles.length}`);
      ctx.expect(!ids.some((id) => victimIds.includes(id)), "B's batch under A's key returned A's jobs");
      ctx.expect(
        JSON.stringify(batch?.jobs.map((j) => j.title)) === JSON.stringify(titles),
        `B's batch under A's key holds other titles: ${JSON.stringify(batch?.jobs.map((j) => j.title))}`,
      );
      // The key is B's own from now on: resending replays B's batch, not A's.
      const again = await send();
      expectStatus(ctx, again, [202], "B resends its batch");
      // (Compared as sets: a replay lists the jobs by (created_at, id), not in the documents' order.)
      const replayed = (again.json as BatchAcceptedJson | undefined)?.jobs.map((j) => j.id).sort();
      ctx.expect(JSON.stringify(replayed) === JSON.stringify([...ids].sort()), `B's resent batch replayed ${JSON.stringify(replayed)}, not B's own jobs`);
      if (batch?.batch_id) {
        const listed = listOf(await ctx.http.send(b, "GET", `/v1/jobs?batch_id=${batch.batch_id}&limit=100`))?.jobs.map((j) => j.id).sort();
        ctx.expect(JSON.stringify(listed) === JSON.stringify([...ids].sort()), `B's batch lists ${JSON.stringify(listed)}, expected only B's jobs`);
      }
      // A's batch still lists exactly A's jobs.
      const aAfter = await aBatch();
      ctx.expectHealthy(aAfter !== undefined && JSON.stringify(aAfter) === JSON.stringify(aBefore), `A's batch changed: ${JSON.stringify(aBefore)} → ${JSON.stringify(aAfter)}`);
    },
  },
  {
    name: "A's tenant id smuggled into job routes and batches",
    path: "GET /v1/jobs, POST /v1/documents(/batch) +tenant_id",
    kind: "attack",
    variants: EXTRACTIVE_ONLY,
    async run(ctx) {
      const { a, b } = ctx.parties;
      const victim = jobsOf(ctx.a);
      const { headers, query } = smuggled(ctx);
      const aId = ctx.a.id;

      // Reads with A's id everywhere: still only B's jobs.
      const seen = await listEveryJob(ctx, b, query, headers);
      expectNoneOf(ctx, seen, victim.jobs.map((j) => j.id), "B's job lists with A's tenant id");
      expectStatus(ctx, await ctx.http.send(b, "GET", `/v1/jobs/${victim.queuedId}?${query}`, { headers }), [404], "get A's job with A's id");
      const filtered = listOf(await ctx.http.send(b, "GET", `/v1/jobs?batch_id=${victim.randomBatchId}&${query}`, { headers }));
      ctx.expect(filtered?.jobs.length === 0, `batch_id of A with A's id: ${filtered?.jobs.length} jobs listed`);

      // Writes with A's id everywhere: every job, and every document it makes, is B's.
      const marker = crypto.randomUUID().slice(0, 8);
      const note = (n: number) => ({ title: `Globex smuggled note ${marker}-${n}`, text: `Globex smuggled note ${marker}-${n}: the kettle on floor ${n} is broken.` });
      const jsonBatch = await ctx.http.send(b, "POST", `/v1/documents/batch?${query}`, {
        headers,
        json: { documents: [1, 2].map((n) => ({ ...note(n), tenant_id: aId, tenantId: aId })), tenant_id: aId, tenantId: aId, tenant: { id: aId } },
      });
      const form = new FormData();
      form.append("file", new Blob([note(3).text], { type: "text/plain" }), `smuggled-${marker}-3.txt`);
      form.append("tenant_id", aId);
      form.append("tenantId", aId);
      const multipartBatch = await ctx.http.send(b, "POST", `/v1/documents/batch?${query}`, { headers, form });
      // The async upload also reuses the source_id of one of A's queued jobs: it must make B's own document.
      const aSourced = victim.jobs.find((j) => j.sourceId !== null && j.outcome === "succeeds")!;
      const single = await ctx.http.send(b, "POST", `/v1/documents?${query}`, {
        headers: { ...headers, prefer: "respond-async" },
        json: { ...note(4), source_id: aSourced.sourceId, tenant_id: aId, tenantId: aId },
      });
      const singleId = (single.json as JobJson | undefined)?.id;
      const bJobs: string[] = [];
      for (const [what, reply] of [["JSON batch", jsonBatch], ["multipart batch", multipartBatch], ["async upload", single]] as const) {
        expectStatus(ctx, reply, [202], what);
        const body = reply.json as Partial<BatchAcceptedJson & JobJson> | undefined;
        bJobs.push(...(body?.jobs?.map((j) => j.id) ?? (body?.id ? [body.id] : [])));
      }
      ctx.expect(bJobs.length === 4, `B's smuggled uploads queued ${bJobs.length} jobs, expected 4`);
      for (const id of bJobs) {
        expectStatus(ctx, await ctx.http.send(b, "GET", `/v1/jobs/${id}`), [200], "B reads its smuggled job");
        const fromA = await ctx.http.send(a, "GET", `/v1/jobs/${id}`);
        ctx.expectHealthy(fromA.status === 404, `B's smuggled job ${id} is readable by A (status ${fromA.status})`);
      }
      const aSees = await listEveryJob(ctx, a);
      ctx.expectHealthy(!bJobs.some((id) => aSees.has(id)), "B's smuggled jobs are in A's job lists");

      // Run them: the documents land in B's corpus, and A can neither read nor find them.
      await ctx.runJobs();
      for (const id of bJobs) {
        const job = await jobAs(ctx, b, id);
        ctx.expect(job?.status === "succeeded" && job.result !== null, `B's smuggled job ${id} ended ${job?.status} ${job?.error?.code ?? ""}`);
        if (id === singleId) ctx.expect(job?.result?.outcome === "created", `B's job under A's source_id ended "${job?.result?.outcome}", not "created"`);
        const docId = job?.result?.document_id;
        if (!docId) continue;
        expectStatus(ctx, await ctx.http.send(b, "GET", `/v1/documents/${docId}?${query}`, { headers }), [200], "B reads the smuggled job's document");
        const fromA = await ctx.http.send(a, "GET", `/v1/documents/${docId}`);
        ctx.expectHealthy(fromA.status === 404, `the smuggled job's document ${docId} is readable by A (status ${fromA.status})`);
        const found = await search(ctx, a, `Globex smuggled note ${marker} kettle`);
        ctx.expectHealthy(!documentIdsIn(found).includes(docId), `A's search finds B's smuggled document ${docId}`);
      }
      // A's job on the same source_id stored A's own document, untouched by B's.
      const aJob = await jobAs(ctx, a, aSourced.id);
      const aDoc = aJob?.result ? await ctx.http.send(a, "GET", `/v1/documents/${aJob.result.document_id}`) : undefined;
      ctx.expectHealthy(
        aJob?.status === "succeeded" && aDoc?.status === 200 && (aDoc.json as Partial<DocumentJson> | undefined)?.title === aSourced.title,
        `A's job ${aSourced.id} on ${aSourced.sourceId} did not keep its own document (job ${aJob?.status}, document ${aDoc?.status})`,
      );
    },
  },
  {
    name: "A's jobs have run: B searches, chats and reads",
    path: "POST /v1/search|chat, GET /v1/jobs|documents",
    kind: "attack",
    variants: BOTH_VARIANTS,
    async run(ctx) {
      const { a, b } = ctx.parties;
      const victim = jobsOf(ctx.a);
      await ctx.runJobs();
      // A's own view: the jobs ran in A's tenant (the documents are A's and A finds them).
      const aDocs: string[] = [];
      for (const job of victim.jobs) {
        const own = await jobAs(ctx, a, job.id);
        const expected = { succeeds: "succeeded", fails: "failed", cancelled: "cancelled" }[job.outcome];
        ctx.expectHealthy(own?.status === expected, `A's job ${job.id} ended ${own?.status} (${own?.error?.code ?? "no error"}), expected ${expected}`);
        if (own?.result?.document_id) aDocs.push(own.result.document_id);
      }
      const probe = victim.jobs.find((j) => j.outcome === "succeeds")!;
      const found = await search(ctx, a, probe.canary);
      ctx.expectHealthy(documentIdsIn(found).some((id) => aDocs.includes(id)), `A's search for ${probe.canary} does not find its job's document`);

      if (ctx.variant === "extractive") {
        for (const job of victim.jobs) {
          const reply = await search(ctx, b, job.canary);
          expectStatus(ctx, reply, [200], `search ${job.canary}`);
          ctx.expect(!documentIdsIn(reply).some((id) => aDocs.includes(id)), `B's search for ${job.canary} returned A's job document`);
          expectStatus(ctx, await ctx.http.send(b, "GET", `/v1/jobs/${job.id}`), [404], `get A's ${job.outcome} job`);
        }
        for (const id of aDocs) expectStatus(ctx, await ctx.http.send(b, "GET", `/v1/documents/${id}`), [404], `get A's job document ${id}`);
        expectNoneOf(ctx, await listEveryJob(ctx, b), victim.jobs.map((j) => j.id), "B's job lists after A's jobs ran");
        let cursor: string | null = null;
        for (let page = 0; page < 25; page++) {
          const reply = await ctx.http.send(b, "GET", `/v1/documents?limit=20${cursor ? `&cursor=${cursor}` : ""}`);
          expectStatus(ctx, reply, [200], "B lists its documents");
          ctx.expect(!documentIdsIn(reply).some((id) => aDocs.includes(id)), "B's document list holds A's job documents");
          cursor = (reply.json as Partial<DocumentListJson> | undefined)?.next_cursor ?? null;
          if (!cursor) break;
        }
      }
      for (const stream of [false, true]) {
        const question = `What do the notes ${victim.jobs[0]!.canary} and ${victim.jobs[2]!.canary} say? Quote the ${TOPICS[3]} too.`;
        expectStatus(ctx, await chat(ctx, b, question, stream), [200], `chat stream=${stream}`);
      }
    },
  },
];
