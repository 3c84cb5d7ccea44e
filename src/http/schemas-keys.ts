import { z } from "@hono/zod-openapi";
import { DEFAULT_ROTATION_GRACE_SECONDS, MAX_ROTATION_GRACE_SECONDS } from "../tenancy/tenant-keys.js";
import { IdCursor } from "./schemas-dates.js";
import { refineStorableJson, storableString } from "./schemas-strings.js";
import { FEATURE_FLAGS, TenantOverrides } from "../plans/tenant-settings.js";
import { KeyRequestsPerMinute, KeySpendPerMonth, KeyTokensPerMonth } from "./schemas.js";

/** Request and response shapes of the owner's self-service (keys) and the audit trail. */

const Timestamp = z.string().openapi({ format: "date-time" });
const Uuid = z.string().openapi({ format: "uuid" });

export const KeyIdParam = z.object({
  key_id: z.string().openapi({ param: { name: "key_id", in: "path" }, format: "uuid" }),
});

export const ListKeysQuery = z.object({
  include_revoked: z
    .enum(["true", "false"])
    .default("false")
    .transform((value) => value === "true")
    .openapi({ description: "Also list revoked keys (default false)." }),
});

export const RotateKeyBody = z
  .object({
    grace_seconds: z
      .number()
      .int()
      .min(0)
      .max(MAX_ROTATION_GRACE_SECONDS)
      .default(DEFAULT_ROTATION_GRACE_SECONDS)
      .openapi({ description: `How long the replaced secret keeps working, 0 to ${MAX_ROTATION_GRACE_SECONDS} s (24 h); default ${DEFAULT_ROTATION_GRACE_SECONDS}.` }),
  })
  .openapi("RotateKey");

export const UpdateKeyBody = z
  .object({
    name: storableString(1, 200).optional(),
    description: storableString(0, 500).nullable().optional(),
    requests_per_minute: KeyRequestsPerMinute.nullable().optional(),
    tokens_per_month: KeyTokensPerMonth.nullable().optional(),
    spend_per_month_micros: KeySpendPerMonth.nullable().optional(),
  })
  .strict()
  .refine((body) => Object.keys(body).length > 0, "name at least one field to change")
  .openapi("UpdateKey", { description: "What is left out stays; null clears a limit (the plan's applies) or the description." });

export const AuditEvent = z
  .object({
    id: Uuid,
    at: Timestamp,
    actor: z.enum(["admin", "key"]).openapi({ description: "`admin`: the platform admin; `key`: the tenant key `actor_key_id`." }),
    actor_key_id: Uuid.nullable(),
    action: z.string().openapi({ example: "key.rotated" }),
    target_id: z.string().nullable(),
    before: z.record(z.string(), z.unknown()).nullable(),
    after: z.record(z.string(), z.unknown()).nullable(),
    request_id: z.string().nullable(),
  })
  .openapi("AuditEvent");
export const AdminAuditEvent = AuditEvent.extend({ tenant_id: Uuid }).openapi("AdminAuditEvent");

export const ListAuditQuery = z.object({
  action: storableString(1, 100).optional().openapi({ description: "Only events of this action, e.g. `key.revoked`." }),
  limit: z.coerce.number().int().min(1).max(100).default(50),
  cursor: IdCursor.optional(),
});
export const AdminListAuditQuery = ListAuditQuery.extend({
  tenant_id: z.string().optional().openapi({ description: "One tenant's events (plans' events are under the nil id)." }),
});

export const AuditEventList = z.object({ events: z.array(AuditEvent), next_cursor: z.string().nullable() }).openapi("AuditEventList");
export const AdminAuditEventList = z.object({ events: z.array(AdminAuditEvent), next_cursor: z.string().nullable() }).openapi("AdminAuditEventList");

const Flag = z.object({
  enabled: z.boolean().openapi({ description: "On for the tenant now." }),
  in_plan: z.boolean().openapi({ description: "The tenant's plan includes it." }),
  available: z.boolean().openapi({ description: "The owner may switch it on: the plan includes it or the admin granted it, and the admin has not switched it off." }),
});

export const OwnerSettingsView = z
  .object({
    plan: z.string(),
    persona: z.string().nullable().openapi({ description: "Preamble of the system prompt: the assistant's persona and tone." }),
    answer_style: z.enum(["concise", "detailed", "bullet_points"]).nullable(),
    retrieval_k: z.number().int().nullable().openapi({ description: "Passages retrieved per question (null: the default)." }),
    features: z.object(Object.fromEntries(FEATURE_FLAGS.map((flag) => [flag, Flag])) as Record<(typeof FEATURE_FLAGS)[number], typeof Flag>),
    updated_at: Timestamp.nullable(),
  })
  .openapi("Settings");

/** Declared fields are typed here; any other field reaches the service, which names why it is refused. */
export const OwnerSettingsPatch = z
  .object({
    persona: TenantOverrides.shape.persona.unwrap().nullable().optional(),
    answer_style: TenantOverrides.shape.answer_style.unwrap().nullable().optional(),
    retrieval_k: TenantOverrides.shape.retrieval_k.unwrap().nullable().optional(),
    features: z.record(z.string(), z.boolean().nullable()).nullable().optional(),
  })
  .catchall(z.unknown())
  .superRefine(refineStorableJson)
  .openapi("SettingsPatch");
