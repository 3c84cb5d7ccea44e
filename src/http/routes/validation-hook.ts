import type { Context } from "hono";
import type { ZodError } from "zod";
import { ValidationError } from "../../core/errors.js";

export type Hook = (result: { success: true; data: unknown } | { success: false; error: ZodError }, c: Context) => void;

/** Turns a failed zod validation into a ValidationError with one entry per offending field. */
export const validationHook: Hook = (result) => {
  if (result.success) return;
  const fields = result.error.issues.map((issue) => ({
    field: issue.path.join(".") || "(body)",
    message: issue.message,
  }));
  throw new ValidationError(
    `Invalid request: ${fields.map((f) => `${f.field}: ${f.message}`).join("; ")}`,
    { fields },
  );
};
