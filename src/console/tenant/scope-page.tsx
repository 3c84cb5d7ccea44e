import type { MiddlewareHandler } from "hono";
import { grants, type Scope } from "../../core/scopes.js";
import { page, type ConsoleEnv } from "../console-env.js";
import { MessagePage } from "../layout.js";

/** A page a key without `scope` cannot open: 403 with what is missing, as the API answers insufficient_scope. */
export function needsScope(scope: Scope, title: string): MiddlewareHandler<ConsoleEnv> {
  return async (c, next) => {
    if (grants(c.get("tenant").scopes, scope)) return next();
    return page(c, <MessagePage title={title} message={`This key lacks the '${scope}' scope: it cannot open ${title}.`} chrome={c.get("chrome")} />, 403);
  };
}
