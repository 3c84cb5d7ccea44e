import { z } from "@hono/zod-openapi";

/** Request and response shapes of the v1 API; the OpenAPI document is generated from these. */

export const ErrorResponse = z
  .object({
    error: z.object({
      code: z.string().openapi({ example: "not_found" }),
      message: z.string(),
      request_id: z.string(),
      details: z.unknown().optional(),
    }),
  })
  .openapi("Error");

const errorContent = (description: string) => ({
  description,
  content: { "application/json": { schema: ErrorResponse } },
});

export const commonErrors = {
  400: errorContent("Invalid request"),
  401: errorContent("Missing or invalid credentials"),
  404: errorContent("Not found (also for other tenants' resources)"),
  500: errorContent("Internal error"),
} as const;

const Uuid = z.string().openapi({ format: "uuid" });
const Timestamp = z.string().openapi({ format: "date-time" });
const Environment = z.enum(["prod", "test", "sandbox"]);
const Name = z.string().trim().min(1).max(200);

export const TenantIdParam = z.object({
  tenant_id: z.string().openapi({ param: { name: "tenant_id", in: "path" }, format: "uuid" }),
});
export const TenantKeyParams = TenantIdParam.extend({
  key_id: z.string().openapi({ param: { name: "key_id", in: "path" }, format: "uuid" }),
});
export const DocumentIdParam = z.object({
  id: z.string().openapi({ param: { name: "id", in: "path" }, format: "uuid" }),
});

export const CreateTenantBody = z
  .object({ name: Name, plan: z.string().trim().min(1).max(50).default("free") })
  .openapi("CreateTenant");
export const Tenant = z
  .object({ id: Uuid, name: z.string(), plan: z.string(), created_at: Timestamp })
  .openapi("Tenant");
export const TenantList = z.object({ tenants: z.array(Tenant) }).openapi("TenantList");

export const CreateKeyBody = z
  .object({
    name: Name,
    project: z.string().trim().min(1).max(100).default("default"),
    environment: Environment.default("prod"),
  })
  .openapi("CreateKey");
export const IssuedKey = z
  .object({
    id: Uuid,
    key: z.string().openapi({ description: "Shown once; only its hash is stored." }),
    prefix: z.string(),
    name: z.string(),
    project: z.string(),
    environment: Environment,
    created_at: Timestamp,
  })
  .openapi("IssuedKey");

const Metadata = z
  .record(z.string(), z.unknown())
  .refine((m) => JSON.stringify(m).length <= 16_384, "metadata must serialise to at most 16 KiB");

export const CreateDocumentJson = z
  .object({
    title: z.string().trim().min(1).max(500).optional(),
    text: z.string().min(1, "text must not be empty"),
    metadata: Metadata.optional(),
    source_id: z.string().trim().min(1).max(500).optional(),
  })
  .openapi("CreateDocument");

export const CreateDocumentMultipart = z
  .object({
    file: z.any().openapi({ type: "string", format: "binary" }),
    title: z.string().optional(),
    source_id: z.string().optional(),
    metadata: z.string().optional().openapi({ description: "JSON object" }),
  })
  .openapi("CreateDocumentUpload");

export const Document = z
  .object({
    id: Uuid,
    title: z.string(),
    source_id: z.string().nullable(),
    media_type: z.string(),
    status: z.literal("ready"),
    chunk_count: z.number().int(),
    byte_size: z.number().int(),
    version: z.number().int(),
    embedding_model: z.string(),
    metadata: z.record(z.string(), z.unknown()),
    created_at: Timestamp,
    updated_at: Timestamp,
  })
  .openapi("Document");

export const IngestedDocument = Document.extend({
  outcome: z.enum(["created", "replaced", "unchanged"]),
}).openapi("IngestedDocument");

export const ListDocumentsQuery = z.object({
  limit: z.coerce.number().int().min(1).max(100).default(20),
  cursor: z.string().max(500).optional(),
});
export const DocumentList = z
  .object({ documents: z.array(Document), next_cursor: z.string().nullable() })
  .openapi("DocumentList");

export const searchBody = (maxK: number) =>
  z
    .object({
      query: z.string().trim().min(1).max(2000),
      k: z.number().int().min(1).max(maxK).default(Math.min(8, maxK)),
    })
    .openapi("SearchRequest");

export const SearchResults = z
  .object({
    results: z.array(
      z.object({
        document_id: Uuid,
        chunk_id: Uuid,
        title: z.string(),
        heading: z.string().nullable(),
        text: z.string(),
        score: z.number(),
        similarity: z.number(),
      }),
    ),
  })
  .openapi("SearchResults");

const Turn = z.object({
  role: z.enum(["user", "assistant"]),
  content: z.string().trim().min(1).max(8000),
});

export const ChatBody = z
  .object({
    question: z.string().trim().min(1).max(4000).optional(),
    messages: z.array(Turn).min(1).max(50).optional(),
    stream: z.boolean().default(false),
  })
  .refine((b) => (b.question === undefined) !== (b.messages === undefined), {
    message: "send either `question` or `messages`, not both",
  })
  .refine((b) => !b.messages || b.messages[b.messages.length - 1]!.role === "user", {
    message: "the last message must have role `user`",
  })
  .openapi("ChatRequest");

export const ChatResponse = z
  .object({
    answer: z.string(),
    citations: z.array(
      z.object({
        citation: z.number().int(),
        document_id: Uuid,
        chunk_id: Uuid,
        title: z.string(),
        snippet: z.string(),
      }),
    ),
    mode: z.enum(["llm", "extractive"]),
    no_answer: z.boolean(),
    model: z.string().nullable(),
    prompt_version: z.string(),
    usage: z.object({ input_tokens: z.number(), output_tokens: z.number(), total_tokens: z.number() }),
    cached: z.boolean(),
    request_id: z.string(),
  })
  .openapi("ChatResponse");
