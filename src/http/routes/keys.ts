import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import type { AuditPage } from "../../audit/audit-log.js";
import type { AuditEventRow } from "../../db/schema.js";
import { DEFAULT_ROTATION_GRACE_SECONDS } from "../../tenancy/tenant-keys.js";
import { ApiKey, commonErrors, CreateKeyBody, IssuedKey } from "../schemas.js";
import {
  AdminAuditEventList,
  AdminListAuditQuery,
  AuditEventList,
  KeyIdParam,
  ListAuditQuery,
  ListKeysQuery,
  RotateKeyBody,
  UpdateKeyBody,
} from "../schemas-keys.js";
import type { FenceServices } from "../services.js";
import type { AppEnv } from "../types.js";
import { validationHook } from "./validation-hook.js";

const tenantKey = [{ tenantKey: [] }];
const tags = ["Keys and audit"];

const createKey = createRoute({
  operationId: "createKey",
  "x-fence-scope": "owner",
  method: "post",
  path: "/keys",
  tags,
  security: tenantKey,
  description:
    "Makes a key of the caller's tenant. It can never hold more than the key making it: no scope that key lacks (403 " +
    "`insufficient_scope`), no later `expires_at` and no higher limit of its own (400); what is left out is " +
    "inherited from it. Its limits may not be more than the tenant's plan gives either (403 `beyond_plan`). Revoking the making key later revokes this one too. The plaintext is shown only here.",
  request: { body: { content: { "application/json": { schema: CreateKeyBody } }, required: true } },
  responses: { 201: { description: "Made; the plaintext key is shown only here", content: { "application/json": { schema: IssuedKey } } }, ...commonErrors },
});

const listKeys = createRoute({
  operationId: "listKeys",
  "x-fence-scope": "owner",
  method: "get",
  path: "/keys",
  tags,
  security: tenantKey,
  description: "The tenant's keys, newest first, without their secrets.",
  request: { query: ListKeysQuery },
  responses: { 200: { description: "The keys", content: { "application/json": { schema: z.object({ keys: z.array(ApiKey) }).openapi("ApiKeyList") } } }, ...commonErrors },
});

const revokeOwnKey = createRoute({
  operationId: "revokeOwnKey",
  "x-fence-scope": "owner",
  method: "delete",
  path: "/keys/{key_id}",
  tags,
  security: tenantKey,
  description:
    "Revokes a key of the tenant — the caller's own included — and every key it made, transitively. Takes effect on " +
    "the next request here and on every instance within the change feed's bound; its queued jobs do not run.",
  request: { params: KeyIdParam },
  responses: { 204: { description: "Revoked" }, ...commonErrors },
});

const updateKey = createRoute({
  operationId: "updateKey",
  "x-fence-scope": "owner",
  method: "patch",
  path: "/keys/{key_id}",
  tags,
  security: tenantKey,
  description:
    "Changes a key's name, description or limits of its own (requests/min, monthly tokens, monthly spend). A limit " +
    "may not be more than the calling key's own (400) nor more than the tenant's plan gives (403 `beyond_plan`), so " +
    "no key raises itself. Applies to the key's next request on every instance within the change feed's bound.",
  request: { params: KeyIdParam, body: { content: { "application/json": { schema: UpdateKeyBody } }, required: true } },
  responses: { 200: { description: "Changed", content: { "application/json": { schema: ApiKey } } }, ...commonErrors },
});

const rotateKey = createRoute({
  operationId: "rotateKey",
  "x-fence-scope": "owner",
  method: "post",
  path: "/keys/{key_id}/rotate",
  tags,
  security: tenantKey,
  description:
    "A new secret for the key, which keeps its id, scopes, limits and history. The replaced secret keeps working for " +
    "`grace_seconds` (at most 24 h), then answers 401 \"The API key was rotated and its grace period has ended.\"; a " +
    "secret replaced by an earlier rotation stops at once.",
  request: { params: KeyIdParam, body: { content: { "application/json": { schema: RotateKeyBody } }, required: false } },
  responses: { 200: { description: "Rotated; the new plaintext key is shown only here", content: { "application/json": { schema: IssuedKey } } }, ...commonErrors },
});

const listAudit = createRoute({
  operationId: "listAuditEvents",
  "x-fence-scope": "owner",
  method: "get",
  path: "/audit",
  tags,
  security: tenantKey,
  description:
    "The tenant's audit trail, newest first: every change to its keys and configuration, by the admin or by which key, " +
    "with the object before and after (never a secret).",
  request: { query: ListAuditQuery },
  responses: { 200: { description: "A page of events", content: { "application/json": { schema: AuditEventList } } }, ...commonErrors },
});

const adminListAudit = createRoute({
  operationId: "adminListAuditEvents",
  method: "get",
  path: "/audit",
  tags: ["Platform admin"],
  security: [{ adminKey: [] }],
  description: "Every tenant's audit trail (or one tenant's), including tenants since purged, and the plans' changes.",
  request: { query: AdminListAuditQuery },
  responses: { 200: { description: "A page of events", content: { "application/json": { schema: AdminAuditEventList } } }, ...commonErrors },
});

export function auditEventJson(row: AuditEventRow) {
  return {
    id: row.id,
    at: row.at.toISOString(),
    actor: row.actor,
    actor_key_id: row.actorKeyId,
    action: row.action,
    target_id: row.targetId,
    before: row.before,
    after: row.after,
    request_id: row.requestId,
  };
}

function pageJson(page: AuditPage) {
  return { events: page.events.map(auditEventJson), next_cursor: page.nextCursor };
}

/** The owner's self-service (mounted behind tenant authentication; every route needs `owner`). */
export function keyRoutes({ tenantKeys, auditLog }: Pick<FenceServices, "tenantKeys" | "auditLog">) {
  return new OpenAPIHono<AppEnv>({ defaultHook: validationHook })
    .openapi(createKey, async (c) => c.json(await tenantKeys.create(c.get("tenant"), c.req.valid("json")), 201))
    .openapi(listKeys, async (c) => c.json({ keys: await tenantKeys.list(c.get("tenant"), { includeRevoked: c.req.valid("query").include_revoked }) }, 200))
    .openapi(revokeOwnKey, async (c) => {
      await tenantKeys.revoke(c.get("tenant"), c.req.valid("param").key_id);
      return c.body(null, 204);
    })
    .openapi(updateKey, async (c) => c.json(await tenantKeys.update(c.get("tenant"), c.req.valid("param").key_id, c.req.valid("json")), 200))
    .openapi(rotateKey, async (c) => {
      // The body is optional: no body is the default grace period.
      const body = (c.req.valid("json") as { grace_seconds?: number } | undefined) ?? {};
      const grace = body.grace_seconds ?? DEFAULT_ROTATION_GRACE_SECONDS;
      return c.json(await tenantKeys.rotate(c.get("tenant"), c.req.valid("param").key_id, grace), 200);
    })
    .openapi(listAudit, async (c) => {
      const query = c.req.valid("query");
      return c.json(pageJson(await auditLog.forTenant(c.get("tenant"), query)), 200);
    });
}

/** The platform's view of every trail (mounted behind admin authentication). */
export function adminAuditRoutes({ auditLog }: Pick<FenceServices, "auditLog">) {
  return new OpenAPIHono<AppEnv>({ defaultHook: validationHook }).openapi(adminListAudit, async (c) => {
    const query = c.req.valid("query");
    const page = await auditLog.forPlatform({ ...query, tenantId: query.tenant_id });
    return c.json({ events: page.events.map((row) => ({ ...auditEventJson(row), tenant_id: row.tenantId })), next_cursor: page.nextCursor }, 200);
  });
}
