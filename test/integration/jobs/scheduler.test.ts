import { randomUUID } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { sql } from "drizzle-orm";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { queryRows, type Database } from "../../../src/db/database.js";
import { ingestJob } from "../../../src/ingest/ingest-job.js";
import { FairScheduler, jobOperationId, type ClaimedJob } from "../../../src/jobs/fair-scheduler.js";
import type { JobPriority, NewJob } from "../../../src/jobs/job-queue.js";
import { authenticateTenantKey } from "../../../src/tenancy/authenticate.js";
import type { TenantContext } from "../../../src/core/tenant-context.js";
import { backends, TestFence, type Backend, type TestTenant } from "../../support/harness.js";
import { scratchDatabase } from "../../support/scratch-database.js";

/**
 * The durable job scheduler (FairScheduler), driven directly: no background worker runs
 * (FENCE_JOB_WORKERS=0), jobs are enqueued through the tenant-side JobQueue with a context from
 * real key authentication, claimed by schedulers built here, and "finished" with a platform-role
 * UPDATE (the claimed jobs are never run — only the scheduling is under test).
 *
 * On Postgres the suite gets a scratch database of its own: `claim()` looks at every tenant's jobs,
 * and a shared database would let other suites' queued jobs into the claims (and ours into theirs).
 * Every claim is still checked to belong to the current test's tenants, and every test cancels what
 * its tenants left queued or running.
 */

interface Plan {
  name: string;
  weight: number;
  maxRunning: number;
}

interface JobState {
  status: string;
  attempts: number;
  max_attempts: number;
  locked_by: string | null;
  error_code: string | null;
  finished_at: string | null;
  has_payload: boolean;
}

/** A Postgres SQLSTATE anywhere in an error's cause chain (drivers and drizzle wrap errors). */
function sqlState(error: unknown): string | undefined {
  for (let e = error as { code?: unknown; cause?: unknown } | undefined, depth = 0; e && depth < 5; e = e.cause as typeof e, depth++) {
    if (typeof e.code === "string" && /^[0-9A-Z]{5}$/.test(e.code)) return e.code;
  }
  return undefined;
}

const job = (n: number, priority: JobPriority = "bulk", serialKey?: string): NewJob => ({
  kind: "test_scheduling",
  priority,
  serialKey,
  input: { n },
});

describe.each(backends)("job scheduler on $name", (backend) => {
  let fence: TestFence;
  let db: Database;
  let dropDatabase: (() => Promise<void>) | undefined;
  let plans: Record<string, Plan>;
  /** Tenants of the running test: claims must only ever return their jobs. */
  let tenants: TestTenant[] = [];

  async function tenant(plan: string): Promise<{ t: TestTenant; ctx: TenantContext }> {
    const t = await fence.createTenant(`sched-${plan}-${randomUUID().slice(0, 8)}`, plan);
    tenants.push(t);
    return { t, ctx: await authenticateTenantKey(db, t.key, `test-${randomUUID()}`) };
  }

  async function enqueue(ctx: TenantContext, newJobs: NewJob[]): Promise<string[]> {
    const { jobs, replayed } = await fence.fence.jobs.enqueue(ctx, newJobs, randomUUID());
    expect(replayed).toBe(false);
    expect(jobs).toHaveLength(newJobs.length);
    expect(jobs.every((j) => j.status === "queued" && j.tenantId === ctx.tenantId)).toBe(true);
    return jobs.map((j) => j.id);
  }

  /** One claim; a job of a tenant outside this test would mean the isolation of the suite leaked. */
  async function claim(
    scheduler: FairScheduler,
    workerId: string,
    options?: { onlyIdleTenants?: boolean },
  ): Promise<ClaimedJob | undefined> {
    const claimed = await scheduler.claim(workerId, options);
    if (claimed) {
      expect(tenants.map((t) => t.id), `claimed a job of a foreign tenant: ${claimed.tenantId}`).toContain(claimed.tenantId);
      expect(["test_scheduling", "ingest_document"]).toContain(claimed.kind);
    }
    return claimed;
  }

  /** What a worker does at the end of a job, reduced to the row change. */
  async function finish(claimed: ClaimedJob): Promise<void> {
    const rows = await db.asPlatformAdmin("test-finish", (tx) =>
      queryRows<{ id: string }>(
        tx,
        sql`UPDATE jobs SET status = 'succeeded', locked_by = NULL, locked_until = NULL, payload = NULL, payload_bytes = NULL, finished_at = now()
            WHERE tenant_id = ${claimed.tenantId} AND id = ${claimed.id} AND status = 'running'
            RETURNING id`,
      ),
    );
    expect(rows).toHaveLength(1);
  }

  async function claimAndFinish(scheduler: FairScheduler, workerId = "w-seq"): Promise<ClaimedJob | undefined> {
    const claimed = await claim(scheduler, workerId);
    if (claimed) await finish(claimed);
    return claimed;
  }

  async function state(id: string): Promise<JobState> {
    const [row] = await db.asPlatformAdmin("test-read-job", (tx) =>
      queryRows<JobState>(
        tx,
        sql`SELECT status, attempts, max_attempts, locked_by, error_code, finished_at::text AS finished_at,
                   payload_bytes IS NOT NULL AS has_payload
            FROM jobs WHERE id = ${id}`,
      ),
    );
    return row!;
  }

  async function runningPerTenant(): Promise<Map<string, number>> {
    const rows = await db.asPlatformAdmin("test-running", (tx) =>
      queryRows<{ tenant_id: string; n: number }>(
        tx,
        sql`SELECT tenant_id, count(*)::int AS n FROM jobs WHERE status = 'running' GROUP BY tenant_id`,
      ),
    );
    return new Map(rows.map((r) => [r.tenant_id, r.n]));
  }

  beforeAll(async () => {
    let target: Backend = backend;
    if (backend.databaseUrl) {
      const scratch = await scratchDatabase(backend.databaseUrl, "fence_jobs");
      dropDatabase = scratch.drop;
      target = { ...backend, databaseUrl: scratch.url };
    }
    fence = await TestFence.start(target, { env: { FENCE_JOB_WORKERS: "0" } });
    db = fence.fence.db;
    const rows = await db.asPlatformAdmin("test-read-plans", (tx) =>
      queryRows<{ name: string; weight: number; max_running: number }>(
        tx,
        sql`SELECT name, scheduling_weight AS weight, max_running_jobs AS max_running FROM plans`,
      ),
    );
    plans = Object.fromEntries(rows.map((r) => [r.name, { name: r.name, weight: r.weight, maxRunning: r.max_running }]));
  });

  afterEach(async () => {
    const ids = tenants.map((t) => t.id);
    tenants = [];
    if (ids.length === 0 || !db) return;
    await db.asPlatformAdmin("test-cleanup", (tx) =>
      tx.execute(
        sql`UPDATE jobs SET status = 'cancelled', locked_by = NULL, locked_until = NULL, payload = NULL, payload_bytes = NULL, finished_at = now()
            WHERE status IN ('queued', 'running')
              AND tenant_id IN (${sql.join(ids.map((id) => sql`${id}::uuid`), sql`, `)})`,
      ),
    );
  });

  afterAll(async () => {
    await fence?.close();
    await dropDatabase?.();
  });

  it("has the seeded plan weights and running limits the other cases rely on", () => {
    expect(plans.free).toMatchObject({ weight: 1, maxRunning: 1 });
    expect(plans.pro).toMatchObject({ weight: 4, maxRunning: 2 });
    expect(plans.enterprise).toMatchObject({ weight: 16, maxRunning: 4 });
  });

  it("claims a newcomer's single job within 2 claims of a tenant with 1000 queued", async () => {
    const scheduler = new FairScheduler(db, { leaseMs: 30_000 });
    const a = await tenant("enterprise");
    const b = await tenant("enterprise");
    const aIds = await enqueue(a.ctx, Array.from({ length: 1000 }, (_, n) => job(n)));
    expect(new Set(aIds).size).toBe(1000);

    for (let i = 0; i < 5; i++) {
      const claimed = await claimAndFinish(scheduler);
      expect(claimed).toMatchObject({ tenantId: a.t.id, attempts: 1, priority: 1, kind: "test_scheduling", keyId: a.t.keyId });
    }
    const [bJob] = await enqueue(b.ctx, [job(0)]);
    const next = [await claimAndFinish(scheduler), await claimAndFinish(scheduler)];
    expect(next.map((c) => c?.id)).toContain(bJob);
    // A keeps being served afterwards, oldest first within the tenant's batch order.
    const after = await claimAndFinish(scheduler);
    expect(after?.tenantId).toBe(a.t.id);
    expect((await state(bJob!)).status).toBe("succeeded");
  });

  it("gives a tenant that comes back from idle no burst credit: it alternates with a busy tenant", async () => {
    const scheduler = new FairScheduler(db, { leaseMs: 30_000 });
    const a = await tenant("enterprise");
    const b = await tenant("enterprise");
    await enqueue(a.ctx, Array.from({ length: 40 }, (_, n) => job(n)));
    for (let i = 0; i < 20; i++) expect((await claimAndFinish(scheduler))?.tenantId).toBe(a.t.id);
    // B was idle all along (registered, never served); it starts at the current virtual time.
    await enqueue(b.ctx, Array.from({ length: 20 }, (_, n) => job(100 + n)));
    const order: string[] = [];
    for (let i = 0; i < 20; i++) order.push((await claimAndFinish(scheduler))!.tenantId);
    const bCount = order.filter((id) => id === b.t.id).length;
    expect(Math.abs(bCount - 10)).toBeLessThanOrEqual(1);
    let longest = 0;
    for (let i = 0, run = 0; i < order.length; i++) longest = Math.max(longest, (run = i > 0 && order[i] === order[i - 1] ? run + 1 : 1));
    expect(longest).toBeLessThanOrEqual(2);
  });

  it("shares claims by plan weight: free (1) against pro (4) over 100 claims ≈ 20/80", async () => {
    const scheduler = new FairScheduler(db, { leaseMs: 30_000 });
    const free = await tenant("free");
    const pro = await tenant("pro");
    await enqueue(free.ctx, Array.from({ length: 150 }, (_, n) => job(n)));
    await enqueue(pro.ctx, Array.from({ length: 150 }, (_, n) => job(n)));
    const counts = new Map<string, number>();
    for (let i = 0; i < 100; i++) {
      const claimed = await claimAndFinish(scheduler);
      expect(claimed).toBeDefined();
      counts.set(claimed!.tenantId, (counts.get(claimed!.tenantId) ?? 0) + 1);
    }
    const wFree = plans.free!.weight;
    const wPro = plans.pro!.weight;
    const expectedFree = (100 * wFree) / (wFree + wPro);
    expect(Math.abs((counts.get(free.t.id) ?? 0) - expectedFree)).toBeLessThanOrEqual(2);
    expect(Math.abs((counts.get(pro.t.id) ?? 0) - (100 - expectedFree))).toBeLessThanOrEqual(2);
  });

  it("claims interactive jobs before older bulk jobs, of the same tenant and of other tenants", async () => {
    const scheduler = new FairScheduler(db, { leaseMs: 30_000 });
    const x = await tenant("enterprise");
    const y = await tenant("enterprise");
    await enqueue(y.ctx, Array.from({ length: 10 }, (_, n) => job(n)));
    for (let i = 0; i < 3; i++) expect((await claimAndFinish(scheduler))?.tenantId).toBe(y.t.id);
    // X arrives now, so by fair order X (fresh start tag) is next, ahead of Y (already served 3).
    await enqueue(x.ctx, Array.from({ length: 5 }, (_, n) => job(100 + n)));
    const [yInteractive] = await enqueue(y.ctx, [job(999, "interactive")]);
    const first = await claimAndFinish(scheduler);
    expect(first).toMatchObject({ id: yInteractive, tenantId: y.t.id, priority: 0 });

    const [xInteractive] = await enqueue(x.ctx, [job(998, "interactive")]);
    const second = await claimAndFinish(scheduler);
    expect(second).toMatchObject({ id: xInteractive, tenantId: x.t.id, priority: 0 });

    // No interactive work left: back to bulk for both tenants.
    const rest = [await claimAndFinish(scheduler), await claimAndFinish(scheduler)];
    expect(rest.map((c) => c?.priority)).toEqual([1, 1]);
    expect(rest.map((c) => c?.tenantId).sort()).toEqual([x.t.id, y.t.id].sort());
  });

  it("never runs more of a tenant's jobs at once than its plan's max_running_jobs", async () => {
    const scheduler = new FairScheduler(db, { leaseMs: 30_000 });
    const f = await tenant("free");
    expect(plans.free!.maxRunning).toBe(1);
    const fIds = await enqueue(f.ctx, Array.from({ length: 5 }, (_, n) => job(n)));

    const running = await claim(scheduler, "w1");
    expect(running?.tenantId).toBe(f.t.id);
    // Another tenant's work is still served while F is at its limit.
    const other = await tenant("enterprise");
    const [otherJob] = await enqueue(other.ctx, [job(0)]);
    const second = await claim(scheduler, "w2");
    expect(second?.id).toBe(otherJob);
    expect(await claim(scheduler, "w3")).toBeUndefined();
    expect(await claim(scheduler, "w4")).toBeUndefined();
    expect((await runningPerTenant()).get(f.t.id)).toBe(1);

    // Each finish lets exactly one more of F's jobs start.
    const seen = [running!.id];
    let current = running!;
    for (let i = 1; i < 5; i++) {
      await finish(current);
      const next = await claim(scheduler, `w-next-${i}`);
      expect(next?.tenantId).toBe(f.t.id);
      expect(await claim(scheduler, `w-extra-${i}`)).toBeUndefined();
      expect((await runningPerTenant()).get(f.t.id)).toBe(1);
      seen.push(next!.id);
      current = next!;
    }
    await finish(current);
    expect(await claim(scheduler, "w-last")).toBeUndefined();
    expect(seen.sort()).toEqual([...fIds].sort());
  });

  it("a reserved claim (onlyIdleTenants) serves a tenant with nothing running and few queued, never a backlog", async () => {
    const scheduler = new FairScheduler(db, { leaseMs: 30_000 });
    const reserved = { onlyIdleTenants: true };
    const flood = await tenant("enterprise");
    await enqueue(flood.ctx, Array.from({ length: 20 }, (_, n) => job(n)));
    // A backlog is bulk work: not for a reserved worker, even with none of its jobs running
    // (the instant between two of the flood's jobs), though its plan would allow more.
    expect(plans.enterprise!.maxRunning).toBeGreaterThan(1);
    expect(await claim(scheduler, "r1", reserved)).toBeUndefined();
    const regular = await claim(scheduler, "w1");
    expect(regular?.tenantId).toBe(flood.t.id);

    // A newcomer's single job goes to the reserved worker although the flood's were queued first.
    const newcomer = await tenant("free");
    const [single] = await enqueue(newcomer.ctx, [job(0)]);
    const picked = await claim(scheduler, "r2", reserved);
    expect(picked?.id).toBe(single);
    // Once the newcomer runs something, it too is no longer idle.
    await enqueue(newcomer.ctx, [job(1)]);
    expect(await claim(scheduler, "r3", reserved)).toBeUndefined();
    await finish(picked!);
    expect((await claim(scheduler, "r4", reserved))?.tenantId).toBe(newcomer.t.id);

    // A few documents at once still count as idle; one more than the bound is a backlog.
    const few = await tenant("free");
    await enqueue(few.ctx, Array.from({ length: 4 }, (_, n) => job(n)));
    expect((await claim(scheduler, "r5", reserved))?.tenantId).toBe(few.t.id);
    const many = await tenant("free");
    await enqueue(many.ctx, Array.from({ length: 5 }, (_, n) => job(n)));
    expect(await claim(scheduler, "r6", reserved)).toBeUndefined();
    // Regular workers still serve it, in fair order: only it and the flood may start a job now,
    // and the flood (one running) reaches its plan's cap within three more.
    const regulars: (string | undefined)[] = [];
    for (let n = 0; n < 4 && !regulars.includes(many.t.id); n++) regulars.push((await claim(scheduler, `w${n + 2}`))?.tenantId);
    expect(regulars).toContain(many.t.id);
  });

  it("serialises jobs on the same document (serial_key) per tenant; the database forbids two running", async () => {
    const scheduler = new FairScheduler(db, { leaseMs: 30_000 });
    const s = await tenant("enterprise");
    const s2 = await tenant("enterprise");
    const upload = (sourceId: string, text: string) =>
      ingestJob({ title: text, mediaType: "text/plain", bytes: new TextEncoder().encode(text), sourceId }, "bulk", fence.fence.embeddings.model);
    const [v1] = await enqueue(s.ctx, [upload("doc-1", "version one")]);
    const [v2] = await enqueue(s.ctx, [upload("doc-1", "version two")]);
    const [otherDoc] = await enqueue(s.ctx, [upload("doc-2", "another document")]);

    const first = await claim(scheduler, "w1");
    expect(first?.id).toBe(v1);
    // The tenant has room (enterprise: 4 running), so only the serial key holds v2 back.
    expect(plans.enterprise!.maxRunning).toBeGreaterThanOrEqual(3);
    const second = await claim(scheduler, "w2");
    expect(second?.id).toBe(otherDoc);
    expect(await claim(scheduler, "w3")).toBeUndefined();
    expect(await claim(scheduler, "w4")).toBeUndefined();
    expect((await state(v2!)).status).toBe("queued");

    // The same source id in another tenant is a different document: not held back.
    const [foreignSameKey] = await enqueue(s2.ctx, [upload("doc-1", "same source id elsewhere")]);
    expect((await claim(scheduler, "w5"))?.id).toBe(foreignSameKey);

    // The database itself refuses a second running job on (tenant_id, serial_key).
    const refused = await db
      .asPlatformAdmin("test-force-running", (tx) =>
        tx.execute(sql`UPDATE jobs SET status = 'running', locked_by = 'rogue', locked_until = now() + interval '1 minute'
                       WHERE tenant_id = ${s.t.id} AND id = ${v2}`),
      )
      .then(
        () => undefined,
        (error: unknown) => error,
      );
    expect(refused, "the unique index must reject a second running job on one serial key").toBeDefined();
    expect(sqlState(refused)).toBe("23505");
    expect(String((refused as Error).message) + String((refused as { cause?: Error }).cause?.message)).toMatch(
      /jobs_one_running_per_serial_key_idx|duplicate key/,
    );
    expect((await state(v2!)).status).toBe("queued");

    await finish(first!);
    const afterFirst = await claim(scheduler, "w6");
    expect(afterFirst).toMatchObject({ id: v2, tenantId: s.t.id, attempts: 1 });
    expect((afterFirst!.input as { source_id?: string }).source_id).toBe("doc-1");
  });

  it("never hands one job to two concurrent claimers, nor overshoots a tenant's running limit", async () => {
    const scheduler = new FairScheduler(db, { leaseMs: 30_000 });
    const setup = [
      { plan: "free", jobs: 3 },
      { plan: "free", jobs: 3 },
      { plan: "free", jobs: 3 },
      { plan: "pro", jobs: 4 },
      { plan: "enterprise", jobs: 6 },
    ];
    const limit = new Map<string, number>();
    const enqueued = new Set<string>();
    for (const [i, { plan, jobs }] of setup.entries()) {
      const { t, ctx } = await tenant(plan);
      limit.set(t.id, plans[plan]!.maxRunning);
      for (const id of await enqueue(ctx, Array.from({ length: jobs }, (_, n) => job(i * 100 + n)))) enqueued.add(id);
    }
    const capacity = [...limit.values()].reduce((sum, n) => sum + n, 0);
    const claimedIds: string[] = [];
    const checkLimits = async () => {
      for (const [tenantId, n] of await runningPerTenant()) {
        expect(n, `tenant ${tenantId} running`).toBeLessThanOrEqual(limit.get(tenantId) ?? 0);
      }
    };

    // Phase 1: claim without finishing until nothing more can start: exactly the capacity.
    const held: ClaimedJob[] = [];
    for (let round = 0; round < 12; round++) {
      const got = (await Promise.all([0, 1, 2, 3].map((w) => claim(scheduler, `r${round}-w${w}`)))).filter((c) => c !== undefined);
      held.push(...got);
      await checkLimits();
      if (got.length === 0) break;
    }
    expect(new Set(held.map((c) => c.id)).size).toBe(held.length);
    expect(held).toHaveLength(capacity);
    const perTenant = new Map<string, number>();
    for (const c of held) perTenant.set(c.tenantId, (perTenant.get(c.tenantId) ?? 0) + 1);
    for (const [tenantId, n] of perTenant) expect(n).toBe(limit.get(tenantId));
    claimedIds.push(...held.map((c) => c.id));

    // Phase 2: finish what is held, then keep claiming concurrently and finishing until all ran.
    let pending = held;
    for (let round = 0; round < 30 && (pending.length > 0 || claimedIds.length < enqueued.size); round++) {
      await Promise.all(pending.map(finish));
      pending = (await Promise.all([0, 1, 2, 3].map((w) => claim(scheduler, `p${round}-w${w}`)))).filter((c) => c !== undefined);
      await checkLimits();
      claimedIds.push(...pending.map((c) => c.id));
      if (pending.length === 0) break;
    }
    expect(new Set(claimedIds).size).toBe(claimedIds.length);
    expect(new Set(claimedIds)).toEqual(enqueued);
  });

  it("requeues a job whose lease expired (attempt 2) and releases the lost attempt's budget reservation", async () => {
    // Long enough that the immediate re-claim below is surely inside it, even on a loaded machine.
    const scheduler = new FairScheduler(db, { leaseMs: 800 });
    const l = await tenant("enterprise");
    const [id] = await enqueue(l.ctx, [job(0)]);
    const first = await claim(scheduler, "w-dies");
    expect(first).toMatchObject({ id, attempts: 1 });
    await db.asPlatformAdmin("test-reserve", (tx) =>
      tx.execute(sql`INSERT INTO budget_reservations (tenant_id, request_id, tokens, cost_micros, expires_at)
                     VALUES (${l.t.id}, ${jobOperationId(id!, 1)}, 1000, 50, now() + interval '1 hour'),
                            (${l.t.id}, ${"unrelated-request"}, 7, 1, now() + interval '1 hour')`),
    );
    const reservations = () =>
      db.asPlatformAdmin("test-reservations", (tx) =>
        queryRows<{ request_id: string }>(
          tx,
          sql`SELECT request_id FROM budget_reservations WHERE tenant_id = ${l.t.id} ORDER BY request_id`,
        ),
      );

    // Within the lease nobody else gets it, and the reservation stays.
    expect(await claim(scheduler, "w-other")).toBeUndefined();
    expect((await reservations()).map((r) => r.request_id)).toEqual([jobOperationId(id!, 1), "unrelated-request"].sort());

    await sleep(1000);
    const again = await claim(scheduler, "w-other");
    expect(again).toMatchObject({ id, tenantId: l.t.id, attempts: 2 });
    expect(await state(id!)).toMatchObject({ status: "running", attempts: 2, locked_by: "w-other" });
    expect((await reservations()).map((r) => r.request_id)).toEqual(["unrelated-request"]);
    // The worker presumed dead no longer holds the job.
    expect(await scheduler.heartbeat(first!, "w-dies")).toBe(false);
    expect(await scheduler.heartbeat(again!, "w-other")).toBe(true);
  });

  it("keeps a job whose worker heartbeats past the first lease; only its own worker can heartbeat", async () => {
    const leaseMs = 1000;
    const scheduler = new FairScheduler(db, { leaseMs });
    const h = await tenant("enterprise");
    const [id] = await enqueue(h.ctx, [job(0)]);
    const claimed = await claim(scheduler, "w-alive");
    const claimedAt = Date.now();
    expect(claimed?.id).toBe(id);

    await sleep(600);
    expect(await scheduler.heartbeat(claimed!, "w-intruder")).toBe(false);
    expect(await scheduler.heartbeat(claimed!, "w-alive")).toBe(true);
    const heartbeatAt = Date.now();

    // Past the original lease (claim + 1 s), well inside the renewed one (heartbeat + 1 s).
    await sleep(Math.max(0, claimedAt + leaseMs + 250 - Date.now()));
    expect(Date.now() - heartbeatAt, "timing precondition: still inside the renewed lease").toBeLessThan(leaseMs - 100);
    expect(await claim(scheduler, "w-other")).toBeUndefined();
    expect(await state(id!)).toMatchObject({ status: "running", attempts: 1, locked_by: "w-alive" });

    // Without further heartbeats the renewed lease runs out too, and the job is claimed again.
    await sleep(Math.max(0, heartbeatAt + leaseMs + 200 - Date.now()));
    const reclaimed = await claim(scheduler, "w-other");
    expect(reclaimed).toMatchObject({ id, attempts: 2 });
    expect(await scheduler.heartbeat(claimed!, "w-alive")).toBe(false);
  });

  it("fails a job as worker_lost when its lease expires on its last attempt", async () => {
    const scheduler = new FairScheduler(db, { leaseMs: 200 });
    const m = await tenant("enterprise");
    const bytes = new TextEncoder().encode("a document whose worker keeps dying");
    const [id] = await enqueue(m.ctx, [ingestJob({ title: "doomed", mediaType: "text/plain", bytes }, "bulk", fence.fence.embeddings.model)]);
    await db.asPlatformAdmin("test-max-attempts", (tx) => tx.execute(sql`UPDATE jobs SET max_attempts = 2 WHERE id = ${id}`));

    const first = await claim(scheduler, "w-a");
    expect(first).toMatchObject({ id, attempts: 1, maxAttempts: 2, kind: "ingest_document" });
    await sleep(300);
    const second = await claim(scheduler, "w-b");
    expect(second).toMatchObject({ id, attempts: 2, maxAttempts: 2 });
    await db.asPlatformAdmin("test-reserve", (tx) =>
      tx.execute(sql`INSERT INTO budget_reservations (tenant_id, request_id, tokens, cost_micros, expires_at)
                     VALUES (${m.t.id}, ${jobOperationId(id!, 2)}, 1000, 50, now() + interval '1 hour')`),
    );
    expect((await state(id!)).has_payload).toBe(true);
    const payloadFile = { tenantId: m.t.id, jobId: id! };
    if (db.payloadFiles) expect(await db.payloadFiles.read(payloadFile)).toEqual(bytes);

    await sleep(300);
    expect(await claim(scheduler, "w-c")).toBeUndefined();
    const final = await state(id!);
    expect(final).toMatchObject({ status: "failed", attempts: 2, error_code: "worker_lost", locked_by: null, has_payload: false });
    if (db.payloadFiles) expect(await db.payloadFiles.read(payloadFile)).toBeNull(); // PGlite: the file went with it
    expect(final.finished_at).not.toBeNull();
    const left = await db.asPlatformAdmin("test-reservations", (tx) =>
      queryRows(tx, sql`SELECT 1 FROM budget_reservations WHERE tenant_id = ${m.t.id}`),
    );
    expect(left).toHaveLength(0);
    // A failed job is never claimed again.
    await sleep(250);
    expect(await claim(scheduler, "w-d")).toBeUndefined();
    expect((await state(id!)).status).toBe("failed");
  });

  it("leaves a job that requires a capability to schedulers that offer it", async () => {
    const model = fence.fence.embeddings.model;
    const elsewhere = new FairScheduler(db, { leaseMs: 30_000, capabilities: [`${model}-other`] });
    const here = new FairScheduler(db, { leaseMs: 30_000, capabilities: [model] });
    const r = await tenant("enterprise");
    const bytes = new TextEncoder().encode("needs the local model");
    const [needsModel] = await enqueue(r.ctx, [ingestJob({ title: "needs model", mediaType: "text/plain", bytes }, "interactive", model)]);
    const [anywhere] = await enqueue(r.ctx, [job(0)]);
    // The other instance skips the interactive job it cannot run, but takes the one anyone can.
    expect((await claim(elsewhere, "w-elsewhere"))?.id).toBe(anywhere);
    expect(await claim(elsewhere, "w-elsewhere-2")).toBeUndefined();
    expect((await state(needsModel!)).status).toBe("queued");
    expect((await claim(here, "w-here"))?.id).toBe(needsModel);
  });

  it("a claim narrowed to one tenant (a Workers run after that tenant's 202) takes only its jobs, in its fair order", async () => {
    const scheduler = new FairScheduler(db, { leaseMs: 30_000 });
    const a = await tenant("enterprise");
    const b = await tenant("enterprise");
    // A's jobs are older and A is first in fair order: an unnarrowed claim would take A's.
    const aIds = await enqueue(a.ctx, Array.from({ length: 3 }, (_, n) => job(n)));
    const [bBulk, bInteractive] = await enqueue(b.ctx, [job(10), job(11, "interactive")]);
    const first = await scheduler.claim("w-b", { tenantId: b.t.id });
    expect(first).toMatchObject({ id: bInteractive, tenantId: b.t.id });
    await finish(first!);
    const second = await scheduler.claim("w-b", { tenantId: b.t.id });
    expect(second).toMatchObject({ id: bBulk, tenantId: b.t.id });
    await finish(second!);
    expect(await scheduler.claim("w-b", { tenantId: b.t.id })).toBeUndefined();
    for (const id of aIds) expect(await state(id)).toMatchObject({ status: "queued", attempts: 0 });
    // The narrowed claim holds under fifo too.
    const fifo = new FairScheduler(db, { leaseMs: 30_000, discipline: "fifo" });
    expect(await fifo.claim("w-b", { tenantId: b.t.id })).toBeUndefined();
    expect((await claimAndFinish(scheduler))?.tenantId).toBe(a.t.id);
  });

  it("claims no job of a suspended tenant — in fair order, narrowed to it, or fifo — and claims them in their turn once it is resumed", async () => {
    const scheduler = new FairScheduler(db, { leaseMs: 30_000 });
    const fifo = new FairScheduler(db, { leaseMs: 30_000, discipline: "fifo" });
    const s = await tenant("enterprise");
    const other = await tenant("free");
    // The suspended tenant's jobs are older, interactive, and from a heavier plan: every rule would
    // pick them first. Each in its own enqueue (its own transaction), so created_at orders them for fifo.
    const [sInteractive] = await enqueue(s.ctx, [job(0, "interactive")]);
    const [sBulk] = await enqueue(s.ctx, [job(1)]);
    const [otherJob] = await enqueue(other.ctx, [job(2)]);
    await fence.fence.tenantAdmin.suspendTenant(s.t.id);

    expect(await claim(scheduler, "w-s", { onlyIdleTenants: true })).toMatchObject({ id: otherJob });
    expect(await claim(scheduler, "w-s")).toBeUndefined();
    expect(await scheduler.claim("w-s", { tenantId: s.t.id })).toBeUndefined();
    expect(await fifo.claim("w-s")).toBeUndefined();
    for (const id of [sInteractive!, sBulk!]) expect(await state(id)).toMatchObject({ status: "queued", attempts: 0 });

    await fence.fence.tenantAdmin.resumeTenant(s.t.id);
    const first = await claim(fifo, "w-s");
    expect(first).toMatchObject({ id: sInteractive, tenantId: s.t.id, attempts: 1 });
    await finish(first!);
    expect(await claimAndFinish(scheduler)).toMatchObject({ id: sBulk, tenantId: s.t.id });
  });

  it("fifo discipline claims strictly oldest-first across tenants, ignoring priority and weights", async () => {
    const fifo = new FairScheduler(db, { leaseMs: 30_000, discipline: "fifo" });
    const a = await tenant("free");
    const b = await tenant("enterprise");
    const c = await tenant("pro");
    // Each job in its own enqueue (its own transaction), so created_at orders them strictly.
    const plan: Array<[{ ctx: TenantContext }, JobPriority]> = [
      [a, "bulk"],
      [a, "bulk"],
      [a, "bulk"],
      [b, "bulk"],
      [a, "bulk"],
      [c, "interactive"],
      [b, "interactive"],
      [a, "bulk"],
      [c, "bulk"],
      [b, "bulk"],
    ];
    const order: string[] = [];
    for (const [n, [who, priority]] of plan.entries()) order.push(...(await enqueue(who.ctx, [job(n, priority)])));

    const claimed: string[] = [];
    for (let i = 0; i < plan.length + 1; i++) {
      const next = await claimAndFinish(fifo, "w-fifo");
      if (!next) break;
      claimed.push(next.id);
    }
    expect(claimed).toEqual(order);
  });
});
