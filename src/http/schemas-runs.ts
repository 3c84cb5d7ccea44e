import { z } from "@hono/zod-openapi";
import { IdCursor, Instant } from "./schemas-dates.js";
import { storableString } from "./schemas-strings.js";

/** Request and response shapes of run records and eval cases. */

const Timestamp = z.string().openapi({ format: "date-time" });
const Uuid = z.string().openapi({ format: "uuid" });
const RunKind = z.enum(["chat", "ingest"]);
const RunStatus = z.enum(["succeeded", "refused", "failed"]);

export const RequestIdParam = z.object({
  request_id: storableString(1, 200).openapi({
    param: { name: "request_id", in: "path" },
    description: "The `x-request-id` of the request (for a queued upload, `job:<job id>`).",
    example: "9b2f4c1e-7d3a-4f0e-8a61-2c5d9e8f1b47",
  }),
});

export const TenantRunParams = z.object({
  tenant_id: z.string().openapi({ param: { name: "tenant_id", in: "path" }, format: "uuid" }),
  request_id: RequestIdParam.shape.request_id,
});

export const RunStep = z
  .object({
    name: z.string().openapi({
      description:
        "chat: answer_cache, query_embedding, retrieval, context_assembly, budget_reservation, model_call, answer; " +
        "ingest: parse, chunk, embed, store.",
    }),
    status: z.enum(["succeeded", "failed"]),
    started_at: Timestamp,
    duration_ms: z.number(),
    attempt: z.number().int().optional().openapi({ description: "Queued uploads: the job attempt." }),
    detail: z.record(z.string(), z.unknown()).optional().openapi({
      description: "Ids, scores, counts and models of the step (chunk and document ids, tokens, finish reason) — never document text.",
    }),
    error: z.string().optional(),
  })
  .openapi("RunStep");

export const Run = z
  .object({
    id: Uuid,
    request_id: z.string(),
    kind: RunKind,
    status: RunStatus,
    error: z.object({ code: z.string(), message: z.string() }).nullable(),
    prompt_version: z.string().nullable().openapi({ description: "Chat: the prompt version the answer was made with." }),
    provider: z.string().nullable(),
    model: z.string().nullable(),
    key_id: z.string().nullable(),
    project: z.string(),
    environment: z.string(),
    question: z.string().nullable().openapi({ description: "Chat: the question, with personal data masked." }),
    answer: z.string().nullable().openapi({ description: "Chat: the answer, with personal data masked." }),
    steps: z.array(RunStep),
    started_at: Timestamp,
    finished_at: Timestamp,
    latency_ms: z.number().int(),
  })
  .openapi("Run");

export const RunList = z.object({ runs: z.array(Run), next_cursor: z.string().nullable() }).openapi("RunList");

export const AdminRun = Run.extend({ tenant_id: Uuid }).openapi("AdminRun");
export const AdminRunList = z.object({ runs: z.array(AdminRun), next_cursor: z.string().nullable() }).openapi("AdminRunList");

export const ListRunsQuery = z.object({
  kind: RunKind.optional(),
  status: RunStatus.optional(),
  prompt_version: storableString(1, 100).optional(),
  request_id: storableString(1, 200).optional(),
  since: Instant.optional().openapi({ description: "Runs that started at or after this time: an ISO 8601 date or timestamp with a zone." }),
  limit: z.coerce.number().int().min(1).max(100).default(20),
  cursor: IdCursor.optional(),
});

const Phrase = storableString(1, 500);

export const CreateEvalCaseBody = z
  .object({
    run_id: z.uuid().optional().openapi({ description: "The run the case is made from …" }),
    request_id: storableString(1, 200).optional().openapi({ description: "… or its request id (the newest run with it)." }),
    expected_document_ids: z.array(z.uuid()).max(50).optional().openapi({ description: "Documents a right answer must cite." }),
    must_contain: z.array(Phrase).max(20).optional(),
    must_not_contain: z.array(Phrase).max(20).optional(),
  })
  .refine((b) => (b.run_id === undefined) !== (b.request_id === undefined), {
    message: "give exactly one of run_id and request_id",
    path: ["run_id"],
  })
  .openapi("CreateEvalCase");

export const EvalCase = z
  .object({
    id: Uuid,
    question: z.string().openapi({ description: "The run's question (personal data masked)." }),
    expected_document_ids: z.array(Uuid),
    must_contain: z.array(z.string()),
    must_not_contain: z.array(z.string()),
    source_run_id: Uuid.nullable(),
    source_request_id: z.string().nullable(),
    reported_answer: z.string().nullable().openapi({ description: "The answer the run gave (personal data masked)." }),
    prompt_version: z.string().nullable(),
    created_at: Timestamp,
  })
  .openapi("EvalCase");

export const EvalCaseList = z.object({ cases: z.array(EvalCase), next_cursor: z.string().nullable() }).openapi("EvalCaseList");

export const ListEvalCasesQuery = z.object({
  limit: z.coerce.number().int().min(1).max(100).default(20),
  cursor: IdCursor.optional(),
});
