import { createRoute, OpenAPIHono, type z } from "@hono/zod-openapi";
import type { EvalCaseRow, RunRow } from "../../db/schema.js";
import type { RunFilter } from "../../runs/run-store.js";
import { commonErrors } from "../schemas.js";
import {
  AdminRun,
  AdminRunList,
  CreateEvalCaseBody,
  EvalCase,
  EvalCaseList,
  ListEvalCasesQuery,
  ListRunsQuery,
  RequestIdParam,
  Run,
  RunList,
  TenantRunParams,
} from "../schemas-runs.js";
import type { FenceServices } from "../services.js";
import type { AppEnv } from "../types.js";
import { validationHook } from "./validation-hook.js";

const tenantKey = [{ tenantKey: [] }];
const adminKey = [{ adminKey: [] }];

const listRuns = createRoute({
  operationId: "listRuns",
  "x-fence-scope": "read",
  method: "get",
  path: "/runs",
  tags: ["Runs"],
  security: tenantKey,
  description:
    "The tenant's run records, newest first: every chat and ingestion with its steps. Filter by `kind`, `status`, " +
    "`prompt_version` (compare prompt versions), `request_id` (every attempt of a queued upload) and `since`.",
  request: { query: ListRunsQuery },
  responses: { 200: { description: "A page of runs", content: { "application/json": { schema: RunList } } }, ...commonErrors },
});

const getRun = createRoute({
  operationId: "getRun",
  "x-fence-scope": "read",
  method: "get",
  path: "/runs/{request_id}",
  tags: ["Runs"],
  security: tenantKey,
  description:
    "The run of one request, by the `x-request-id` it was answered with (the newest, if the id was used more than once). " +
    "Steps for a chat: answer_cache → query_embedding → retrieval (chunk ids and scores) → context_assembly (chunk ids " +
    "in the prompt, in order) → budget_reservation → model_call (provider, model, prompt version, tokens, finish reason) " +
    "→ answer (citations). Another tenant's run is not found.",
  request: { params: RequestIdParam },
  responses: { 200: { description: "The run", content: { "application/json": { schema: Run } } }, ...commonErrors },
});

const createEvalCase = createRoute({
  operationId: "createEvalCase",
  "x-fence-scope": "owner",
  method: "post",
  path: "/evals/cases",
  tags: ["Evals"],
  security: tenantKey,
  description:
    "Turns a chat run (a reported bad answer) into a fixed eval case: its question, plus the documents a right answer " +
    "must cite and phrases it must or must not contain. The run must be the tenant's own.",
  request: { body: { content: { "application/json": { schema: CreateEvalCaseBody } }, required: true } },
  responses: { 201: { description: "The case", content: { "application/json": { schema: EvalCase } } }, ...commonErrors },
});

const listEvalCases = createRoute({
  operationId: "listEvalCases",
  "x-fence-scope": "read",
  method: "get",
  path: "/evals/cases",
  tags: ["Evals"],
  security: tenantKey,
  description: "The tenant's eval cases, newest first.",
  request: { query: ListEvalCasesQuery },
  responses: { 200: { description: "A page of cases", content: { "application/json": { schema: EvalCaseList } } }, ...commonErrors },
});

const adminListRuns = createRoute({
  operationId: "adminListRuns",
  method: "get",
  path: "/tenants/{tenant_id}/runs",
  tags: ["Platform admin"],
  security: adminKey,
  description: "Any tenant's run records, newest first, with the same filters as `GET /v1/runs`.",
  request: { params: TenantRunParams.pick({ tenant_id: true }), query: ListRunsQuery },
  responses: { 200: { description: "A page of runs", content: { "application/json": { schema: AdminRunList } } }, ...commonErrors },
});

const adminGetRun = createRoute({
  operationId: "adminGetRun",
  method: "get",
  path: "/tenants/{tenant_id}/runs/{request_id}",
  tags: ["Platform admin"],
  security: adminKey,
  description: "One run of any tenant, by request id.",
  request: { params: TenantRunParams },
  responses: { 200: { description: "The run", content: { "application/json": { schema: AdminRun } } }, ...commonErrors },
});

export function runJson(row: RunRow) {
  return {
    id: row.id,
    request_id: row.requestId,
    kind: row.kind,
    status: row.status,
    error: row.errorCode ? { code: row.errorCode, message: row.errorMessage ?? "" } : null,
    prompt_version: row.promptVersion,
    provider: row.provider,
    model: row.model,
    key_id: row.keyId,
    project: row.project,
    environment: row.environment,
    question: row.question,
    answer: row.answer,
    steps: row.steps,
    started_at: row.startedAt.toISOString(),
    finished_at: row.finishedAt.toISOString(),
    latency_ms: row.latencyMs,
  };
}

function evalCaseJson(row: EvalCaseRow) {
  return {
    id: row.id,
    question: row.question,
    expected_document_ids: row.expectedDocumentIds,
    must_contain: row.mustContain,
    must_not_contain: row.mustNotContain,
    source_run_id: row.sourceRunId,
    source_request_id: row.sourceRequestId,
    reported_answer: row.reportedAnswer,
    prompt_version: row.promptVersion,
    created_at: row.createdAt.toISOString(),
  };
}

function filterOf(query: z.infer<typeof ListRunsQuery>): RunFilter {
  return {
    kind: query.kind,
    status: query.status,
    promptVersion: query.prompt_version,
    requestId: query.request_id,
    since: query.since ? new Date(query.since) : undefined,
    limit: query.limit,
    cursor: query.cursor,
  };
}

/**
 * The tenant's own runs and eval cases (mounted behind tenant authentication). Each read first
 * waits for this instance's run writes of the tenant still under way (RunRecords.settled).
 */
export function runRoutes({ runs: records, evalCases: cases }: Pick<FenceServices, "runs" | "evalCases">) {
  const { store } = records;
  return new OpenAPIHono<AppEnv>({ defaultHook: validationHook })
    .openapi(listRuns, async (c) => {
      await records.settled(c.get("tenant").tenantId);
      const page = await store.list(c.get("tenant"), filterOf(c.req.valid("query")));
      return c.json({ runs: page.runs.map(runJson), next_cursor: page.nextCursor }, 200);
    })
    .openapi(getRun, async (c) => {
      await records.settled(c.get("tenant").tenantId);
      return c.json(runJson(await store.get(c.get("tenant"), c.req.valid("param").request_id)), 200);
    })
    .openapi(createEvalCase, async (c) => {
      const body = c.req.valid("json");
      await records.settled(c.get("tenant").tenantId);
      const created = await cases.create(c.get("tenant"), {
        runId: body.run_id,
        requestId: body.request_id,
        expectedDocumentIds: body.expected_document_ids,
        mustContain: body.must_contain,
        mustNotContain: body.must_not_contain,
      });
      return c.json(evalCaseJson(created), 201);
    })
    .openapi(listEvalCases, async (c) => {
      const { limit, cursor } = c.req.valid("query");
      const page = await cases.list(c.get("tenant"), { limit, cursor });
      return c.json({ cases: page.cases.map(evalCaseJson), next_cursor: page.nextCursor }, 200);
    });
}

/** Any tenant's runs, for the platform admin (mounted under /v1/admin behind the admin key). */
export function adminRunRoutes({ runs: records }: Pick<FenceServices, "runs">) {
  const { store } = records;
  return new OpenAPIHono<AppEnv>({ defaultHook: validationHook })
    .openapi(adminListRuns, async (c) => {
      const { tenant_id } = c.req.valid("param");
      await records.settled(tenant_id);
      const page = await store.listForTenant(tenant_id, filterOf(c.req.valid("query")));
      return c.json({ runs: page.runs.map((r) => ({ ...runJson(r), tenant_id: r.tenantId })), next_cursor: page.nextCursor }, 200);
    })
    .openapi(adminGetRun, async (c) => {
      const { tenant_id, request_id } = c.req.valid("param");
      await records.settled(tenant_id);
      const row = await store.getForTenant(tenant_id, request_id);
      return c.json({ ...runJson(row), tenant_id: row.tenantId }, 200);
    });
}
