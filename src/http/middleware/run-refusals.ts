import type { MiddlewareHandler } from "hono";
import { FenceError } from "../../core/errors.js";
import type { RunKind } from "../../db/schema.js";
import type { RunRecords } from "../../runs/run-records.js";
import type { AppEnv } from "../types.js";

/** Refusals made before a route runs, by admission (429 limits and fair share, 503 instance ceiling). */
const ADMISSION_CODES = new Set(["rate_limited", "overloaded"]);

/**
 * Counts a chat or an upload that admission refused once the tenant was known into its minute's
 * summary run (RunRecords.noteRefusal): the route never ran, so the service that records every
 * other outcome never saw it, and a refusal must cost no write of its own. Runs around the tenant
 * middleware and reads the error Hono recorded on the context; everything else passes by.
 */
export function recordAdmissionRefusals(runs: RunRecords): MiddlewareHandler<AppEnv> {
  return async function recordAdmissionRefusalsMiddleware(c, next) {
    await next();
    const error = c.error;
    const tenant = c.get("tenant");
    const kind = refusalRunKind(c.req.method, c.req.path);
    if (!kind || !tenant || !(error instanceof FenceError) || !ADMISSION_CODES.has(error.code)) return;
    runs.noteRefusal(tenant, kind, error);
  };
}

/** The requests whose refusals are recorded as runs: chats and uploads (the runs Fence keeps). */
const RUN_KINDS: Record<string, RunKind> = {
  "POST /v1/chat": "chat",
  "POST /v1/documents": "ingest",
  "POST /v1/documents/batch": "ingest",
};

export function refusalRunKind(method: string, path: string): RunKind | undefined {
  return RUN_KINDS[`${method} ${path}`];
}
