import { createRoute, OpenAPIHono } from "@hono/zod-openapi";
import {
  commonErrors,
  CreateKeyBody,
  CreateTenantBody,
  IssuedKey,
  Tenant,
  TenantIdParam,
  TenantKeyParams,
  TenantList,
} from "../schemas.js";
import type { TenantSummary } from "../../tenancy/tenant-admin.js";
import type { FenceServices } from "../services.js";
import type { AppEnv } from "../types.js";
import { validationHook } from "./validation-hook.js";

const security = [{ adminKey: [] }];
const tags = ["Platform admin"];

const createTenant = createRoute({
  operationId: "createTenant",
  method: "post",
  path: "/tenants",
  tags,
  security,
  request: { body: { content: { "application/json": { schema: CreateTenantBody } }, required: true } },
  responses: { 201: { description: "Created", content: { "application/json": { schema: Tenant } } }, ...commonErrors },
});

const listTenants = createRoute({
  operationId: "listTenants",
  method: "get",
  path: "/tenants",
  tags,
  security,
  responses: { 200: { description: "All tenants", content: { "application/json": { schema: TenantList } } }, ...commonErrors },
});

const deleteTenant = createRoute({
  operationId: "deleteTenant",
  method: "delete",
  path: "/tenants/{tenant_id}",
  tags,
  security,
  description: "Purges every row of the tenant (documents, chunks, keys) and its cache entries.",
  request: { params: TenantIdParam },
  responses: { 204: { description: "Purged" }, ...commonErrors },
});

const suspendTenant = createRoute({
  operationId: "suspendTenant",
  method: "post",
  path: "/tenants/{tenant_id}/suspend",
  tags,
  security,
  description:
    "Suspends the tenant: from the next request, on every instance, each of its keys (and console sessions) answers 403 " +
    "`tenant_suspended`, and none of its queued jobs is started (they stay queued). Nothing is deleted; a job already " +
    "running finishes. Suspending a suspended tenant changes nothing (it keeps its first `suspended_at`).",
  request: { params: TenantIdParam },
  responses: { 200: { description: "Suspended", content: { "application/json": { schema: Tenant } } }, ...commonErrors },
});

const resumeTenant = createRoute({
  operationId: "resumeTenant",
  method: "post",
  path: "/tenants/{tenant_id}/resume",
  tags,
  security,
  description:
    "Resumes a suspended tenant: its keys work again from the next request, on every instance, and its queued jobs run " +
    "in their turn. Resuming an active tenant changes nothing.",
  request: { params: TenantIdParam },
  responses: { 200: { description: "Active", content: { "application/json": { schema: Tenant } } }, ...commonErrors },
});

const issueKey = createRoute({
  operationId: "issueKey",
  method: "post",
  path: "/tenants/{tenant_id}/keys",
  tags,
  security,
  request: {
    params: TenantIdParam,
    body: { content: { "application/json": { schema: CreateKeyBody } }, required: true },
  },
  responses: {
    201: { description: "Issued; the plaintext key is shown only here", content: { "application/json": { schema: IssuedKey } } },
    ...commonErrors,
  },
});

const revokeKey = createRoute({
  operationId: "revokeKey",
  method: "delete",
  path: "/tenants/{tenant_id}/keys/{key_id}",
  tags,
  security,
  request: { params: TenantKeyParams },
  responses: { 204: { description: "Revoked at once" }, ...commonErrors },
});

const tenantJson = (t: TenantSummary) => ({
  id: t.id,
  name: t.name,
  plan: t.plan,
  created_at: t.createdAt.toISOString(),
  suspended_at: t.suspendedAt?.toISOString() ?? null,
});

export function adminRoutes({ tenantAdmin: admin }: Pick<FenceServices, "tenantAdmin">): OpenAPIHono<AppEnv> {
  return new OpenAPIHono<AppEnv>({ defaultHook: validationHook })
    .openapi(createTenant, async (c) => c.json(tenantJson(await admin.createTenant(c.req.valid("json"))), 201))
    .openapi(listTenants, async (c) => c.json({ tenants: (await admin.listTenants()).map(tenantJson) }, 200))
    .openapi(deleteTenant, async (c) => {
      await admin.purgeTenant(c.req.valid("param").tenant_id);
      return c.body(null, 204);
    })
    .openapi(suspendTenant, async (c) => c.json(tenantJson(await admin.suspendTenant(c.req.valid("param").tenant_id)), 200))
    .openapi(resumeTenant, async (c) => c.json(tenantJson(await admin.resumeTenant(c.req.valid("param").tenant_id)), 200))
    .openapi(issueKey, async (c) => {
      return c.json(await admin.issueKey(c.req.valid("param").tenant_id, c.req.valid("json")), 201);
    })
    .openapi(revokeKey, async (c) => {
      const { tenant_id, key_id } = c.req.valid("param");
      await admin.revokeKey(tenant_id, key_id);
      return c.body(null, 204);
    });
}
