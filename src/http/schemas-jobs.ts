import { z } from "@hono/zod-openapi";
import { CreateDocumentJson } from "./schemas.js";
import { IdCursor } from "./schemas-dates.js";
import { storableString } from "./schemas-strings.js";

/** Request and response shapes of durable ingestion: jobs, batches. */

const Timestamp = z.string().openapi({ format: "date-time" });
const JobStatus = z.enum(["queued", "running", "succeeded", "failed", "cancelled"]);

export const JobIdParam = z.object({
  id: z.string().openapi({ param: { name: "id", in: "path" }, format: "uuid" }),
});

export const JobStep = z
  .object({
    name: z.enum(["parse", "chunk", "embed", "store"]).or(z.string()),
    status: z.enum(["succeeded", "failed"]),
    attempt: z.number().int(),
    started_at: Timestamp,
    duration_ms: z.number().int(),
    detail: z.record(z.string(), z.unknown()).optional(),
    error: z.string().optional(),
  })
  .openapi("JobStep");

export const Job = z
  .object({
    id: z.string().openapi({ format: "uuid" }),
    batch_id: z.string().nullable(),
    kind: z.string().openapi({ example: "ingest_document" }),
    status: JobStatus,
    priority: z.enum(["interactive", "bulk"]),
    title: z.string().nullable(),
    source_id: z.string().nullable(),
    attempts: z.number().int(),
    max_attempts: z.number().int(),
    steps: z.array(JobStep),
    result: z
      .object({ document_id: z.string(), outcome: z.enum(["created", "replaced", "unchanged"]) })
      .nullable()
      .openapi({ description: "Set when the job has succeeded: the stored document." }),
    error: z
      .object({ code: z.string(), message: z.string() })
      .nullable()
      .openapi({ description: "The last error: final when status is failed, the reason for the wait when queued again." }),
    created_at: Timestamp,
    started_at: Timestamp.nullable(),
    finished_at: Timestamp.nullable(),
    run_after: Timestamp.openapi({ description: "A retried job is not started before this time." }),
  })
  .openapi("Job");

export const JobList = z.object({ jobs: z.array(Job), next_cursor: z.string().nullable() }).openapi("JobList");

export const ListJobsQuery = z.object({
  batch_id: storableString(0, 100).optional(),
  status: JobStatus.optional(),
  limit: z.coerce.number().int().min(1).max(100).default(20),
  cursor: IdCursor.optional(),
});

export const BatchJson = z
  .object({ documents: z.array(CreateDocumentJson).min(1, "documents must not be empty") })
  .openapi("CreateDocumentBatch");

export const BatchMultipart = z
  .object({
    file: z.any().openapi({ type: "array", items: { type: "string", format: "binary" }, description: "One or more files" }),
    source_id: z.any().optional().openapi({
      type: "array",
      items: { type: "string" },
      description: "Optional, one per file in the same order",
    }),
  })
  .openapi("CreateDocumentBatchUpload");

export const BatchAccepted = z
  .object({ batch_id: z.string().openapi({ format: "uuid" }), jobs: z.array(Job) })
  .openapi("BatchAccepted");
