import { createRoute, OpenAPIHono } from "@hono/zod-openapi";
import type { z } from "zod";
import type { DocumentRow } from "../../db/schema.js";
import { ValidationError } from "../../core/errors.js";
import { queueUploads } from "../../ingest/ingest-job.js";
import { ingestUpload, uploadInHand } from "../../ingest/pipeline.js";
import { NOT_RECORDED } from "../../runs/run-recorder.js";
import {
  commonErrors,
  CreateDocumentJson,
  CreateDocumentMultipart,
  Document,
  DocumentIdParam,
  DocumentList,
  ErrorResponse,
  IngestedDocument,
  ListDocumentsQuery,
} from "../schemas.js";
import { releaseBodyPlace } from "../middleware/request-body.js";
import { BatchAccepted, BatchJson, BatchMultipart, Job } from "../schemas-jobs.js";
import { batchIdOf, operationIdOf } from "../operation-id.js";
import { batchFileUploads, fileUpload, jsonUpload } from "../upload-fields.js";
import { jobJson } from "./jobs.js";
import type { FenceServices } from "../services.js";
import type { AppEnv } from "../types.js";
import { validationHook } from "./validation-hook.js";

const security = [{ tenantKey: [] }];
const tags = ["Documents"];
const errors = (status: number, description: string) => ({
  [status]: { description, content: { "application/json": { schema: ErrorResponse } } },
});

const createDocument = createRoute({
  operationId: "createDocument",
  "x-fence-scope": "ingest",
  method: "post",
  path: "/documents",
  tags,
  security,
  description:
    "Upload a document as JSON text or as a multipart `file` (plain text, Markdown, HTML, PDF). " +
    "Identical content for an existing `source_id` is a no-op; new content replaces the old version atomically. " +
    "Small uploads are ingested in the request (201/200). A larger one (over FENCE_ASYNC_INGEST_BYTES), or any " +
    "upload sent with `Prefer: respond-async`, is queued: 202 with the job (and `Location`), which runs " +
    "parse → chunk → embed → store with retries; follow it at `GET /v1/jobs/{id}`. Every text field (and the text) " +
    "must be free of NUL and unpaired surrogates (400 naming the field; NUL in the text alone is stripped). Without " +
    "a `title`, a multipart upload takes the file name, with NUL and unpaired surrogates removed and cut to 500 " +
    "characters (a file name is repaired, not refused). A form of more than 16 parts is refused before it is parsed.",
  request: {
    body: {
      content: {
        "application/json": { schema: CreateDocumentJson },
        "multipart/form-data": { schema: CreateDocumentMultipart },
      },
    },
  },
  responses: {
    201: { description: "Created", content: { "application/json": { schema: IngestedDocument } } },
    200: { description: "Replaced or unchanged", content: { "application/json": { schema: IngestedDocument } } },
    202: { description: "Queued as a job", content: { "application/json": { schema: Job } } },
    ...commonErrors,
    ...errors(403, "A feature the upload needs (e.g. PDF) is off for the tenant's plan: `feature_disabled`, before anything is reserved or queued"),
    ...errors(413, "Body or text too large"),
    ...errors(415, "Unsupported file type"),
    ...errors(422, "File cannot be parsed"),
  },
});

const createDocumentBatch = createRoute({
  operationId: "createDocumentBatch",
  "x-fence-scope": "ingest",
  method: "post",
  path: "/documents/batch",
  tags,
  security,
  description:
    "Queue many documents at once, as JSON (`documents`: the same objects as a single upload) or as multipart " +
    "with a repeated `file` field (and optionally one `source_id` per file, in order). The batch is validated " +
    "whole and accepted whole (202) or refused whole (4xx); its items are counted in the raw body before anything " +
    "is parsed, so an oversized batch costs a scan, not a parse. Jobs run as bulk work, fairly shared across tenants. " +
    "With an `Idempotency-Key`, a resent batch returns the jobs of the first one instead of queueing again.",
  request: {
    body: {
      content: {
        "application/json": { schema: BatchJson },
        "multipart/form-data": { schema: BatchMultipart },
      },
    },
  },
  responses: {
    202: { description: "Queued", content: { "application/json": { schema: BatchAccepted } } },
    ...commonErrors,
    ...errors(403, "A feature an item needs (e.g. PDF) is off for the tenant's plan: `feature_disabled`, nothing queued"),
    ...errors(413, "Body or a text too large"),
    ...errors(415, "Unsupported file type"),
  },
});

const listDocuments = createRoute({
  operationId: "listDocuments",
  "x-fence-scope": "read",
  method: "get",
  path: "/documents",
  tags,
  security,
  request: { query: ListDocumentsQuery },
  responses: { 200: { description: "A page of documents, newest first", content: { "application/json": { schema: DocumentList } } }, ...commonErrors },
});

const getDocument = createRoute({
  operationId: "getDocument",
  "x-fence-scope": "read",
  method: "get",
  path: "/documents/{id}",
  tags,
  security,
  request: { params: DocumentIdParam },
  responses: { 200: { description: "The document", content: { "application/json": { schema: Document } } }, ...commonErrors },
});

const deleteDocument = createRoute({
  operationId: "deleteDocument",
  "x-fence-scope": "owner",
  method: "delete",
  path: "/documents/{id}",
  tags,
  security,
  request: { params: DocumentIdParam },
  responses: { 204: { description: "Deleted with its chunks; cached answers invalidated" }, ...commonErrors },
});

export function documentJson(row: DocumentRow) {
  return {
    id: row.id,
    title: row.title,
    source_id: row.sourceId,
    media_type: row.mediaType,
    status: "ready" as const,
    chunk_count: row.chunkCount,
    byte_size: row.byteSize,
    version: row.version,
    embedding_model: row.embeddingModel,
    metadata: row.metadata,
    created_at: row.createdAt.toISOString(),
    updated_at: row.updatedAt.toISOString(),
  };
}

export interface DocumentRouteLimits {
  asyncIngestBytes: number;
  batchMaxDocuments: number;
  maxTextChars: number;
}

export function documentRoutes({
  ingestor,
  documents: store,
  jobs: queue,
  limits,
  runs,
}: Pick<FenceServices, "ingestor" | "documents" | "jobs" | "runs"> & { limits: DocumentRouteLimits }) {
  return new OpenAPIHono<AppEnv>({ defaultHook: validationHook })
    .openapi(createDocument, async (c) => {
      const contentType = c.req.header("content-type") ?? "";
      const upload = /^application\/json/i.test(contentType)
        ? jsonUpload(c.req.valid("json") as z.infer<typeof CreateDocumentJson>, limits.maxTextChars)
        : /^multipart\/form-data/i.test(contentType)
          ? await fileUpload(c.req.valid("form"), limits.maxTextChars)
          : missingBody();
      const ctx = c.get("tenant");
      // The one choice made here: queue a job, or run the pipeline (ingest/pipeline.ts) in the request.
      if (prefersAsync(c.req.header("prefer")) || upload.bytes.length > limits.asyncIngestBytes) {
        const batchId = batchIdOf(c, ctx.tenantId);
        const { jobs } = await queueUploads(queue, ctx, [upload], { priority: "interactive", embeddingModel: ingestor.embeddingModel, batchId });
        c.header("Location", `/v1/jobs/${jobs[0]!.id}`);
        return c.json(jobJson(jobs[0]!), 202);
      }
      // The raw body is done with (the upload is in hand, at most asyncIngestBytes): embedding it
      // must not keep other tenants' large bodies waiting.
      releaseBodyPlace(c);
      // Recorded as an ingest run, its steps (parse → chunk → embed → store) by the pipeline.
      const run = runs?.start(ctx, "ingest");
      const ingest = () =>
        ingestUpload(ingestor, ctx, uploadInHand(upload), run ?? NOT_RECORDED, { operationId: operationIdOf(c), priority: "interactive", run });
      const { document, outcome } = await (run ? run.around(ingest) : ingest());
      return c.json({ ...documentJson(document), outcome }, outcome === "created" ? 201 : 200);
    })
    .openapi(createDocumentBatch, async (c) => {
      const contentType = c.req.header("content-type") ?? "";
      const uploads = /^application\/json/i.test(contentType)
        ? (c.req.valid("json") as z.infer<typeof BatchJson>).documents.map((document) => jsonUpload(document, limits.maxTextChars))
        : /^multipart\/form-data/i.test(contentType)
          ? await batchFileUploads(c.req.valid("form"), limits.maxTextChars)
          : missingBody();
      if (uploads.length > limits.batchMaxDocuments) {
        throw new ValidationError(`Invalid request: a batch holds at most ${limits.batchMaxDocuments} documents (got ${uploads.length})`);
      }
      const ctx = c.get("tenant");
      const { jobs } = await queueUploads(queue, ctx, uploads, {
        priority: "bulk",
        embeddingModel: ingestor.embeddingModel,
        batchId: batchIdOf(c, ctx.tenantId),
      });
      const batchId = jobs[0]!.batchId!;
      c.header("Location", `/v1/jobs?batch_id=${batchId}`);
      return c.json({ batch_id: batchId, jobs: jobs.map(jobJson) }, 202);
    })
    .openapi(listDocuments, async (c) => {
      const { limit, cursor } = c.req.valid("query");
      const page = await store.list(c.get("tenant"), { limit, cursor });
      return c.json({ documents: page.documents.map(documentJson), next_cursor: page.nextCursor }, 200);
    })
    .openapi(getDocument, async (c) => c.json(documentJson(await store.get(c.get("tenant"), c.req.valid("param").id)), 200))
    .openapi(deleteDocument, async (c) => {
      await store.delete(c.get("tenant"), c.req.valid("param").id);
      return c.body(null, 204);
    });
}

/** RFC 7240: `Prefer: respond-async` asks for 202 + a job even for a small upload. */
function prefersAsync(prefer: string | undefined): boolean {
  return prefer !== undefined && /(^|[,;\s])respond-async($|[,;\s])/i.test(prefer);
}

function missingBody(): never {
  throw new ValidationError("Send application/json with `text`, or multipart/form-data with a `file`.");
}
