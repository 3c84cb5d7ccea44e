import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import { commonErrors } from "../schemas.js";
import type { FenceServices } from "../services.js";
import type { AppEnv } from "../types.js";
import { validationHook } from "./validation-hook.js";

const Budget = z.object({
  limit: z.number().nullable().openapi({ description: "null = unlimited" }),
  used: z.number(),
  reserved: z.number().openapi({ description: "held by requests in flight" }),
  remaining: z.number().nullable(),
  resets_at: z.string().openapi({ format: "date-time" }),
});

export const LimitsResponse = z
  .object({
    plan: z.string(),
    budgets: z.object({
      tokens_per_day: Budget,
      tokens_per_month: Budget,
      spend_per_month_micros: Budget,
    }),
    key_budgets: z
      .object({
        key_id: z.string().openapi({ format: "uuid" }),
        tokens_per_month: Budget,
        spend_per_month_micros: Budget,
      })
      .openapi({ description: "The calling key's own monthly caps (PATCH /v1/keys/{key_id}), counted over that key's usage; null limits when it has none." }),
  })
  .openapi("Limits");

const getLimits = createRoute({
  operationId: "getLimits",
  "x-fence-scope": "read",
  method: "get",
  path: "/limits",
  tags: ["Usage"],
  security: [{ tenantKey: [] }],
  description:
    "The calling tenant's budgets, and the calling key's own monthly caps: limit, used, held by in-flight requests, remaining, and when each resets.",
  responses: { 200: { description: "Budgets", content: { "application/json": { schema: LimitsResponse } } }, ...commonErrors },
});

export function limitsRoutes({ budgets }: Pick<FenceServices, "budgets">) {
  return new OpenAPIHono<AppEnv>({ defaultHook: validationHook }).openapi(getLimits, async (c) => {
    const { plan, key, ...rest } = await budgets.status(c.get("tenant"));
    return c.json({ plan, budgets: rest, key_budgets: key }, 200);
  });
}
