import { z } from "@hono/zod-openapi";
import { SCOPES } from "../core/scopes.js";
import { DocumentCursor, Instant } from "./schemas-dates.js";
import { metadataProblem, StorableText, storableString } from "./schemas-strings.js";

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

// The shared string and date rules; re-exported because routes import them from here.
export { containsNul, metadataProblem } from "./schemas-strings.js";

const Uuid = z.string().openapi({ format: "uuid" });
const Timestamp = z.string().openapi({ format: "date-time" });
const Environment = z.enum(["prod", "test", "sandbox"]);
const Name = storableString(1, 200);

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
  .object({ name: Name, plan: storableString(1, 50).default("free") })
  .openapi("CreateTenant");
export const Tenant = z
  .object({
    id: Uuid,
    name: z.string(),
    plan: z.string(),
    created_at: Timestamp,
    suspended_at: Timestamp.nullable().openapi({
      description: "When the platform suspended the tenant (its keys then answer 403 `tenant_suspended`); null while it is active.",
    }),
  })
  .openapi("Tenant");
export const TenantList = z.object({ tenants: z.array(Tenant) }).openapi("TenantList");

/** A key's scopes (core/scopes.ts): one or more, each once; fixed when the key is made. */
const KeyScopes = z
  .array(z.enum(SCOPES))
  .min(1)
  .max(SCOPES.length)
  .refine((scopes) => new Set(scopes).size === scopes.length, "must not repeat a scope")
  .openapi({
    description:
      "What the key may do: `query` (search, chat), `ingest` (uploads, batches, jobs), `read` (documents, runs, usage, limits, eval cases), " +
      "`owner` (everything of the tenant). Default `[\"owner\"]`.",
    example: ["query"],
  });

/** A key's limits of its own (tenancy/key-limits.ts), as POST /v1/keys and PATCH /v1/keys/{key_id} take them. */
export const KeyRequestsPerMinute = z.number().int().positive().max(1_000_000).openapi({
  description: "A requests/min limit of this key's own, counted besides the plan's (e.g. for a key given to a batch script).",
});
export const KeyTokensPerMonth = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER).openapi({
  description: "Tokens (input + output) this key may use per UTC month, besides the tenant's budgets: past it, 402 `budget_exceeded`.",
});
export const KeySpendPerMonth = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER).openapi({
  description: "Spend in micro-units (1 USD = 1,000,000) this key may use per UTC month, besides the tenant's budgets: past it, 402.",
});

export const CreateKeyBody = z
  .object({
    name: Name,
    project: storableString(1, 100).default("default"),
    environment: Environment.default("prod"),
    requests_per_minute: KeyRequestsPerMinute.optional(),
    tokens_per_month: KeyTokensPerMonth.optional(),
    spend_per_month_micros: KeySpendPerMonth.optional(),
    scopes: KeyScopes.default(["owner"]),
    expires_at: Instant.refine((value) => new Date(value).getTime() > Date.now(), "must be in the future")
      .optional()
      .openapi({ description: "After this instant the key authenticates nothing (401). Omit for a key that does not expire." }),
    description: storableString(0, 500).optional(),
  })
  .openapi("CreateKey");
/** A key as the admin, its tenant's owner and the audit trail see it: everything but the secret. */
export const ApiKey = z
  .object({
    id: Uuid,
    prefix: z.string().openapi({ description: "The key's first characters, to tell keys apart; not enough to use it." }),
    name: z.string(),
    project: z.string(),
    environment: Environment,
    requests_per_minute: z.number().int().nullable(),
    tokens_per_month: z.number().int().nullable(),
    spend_per_month_micros: z.number().int().nullable(),
    scopes: z.array(z.enum(SCOPES)),
    expires_at: Timestamp.nullable(),
    description: z.string().nullable(),
    created_by_key_id: Uuid.nullable().openapi({ description: "The key that made this one (POST /v1/keys); null when the platform admin did. Revoking a key revokes the keys it made." }),
    prior_secret_expires_at: Timestamp.nullable().openapi({ description: "After a rotation, the old secret still authenticates until then; null when no old secret does." }),
    last_used_at: Timestamp.nullable().openapi({
      description: "When the key last authenticated a request: the start of the latest minute it was used in (written at most once a minute per instance).",
    }),
    created_at: Timestamp,
    revoked_at: Timestamp.nullable(),
  })
  .openapi("ApiKey");
export const IssuedKey = ApiKey.extend({ key: z.string().openapi({ description: "Shown once; only its hash is stored." }) }).openapi("IssuedKey");

const Metadata = z.record(z.string(), z.unknown()).superRefine((m, ctx) => {
  const problem = metadataProblem(m);
  if (problem) ctx.addIssue({ code: "custom", message: problem });
});

export const CreateDocumentJson = z
  .object({
    title: storableString(1, 500).optional(),
    text: StorableText,
    metadata: Metadata.optional(),
    source_id: storableString(1, 500).optional(),
  })
  .openapi("CreateDocument");

export const CreateDocumentMultipart = z
  .object({
    file: z.any().openapi({ type: "string", format: "binary" }),
    title: z.string().optional().openapi({ description: "At most 500 characters. Default: the file name, cut to 500 characters." }),
    source_id: z.string().optional().openapi({ description: "At most 500 characters." }),
    metadata: z.string().optional().openapi({ description: "JSON object, at most 16 KiB" }),
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
  cursor: DocumentCursor.optional(),
});
export const DocumentList = z
  .object({ documents: z.array(Document), next_cursor: z.string().nullable() })
  .openapi("DocumentList");

export const searchBody = (maxK: number) =>
  z
    .object({
      query: storableString(1, 2000),
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
  content: storableString(1, 8000),
});

export const ChatBody = z
  .object({
    question: storableString(1, 4000).optional(),
    messages: z.array(Turn).min(1).max(50).optional(),
    stream: z.boolean().default(false),
  })
  .refine((b) => (b.question === undefined) !== (b.messages === undefined), {
    message: "send either `question` or `messages`, not both",
  })
  // zod 4 still runs refinements after `.min(1)` failed, so `messages: []` arrives here (`?.`, not `!`).
  .refine((b) => !b.messages || b.messages[b.messages.length - 1]?.role === "user", {
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
    model_downgraded: z
      .boolean()
      .openapi({ description: "True when the tenant was near its budget cap and the plan's fallback model answered." }),
    usage: z.object({ input_tokens: z.number(), output_tokens: z.number(), total_tokens: z.number() }),
    cached: z.boolean(),
    request_id: z.string(),
  })
  .openapi("ChatResponse");
