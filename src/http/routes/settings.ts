import { createRoute, OpenAPIHono } from "@hono/zod-openapi";
import { commonErrors } from "../schemas.js";
import { OwnerSettingsPatch, OwnerSettingsView } from "../schemas-keys.js";
import type { FenceServices } from "../services.js";
import type { AppEnv } from "../types.js";
import { validationHook } from "./validation-hook.js";

const tenantKey = [{ tenantKey: [] }];
const tags = ["Keys and audit"];

const getSettings = createRoute({
  operationId: "getSettings",
  "x-fence-scope": "owner",
  method: "get",
  path: "/settings",
  tags,
  security: tenantKey,
  description: "The tenant's own settings, and every feature flag: whether it is on and whether the tenant's plan includes it.",
  responses: { 200: { description: "The settings", content: { "application/json": { schema: OwnerSettingsView } } }, ...commonErrors },
});

const patchSettings = createRoute({
  operationId: "patchSettings",
  "x-fence-scope": "owner",
  method: "patch",
  path: "/settings",
  tags,
  security: tenantKey,
  description:
    "A JSON merge patch of the tenant's own settings (`null` restores the default; `features` merges flag by flag). " +
    "A flag may be switched on only when the plan includes it, and the plan, budgets, limits, model tier and prompt " +
    "logging are the platform's: asking for them answers 403 `beyond_plan` and changes nothing. Per-key limits are " +
    "set on the keys (PATCH /v1/keys/{key_id}). Audited.",
  request: { body: { content: { "application/json": { schema: OwnerSettingsPatch } }, required: true } },
  responses: { 200: { description: "The settings after the change", content: { "application/json": { schema: OwnerSettingsView } } }, ...commonErrors },
});

/** The owner's settings (mounted behind tenant authentication; both routes need `owner`). */
export function settingsRoutes({ ownerSettings }: Pick<FenceServices, "ownerSettings">) {
  return new OpenAPIHono<AppEnv>({ defaultHook: validationHook })
    .openapi(getSettings, async (c) => c.json(await ownerSettings.get(c.get("tenant")), 200))
    .openapi(patchSettings, async (c) => c.json(await ownerSettings.patch(c.get("tenant"), c.req.valid("json")), 200));
}
