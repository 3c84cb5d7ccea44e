import { createRoute, OpenAPIHono } from "@hono/zod-openapi";
import { commonErrors, TenantIdParam } from "../schemas.js";
import { Plan, PlanBody, PlanList, PlanParam, TenantConfig, TenantConfigPatch } from "../schemas-cost.js";
import type { FenceServices } from "../services.js";
import type { AppEnv } from "../types.js";
import { validationHook } from "./validation-hook.js";

const security = [{ adminKey: [] }];
const tags = ["Platform admin: plans"];

const listPlans = createRoute({
  operationId: "listPlans",
  method: "get",
  path: "/plans",
  tags,
  security,
  responses: { 200: { description: "Every plan", content: { "application/json": { schema: PlanList } } }, ...commonErrors },
});

const getPlan = createRoute({
  operationId: "getPlan",
  method: "get",
  path: "/plans/{plan}",
  tags,
  security,
  request: { params: PlanParam },
  responses: { 200: { description: "The plan", content: { "application/json": { schema: Plan } } }, ...commonErrors },
});

const putPlan = createRoute({
  operationId: "putPlan",
  method: "put",
  path: "/plans/{plan}",
  tags,
  security,
  description:
    "Creates the plan or replaces all its settings. The three budgets are required (null = unlimited); " +
    "the change applies to the next request of every tenant on the plan, on every instance.",
  request: { params: PlanParam, body: { content: { "application/json": { schema: PlanBody } }, required: true } },
  responses: {
    200: { description: "Replaced", content: { "application/json": { schema: Plan } } },
    201: { description: "Created", content: { "application/json": { schema: Plan } } },
    ...commonErrors,
  },
});

const getTenantConfig = createRoute({
  operationId: "getTenantConfig",
  method: "get",
  path: "/tenants/{tenant_id}/config",
  tags,
  security,
  request: { params: TenantIdParam },
  responses: { 200: { description: "Plan and overrides", content: { "application/json": { schema: TenantConfig } } }, ...commonErrors },
});

const patchTenantConfig = createRoute({
  operationId: "patchTenantConfig",
  method: "patch",
  path: "/tenants/{tenant_id}/config",
  tags,
  security,
  description:
    "A JSON merge patch of the tenant's overrides (`null` removes a key; `features` merges flag by flag), " +
    "validated as a whole; `plan` moves the tenant to another existing plan in the same change.",
  request: {
    params: TenantIdParam,
    body: { content: { "application/json": { schema: TenantConfigPatch } }, required: true },
  },
  responses: { 200: { description: "The configuration after the change", content: { "application/json": { schema: TenantConfig } } }, ...commonErrors },
});

export function adminPlanRoutes({ planAdmin }: Pick<FenceServices, "planAdmin">): OpenAPIHono<AppEnv> {
  return new OpenAPIHono<AppEnv>({ defaultHook: validationHook })
    .openapi(listPlans, async (c) => c.json({ plans: await planAdmin.list() }, 200))
    .openapi(getPlan, async (c) => c.json(await planAdmin.get(c.req.valid("param").plan), 200))
    .openapi(putPlan, async (c) => {
      const { plan, created } = await planAdmin.put(c.req.valid("param").plan, c.req.valid("json"));
      return created ? c.json(plan, 201) : c.json(plan, 200);
    })
    .openapi(getTenantConfig, async (c) => c.json(await planAdmin.getTenantConfig(c.req.valid("param").tenant_id), 200))
    .openapi(patchTenantConfig, async (c) => {
      const { plan, ...overrides } = c.req.valid("json");
      return c.json(await planAdmin.patchTenantConfig(c.req.valid("param").tenant_id, overrides, { plan }), 200);
    });
}
