import { createRoute, OpenAPIHono } from "@hono/zod-openapi";
import type { z } from "zod";
import type { DocumentRow } from "../../db/schema.js";
import { ValidationError } from "../../errors.js";
import type { DocumentIngestor, DocumentInput } from "../../ingest/ingest-document.js";
import type { DocumentStore } from "../../ingest/document-store.js";
import { detectMediaType, extractText, normalizeText } from "../../ingest/parse-document.js";
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
import { operationIdOf } from "../operation-id.js";
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
    "Identical content for an existing `source_id` is a no-op; new content replaces the old version atomically.",
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
    ...commonErrors,
    ...errors(413, "Body or text too large"),
    ...errors(415, "Unsupported file type"),
    ...errors(422, "File cannot be parsed"),
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

export function documentRoutes(ingestor: DocumentIngestor, store: DocumentStore, defaultHook: Hook) {
  return new OpenAPIHono<AppEnv>({ defaultHook })
    .openapi(createDocument, async (c) => {
      const contentType = c.req.header("content-type") ?? "";
      const input = /^application\/json/i.test(contentType)
        ? jsonDocumentInput(c.req.valid("json") as z.infer<typeof CreateDocumentJson>)
        : /^multipart\/form-data/i.test(contentType)
          ? await uploadDocumentInput(c.req.valid("form"))
          : missingBody();
      const { document, outcome } = await ingestor.ingest(c.get("tenant"), input, { operationId: operationIdOf(c) });
      return c.json({ ...documentJson(document), outcome }, outcome === "created" ? 201 : 200);
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

/** Both upload forms become one DocumentInput; the ingestor never sees HTTP. */
function jsonDocumentInput(body: z.infer<typeof CreateDocumentJson>): DocumentInput {
  return {
    // From the text as it will be stored, so a NUL byte in the raw text never reaches the title.
    title: body.title ?? firstLineTitle(normalizeText(body.text)),
    text: body.text,
    mediaType: "text/markdown",
    byteSize: Buffer.byteLength(body.text, "utf8"),
    sourceId: body.source_id,
    metadata: body.metadata,
  };
}

async function uploadDocumentInput(form: Record<string, unknown>): Promise<DocumentInput> {
  const file = form.file;
  if (!(file instanceof File)) throw new ValidationError("Invalid request: file: a file upload is required");
  const mediaType = detectMediaType(file.name, file.type);
  const bytes = new Uint8Array(await file.arrayBuffer());
  if (bytes.length === 0) throw new ValidationError("Invalid request: file: the file is empty");
  const text = await extractText(bytes, mediaType);
  return {
    title: optionalField(form.title, "title", 500) ?? (file.name.replaceAll("\u0000", "").trim() || "Untitled"),
    text,
    mediaType,
    byteSize: bytes.length,
    sourceId: optionalField(form.source_id, "source_id", 500),
    metadata: parseMetadata(form.metadata),
  };
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
