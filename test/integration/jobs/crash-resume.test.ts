import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { sql } from "drizzle-orm";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { connectDatabase } from "../../../src/db/connect.js";
import { queryRows } from "../../../src/db/database.js";
import { startFenceProcess, type FenceProcess } from "../../support/fence-process.js";
import { ADMIN_KEY } from "../../support/harness.js";
import { listJobs, multiChunkText, pollUntil, stepsOf, waitForBatch, type TenantGet } from "../../support/job-helpers.js";
import { scratchDatabase } from "../../support/scratch-database.js";
import type { BatchAcceptedJson, DocumentListJson, IssuedKeyJson, JobJson, TenantJson } from "../../support/api-types.js";

/**
 * The proof: "a killed process resumes; no duplicate or half-stored document". A real Fence
 * process with one job worker ingests a batch of multi-chunk documents; while one job is mid-ingest
 * (parsed and chunked, embedding) and others are still queued, the process is SIGKILLed. The
 * database is inspected as it was left, then a second process on the same database takes over:
 * the dead worker's lease expires, its job runs again from the kept upload, and every job ends
 * with exactly one complete document — and the ledger charges only embeddings that happened.
 *
 * Postgres (a scratch database, so no other suite's workers claim these jobs) and PGlite (a data
 * folder; the folder lock of a killed process is taken over by the next one).
 *
 * On Postgres, two more cases with a process that is frozen (SIGSTOP) rather than dead, as in a
 * long pause or a network partition: frozen while embedding, it must not store a second copy
 * when it wakes after another process took its job over; frozen inside a transaction, it must not
 * keep the others from taking the job over.
 */
const DOCS = 5;
const CHUNKS_PER_DOC = 12;
// One worker per process, and no reserved one (it could take a second job of the batch before the
// first counts as running): the scenario has exactly one job in progress when the process is killed.
const JOB_ENV = { FENCE_JOB_WORKERS: "1", FENCE_JOB_RESERVED_WORKERS: "0", FENCE_JOB_LEASE_MS: "1500", FENCE_JOB_POLL_MS: "100" };

interface Target {
  name: string;
  /** Database settings of both processes, and the cleanup. */
  open(): Promise<{ env: Record<string, string>; cleanup(): Promise<void> }>;
}

/** A scratch database of its own on a server (Postgres, or a Citus cluster's coordinator). */
const onServer = (name: "postgres" | "citus", url: string | undefined): Target[] =>
  url
    ? [
        {
          name,
          async open() {
            const scratch = await scratchDatabase(url, "fence_jobs_crash");
            return { env: { DATABASE_URL: scratch.url }, cleanup: scratch.drop };
          },
        },
      ]
    : [];

const targets: Target[] = [
  ...onServer("postgres", process.env.DATABASE_URL),
  ...onServer("citus", process.env.CITUS_DATABASE_URL),
  {
    name: "pglite",
    async open() {
      const dir = await mkdtemp(join(tmpdir(), "fence-jobs-crash-"));
      return { env: { FENCE_DATA_DIR: dir }, cleanup: () => rm(dir, { recursive: true, force: true }) };
    },
  },
];

describe.each(targets)("a worker killed mid-ingest resumes on $name", (target) => {
  let dbEnv: Record<string, string>;
  let cleanup: (() => Promise<void>) | undefined;
  const processes: FenceProcess[] = [];

  beforeAll(async () => {
    const opened = await target.open();
    dbEnv = opened.env;
    cleanup = opened.cleanup;
  });
  // Every test's processes stop with it: a process left running (e.g. one resumed with SIGCONT)
  // would claim the next test's jobs from the shared database.
  afterEach(async () => {
    await Promise.all(processes.splice(0).map((p) => p.stop()));
  });
  afterAll(async () => {
    await Promise.all(processes.map((p) => p.stop()));
    await cleanup?.();
  });

  const start = async (env: Record<string, string> = {}) => {
    const fence = await startFenceProcess({ ...dbEnv, ...JOB_ENV, ...env }, 60_000);
    processes.push(fence);
    return fence;
  };
  const call = (fence: FenceProcess, method: string, path: string, key: string, json?: unknown, headers: Record<string, string> = {}) =>
    fetch(`${fence.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${key}`, ...(json === undefined ? {} : { "content-type": "application/json" }), ...headers },
      body: json === undefined ? undefined : JSON.stringify(json),
    });
  const getVia = (fence: FenceProcess, key: string): TenantGet => (path) => call(fence, "GET", path, key);

  /** An enterprise tenant (4 running jobs, 3000 requests a minute) and its key, through the admin API. */
  async function createTenant(fence: FenceProcess, name: string): Promise<{ tenant: { id: string }; key: string }> {
    const tenantRes = await call(fence, "POST", "/v1/admin/tenants", ADMIN_KEY, { name, plan: "enterprise" });
    expect(tenantRes.status).toBe(201);
    const tenant = (await tenantRes.json()) as TenantJson;
    const keyRes = await call(fence, "POST", `/v1/admin/tenants/${tenant.id}/keys`, ADMIN_KEY, { name: "crash" });
    expect(keyRes.status).toBe(201);
    return { tenant, key: ((await keyRes.json()) as IssuedKeyJson).key };
  }

  /** The database as the processes left it, read as its owner (past row-level security). */
  async function inspect<T>(read: (query: <R>(q: ReturnType<typeof sql>) => Promise<R[]>) => Promise<T>): Promise<T> {
    const db = await connectDatabase({ databaseUrl: dbEnv.DATABASE_URL, dataDir: dbEnv.FENCE_DATA_DIR ?? "memory://" });
    try {
      return await db.asOwner((tx) => read((q) => queryRows(tx, q)));
    } finally {
      await db.close();
    }
  }

  it("SIGKILL during a job's embed step: the job runs again elsewhere, one whole document per job, charged honestly", async () => {
    // --- process 1: create a tenant, queue the batch ---
    const first = await start();
    const { tenant, key } = await createTenant(first, `crash-${target.name}`);

    const documents = Array.from({ length: DOCS }, (_, i) => ({
      title: `Manual ${i}`,
      text: multiChunkText(`Plant ${i} manual`, CHUNKS_PER_DOC),
      ...(i % 2 === 0 ? { source_id: `manuals/plant-${i}` } : {}),
    }));
    const accepted = await call(first, "POST", "/v1/documents/batch", key, { documents });
    expect(accepted.status).toBe(202);
    const batch = (await accepted.json()) as BatchAcceptedJson;
    expect(batch.jobs).toHaveLength(DOCS);

    // --- wait until a job is mid-ingest (parsed and chunked, not yet embedded) and others wait ---
    let seen: JobJson[] = [];
    const victim = await pollUntil(
      async () => {
        seen = await listJobs(getVia(first, key), `batch_id=${batch.batch_id}`);
        const running = seen.find((j) => j.status === "running" && stepsOf(j, j.attempts).join() === "parse:succeeded,chunk:succeeded");
        return running && seen.some((j) => j.status === "queued") ? running : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 25, describe: () => JSON.stringify(seen.map((j) => [j.status, j.steps.map((s) => s.name)])) },
    );
    const victimOp = `job:${victim.id}:attempt-1`;
    // The ledger id of a job's embedding, shared by its attempts: one job, one charge.
    const victimCharge = `job:${victim.id}:embed_documents`;
    if (dbEnv.DATABASE_URL) {
      // On a server the test can watch the database while the process runs: kill once the
      // attempt's budget hold is committed, i.e. while it is embedding, not inside a transaction
      // (or, if the embedding was quicker than this look, once it has been settled).
      const { default: pg } = await import("pg");
      const watcher = new pg.Client({ connectionString: dbEnv.DATABASE_URL });
      await watcher.connect();
      try {
        await pollUntil(
          async () => {
            const held = await watcher.query(
              `SELECT 1 FROM budget_reservations WHERE request_id = $1
               UNION ALL SELECT 1 FROM usage_events WHERE event_id = $2`,
              [victimOp, victimCharge],
            );
            return held.rowCount! > 0 ? true : undefined;
          },
          { timeoutMs: 10_000, intervalMs: 5 },
        );
      } finally {
        await watcher.end();
      }
    }
    process.kill(first.pid, "SIGKILL");
    expect(await first.exited).toBeNull(); // killed by the signal, not exited
    const succeededBeforeKill = seen.filter((j) => j.status === "succeeded").map((j) => j.id);

    // --- the database as the dead process left it ---
    const left = await inspect(async (query) => ({
      victim: (await query<{ status: string; attempts: number; steps: { name: string; status: string }[]; payload_kept: boolean }>(
        sql`SELECT status, attempts, steps, payload_bytes IS NOT NULL AS payload_kept FROM jobs WHERE id = ${victim.id}`,
      ))[0]!,
      jobs: await query<{ id: string; status: string }>(sql`SELECT id, status FROM jobs WHERE tenant_id = ${tenant.id}`),
      reservations: await query<{ request_id: string }>(sql`SELECT request_id FROM budget_reservations WHERE tenant_id = ${tenant.id}`),
      charged: await query<{ event_id: string }>(
        sql`SELECT event_id FROM usage_events WHERE tenant_id = ${tenant.id} AND feature = 'embed_documents' AND status = 'charged'`,
      ),
      documents: await query<{ id: string; chunk_count: number; chunks: number }>(
        sql`SELECT d.id, d.chunk_count, (SELECT count(*)::int FROM chunks c WHERE c.tenant_id = d.tenant_id AND c.document_id = d.id) AS chunks
            FROM documents d WHERE d.tenant_id = ${tenant.id}`,
      ),
    }));
    // Killed mid-ingest: still marked running (its lease has not been taken over), upload kept, nothing stored for it.
    expect(left.victim).toMatchObject({ status: "running", attempts: 1, payload_kept: true });
    expect(left.victim.steps.map((s) => s.name)).not.toContain("store");
    const succeededAtKill = left.jobs.filter((j) => j.status === "succeeded").map((j) => j.id);
    expect(succeededAtKill.sort()).toEqual([...succeededBeforeKill].sort());
    expect(left.jobs.filter((j) => j.status === "queued").length).toBeGreaterThan(0);
    // No half-stored document: exactly the finished jobs' documents, each with all its chunks.
    expect(left.documents).toHaveLength(succeededAtKill.length);
    for (const doc of left.documents) expect(doc.chunks).toBe(doc.chunk_count);
    // The honest cases: killed before its budget hold committed (no hold, no charge), while
    // embedding (the hold is left behind), or after the embedding was settled (charged, no hold).
    const victimCharged = left.charged.some((r) => r.event_id === victimCharge);
    const held = left.reservations.map((r) => r.request_id);
    expect(held).toEqual(held.length > 0 ? [victimOp] : []);
    if (victimCharged) expect(held).toEqual([]);
    if (dbEnv.DATABASE_URL) expect(held.length + Number(victimCharged)).toBe(1); // it was killed after the hold was taken

    // --- process 2 on the same database takes over ---
    const second = await start();
    const ended = await waitForBatch(getVia(second, key), batch.batch_id, DOCS, 60_000);
    for (const job of ended) expect(job.status, JSON.stringify(job)).toBe("succeeded");
    const resumed = ended.find((j) => j.id === victim.id)!;
    expect(resumed.attempts).toBeGreaterThanOrEqual(2);
    // The killed attempt's steps are kept as they were at the kill; the next attempt ran all four.
    expect(stepsOf(resumed, 1)).toEqual(left.victim.steps.map((s) => `${s.name}:${s.status}`));
    expect(stepsOf(resumed, 1).slice(0, 2)).toEqual(["parse:succeeded", "chunk:succeeded"]);
    expect(stepsOf(resumed, resumed.attempts)).toEqual(["parse:succeeded", "chunk:succeeded", "embed:succeeded", "store:succeeded"]);

    // One document per job, no duplicate per source_id, all listed through the API.
    const listed = (await (await call(second, "GET", "/v1/documents?limit=100", key)).json()) as DocumentListJson;
    expect(listed.documents).toHaveLength(DOCS);
    expect(new Set(ended.map((j) => j.result!.document_id))).toEqual(new Set(listed.documents.map((d) => d.id)));
    const sourceIds = listed.documents.map((d) => d.source_id).filter((s) => s !== null);
    expect(sourceIds.sort()).toEqual(documents.flatMap((d) => (d.source_id ? [d.source_id] : [])).sort());
    for (const doc of listed.documents) expect(doc).toMatchObject({ chunk_count: CHUNKS_PER_DOC, version: 1 });

    await second.stop();
    const final = await inspect(async (query) => ({
      documents: await query<{ id: string; chunk_count: number; chunks: number }>(
        sql`SELECT d.id, d.chunk_count, (SELECT count(*)::int FROM chunks c WHERE c.tenant_id = d.tenant_id AND c.document_id = d.id) AS chunks
            FROM documents d WHERE d.tenant_id = ${tenant.id}`,
      ),
      chunkOwners: await query<{ n: number }>(
        sql`SELECT count(*)::int AS n FROM chunks c WHERE c.tenant_id = ${tenant.id} AND NOT EXISTS (SELECT 1 FROM documents d WHERE d.tenant_id = c.tenant_id AND d.id = c.document_id)`,
      ),
      reservations: await query<{ n: number }>(sql`SELECT count(*)::int AS n FROM budget_reservations WHERE tenant_id = ${tenant.id}`),
      ledger: await query<{ event_id: string; status: string; tokens: string }>(
        sql`SELECT event_id, status, (input_tokens + output_tokens)::text AS tokens FROM usage_events
            WHERE tenant_id = ${tenant.id} AND feature = 'embed_documents'`,
      ),
      counters: await query<{ period: string; tokens: string }>(sql`SELECT period, tokens::text FROM usage_counters WHERE tenant_id = ${tenant.id}`),
      payloads: await query<{ n: number }>(sql`SELECT count(*)::int AS n FROM jobs WHERE tenant_id = ${tenant.id} AND payload_bytes IS NOT NULL`),
    }));
    expect(final.documents).toHaveLength(DOCS);
    for (const doc of final.documents) expect(doc.chunks, doc.id).toBe(doc.chunk_count);
    expect(final.chunkOwners[0]!.n).toBe(0);
    expect(final.reservations[0]!.n).toBe(0);
    expect(final.payloads[0]!.n).toBe(0);

    // The ledger: one charged embedding per job, whether or not the killed attempt's embedding had
    // been settled before the kill (the next attempt's charge is the same event). Nothing twice.
    const charged = final.ledger.filter((r) => r.status === "charged");
    expect(charged.map((r) => r.event_id).sort()).toEqual(ended.map((job) => `job:${job.id}:embed_documents`).sort());
    expect(charged).toHaveLength(DOCS);
    const chargedTokens = charged.reduce((sum, r) => sum + Number(r.tokens), 0);
    expect(chargedTokens).toBeGreaterThan(0);
    const day = final.counters.find((c) => c.period.startsWith("day:"));
    expect(Number(day?.tokens)).toBe(chargedTokens);
  }, 150_000);

  // Two live processes need a shared server: PGlite is opened by one process at a time.
  describe.skipIf(target.name === "pglite")("a frozen worker (SIGSTOP) and a second process", () => {
    /** A direct connection to the test database (as its superuser, past row-level security). */
    async function connect() {
      const { default: pg } = await import("pg");
      const client = new pg.Client({ connectionString: dbEnv.DATABASE_URL });
      await client.connect();
      return client;
    }

    /** Sessions of the database other than `exceptPid` that are inside a transaction right now. */
    const OPEN_TRANSACTIONS = `SELECT pid, state, wait_event_type, wait_event, left(query, 120) AS query FROM pg_stat_activity
      WHERE datname = current_database() AND pid <> $1 AND xact_start IS NOT NULL`;

    /** Queues one multi-chunk document through `fence` and returns its job. */
    async function queueOne(fence: FenceProcess, key: string, topic: string): Promise<JobJson> {
      const res = await call(fence, "POST", "/v1/documents", key, { title: topic, text: multiChunkText(topic, CHUNKS_PER_DOC) }, { prefer: "respond-async" });
      expect(res.status).toBe(202);
      return (await res.json()) as JobJson;
    }

    async function waitForStatus(fence: FenceProcess, key: string, id: string, status: JobJson["status"], timeoutMs: number, extra = async () => "") {
      let last: JobJson | undefined;
      let context = "";
      return pollUntil(
        async () => {
          last = (await listJobs(getVia(fence, key))).find((j) => j.id === id);
          if (last?.status === status) return last;
          context = await extra();
          return undefined;
        },
        { timeoutMs, intervalMs: 100, describe: () => `${JSON.stringify(last)}\n${context}` },
      );
    }

    it("frozen while embedding: the job is taken over, and on waking the old worker cannot store a second copy", async () => {
      const db = await connect();
      try {
        const frozen = await start();
        const { tenant, key } = await createTenant(frozen, "crash-frozen-embed");
        const job = await queueOne(frozen, key, "Turbine inspection");
        const attempt1 = `job:${job.id}:attempt-1`;
        // The budget hold is committed just before the embedding starts: from then on, for the
        // length of the embedding, the worker holds no transaction. Freeze it there (and retry if
        // the freeze happened to land inside a heartbeat's short transaction).
        await pollUntil(
          async () => {
            const held = await db.query("SELECT 1 FROM budget_reservations WHERE tenant_id = $1 AND request_id = $2", [tenant.id, attempt1]);
            if (held.rowCount === 0) return undefined;
            process.kill(frozen.pid, "SIGSTOP");
            const open = await db.query(OPEN_TRANSACTIONS, [(await db.query("SELECT pg_backend_pid() AS pid")).rows[0].pid]);
            if (open.rowCount === 0) return true;
            process.kill(frozen.pid, "SIGCONT");
            return undefined;
          },
          { timeoutMs: 30_000, intervalMs: 10 },
        );
        try {
          const rescuer = await start();
          const done = await waitForStatus(rescuer, key, job.id, "succeeded", 30_000);
          expect(done.attempts).toBe(2);
        } finally {
          process.kill(frozen.pid, "SIGCONT");
        }
        // The woken worker finishes its embedding, then finds the job no longer its own.
        await pollUntil(async () => (frozen.output().includes("job lease lost") ? true : undefined), {
          timeoutMs: 30_000,
          intervalMs: 100,
          describe: () => frozen.output().slice(-2000),
        });

        const final = (await (await call(frozen, "GET", `/v1/jobs/${job.id}`, key)).json()) as JobJson;
        expect(final).toMatchObject({ status: "succeeded", attempts: 2 });
        // The frozen attempt recorded nothing after it lost the job; the second ran all four steps.
        expect(stepsOf(final, 1)).toEqual(["parse:succeeded", "chunk:succeeded"]);
        expect(stepsOf(final, 2)).toEqual(["parse:succeeded", "chunk:succeeded", "embed:succeeded", "store:succeeded"]);

        const documents = await db.query(
          `SELECT d.id, d.chunk_count, (SELECT count(*)::int FROM chunks c WHERE c.tenant_id = d.tenant_id AND c.document_id = d.id) AS chunks
           FROM documents d WHERE d.tenant_id = $1`,
          [tenant.id],
        );
        expect(documents.rows).toEqual([{ id: final.result!.document_id, chunk_count: CHUNKS_PER_DOC, chunks: CHUNKS_PER_DOC }]);
        const chunks = await db.query("SELECT count(*)::int AS n FROM chunks WHERE tenant_id = $1", [tenant.id]);
        expect(chunks.rows[0].n).toBe(CHUNKS_PER_DOC);
        const reservations = await db.query("SELECT count(*)::int AS n FROM budget_reservations WHERE tenant_id = $1", [tenant.id]);
        expect(reservations.rows[0].n).toBe(0);
        // The frozen attempt lost the job before it could settle: only the attempt that finished it is charged.
        const charged = await db.query(
          "SELECT event_id FROM usage_events WHERE tenant_id = $1 AND feature = 'embed_documents' AND status = 'charged' ORDER BY event_id",
          [tenant.id],
        );
        expect(charged.rows.map((r: { event_id: string }) => r.event_id)).toEqual([`job:${job.id}:embed_documents`]);
      } finally {
        await db.end();
      }
    }, 120_000);

    it("frozen inside its budget transaction: another process still takes the job over and finishes it", async () => {
      const db = await connect();
      const blocker = await connect();
      let frozen: FenceProcess | undefined;
      try {
        frozen = await start();
        const { tenant, key } = await createTenant(frozen, "crash-frozen-tx");
        // Make the worker's budget reservation wait on the tenant's budget lock, freeze the
        // process while it waits, then let the lock go: the frozen process now holds it inside
        // an open transaction — exactly as if it had frozen (GC pause, VM stall, network
        // partition) in the middle of that transaction.
        const lockKey = `fence:budget:${tenant.id}`;
        await blocker.query("BEGIN");
        await blocker.query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", [lockKey]);
        const job = await queueOne(frozen, key, "Boiler maintenance");
        const myPids = [(await db.query("SELECT pg_backend_pid() AS pid")).rows[0].pid, (await blocker.query("SELECT pg_backend_pid() AS pid")).rows[0].pid];
        await pollUntil(
          async () => {
            const waiting = await db.query(
              "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND wait_event = 'advisory' AND NOT (pid = ANY($1))",
              [myPids],
            );
            return waiting.rowCount === 1 ? true : undefined;
          },
          { timeoutMs: 30_000, intervalMs: 25 },
        );
        process.kill(frozen.pid, "SIGSTOP");
        await blocker.query("COMMIT");
        // The frozen process's backend takes the lock the moment the blocker commits, but reports
        // "idle in transaction" only once it has sent the result: poll for it rather than read once.
        let holderStates: string[] = [];
        await pollUntil(
          async () => {
            const holder = await db.query(
              `SELECT a.pid, a.state FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
               WHERE l.locktype = 'advisory' AND l.granted AND a.datname = current_database() AND NOT (a.pid = ANY($1))`,
              [myPids],
            );
            holderStates = holder.rows.map((r: { state: string }) => r.state);
            return holderStates.length === 1 && holderStates[0] === "idle in transaction" ? true : undefined;
          },
          { timeoutMs: 10_000, intervalMs: 25, describe: () => `lock holders' states: ${JSON.stringify(holderStates)}` },
        );

        const rescuer = await start();
        const done = await waitForStatus(rescuer, key, job.id, "succeeded", 30_000, async () => {
          const open = await db.query(OPEN_TRANSACTIONS, [myPids[0]]);
          return `open transactions: ${JSON.stringify(open.rows)}`;
        });
        expect(done.attempts).toBe(2);
        const documents = await db.query("SELECT count(*)::int AS n FROM documents WHERE tenant_id = $1", [tenant.id]);
        expect(documents.rows[0].n).toBe(1);
      } finally {
        if (frozen) process.kill(frozen.pid, "SIGCONT");
        await blocker.end().catch(() => undefined);
        await db.end();
      }
    }, 120_000);
  });
});
