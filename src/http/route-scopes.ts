import type { OpenAPIHono } from "@hono/zod-openapi";
import { isScope, type Scope } from "../core/scopes.js";

/** The OpenAPI extension on each tenant route naming the scope a key needs for it. */
export const SCOPE_EXTENSION = "x-fence-scope";

interface ScopedRoute {
  method: string;
  pattern: RegExp;
  /** Literal routes are tried before parameterised ones (`/documents/batch` before `/documents/{id}`). */
  params: number;
  scope: Scope;
}

/**
 * Which scope each tenant route needs, read from the routes' own OpenAPI declarations, so the
 * document clients read and the check the server makes cannot disagree. Built once the tenant
 * routes are registered; a tenant route that declares no scope stops the app from being built —
 * a new route cannot ship open to every key by omission.
 */
export class RouteScopes {
  private constructor(private readonly routes: readonly ScopedRoute[]) {}

  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- any env: only the registry is read
  static of(app: OpenAPIHono<any>, prefix: string): RouteScopes {
    const routes: ScopedRoute[] = [];
    for (const definition of app.openAPIRegistry.definitions) {
      if (definition.type !== "route") continue;
      const { method, path } = definition.route;
      const scope = (definition.route as unknown as Record<string, unknown>)[SCOPE_EXTENSION];
      if (typeof scope !== "string" || !isScope(scope)) {
        throw new Error(`Tenant route ${method.toUpperCase()} ${prefix}${path} declares no scope (${SCOPE_EXTENSION}).`);
      }
      const source = `${prefix}${path}`.replace(/[.*+?^$()|[\]\\]/g, "\\$&").replace(/\{[^}/]+\}/g, "[^/]+");
      routes.push({ method: method.toUpperCase(), pattern: new RegExp(`^${source}$`), params: (path.match(/\{/g) ?? []).length, scope });
    }
    return new RouteScopes(routes.sort((a, b) => a.params - b.params));
  }

  /** The scope `method path` needs; undefined where no tenant route answers (a 404 follows). */
  required(method: string, path: string): Scope | undefined {
    const wanted = method.toUpperCase() === "HEAD" ? "GET" : method.toUpperCase();
    return this.routes.find((r) => r.method === wanted && r.pattern.test(path))?.scope;
  }

  /** Every declared route, for the scope matrix and the docs. */
  list(): readonly { method: string; pattern: string; scope: Scope }[] {
    return this.routes.map((r) => ({ method: r.method, pattern: r.pattern.source, scope: r.scope }));
  }
}
