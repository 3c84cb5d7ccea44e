import type { MiddlewareHandler } from "hono";
import { UnauthorizedError } from "../../core/errors.js";
import { bearerToken, secretsEqual } from "../../tenancy/api-keys.js";
import type { AppEnv } from "../types.js";

/**
 * Platform-admin routes: the bearer token must equal FENCE_ADMIN_KEY (constant-time). With no admin
 * key configured, every admin request is refused: there is no default credential.
 */
export function adminAuth(adminKey: string | undefined): MiddlewareHandler<AppEnv> {
  return async function adminAuthMiddleware(c, next) {
    const presented = bearerToken(c.req.header("authorization"));
    if (!adminKey || !presented || !secretsEqual(presented, adminKey)) throw new UnauthorizedError();
    c.set("log", c.get("log").child({ actor: "platform_admin" }));
    await next();
  };
}
