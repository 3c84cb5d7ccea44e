import type { Context } from "hono";
import type { z } from "zod";
import { validationHook } from "../http/routes/validation-hook.js";
import type { Child } from "hono/jsx";
import type { Scope } from "../core/scopes.js";
import type { AppVariables } from "../http/types.js";
import type { Chrome, NavItem } from "./layout.js";
import type { ConsoleSession } from "./session.js";

/** What a signed-in console page can read: the API's variables (`tenant`, `quota`, …), the session and its chrome. */
export interface ConsoleVariables extends AppVariables {
  session: ConsoleSession;
  chrome: Chrome;
}

export interface ConsoleEnv {
  Variables: ConsoleVariables;
}

export type ConsoleContext = Context<ConsoleEnv>;

export type PageStatus = 200 | 400 | 401 | 402 | 403 | 404 | 409 | 413 | 429 | 500 | 503;

/** A page as HTML with its doctype (JSX cannot write one). */
export function page(c: Context, node: Child, status: PageStatus = 200) {
  return c.html(`<!doctype html>${String(node)}`, status);
}

/** A text field of a posted form; a file or a missing field is undefined. */
export function field(form: Record<string, unknown>, name: string): string | undefined {
  const value = form[name];
  return typeof value === "string" ? value : undefined;
}

/** A form's fields through the API's own schema: the same rules, the same 400 and messages (validationHook). */
export function validForm<T extends z.ZodType>(c: Context, schema: T, input: unknown): z.infer<T> {
  const result = schema.safeParse(input);
  validationHook(result, c);
  return result.data as z.infer<T>;
}

/** The tenant pages and the scope each needs: the navigation shows a key only what its scopes open. */
export const TENANT_NAV: readonly (NavItem & { scope: Scope })[] = [
  { href: "/console/overview", label: "Overview", scope: "read" },
  { href: "/console/documents", label: "Documents", scope: "read" },
  { href: "/console/ask", label: "Ask", scope: "query" },
  { href: "/console/runs", label: "Runs", scope: "read" },
  { href: "/console/keys", label: "Keys", scope: "owner" },
  { href: "/console/settings", label: "Settings", scope: "owner" },
  { href: "/console/audit", label: "Audit", scope: "owner" },
];

export const PLATFORM_NAV: readonly NavItem[] = [
  { href: "/console/platform/tenants", label: "Tenants" },
  { href: "/console/platform/plans", label: "Plans" },
  { href: "/console/platform/usage", label: "Usage" },
  { href: "/console/platform/operations", label: "Operations" },
];
