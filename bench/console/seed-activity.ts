import { sql } from "drizzle-orm";
import { rebuildRunsDaily } from "../../src/runs/run-daily.js";
import type { Tx } from "../../src/db/database.js";

/**
 * The console bench's activity data, beside the documents and usage of seed.ts: a tenant's run
 * records, its audit trail (with the revoked keys it names), and an upload backlog. Set-based SQL
 * as the platform admin, each row shaped as Fence writes it — the columns RunRecords.save fills,
 * the steps as RunRecorder / RunningJob / RefusalSummaries push them (run-recorder.ts,
 * running-job.ts, refusal-summaries.ts, chat-run-steps.ts), the audit events' before/after as the
 * API shows a key (viewOfKey) or the owner's settings (ownerView).
 */
export interface ActivityTenant {
  id: string;
  /** The tenant's keys as seed.ts issues them: owner, web app, ingest bot, staging. */
  keyIds: string[];
  runs: number;
  auditEvents: number;
  queuedJobs: number;
}

/** What a run's model call and the plan's name are in the generated rows. */
const PLAN = "bench-console";
const PROMPT_VERSION = "grounded-v1";
const MAX_OUTPUT_TOKENS = 1024;
const RETRIEVAL_K = 8;
/** The model a re-embedding backlog waits for: a rolling model change, run by other instances' workers (jobs.requires). */
export const BACKLOG_MODEL = "openai:text-embedding-3-small";

const TOPICS = ["billing", "onboarding", "security", "release", "pricing", "support", "incident", "payroll", "warranty", "shipping", "returns", "privacy"];
const CONCERNS = ["a refund after 30 days", "a customer in the EU", "an on-call handover", "a missed deadline", "a contractor", "a duplicate invoice", "a lost laptop", "a holiday week"];
const SENTENCES = [
  "The policy applies to every team member from their first day, including contractors on a fixed-term agreement.",
  "Requests are reviewed by the owning team within two working days, and urgent cases go to the on-call lead.",
  "Exceptions need a written approval from the department head, recorded in the ticket before any change is made.",
  "The checklist must be completed in order; a skipped step is flagged in the weekly review and followed up.",
  "Costs above the monthly threshold are split between the requesting team and the platform budget.",
  "Customers are told of the outcome by email, with the reference number and the next steps they can take.",
  "Records are kept for seven years and deleted afterwards, unless a legal hold says otherwise.",
  "If the primary contact is unavailable, the deputy listed in the rota takes over with the same authority.",
];

const ISO_FORMAT = `'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'`;
/** A timestamptz as JavaScript's toISOString() writes it (what a step's started_at and a key view hold). */
const iso = (expr: string) => `to_char((${expr}) AT TIME ZONE 'UTC', ${ISO_FORMAT})`;
/** `ms` milliseconds after `at`. */
const plus = (at: string, ms: string) => `(${at} + (${ms}) * interval '1 millisecond')`;

function texts(list: readonly string[]): string {
  for (const w of list) if (!/^[A-Za-z0-9 ,.;()'-]+$/.test(w)) throw new TypeError(`not plain text: ${w}`);
  return `ARRAY[${list.map((w) => `'${w.replaceAll("'", "''")}'`).join(", ")}]::text[]`;
}

/**
 * Run records over the last 30 days, as RunRecords.save writes them: 80 % chat requests, 20 %
 * ingestion job attempts.
 *
 * Chat (keys: web app 75 %, owner 15 % — the console's Ask —, staging 10 %): 2.5 % refused by
 * admission (one summary run per key and minute, RefusalSummaries: one `admission` step), 1.5 %
 * refused by the budget at `budget_reservation`, 2 % failed at `model_call` (upstream_error,
 * provider_unavailable, stream_abandoned, internal_error); of the rest 8 % answer-cache hits and
 * the others the LLM path — answer_cache, query_embedding, retrieval (8 hits), context_assembly
 * (5 passages), budget_reservation, model_call (gpt-4o-mini, or gpt-4o one in three), answer.
 *
 * Ingestion (the ingest bot's sync; request id `job:<id>`, steps with their attempt as a job
 * records them): 1 % refused by admission (queue full), 1.5 % unprocessable at `parse`, 1 % failed
 * at `embed`; of the rest 60 % unchanged re-uploads (parse, chunk, store) and 40 % created or
 * replaced (parse, chunk, embed, store).
 */
export async function insertRuns(tx: Tx, t: ActivityTenant, embeddingModel: string): Promise<void> {
  if (t.runs === 0) return;
  const [owner, web, bot, staging] = t.keyIds;
  const provider = embeddingModel.split(":")[0]!;
  const at = "o.at";
  const step = (name: string, status: "succeeded" | "failed", startMs: string, durationMs: string, detail: string | null, error?: string, attempt = false) =>
    `jsonb_build_object('name', '${name}', 'status', '${status}', 'started_at', ${iso(plus(at, startMs))}, 'duration_ms', ${durationMs}` +
    `${attempt ? ", 'attempt', 1" : ""}${detail ? `, 'detail', ${detail}` : ""}${error ? `, 'error', ${error}` : ""})`;

  // Chat step timings (ms, one decimal as RunRecorder rounds them): offsets from the run's start.
  const chatSteps = {
    cache: (hit: boolean) => step("answer_cache", "succeeded", "0", "0", `jsonb_build_object('hit', ${hit})`),
    embedding: step("query_embedding", "succeeded", "1", "o.emb", `jsonb_build_object('model', '${embeddingModel}', 'cached', false)`),
    retrieval: step("retrieval", "succeeded", "1", "o.ret", `jsonb_build_object('k', ${RETRIEVAL_K}, 'hits', o.hits)`),
    assembly: step("context_assembly", "succeeded", "1 + o.ret", "o.asm", "jsonb_build_object('passages', o.passages)"),
    reservation: step(
      "budget_reservation",
      "succeeded",
      "1 + o.ret + o.asm",
      "o.res",
      `jsonb_build_object('input_tokens_estimate', o.input_tokens, 'max_output_tokens', ${MAX_OUTPUT_TOKENS}, 'model', o.model, 'downgraded', false)`,
    ),
    refusedReservation: step(
      "budget_reservation",
      "failed",
      "1 + o.ret + o.asm",
      "o.res",
      `jsonb_build_object('input_tokens_estimate', o.input_tokens, 'max_output_tokens', ${MAX_OUTPUT_TOKENS}, 'code', 'budget_exceeded')`,
      "o.message",
    ),
    modelCall: step(
      "model_call",
      "succeeded",
      "1 + o.ret + o.asm + o.res",
      "o.mc",
      `jsonb_build_object('provider', 'openai', 'model', o.model, 'prompt_version', '${PROMPT_VERSION}', 'input_tokens', o.input_tokens, 'output_tokens', o.output_tokens,
         'total_tokens', o.input_tokens + o.output_tokens, 'usage_reported', true, 'finish_reason', 'stop')`,
    ),
    failedModelCall: step(
      "model_call",
      "failed",
      "1 + o.ret + o.asm + o.res",
      "o.mc",
      `jsonb_build_object('provider', 'openai', 'model', o.model, 'prompt_version', '${PROMPT_VERSION}', 'code', o.code)`,
      "o.message",
    ),
    answer: (start: string, cached: boolean) =>
      step(
        "answer",
        "succeeded",
        start,
        "0",
        `jsonb_build_object('mode', 'llm', 'cached', ${cached}, 'no_answer', false, 'model', o.model, 'citations', o.citations)`,
      ),
  };
  const admission = step(
    "admission",
    "failed",
    "0",
    "o.window_ms",
    "jsonb_build_object('refused_requests', o.refused, 'last_request_id', md5(o.h || ':last')::uuid::text, 'code', 'rate_limited')",
    "o.message",
  );
  const ingestSteps = {
    parse: step("parse", "succeeded", "0", "o.parse_ms", "jsonb_build_object('characters', o.characters, 'media_type', 'text/markdown')", undefined, true),
    failedParse: step("parse", "failed", "0", "o.parse_ms", null, "o.message", true),
    chunk: (unchanged: boolean) =>
      step("chunk", "succeeded", "o.parse_ms", "o.chunk_ms", unchanged ? "jsonb_build_object('unchanged', true)" : "jsonb_build_object('chunks', o.chunks)", undefined, true),
    embed: step("embed", "succeeded", "o.parse_ms + o.chunk_ms", "o.embed_ms", "jsonb_build_object('vectors', o.chunks)", undefined, true),
    failedEmbed: step("embed", "failed", "o.parse_ms + o.chunk_ms", "o.embed_ms", null, "o.message", true),
    // The store step of an unchanged upload is recorded by job.complete with no detail of its own; the run adds the result.
    storeUnchanged: step("store", "succeeded", "o.parse_ms + o.chunk_ms", "o.store_ms", "jsonb_build_object('document_id', o.document_id, 'outcome', 'unchanged')", undefined, true),
    store: step(
      "store",
      "succeeded",
      "o.parse_ms + o.chunk_ms + o.embed_ms",
      "o.store_ms",
      "jsonb_build_object('chunks', o.chunks, 'version', o.version, 'document_id', o.document_id, 'outcome', o.outcome)",
      undefined,
      true,
    ),
  };
  const chatEnd = "1 + o.ret + o.asm + o.res + o.mc";

  await tx.execute(sql`
    WITH base AS MATERIALIZED (
      SELECT g,
             CASE WHEN g % 5 = 0 THEN 'ingest' ELSE 'chat' END AS kind,
             random() AS r, random() AS l, random() AS m,
             date_trunc('milliseconds', now() - random() * interval '30 days') AS at,
             md5(${t.id} || ':run:' || g) AS h
      FROM generate_series(1, ${t.runs}) AS g
    ), coded AS (
      SELECT b.*,
             CASE WHEN kind = 'chat' THEN
                    CASE WHEN r < 0.025 THEN 'rate_limited' WHEN r < 0.04 THEN 'budget_exceeded' WHEN r < 0.05 THEN 'upstream_error'
                         WHEN r < 0.055 THEN 'provider_unavailable' WHEN r < 0.058 THEN 'stream_abandoned' WHEN r < 0.06 THEN 'internal_error' END
                  ELSE
                    CASE WHEN r < 0.01 THEN 'rate_limited' WHEN r < 0.025 THEN 'unprocessable_document' WHEN r < 0.035 THEN 'upstream_error' END
             END AS code,
             (${sql.raw(texts(TOPICS))})[1 + g % ${TOPICS.length}] AS topic
      FROM base b
    ), o AS (
      SELECT c.*,
             CASE WHEN code IN ('rate_limited', 'budget_exceeded') THEN 'refused' WHEN code IS NOT NULL THEN 'failed' ELSE 'succeeded' END AS status,
             CASE code
               WHEN 'rate_limited' THEN CASE WHEN kind = 'chat' THEN 'The request rate limit is reached; retry after the indicated time.'
                                             ELSE 'The tenant''s queue of unfinished jobs is full; retry when some have finished.' END
               WHEN 'budget_exceeded' THEN 'The tokens per day budget of plan ''${sql.raw(PLAN)}'' is exhausted; it resets at '
                                           || ${sql.raw(iso("date_trunc('day', c.at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' + interval '1 day'"))} || '.'
               WHEN 'upstream_error' THEN CASE WHEN kind = 'chat' THEN 'The language model provider failed (HTTP 502).' ELSE 'Embedding provider failed: fetch failed' END
               WHEN 'provider_unavailable' THEN 'The openai provider is failing repeatedly; requests to it are paused briefly.'
               WHEN 'stream_abandoned' THEN 'The client stopped reading the stream before the answer ended.'
               WHEN 'internal_error' THEN 'Internal error.'
               WHEN 'unprocessable_document' THEN 'The document could not be read.'
             END AS message,
             -- Chat: whose key, which model, what was asked and answered.
             (ARRAY[${web}, ${web}, ${web}, ${web}, ${web}, ${web}, ${web}, ${web}, ${web}, ${web}, ${web}, ${web}, ${web}, ${web}, ${web}, ${owner}, ${owner}, ${owner}, ${staging}, ${staging}]::uuid[])[1 + (g / 5) % 20] AS chat_key,
             CASE WHEN g % 3 = 0 THEN 'gpt-4o' ELSE 'gpt-4o-mini' END AS model,
             'What does the ' || topic || ' handbook say about ' || (${sql.raw(texts(CONCERNS))})[1 + (g / 7) % ${CONCERNS.length}] || '?' AS question,
             (SELECT 'According to the ' || c.topic || ' handbook [1], ' || string_agg((${sql.raw(texts(SENTENCES))})[1 + (c.g * i + i) % ${SENTENCES.length}] || ' [' || (1 + i % 3) || ']', ' ')
                FROM generate_series(1, 4 + c.g % 4) AS i) AS answer,
             (SELECT jsonb_agg(jsonb_build_object('chunk_id', md5(c.h || ':chunk:' || i)::uuid, 'document_id', md5(c.h || ':doc:' || i)::uuid,
                                                  'score', round((0.0331 - i * 0.0012 - c.l * 0.002)::numeric, 4), 'similarity', round((0.86 - i * 0.025 - c.m * 0.1)::numeric, 4)) ORDER BY i)
                FROM generate_series(1, ${RETRIEVAL_K}) AS i) AS hits,
             (SELECT jsonb_agg(jsonb_build_object('citation', i, 'chunk_id', md5(c.h || ':chunk:' || i)::uuid, 'document_id', md5(c.h || ':doc:' || i)::uuid) ORDER BY i)
                FROM generate_series(1, 5) AS i) AS passages,
             (SELECT jsonb_agg(jsonb_build_object('citation', i, 'document_id', md5(c.h || ':doc:' || i)::uuid, 'chunk_id', md5(c.h || ':chunk:' || i)::uuid) ORDER BY i)
                FROM generate_series(1, 1 + c.g % 3) AS i) AS citations,
             900 + (g * 13) % 2400 AS input_tokens,
             40 + (g * 11) % 400 AS output_tokens,
             round((6 + l * 30)::numeric, 1) AS emb,
             round((6 + l * 30 + 4 + m * 25)::numeric, 1) AS ret,
             round((0.5 + m * 3)::numeric, 1) AS asm,
             round((1 + l * 4)::numeric, 1) AS res,
             CASE code WHEN 'upstream_error' THEN round((1500 + m * 28000)::numeric, 1) WHEN 'provider_unavailable' THEN 0.3
                       WHEN 'stream_abandoned' THEN round((300 + m * 4000)::numeric, 1) WHEN 'internal_error' THEN round((5 + m * 50)::numeric, 1)
                       ELSE round((600 + l * l * 9000)::numeric, 1) END AS mc,
             -- Admission summaries: the minute's refusals, from the first to the last.
             floor(m * 59000)::int AS window_ms,
             1 + floor(l * l * 200)::int AS refused,
             -- Ingestion job attempts (whole milliseconds, as a job's steps are timed).
             5 + floor(m * 80)::int AS parse_ms,
             1 + floor(l * 10)::int AS chunk_ms,
             40 + floor(l * l * 2000)::int AS embed_ms,
             5 + floor(m * 40)::int AS store_ms,
             (g / 5) % 5 < 3 AS unchanged,
             1 + g % 4 AS chunks,
             600 + (g * 37) % 3000 AS characters,
             1 + (g / 25) % 3 AS version,
             CASE WHEN (g / 25) % 3 = 0 THEN 'created' ELSE 'replaced' END AS outcome,
             md5(h || ':document')::uuid AS document_id
      FROM coded c
    ), shaped AS (
      SELECT o.*,
             CASE
               WHEN code = 'rate_limited' THEN jsonb_build_array(${sql.raw(admission)})
               WHEN kind = 'chat' AND code = 'budget_exceeded' THEN jsonb_build_array(${sql.raw(
                 [chatSteps.cache(false), chatSteps.embedding, chatSteps.retrieval, chatSteps.assembly, chatSteps.refusedReservation].join(", "),
               )})
               WHEN kind = 'chat' AND code IS NOT NULL THEN jsonb_build_array(${sql.raw(
                 [chatSteps.cache(false), chatSteps.embedding, chatSteps.retrieval, chatSteps.assembly, chatSteps.reservation, chatSteps.failedModelCall].join(", "),
               )})
               WHEN kind = 'chat' AND m < 0.08 THEN jsonb_build_array(${sql.raw([chatSteps.cache(true), chatSteps.answer("1", true)].join(", "))})
               WHEN kind = 'chat' THEN jsonb_build_array(${sql.raw(
                 [chatSteps.cache(false), chatSteps.embedding, chatSteps.retrieval, chatSteps.assembly, chatSteps.reservation, chatSteps.modelCall, chatSteps.answer(chatEnd, false)].join(", "),
               )})
               WHEN code = 'unprocessable_document' THEN jsonb_build_array(${sql.raw(ingestSteps.failedParse)})
               WHEN code = 'upstream_error' THEN jsonb_build_array(${sql.raw([ingestSteps.parse, ingestSteps.chunk(false), ingestSteps.failedEmbed].join(", "))})
               WHEN unchanged THEN jsonb_build_array(${sql.raw([ingestSteps.parse, ingestSteps.chunk(true), ingestSteps.storeUnchanged].join(", "))})
               ELSE jsonb_build_array(${sql.raw([ingestSteps.parse, ingestSteps.chunk(false), ingestSteps.embed, ingestSteps.store].join(", "))})
             END AS steps,
             CASE
               WHEN code = 'rate_limited' THEN window_ms + 10 + floor(l * (60000 - window_ms))::int
               WHEN kind = 'chat' AND code = 'budget_exceeded' THEN round(2 + ret + asm + res)::int
               WHEN kind = 'chat' AND m < 0.08 AND code IS NULL THEN round(2 + l * 6)::int
               WHEN kind = 'chat' THEN round(2 + ret + asm + res + mc + m * 2)::int
               WHEN code = 'unprocessable_document' THEN parse_ms + 2
               WHEN code = 'upstream_error' THEN parse_ms + chunk_ms + embed_ms + 2
               WHEN unchanged THEN parse_ms + chunk_ms + store_ms + 2
               ELSE parse_ms + chunk_ms + embed_ms + store_ms + 2
             END AS latency_ms
      FROM o
    )
    INSERT INTO runs (tenant_id, request_id, kind, status, error_code, error_message, key_id, project, environment, prompt_version, provider, model,
                      question, answer, steps, started_at, finished_at, latency_ms)
    SELECT ${t.id}::uuid,
           CASE WHEN kind = 'ingest' AND code IS DISTINCT FROM 'rate_limited' THEN 'job:' || md5(h || ':job')::uuid ELSE md5(h || ':request')::uuid::text END,
           kind, status, code, message,
           CASE WHEN kind = 'ingest' THEN ${bot}::uuid ELSE chat_key END,
           CASE WHEN kind = 'ingest' THEN 'sync' WHEN chat_key = ${owner}::uuid THEN 'default' ELSE 'web' END,
           CASE WHEN kind = 'chat' AND chat_key = ${staging}::uuid THEN 'test' ELSE 'prod' END,
           CASE WHEN kind = 'chat' AND code IS DISTINCT FROM 'rate_limited' THEN ${PROMPT_VERSION} END,
           CASE WHEN code = 'rate_limited' THEN NULL WHEN kind = 'ingest' THEN ${provider} WHEN m < 0.08 AND code IS NULL THEN NULL ELSE 'openai' END,
           CASE WHEN code = 'rate_limited' THEN NULL WHEN kind = 'ingest' THEN ${embeddingModel} ELSE model END,
           CASE WHEN kind = 'chat' AND code IS DISTINCT FROM 'rate_limited' THEN question END,
           CASE WHEN kind = 'chat' AND code IS NULL THEN answer END,
           steps, at, ${sql.raw(plus("at", "latency_ms"))}, latency_ms
    FROM shaped
    -- In time order, as runs are appended when they end (a day's runs lie together in the table).
    ORDER BY at`);
  // And their daily counts, as RunStore.insert would have kept them.
  await rebuildRunsDaily(tx, t.id);
}

/** A key as the API shows it (viewOfKey), from an api_keys row `k`. */
function keyView(opts: { lastUsed: string; revoked: string; prior?: string; description?: string }): string {
  return `jsonb_build_object('id', k.id, 'prefix', k.prefix, 'name', k.name, 'project', k.project, 'environment', k.environment,
    'requests_per_minute', k.requests_per_minute, 'tokens_per_month', k.tokens_per_month, 'spend_per_month_micros', k.spend_per_month_micros,
    'scopes', to_jsonb(k.scopes), 'expires_at', ${iso("k.expires_at")}, 'description', ${opts.description ?? "k.description"},
    'created_by_key_id', k.created_by_key_id, 'prior_secret_expires_at', ${opts.prior ?? "NULL::text"},
    'last_used_at', ${opts.lastUsed}, 'created_at', ${iso("k.created_at")}, 'revoked_at', ${opts.revoked})`;
}

/** The owner's settings as GET /v1/settings shows them (ownerView), with `persona` and `updated` SQL expressions. */
function settingsView(persona: string, style: string, updated: string): string {
  const flag = `jsonb_build_object('enabled', true, 'in_plan', true, 'available', true)`;
  return `jsonb_build_object('plan', '${PLAN}', 'persona', ${persona}, 'answer_style', ${style}, 'retrieval_k', 8,
    'features', jsonb_build_object('chat.streaming', ${flag}, 'chat.llm', ${flag}, 'ingest.pdf', ${flag}), 'updated_at', ${iso(updated)})`;
}

/** How the audit events split: keys made and revoked (two events each), rotations, updates, settings changes. */
export function auditShares(events: number): { revokedKeys: number; rotated: number; updated: number; settings: number } {
  const revokedKeys = Math.floor(events * 0.35);
  const rotated = revokedKeys > 0 ? Math.floor(events * 0.2) : 0;
  const updated = revokedKeys > 0 ? Math.floor(events * 0.05) : 0;
  return { revokedKeys, rotated, updated, settings: events - 2 * revokedKeys - rotated - updated };
}

/**
 * The tenant's audit trail over the last year, as its owner key wrote it: the deploy pipeline
 * makes a short-lived key per CI run and revokes it after (key.created, key.revoked — those keys
 * are in api_keys, revoked, as the trail says), rotates some (key.rotated) and renames a few
 * (key.updated), and the owner changes the settings now and then (settings.patched).
 */
export async function insertAudit(tx: Tx, t: ActivityTenant): Promise<void> {
  const shares = auditShares(t.auditEvents);
  const owner = t.keyIds[0]!;
  const K = shares.revokedKeys;
  if (K > 0) {
    await tx.execute(sql`
      INSERT INTO api_keys (tenant_id, id, name, prefix, key_hash, project, environment, scopes, expires_at, description, created_by_key_id,
                            secret_set_at, last_used_at, created_at, revoked_at)
      SELECT ${t.id}::uuid, md5(${t.id} || ':ci-key:' || g)::uuid, 'ci deploy #' || g, 'fence_test_' || substr(md5(${t.id} || ':ci-prefix:' || g), 1, 6),
             encode(sha256(convert_to(${t.id} || ':ci-key:' || g, 'UTF8')), 'hex'), 'web', 'test', ARRAY['query', 'read']::text[],
             created + interval '7 days', 'Made by the deploy pipeline for one CI run', ${owner}::uuid,
             created, created + interval '3 minutes', created, date_trunc('milliseconds', created + (20 + random() * 600) * interval '1 minute')
      FROM (
        SELECT g, date_trunc('milliseconds', now() - interval '1 day' - ((${K} - g + random())::float8 / ${K}) * interval '364 days') AS created
        FROM generate_series(1, ${K}) AS g
      ) AS k`);
  }
  const ci = `FROM api_keys k WHERE k.tenant_id = '${t.id}'::uuid AND k.name LIKE 'ci deploy #%'`;
  const ciNumber = "substr(k.name, 12)::int";
  const actor = `'key', '${owner}'::uuid`;
  const request = (salt: string) => `md5(k.id::text || '${salt}')::uuid::text`;
  const parts: string[] = [];
  if (K > 0) {
    parts.push(
      `SELECT k.created_at, ${actor}, 'key.created', k.id::text, NULL::jsonb, ${keyView({ lastUsed: "NULL::text", revoked: "NULL::text" })}, ${request(":created")} ${ci}`,
      `SELECT k.revoked_at, ${actor}, 'key.revoked', k.id::text, ${keyView({ lastUsed: iso("k.last_used_at"), revoked: "NULL::text" })},
              ${keyView({ lastUsed: iso("k.last_used_at"), revoked: iso("k.revoked_at") })}, ${request(":revoked")} ${ci}`,
    );
  }
  if (shares.rotated > 0) {
    // Rotations of the CI keys, between their making and their revocation (the later ones rotate a key again, later in its life).
    parts.push(`SELECT x.at, ${actor}, 'key.rotated', k.id::text, ${keyView({ lastUsed: iso("k.last_used_at"), revoked: "NULL::text" })},
        ${keyView({ lastUsed: iso("k.last_used_at"), revoked: "NULL::text", prior: iso("x.at + interval '1 hour'") })}, md5(k.id::text || ':rotated:' || r.g)::uuid::text
      FROM generate_series(1, ${shares.rotated}) AS r(g)
      JOIN api_keys k ON k.tenant_id = '${t.id}'::uuid AND k.name = 'ci deploy #' || (1 + (r.g * 7) % ${K})
      CROSS JOIN LATERAL (SELECT k.created_at + (k.revoked_at - k.created_at) * ((1 + r.g / ${K})::float8 / (2 + r.g / ${K})) AS at) AS x`);
  }
  if (shares.updated > 0) {
    parts.push(`SELECT k.created_at + interval '2 minutes', ${actor}, 'key.updated', k.id::text, ${keyView({ lastUsed: "NULL::text", revoked: "NULL::text", description: "NULL::text" })},
        ${keyView({ lastUsed: "NULL::text", revoked: "NULL::text" })}, ${request(":updated")} ${ci} AND ${ciNumber} % ${Math.max(1, Math.floor(K / shares.updated))} = 0
        AND ${ciNumber} <= ${Math.max(1, Math.floor(K / shares.updated)) * shares.updated}`);
  }
  if (shares.settings > 0) {
    const at = `date_trunc('milliseconds', now() - interval '1 day' - ((${shares.settings} - s.g + 0.5)::float8 / ${shares.settings}) * interval '364 days')`;
    const persona = (n: string) => `'You answer for Acme Orchards staff, revision ' || ${n} || '. Cite the handbook; say when it does not say.'`;
    const style = (n: string) => `(ARRAY['concise', 'detailed', 'bullet_points'])[1 + ${n} % 3]`;
    parts.push(`SELECT ${at}, ${actor}, 'settings.patched', '${t.id}', ${settingsView(persona("s.g - 1"), style("(s.g - 1)"), `${at} - interval '9 days'`)},
        ${settingsView(persona("s.g"), style("s.g"), at)}, md5('${t.id}:settings:' || s.g)::uuid::text
      FROM generate_series(1, ${shares.settings}) AS s(g)`);
  }
  await tx.execute(
    sql.raw(`INSERT INTO audit_events (tenant_id, at, actor, actor_key_id, action, target_id, before, after, request_id)
      SELECT '${t.id}'::uuid, e.* FROM (${parts.join("\nUNION ALL\n")}) AS e (at, actor, actor_key_id, action, target_id, before, after, request_id)
      ORDER BY e.at`),
  );
}

/**
 * The tenant's upload backlog: a bulk re-embedding of its knowledge base for the model it is
 * moving to, queued and waiting for the instances whose workers run that model (jobs.requires);
 * this instance's workers leave them, as a console-serving instance would during a rolling model
 * change. The platform's Operations page counts them; the Documents page lists the newest.
 */
export async function insertBacklog(tx: Tx, t: ActivityTenant): Promise<void> {
  if (t.queuedJobs === 0) return;
  const bot = t.keyIds[2]!;
  await tx.execute(sql`
    INSERT INTO jobs (tenant_id, batch_id, batch_index, kind, requires, priority, status, serial_key, input, payload_bytes, key_id, project, environment,
                      attempts, run_after, steps, created_at)
    SELECT ${t.id}::uuid, md5(${t.id} || ':backlog')::uuid, g - 1, 'ingest_document', ${BACKLOG_MODEL}, 1, 'queued', 'source:' || d.source_id,
           jsonb_build_object('title', d.title, 'media_type', d.media_type, 'byte_size', d.byte_size, 'source_id', d.source_id),
           d.byte_size, ${bot}::uuid, 'sync', 'prod', 0, b.at, '[]'::jsonb, b.at
    FROM (SELECT row_number() OVER (ORDER BY created_at DESC, id) AS g, * FROM documents WHERE tenant_id = ${t.id}::uuid ORDER BY created_at DESC, id LIMIT ${t.queuedJobs}) AS d
    CROSS JOIN LATERAL (SELECT date_trunc('milliseconds', now() - interval '10 minutes' + d.g * interval '2 seconds') AS at) AS b`);
}
