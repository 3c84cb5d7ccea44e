import type { MiddlewareHandler } from "hono";
import { FenceError } from "../../core/errors.js";
import type { RunKind } from "../../db/schema.js";
import type { RunRecords } from "../../runs/run-records.js";
import type { AppEnv } from "../types.js";

/** Refusals made before a route runs, by admission (429 limits, 503 instance ceiling). */
const ADMISSION_CODES = new Set(["rate_limited", "overloaded"]);

/**
 * Records a run for a chat or an upload that admission refused once the tenant was known: the
 * route never ran, so the service that records every other outcome never saw it. Runs around the
 * tenant middleware and reads the error Hono recorded on the context; everything else passes by.
 */
export function recordAdmissionRefusals(runs: RunRecords, kind: RunKind): MiddlewareHandler<AppEnv> {
  return async function recordAdmissionRefusalsMiddleware(c, next) {
    await next();
    const error = c.error;
    const tenant = c.get("tenant");
    if (c.req.method !== "POST" || !tenant || !(error instanceof FenceError) || !ADMISSION_CODES.has(error.code)) return;
    await runs.start(tenant, kind).finish(error);
  };
}
