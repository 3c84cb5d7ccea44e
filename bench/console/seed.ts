import { sql } from "drizzle-orm";
import { rebuildUsageDaily } from "../../src/metering/usage-daily.js";
import { queryRows, type Tx } from "../../src/db/database.js";
import { ensureVectorIndex, vectorIndexName } from "../../src/db/vector-index.js";
import type { FenceInstance } from "../../src/platform/fence.js";
import { UNLIMITED_PLAN } from "../../test/support/unlimited-plan.js";
import type { IssuedKeyJson, TenantJson } from "../../test/support/api-types.js";
import { since } from "../stats.js";
import { auditShares, insertAudit, insertBacklog, insertRuns } from "./seed-activity.js";

/**
 * The console bench's data: one measured tenant with `documents` documents (one chunk each, one
 * finished upload job each) and `events` usage events over the last 30 days, its budget counters
 * as the ledger keeps them, `runs` run records over the same 30 days, an audit trail of
 * `auditEvents` events over the last year (with the revoked keys it names) and a backlog of
 * `queuedJobs` queued uploads (seed-activity.ts); a neighbour tenant with a share of all that on
 * the same tables, and idle tenants for the platform's list. Tenants, plan, keys and the owner's
 * settings go through the admin API and /v1/settings (the real path); the bulk rows are set-based
 * SQL as the platform admin, so seeding takes seconds.
 */
export interface SeedSizes {
  documents: number;
  events: number;
  jobs: number;
  runs: number;
  auditEvents: number;
  queuedJobs: number;
  neighbourShare: number;
  idleTenants: number;
  seed: number;
}

export interface SeededTenant {
  id: string;
  ownerKey: string;
  keyIds: string[];
  documents: number;
  events: number;
  jobs: number;
  runs: number;
  /** Audit events seeded in bulk, besides `apiAuditEvents`: those its setup through the API wrote. */
  auditEvents: number;
  apiAuditEvents: number;
  queuedJobs: number;
  /** The persona the owner set through PATCH /v1/settings (the Settings page shows it). */
  persona: string;
}

export interface Seeded {
  measured: SeededTenant;
  neighbour: SeededTenant;
  /** The measured tenant's runs by status (the Runs page's filters show these). */
  runsByStatus: Record<"succeeded" | "refused" | "failed", number>;
  /** The title fragment that about 1 % of the measured tenant's titles hold, and how many do. */
  query: { text: string; matches: number };
  tenants: number;
  ms: number;
  /** Where the seeding time went (ms): the API calls, each bulk step, the HNSW build. */
  steps: Record<string, number>;
}

/** The plan: an enterprise tenant's budgets (so the gauges have limits), no request-rate limit (the bench sends pages back to back). */
const PLAN = "bench-console";
const PLAN_SETTINGS = { ...UNLIMITED_PLAN, tokens_per_day: 20_000_000, tokens_per_month: 400_000_000, spend_per_month_micros: 2_000_000_000 };

/** Every 100th title holds this word (and no other title does), so finding it matches 1 %. */
const RARE_WORD = "Zephyr";
const TOPICS = ["Billing", "Onboarding", "Security", "Release", "Pricing", "Support", "Roadmap", "Incident", "Payroll", "Warranty", "Shipping", "Returns", "Privacy", "Training", "Hiring", "Travel", "Expenses", "Compliance", "Inventory", "Facilities", "Marketing", "Procurement", "Quality"];
const KINDS = ["handbook", "policy", "notes", "guide", "checklist", "FAQ", "report", "memo", "runbook", "overview", "summary", "manual", "plan", "review", "brief", "minutes", "spec"];

/** Chunks per distinct vector (pgvector's HNSW_HEAPTIDS): see insertChunks. */
const VECTOR_SHARERS = 10;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export async function seedConsoleData(fence: FenceInstance, adminKey: string, sizes: SeedSizes, model: string, dimensions: number): Promise<Seeded> {
  const started = performance.now();
  const steps: Record<string, number> = {};
  const step = async <T>(name: string, fn: () => Promise<T>): Promise<T> => {
    const t0 = performance.now();
    try {
      return await fn();
    } finally {
      steps[name] = (steps[name] ?? 0) + since(t0);
    }
  };
  const admin = async <T>(method: string, path: string, json: unknown): Promise<T> => {
    const res = await fence.app.request(`/v1/admin${path}`, {
      method,
      headers: { authorization: `Bearer ${adminKey}`, "content-type": "application/json" },
      body: JSON.stringify(json),
    });
    if (res.status >= 300) throw new Error(`${method} /v1/admin${path}: ${res.status} ${await res.text()}`);
    return (await res.json()) as T;
  };
  await admin("PUT", `/plans/${PLAN}`, PLAN_SETTINGS);
  type TenantSizes = Pick<SeededTenant, "documents" | "events" | "jobs" | "runs" | "auditEvents" | "queuedJobs">;
  const tenant = async (name: string, size: TenantSizes): Promise<SeededTenant> => {
    const { id } = await admin<TenantJson>("POST", "/tenants", { name, plan: PLAN });
    // The owner key signs in to the console; the others spread the usage over several keys, projects and environments.
    const keys = [
      await admin<IssuedKeyJson>("POST", `/tenants/${id}/keys`, { name: "owner" }),
      await admin<IssuedKeyJson>("POST", `/tenants/${id}/keys`, { name: "web app", scopes: ["query"], project: "web" }),
      await admin<IssuedKeyJson>("POST", `/tenants/${id}/keys`, { name: "ingest bot", scopes: ["ingest"], project: "sync" }),
      await admin<IssuedKeyJson>("POST", `/tenants/${id}/keys`, { name: "staging", scopes: ["query", "read"], project: "web", environment: "test" }),
    ];
    // The owner's own settings, through the API as the console's Settings form sends them (and audited as such).
    const persona = `You answer questions from ${name.split(" (")[0]} staff. Cite the handbook, and say so when it does not answer.`;
    const patched = await fence.app.request("/v1/settings", {
      method: "PATCH",
      headers: { authorization: `Bearer ${keys[0]!.key}`, "content-type": "application/json" },
      body: JSON.stringify({ persona, answer_style: "concise", retrieval_k: 8 }),
    });
    if (patched.status !== 200) throw new Error(`PATCH /v1/settings: ${patched.status} ${await patched.text()}`);
    return { id, ownerKey: keys[0]!.key, keyIds: keys.map((k) => k.id), ...size, apiAuditEvents: 0, persona };
  };
  const share = (n: number) => Math.max(1, Math.round(n * sizes.neighbourShare));
  const apiStarted = performance.now();
  const { documents, events, jobs, runs, auditEvents, queuedJobs } = sizes;
  const measured = await tenant("Acme Orchards (bench: measured)", { documents, events, jobs, runs, auditEvents, queuedJobs });
  const neighbour = await tenant("Globex (bench: neighbour)", {
    documents: share(sizes.documents),
    events: share(sizes.events),
    jobs: sizes.jobs > 0 ? share(sizes.jobs) : 0,
    runs: sizes.runs > 0 ? share(sizes.runs) : 0,
    auditEvents: sizes.auditEvents > 0 ? share(sizes.auditEvents) : 0,
    queuedJobs: sizes.queuedJobs > 0 ? share(sizes.queuedJobs) : 0,
  });
  steps.api = since(apiStarted);

  const db = fence.db;
  // The HNSW index is built once after the load, as the service's own DDL builds it: far faster
  // than maintaining it row by row (bench/corpus.ts does the same).
  await db.asOwner((tx) => tx.execute(sql.raw(`DROP INDEX IF EXISTS ${vectorIndexName(model)}`)));
  await db.asPlatformAdmin("bench-console-seed", async (tx) => {
    await tx.execute(sql`SELECT setseed(${(sizes.seed % 1000) / 1000})`);
    if (sizes.idleTenants > 0) {
      await tx.execute(sql`INSERT INTO tenants (name, plan, created_at)
        SELECT 'Idle tenant ' || g, 'free', now() - g * interval '1 hour' FROM generate_series(1, ${sizes.idleTenants}) AS g`);
    }
    for (const t of [measured, neighbour]) {
      await step("documents", () => insertDocuments(tx, t, model));
      await step("chunks", () => insertChunks(tx, t, model, dimensions));
      await step("jobs", () => insertJobs(tx, t, model));
      await step("usage", () => insertUsage(tx, t, model));
      await step("runs", () => insertRuns(tx, t, model));
      // The events its setup through the API wrote (tenant.created, key.created, settings.patched …) stay; the bulk trail is counted on top.
      const [api] = await queryRows<{ n: string | number }>(tx, sql`SELECT count(*) AS n FROM audit_events WHERE tenant_id = ${t.id}`);
      t.apiAuditEvents = Number(api!.n);
      await step("audit", () => insertAudit(tx, t));
      await step("backlog", () => insertBacklog(tx, t));
    }
  });
  await step("hnsw", () => ensureVectorIndex(db, model, dimensions));

  const [found] = await db.asPlatformAdmin("bench-console-seed", (tx) =>
    queryRows<{ n: string | number }>(tx, sql`SELECT count(*) AS n FROM documents WHERE tenant_id = ${measured.id} AND title ILIKE ${`%${RARE_WORD}%`}`),
  );
  const byStatus = await db.asPlatformAdmin("bench-console-seed", (tx) =>
    queryRows<{ status: string; n: string | number }>(tx, sql`SELECT status, count(*) AS n FROM runs WHERE tenant_id = ${measured.id} GROUP BY status`),
  );
  const runsByStatus = { succeeded: 0, refused: 0, failed: 0 };
  for (const r of byStatus) runsByStatus[r.status as keyof typeof runsByStatus] = Number(r.n);
  await checkCounts(fence, measured);
  await checkCounts(fence, neighbour);
  return { measured, neighbour, runsByStatus, query: { text: RARE_WORD.toLowerCase(), matches: Number(found!.n) }, tenants: 2 + sizes.idleTenants, ms: since(started), steps };
}

/** A SQL text[] literal of plain words (checked: no quotes to escape). */
function words(list: readonly string[]): string {
  for (const w of list) if (!/^[A-Za-z ]+$/.test(w)) throw new TypeError(`not a plain word: ${w}`);
  return `ARRAY[${list.map((w) => `'${w}'`).join(", ")}]::text[]`;
}

function uuids(list: readonly string[]): string {
  for (const id of list) if (!UUID.test(id)) throw new TypeError(`not a uuid: ${id}`);
  return `ARRAY[${list.map((id) => `'${id}'`).join(", ")}]::uuid[]`;
}

/**
 * Documents added over the last 60 days (newest first is the list's order), titles from a topic
 * and a kind with the document's number (every 100th with the rare word).
 */
async function insertDocuments(tx: Tx, t: SeededTenant, model: string): Promise<void> {
  await tx.execute(sql`
    INSERT INTO documents (tenant_id, source_id, title, media_type, content_hash, byte_size, chunk_count, embedding_model, metadata, created_at, updated_at)
    SELECT ${t.id}::uuid, 'kb/' || g, title, 'text/markdown', md5(${t.id} || ':' || g), 600 + (g * 37) % 3000, 1, ${model},
           jsonb_build_object('team', (${sql.raw(words(TOPICS))})[1 + g % ${TOPICS.length}]), at, at
    FROM (
      SELECT g,
             (${sql.raw(words(TOPICS))})[1 + g % ${TOPICS.length}] || ' ' || (${sql.raw(words(KINDS))})[1 + (g / ${TOPICS.length}) % ${KINDS.length}]
               || CASE WHEN g % 100 = 42 THEN ' ${sql.raw(RARE_WORD)}' ELSE '' END || ' #' || g AS title,
             now() - ((${t.documents} - g)::float8 / ${t.documents}) * interval '60 days' - random() * interval '1 second' AS at
      FROM generate_series(1, ${t.documents}) AS g
    ) AS d`);
}

/** One chunk per document, with a random unit vector under the instance's model. */
async function insertChunks(tx: Tx, t: SeededTenant, model: string, dimensions: number): Promise<void> {
  // Ten chunks share each random vector: pgvector's HNSW keeps up to ten rows on one graph element,
  // so the index is built over a tenth of the vectors — 33 s less on PGlite for 10,000 chunks. The
  // pages read chunks by document, never by vector, so what the vectors are does not matter here.
  await tx.execute(sql`
    WITH vectors AS (
      SELECT i, l2_normalize(array_agg(random() - 0.5)::vector) AS embedding
      FROM generate_series(0, ${Math.ceil(t.documents / VECTOR_SHARERS) - 1}) AS i CROSS JOIN generate_series(1, ${dimensions}) AS j
      GROUP BY i
    ), numbered AS (
      SELECT d.*, row_number() OVER (ORDER BY d.created_at, d.id) - 1 AS n FROM documents d WHERE d.tenant_id = ${t.id}::uuid
    )
    INSERT INTO chunks (tenant_id, document_id, position, heading, text, embedding_model, embedding, created_at)
    SELECT d.tenant_id, d.id, 0, d.title,
           d.title || '. ' || repeat('This section explains the procedure, who owns it and when it applies. ', 8),
           ${model}, v.embedding, d.created_at
    FROM numbered d JOIN vectors v ON v.i = d.n / ${VECTOR_SHARERS}`);
}

/** One finished upload job per document (up to `jobs`): how documents arrive through the console. */
async function insertJobs(tx: Tx, t: SeededTenant, model: string): Promise<void> {
  if (t.jobs === 0) return;
  await tx.execute(sql`
    INSERT INTO jobs (tenant_id, kind, requires, priority, status, input, payload_bytes, key_id, project, environment, attempts,
                      run_after, steps, result, created_at, started_at, finished_at)
    SELECT d.tenant_id, 'ingest_document', ${model}, 0, 'succeeded',
           jsonb_build_object('title', d.title, 'media_type', d.media_type, 'byte_size', d.byte_size, 'source_id', d.source_id),
           NULL, ${t.keyIds[0]!}::uuid, 'default', 'prod', 1, d.created_at - interval '2 seconds',
           jsonb_build_array(
             jsonb_build_object('name', 'parse', 'status', 'succeeded', 'attempt', 1, 'started_at', d.created_at - interval '2 seconds', 'duration_ms', 12),
             jsonb_build_object('name', 'embed', 'status', 'succeeded', 'attempt', 1, 'started_at', d.created_at - interval '1 second', 'duration_ms', 640),
             jsonb_build_object('name', 'store', 'status', 'succeeded', 'attempt', 1, 'started_at', d.created_at, 'duration_ms', 9)),
           jsonb_build_object('document_id', d.id, 'outcome', 'created'),
           d.created_at - interval '2 seconds', d.created_at - interval '2 seconds', d.created_at
    FROM documents d
    WHERE d.tenant_id = ${t.id}::uuid
    ORDER BY d.created_at DESC
    LIMIT ${t.jobs}`);
}

/**
 * Usage events spread over the last 30 days: query embeddings (half), document embeddings, and
 * chats on two models, across the tenant's keys; one in 50 a failed call (kept, not charged).
 * Written in time order, as recordUsage appends them (a day's events lie together in the table).
 * Then the budget counters as recordUsage keeps them (day, month and key-month, charged only) and
 * the daily rollup.
 */
async function insertUsage(tx: Tx, t: SeededTenant, model: string): Promise<void> {
  const keys = sql.raw(uuids(t.keyIds));
  const projects = sql.raw(words(["default", "web", "sync", "web"]));
  const environments = sql.raw(words(["prod", "prod", "prod", "test"]));
  await tx.execute(sql`
    INSERT INTO usage_events (tenant_id, event_id, project, environment, key_id, request_id, feature, provider, model,
                              input_tokens, output_tokens, cached_tokens, cost_micros, price_version, status, error, occurred_at)
    SELECT ${t.id}::uuid, 'bench-' || g || ':' || e.feature, (${projects})[1 + g % 4], (${environments})[1 + g % 4], (${keys})[1 + g % 4],
           'req-bench-' || g, e.feature, e.provider, e.model, e.input_tokens, e.output_tokens, e.cached_tokens,
           CASE WHEN e.failed THEN 0 ELSE ceil((e.input_tokens::numeric * e.input_rate + e.output_tokens::numeric * e.output_rate) / 1000000)::bigint END,
           CASE WHEN e.provider = 'openai' THEN 1 END,
           CASE WHEN e.failed THEN 'failed' ELSE 'charged' END,
           CASE WHEN e.failed THEN 'upstream timeout' END,
           now() - random() * interval '30 days' AS occurred_at
    FROM generate_series(1, ${t.events}) AS g
    CROSS JOIN LATERAL (
      SELECT CASE WHEN g % 10 < 5 THEN 'embed_query' WHEN g % 10 < 7 THEN 'embed_documents' ELSE 'chat' END AS feature,
             CASE WHEN g % 10 < 7 THEN 'local' ELSE 'openai' END AS provider,
             CASE WHEN g % 10 < 7 THEN ${model} WHEN g % 10 < 9 THEN 'gpt-4o-mini' ELSE 'gpt-4o' END AS model,
             CASE WHEN g % 10 < 5 THEN 8 + g % 40 WHEN g % 10 < 7 THEN 400 + (g * 7) % 3600 ELSE 800 + (g * 13) % 2400 END AS input_tokens,
             CASE WHEN g % 10 < 7 THEN 0 ELSE 40 + (g * 11) % 400 END AS output_tokens,
             CASE WHEN g % 10 >= 7 AND g % 3 = 0 THEN 256 ELSE 0 END AS cached_tokens,
             CASE WHEN g % 10 < 7 THEN 20000 WHEN g % 10 < 9 THEN 150000 ELSE 2500000 END AS input_rate,
             CASE WHEN g % 10 < 7 THEN 0 WHEN g % 10 < 9 THEN 600000 ELSE 10000000 END AS output_rate,
             g % 50 = 0 AS failed
      WHERE g IS NOT NULL
    ) AS e
    ORDER BY occurred_at`);
  await tx.execute(sql`
    INSERT INTO usage_counters (tenant_id, period, tokens, cost_micros)
    SELECT tenant_id, p.period, sum(input_tokens + output_tokens), sum(cost_micros)
    FROM usage_events
    CROSS JOIN LATERAL (VALUES
      ('day:' || to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD')),
      ('month:' || to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM')),
      ('key:' || key_id || ':month:' || to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM'))
    ) AS p (period)
    WHERE tenant_id = ${t.id}::uuid AND status = 'charged'
    GROUP BY tenant_id, p.period`);
  // And the daily rollup the reports read, as recordUsage would have kept it.
  await rebuildUsageDaily(tx, t.id);
}

/** The load wrote what was asked (a silent LIMIT or a filtered lateral would skew every figure). */
async function checkCounts(fence: FenceInstance, t: SeededTenant): Promise<void> {
  const [row] = await fence.db.asPlatformAdmin("bench-console-seed", (tx) =>
    queryRows<Record<"documents" | "chunks" | "events" | "jobs" | "queued" | "runs" | "audit" | "revoked_keys", string | number>>(
      tx,
      sql`SELECT (SELECT count(*) FROM documents WHERE tenant_id = ${t.id}) AS documents,
                 (SELECT count(*) FROM chunks WHERE tenant_id = ${t.id}) AS chunks,
                 (SELECT count(*) FROM usage_events WHERE tenant_id = ${t.id}) AS events,
                 (SELECT count(*) FROM jobs WHERE tenant_id = ${t.id} AND status = 'succeeded') AS jobs,
                 (SELECT count(*) FROM jobs WHERE tenant_id = ${t.id} AND status = 'queued') AS queued,
                 (SELECT count(*) FROM runs WHERE tenant_id = ${t.id}) AS runs,
                 (SELECT count(*) FROM audit_events WHERE tenant_id = ${t.id}) AS audit,
                 (SELECT count(*) FROM api_keys WHERE tenant_id = ${t.id} AND revoked_at IS NOT NULL) AS revoked_keys`,
    ),
  );
  const got = Object.fromEntries(Object.entries(row!).map(([k, v]) => [k, Number(v)]));
  const want = {
    documents: t.documents,
    chunks: t.documents,
    events: t.events,
    jobs: Math.min(t.jobs, t.documents),
    queued: Math.min(t.queuedJobs, t.documents),
    runs: t.runs,
    audit: t.apiAuditEvents + t.auditEvents,
    revoked_keys: auditShares(t.auditEvents).revokedKeys,
  };
  if (JSON.stringify(got) !== JSON.stringify(want)) throw new Error(`seeding wrote ${JSON.stringify(got)}, expected ${JSON.stringify(want)}`);
}
