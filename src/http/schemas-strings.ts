import { z } from "@hono/zod-openapi";

/**
 * The one rule for every string a tenant or an admin sends: it must be storable as Postgres
 * `text` and inside `jsonb` exactly as sent. Postgres refuses NUL (U+0000) in both, and refuses an
 * unpaired UTF-16 surrogate inside jsonb (a 500 from the driver); in `text` the drivers' UTF-8
 * encoding silently turns it into U+FFFD, so `doc-\udfff` and `doc-\udffe` would become the same
 * `source_id`. Both are refused with a 400 on the field instead, on every route, never repaired.
 */
export const UNSTORABLE_MESSAGE = "must not contain NUL characters or unpaired surrogates";

export function containsNul(value: string): boolean {
  return value.includes("\u0000");
}

/** No unpaired surrogate. Native and linear on Node 20 (ES2024; the TypeScript lib here is older). */
export function isWellFormed(value: string): boolean {
  return (value as string & { isWellFormed(): boolean }).isWellFormed();
}

/** Well-formed UTF-16 without NUL. */
export function isStorableString(value: string): boolean {
  return !containsNul(value) && isWellFormed(value);
}

/** A trimmed, storable string of `min`–`max` UTF-16 code units: the type of every short field. */
export const storableString = (min: number, max: number) =>
  z.string().trim().min(min).max(max).refine(isStorableString, UNSTORABLE_MESSAGE);

/**
 * Document text. Unpaired surrogates are refused like everywhere else (encoding would replace
 * them); NUL is the one documented exception: it is stripped from the text before storing
 * (normalizeText), as uploads extracted from files can carry it.
 */
export const StorableText = z
  .string()
  .min(1, "text must not be empty")
  .refine(isWellFormed, "must not contain unpaired surrogates");

/**
 * The path of the first key or string value of a JSON-like value that breaks the rule, or
 * undefined. Iterative, so a deeply nested body cannot overflow the stack here.
 */
export function firstUnstorablePath(value: unknown): string | undefined {
  const stack: [unknown, string][] = [[value, ""]];
  while (stack.length > 0) {
    const [current, path] = stack.pop()!;
    if (typeof current === "string") {
      if (!isStorableString(current)) return path || "(value)";
    } else if (Array.isArray(current)) {
      current.forEach((item, i) => stack.push([item, `${path}[${i}]`]));
    } else if (current !== null && typeof current === "object") {
      for (const [key, item] of Object.entries(current)) {
        const keyPath = path ? `${path}.${key}` : key;
        if (!isStorableString(key)) return `${path ? `${path}.` : ""}(a key)`;
        stack.push([item, keyPath]);
      }
    }
  }
  return undefined;
}

/** Why `metadata` cannot be stored as jsonb, or undefined when it can: the same rule, plus size. */
export function metadataProblem(metadata: Record<string, unknown>): string | undefined {
  let serialised: string;
  try {
    serialised = JSON.stringify(metadata);
  } catch {
    return "metadata is nested too deeply"; // RangeError from V8's recursive stringify
  }
  if (serialised.length > 16_384) return "metadata must serialise to at most 16 KiB";
  const bad = firstUnstorablePath(metadata);
  if (bad) return `metadata ${bad}: ${UNSTORABLE_MESSAGE}`;
  return undefined;
}

/** A refinement for a whole JSON body whose fields are not all declared (merge patches, settings). */
export function refineStorableJson(value: unknown, ctx: z.RefinementCtx): void {
  const bad = firstUnstorablePath(value);
  if (bad) ctx.addIssue({ code: "custom", message: UNSTORABLE_MESSAGE, path: [bad] });
}
