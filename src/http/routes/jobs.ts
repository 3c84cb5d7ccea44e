import { createRoute, OpenAPIHono } from "@hono/zod-openapi";
import type { JobView } from "../../jobs/job-queue.js";
import { ErrorResponse, commonErrors } from "../schemas.js";
import { Job, JobIdParam, JobList, ListJobsQuery } from "../schemas-jobs.js";
import type { FenceServices } from "../services.js";
import type { AppEnv } from "../types.js";
import { validationHook } from "./validation-hook.js";

const security = [{ tenantKey: [] }];
const tags = ["Jobs"];

const listJobs = createRoute({
  operationId: "listJobs",
  "x-fence-scope": "ingest",
  method: "get",
  path: "/jobs",
  tags,
  security,
  description: "The tenant's ingestion jobs, newest first; filter by `batch_id` or `status`.",
  request: { query: ListJobsQuery },
  responses: { 200: { description: "A page of jobs", content: { "application/json": { schema: JobList } } }, ...commonErrors },
});

const getJob = createRoute({
  operationId: "getJob",
  "x-fence-scope": "ingest",
  method: "get",
  path: "/jobs/{id}",
  tags,
  security,
  description: "A job's status and its recorded steps (parse → chunk → embed → store), with timings and errors.",
  request: { params: JobIdParam },
  responses: { 200: { description: "The job", content: { "application/json": { schema: Job } } }, ...commonErrors },
});

const cancelJob = createRoute({
  operationId: "cancelJob",
  "x-fence-scope": "ingest",
  method: "post",
  path: "/jobs/{id}/cancel",
  tags,
  security,
  description: "Cancels a queued job and drops its upload. A job that is running or has ended cannot be cancelled (409).",
  request: { params: JobIdParam },
  responses: {
    200: { description: "The cancelled job", content: { "application/json": { schema: Job } } },
    409: { description: "The job is not queued", content: { "application/json": { schema: ErrorResponse } } },
    ...commonErrors,
  },
});

export function jobJson(row: JobView) {
  const input = row.input as { title?: string; source_id?: string };
  const result = row.result as { document_id: string; outcome: "created" | "replaced" | "unchanged" } | null;
  return {
    id: row.id,
    batch_id: row.batchId,
    kind: row.kind,
    status: row.status as "queued" | "running" | "succeeded" | "failed" | "cancelled",
    priority: row.priority === 0 ? ("interactive" as const) : ("bulk" as const),
    title: input.title ?? null,
    source_id: input.source_id ?? null,
    attempts: row.attempts,
    max_attempts: row.maxAttempts,
    steps: row.steps,
    result: row.status === "succeeded" ? result : null,
    error: row.errorCode ? { code: row.errorCode, message: row.errorMessage ?? "" } : null,
    created_at: row.createdAt.toISOString(),
    started_at: row.startedAt?.toISOString() ?? null,
    finished_at: row.finishedAt?.toISOString() ?? null,
    run_after: row.runAfter.toISOString(),
  };
}

export function jobRoutes({ jobs: queue }: Pick<FenceServices, "jobs">) {
  return new OpenAPIHono<AppEnv>({ defaultHook: validationHook })
    .openapi(listJobs, async (c) => {
      const { batch_id, status, limit, cursor } = c.req.valid("query");
      const page = await queue.list(c.get("tenant"), { batchId: batch_id, status, limit, cursor });
      return c.json({ jobs: page.jobs.map(jobJson), next_cursor: page.nextCursor }, 200);
    })
    .openapi(getJob, async (c) => c.json(jobJson(await queue.get(c.get("tenant"), c.req.valid("param").id)), 200))
    .openapi(cancelJob, async (c) => c.json(jobJson(await queue.cancel(c.get("tenant"), c.req.valid("param").id)), 200));
}
