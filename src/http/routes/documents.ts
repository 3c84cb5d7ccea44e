import { createRoute, OpenAPIHono } from "@hono/zod-openapi";
import type { z } from "zod";
import type { DocumentRow } from "../../db/schema.js";
import { ValidationError } from "../../errors.js";
import type { DocumentIngestor } from "../../ingest/ingest-document.js";
import type { DocumentStore } from "../../ingest/document-store.js";
import { ingestJob, type QueuedUpload } from "../../ingest/ingest-job.js";
import { detectMediaType, extractText, normalizeText } from "../../ingest/parse-document.js";
import type { JobQueue } from "../../jobs/job-queue.js";
import type { RunRecords } from "../../runs/run-records.js";
import { NOT_RECORDED } from "../../runs/run-recorder.js";
import {
  commonErrors,
  containsNul,
  CreateDocumentJson,
  CreateDocumentMultipart,
  Document,
  DocumentIdParam,
  DocumentList,
  ErrorResponse,
  IngestedDocument,
  ListDocumentsQuery,
  metadataProblem,
} from "../schemas.js";
import { BatchAccepted, BatchJson, BatchMultipart, Job } from "../schemas-jobs.js";
import { batchIdOf, operationIdOf } from "../operation-id.js";
import { jobJson } from "./jobs.js";
import type { AppEnv } from "../types.js";
import type { Hook } from "./validation-hook.js";

const security = [{ tenantKey: [] }];
const tags = ["Documents"];
const errors = (status: number, description: string) => ({
  [status]: { description, content: { "application/json": { schema: ErrorResponse } } },
});

const createDocument = createRoute({
  operationId: "createDocument",
  method: "post",
  path: "/documents",
  tags,
  security,
  description:
    "Upload a document as JSON text or as a multipart `file` (plain text, Markdown, HTML, PDF). " +
    "Identical content for an existing `source_id` is a no-op; new content replaces the old version atomically. " +
    "Small uploads are ingested in the request (201/200). A larger one (over FENCE_ASYNC_INGEST_BYTES), or any " +
    "upload sent with `Prefer: respond-async`, is queued: 202 with the job (and `Location`), which runs " +
    "parse → chunk → embed → store with retries; follow it at `GET /v1/jobs/{id}`.",
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
    ...errors(413, "Body or text too large"),
    ...errors(415, "Unsupported file type"),
    ...errors(422, "File cannot be parsed"),
  },
});

const createDocumentBatch = createRoute({
  operationId: "createDocumentBatch",
  method: "post",
  path: "/documents/batch",
  tags,
  security,
  description:
    "Queue many documents at once, as JSON (`documents`: the same objects as a single upload) or as multipart " +
    "with a repeated `file` field (and optionally one `source_id` per file, in order). The batch is validated " +
    "whole and accepted whole (202) or refused whole (4xx). Jobs run as bulk work, fairly shared across tenants. " +
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
    ...errors(413, "Body or a text too large"),
    ...errors(415, "Unsupported file type"),
  },
});

const listDocuments = createRoute({
  operationId: "listDocuments",
  method: "get",
  path: "/documents",
  tags,
  security,
  request: { query: ListDocumentsQuery },
  responses: { 200: { description: "A page of documents, newest first", content: { "application/json": { schema: DocumentList } } }, ...commonErrors },
});

const getDocument = createRoute({
  operationId: "getDocument",
  method: "get",
  path: "/documents/{id}",
  tags,
  security,
  request: { params: DocumentIdParam },
  responses: { 200: { description: "The document", content: { "application/json": { schema: Document } } }, ...commonErrors },
});

const deleteDocument = createRoute({
  operationId: "deleteDocument",
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
}

export function documentRoutes(
  ingestor: DocumentIngestor,
  store: DocumentStore,
  queue: JobQueue,
  limits: DocumentRouteLimits,
  defaultHook: Hook,
  runs?: RunRecords,
) {
  return new OpenAPIHono<AppEnv>({ defaultHook })
    .openapi(createDocument, async (c) => {
      const contentType = c.req.header("content-type") ?? "";
      const upload = /^application\/json/i.test(contentType)
        ? jsonUpload(c.req.valid("json") as z.infer<typeof CreateDocumentJson>)
        : /^multipart\/form-data/i.test(contentType)
          ? await fileUpload(c.req.valid("form"))
          : missingBody();
      const ctx = c.get("tenant");
      if (prefersAsync(c.req.header("prefer")) || upload.bytes.length > limits.asyncIngestBytes) {
        const { jobs } = await queue.enqueue(ctx, [ingestJob(upload, "interactive", ingestor.embeddingModel)], batchIdOf(c, ctx.tenantId));
        c.header("Location", `/v1/jobs/${jobs[0]!.id}`);
        return c.json(jobJson(jobs[0]!), 202);
      }
      // Recorded as an ingest run: parse here, chunk → embed → store in the ingestor.
      const run = runs?.start(ctx, "ingest");
      const ingest = async () => {
        const parse = () => extractText(upload.bytes, upload.mediaType);
        const text = await (run ?? NOT_RECORDED).step("parse", parse, (t) => ({ characters: t.length, media_type: upload.mediaType }));
        return ingestor.ingest(
          ctx,
          { ...upload, text, byteSize: upload.bytes.length },
          { operationId: operationIdOf(c), priority: "interactive", run },
        );
      };
      const { document, outcome } = await (run ? run.around(ingest) : ingest());
      return c.json({ ...documentJson(document), outcome }, outcome === "created" ? 201 : 200);
    })
    .openapi(createDocumentBatch, async (c) => {
      const contentType = c.req.header("content-type") ?? "";
      const uploads = /^application\/json/i.test(contentType)
        ? (c.req.valid("json") as z.infer<typeof BatchJson>).documents.map(jsonUpload)
        : /^multipart\/form-data/i.test(contentType)
          ? await batchFileUploads(c.req.valid("form"))
          : missingBody();
      if (uploads.length > limits.batchMaxDocuments) {
        throw new ValidationError(`Invalid request: a batch holds at most ${limits.batchMaxDocuments} documents (got ${uploads.length})`);
      }
      const ctx = c.get("tenant");
      const { jobs } = await queue.enqueue(
        ctx,
        uploads.map((upload) => ingestJob(upload, "bulk", ingestor.embeddingModel)),
        batchIdOf(c, ctx.tenantId),
      );
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

/** Both upload forms become one QueuedUpload: the bytes as sent, and what was said about them. */
function jsonUpload(body: z.infer<typeof CreateDocumentJson>): QueuedUpload {
  return {
    // From the text as it will be stored, so a NUL byte in the raw text never reaches the title.
    title: body.title ?? firstLineTitle(normalizeText(body.text)),
    mediaType: "text/markdown",
    bytes: new TextEncoder().encode(body.text),
    sourceId: body.source_id,
    metadata: body.metadata,
  };
}

async function fileUpload(form: Record<string, unknown>): Promise<QueuedUpload> {
  const file = form.file;
  if (!(file instanceof File)) throw new ValidationError("Invalid request: file: exactly one file upload is required");
  return {
    ...(await readFile(file, "file")),
    title: optionalField(form.title, "title", 500) ?? fileTitle(file),
    sourceId: optionalField(form.source_id, "source_id", 500),
    metadata: parseMetadata(form.metadata),
  };
}

async function batchFileUploads(form: Record<string, unknown>): Promise<QueuedUpload[]> {
  const files = [form.file].flat().filter((f) => f !== undefined);
  if (files.length === 0) throw new ValidationError("Invalid request: file: at least one file upload is required");
  const sourceIds = [form.source_id].flat().filter((f) => f !== undefined);
  if (sourceIds.length > 0 && sourceIds.length !== files.length) {
    throw new ValidationError(
      `Invalid request: source_id: give one per file, in order (${sourceIds.length} for ${files.length} files)`,
    );
  }
  return Promise.all(
    files.map(async (file, i) => {
      const field = `file[${i}]`;
      if (!(file instanceof File)) throw new ValidationError(`Invalid request: ${field}: must be a file upload`);
      return {
        ...(await readFile(file, field)),
        title: fileTitle(file),
        sourceId: optionalField(sourceIds[i], `source_id[${i}]`, 500),
      };
    }),
  );
}

async function readFile(file: File, field: string): Promise<Pick<QueuedUpload, "bytes" | "mediaType">> {
  const mediaType = detectMediaType(file.name, file.type);
  const bytes = new Uint8Array(await file.arrayBuffer());
  if (bytes.length === 0) throw new ValidationError(`Invalid request: ${field}: the file is empty`);
  return { bytes, mediaType };
}

function fileTitle(file: File): string {
  return file.name.replaceAll("\u0000", "").trim() || "Untitled";
}

function missingBody(): never {
  throw new ValidationError("Send application/json with `text`, or multipart/form-data with a `file`.");
}

function optionalField(value: unknown, field: string, maxLength: number): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== "string" || value.trim() === "" || value.length > maxLength || containsNul(value)) {
    throw new ValidationError(
      `Invalid request: ${field}: must be a non-empty string of at most ${maxLength} characters, without NUL characters`,
    );
  }
  return value.trim();
}

function parseMetadata(value: unknown): Record<string, unknown> | undefined {
  if (value === undefined) return undefined;
  try {
    const parsed: unknown = JSON.parse(String(value));
    if (parsed && typeof parsed === "object" && !Array.isArray(parsed) && String(value).length <= 16_384) {
      const problem = metadataProblem(parsed as Record<string, unknown>);
      if (problem) throw new ValidationError(`Invalid request: metadata: ${problem}`);
      return parsed as Record<string, unknown>;
    }
  } catch (error) {
    if (error instanceof ValidationError) throw error;
    // otherwise not JSON: fall through to the error below
  }
  throw new ValidationError("Invalid request: metadata: must be a JSON object of at most 16 KiB");
}

function firstLineTitle(text: string): string {
  const line = text.trim().split("\n")[0]!.replace(/^#+\s*/, "").trim();
  return line.length > 120 ? `${line.slice(0, 117)}...` : line || "Untitled";
}
