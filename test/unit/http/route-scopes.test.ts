import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import { describe, expect, it } from "vitest";
import { RouteScopes } from "../../../src/http/route-scopes.js";

/** Issue 18: the scope of each tenant route comes from its OpenAPI declaration, or the app does not build. */
function appWith(routes: { method: "get" | "post" | "delete"; path: string; scope?: string }[]) {
  const app = new OpenAPIHono();
  for (const r of routes) {
    const route = createRoute({
      method: r.method,
      path: r.path,
      ...(r.scope ? { "x-fence-scope": r.scope } : {}),
      responses: { 200: { description: "ok", content: { "application/json": { schema: z.object({}) } } } },
    });
    app.openapi(route, (c) => c.json({}, 200));
  }
  return app;
}

describe("RouteScopes", () => {
  it("refuses to be built when a tenant route declares no scope, or an unknown one", () => {
    expect(() => RouteScopes.of(appWith([{ method: "get", path: "/a", scope: "read" }, { method: "post", path: "/b" }]), "/v1")).toThrow(
      /POST \/v1\/b declares no scope/,
    );
    expect(() => RouteScopes.of(appWith([{ method: "get", path: "/a", scope: "superuser" }]), "/v1")).toThrow(/declares no scope/);
  });

  it("finds the scope of a request by method and path, literal paths before parameterised ones", () => {
    const scopes = RouteScopes.of(
      appWith([
        { method: "get", path: "/documents/{id}", scope: "read" },
        { method: "delete", path: "/documents/{id}", scope: "owner" },
        { method: "get", path: "/documents/batch", scope: "ingest" },
        { method: "post", path: "/search", scope: "query" },
      ]),
      "/v1",
    );
    expect(scopes.required("GET", "/v1/documents/7")).toBe("read");
    expect(scopes.required("HEAD", "/v1/documents/7")).toBe("read");
    expect(scopes.required("DELETE", "/v1/documents/7")).toBe("owner");
    expect(scopes.required("GET", "/v1/documents/batch")).toBe("ingest");
    expect(scopes.required("post", "/v1/search")).toBe("query");
    expect(scopes.required("POST", "/v1/search/")).toBeUndefined(); // Hono routes strictly: a 404
    // Not a route: no scope (the request goes on to its 404); a parameter never spans a slash.
    expect(scopes.required("GET", "/v1/search")).toBeUndefined();
    expect(scopes.required("GET", "/v1/documents/7/x")).toBeUndefined();
    expect(scopes.required("GET", "/v2/documents/7")).toBeUndefined();
  });
});
