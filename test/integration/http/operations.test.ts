import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { expectError } from "../../support/api-contract.js";
import { ADMIN_KEY, backends, serveOnLoopback, TestFence, type TestTenant } from "../../support/harness.js";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** The documented v1 surface: path → methods, and which credential each path takes. */
const V1_ROUTES: Record<string, { methods: string[]; auth: "adminKey" | "tenantKey" }> = {
  "/v1/documents": { methods: ["get", "post"], auth: "tenantKey" },
  "/v1/documents/{id}": { methods: ["delete", "get"], auth: "tenantKey" },
  "/v1/documents/batch": { methods: ["post"], auth: "tenantKey" },
  "/v1/jobs": { methods: ["get"], auth: "tenantKey" },
  "/v1/jobs/{id}": { methods: ["get"], auth: "tenantKey" },
  "/v1/jobs/{id}/cancel": { methods: ["post"], auth: "tenantKey" },
  "/v1/search": { methods: ["post"], auth: "tenantKey" },
  "/v1/chat": { methods: ["post"], auth: "tenantKey" },
  "/v1/limits": { methods: ["get"], auth: "tenantKey" },
  "/v1/settings": { methods: ["get", "patch"], auth: "tenantKey" },
  "/v1/usage": { methods: ["get"], auth: "tenantKey" },
  "/v1/runs": { methods: ["get"], auth: "tenantKey" },
  "/v1/runs/{request_id}": { methods: ["get"], auth: "tenantKey" },
  "/v1/evals/cases": { methods: ["get", "post"], auth: "tenantKey" },
  "/v1/keys": { methods: ["get", "post"], auth: "tenantKey" },
  "/v1/keys/{key_id}": { methods: ["delete", "patch"], auth: "tenantKey" },
  "/v1/keys/{key_id}/rotate": { methods: ["post"], auth: "tenantKey" },
  "/v1/audit": { methods: ["get"], auth: "tenantKey" },
  "/v1/admin/tenants": { methods: ["get", "post"], auth: "adminKey" },
  "/v1/admin/tenants/{tenant_id}": { methods: ["delete"], auth: "adminKey" },
  "/v1/admin/tenants/{tenant_id}/suspend": { methods: ["post"], auth: "adminKey" },
  "/v1/admin/tenants/{tenant_id}/resume": { methods: ["post"], auth: "adminKey" },
  "/v1/admin/tenants/{tenant_id}/keys": { methods: ["post"], auth: "adminKey" },
  "/v1/admin/tenants/{tenant_id}/keys/{key_id}": { methods: ["delete"], auth: "adminKey" },
  "/v1/admin/tenants/{tenant_id}/config": { methods: ["get", "patch"], auth: "adminKey" },
  "/v1/admin/plans": { methods: ["get"], auth: "adminKey" },
  "/v1/admin/plans/{plan}": { methods: ["get", "put"], auth: "adminKey" },
  "/v1/admin/usage": { methods: ["get"], auth: "adminKey" },
  "/v1/admin/usage/reconciliation": { methods: ["get"], auth: "adminKey" },
  "/v1/admin/tenants/{tenant_id}/runs": { methods: ["get"], auth: "adminKey" },
  "/v1/admin/tenants/{tenant_id}/runs/{request_id}": { methods: ["get"], auth: "adminKey" },
  "/v1/admin/audit": { methods: ["get"], auth: "adminKey" },
};

interface OpenApiOperation {
  operationId?: string;
  security?: Record<string, unknown[]>[];
  parameters?: { name: string; in: string }[];
  responses: Record<string, { content?: Record<string, { schema: unknown }> }>;
}

interface OpenApiDocument {
  openapi: string;
  info: { title: string; version: string };
  paths: Record<string, Record<string, OpenApiOperation>>;
  components: { securitySchemes: Record<string, { type: string; scheme: string }>; schemas: Record<string, unknown> };
}

/** Every `$ref` string anywhere in a JSON value. */
function collectRefs(value: unknown, out: string[] = []): string[] {
  if (Array.isArray(value)) value.forEach((v) => collectRefs(v, out));
  else if (value && typeof value === "object") {
    for (const [k, v] of Object.entries(value)) {
      if (k === "$ref" && typeof v === "string") out.push(v);
      else collectRefs(v, out);
    }
  }
  return out;
}

describe.each(backends)("operations and cross-cutting HTTP contract on $name", (backend) => {
  let fence: TestFence;
  let tenant: TestTenant;

  beforeAll(async () => {
    fence = await TestFence.start(backend);
    tenant = await fence.createTenant();
  });
  afterAll(() => fence?.close());

  it("answers /healthz without credentials", async () => {
    const res = await fence.request("GET", "/healthz");
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: "ok" });
  });

  it("answers /readyz with its checks", async () => {
    const res = await fence.request("GET", "/readyz");
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({
      status: "ready",
      checks: { database: true, migrations: true, embedding_model: fence.fence.embeddings.model },
    });
  });

  it("publishes an OpenAPI 3.1 document covering every v1 route, with security schemes and resolvable refs", async () => {
    const res = await fence.request("GET", "/openapi.json");
    expect(res.status).toBe(200);
    const doc = (await res.json()) as OpenApiDocument;
    expect(doc.openapi).toBe("3.1.0");
    expect(doc.info).toMatchObject({ title: "Fence API", version: expect.any(String) });

    expect(Object.keys(doc.paths).sort()).toEqual(Object.keys(V1_ROUTES).sort());
    for (const [path, route] of Object.entries(V1_ROUTES)) {
      expect(Object.keys(doc.paths[path]!).sort(), path).toEqual(route.methods);
      for (const [method, op] of Object.entries(doc.paths[path]!)) {
        const where = `${method.toUpperCase()} ${path}`;
        expect(op.operationId, where).toMatch(/^[a-z][A-Za-z]+$/);
        expect(op.security, where).toEqual([{ [route.auth]: [] }]);
        for (const name of path.match(/\{(\w+)\}/g) ?? []) {
          expect(op.parameters?.some((p) => p.in === "path" && `{${p.name}}` === name), `${where} declares ${name}`).toBe(true);
        }
        const errorSchema = op.responses["401"]?.content?.["application/json"]?.schema;
        expect(errorSchema, `${where} documents 401`).toEqual({ $ref: "#/components/schemas/Error" });
        expect(Object.keys(op.responses).some((s) => s.startsWith("2")), `${where} documents success`).toBe(true);
      }
    }

    expect(doc.components.securitySchemes).toMatchObject({
      tenantKey: { type: "http", scheme: "bearer" },
      adminKey: { type: "http", scheme: "bearer" },
    });
    const refs = collectRefs(doc);
    expect(refs.length).toBeGreaterThan(5);
    for (const ref of refs) {
      const name = /^#\/components\/schemas\/(.+)$/.exec(ref)?.[1];
      expect(name && doc.components.schemas[name], `dangling ${ref}`).toBeTruthy();
    }
  });

  it("serves a self-contained HTML reference listing every route", async () => {
    const res = await fence.request("GET", "/docs");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^text\/html/);
    const html = await res.text();
    expect(html).toMatch(/^<!doctype html>/i);
    for (const [path, route] of Object.entries(V1_ROUTES)) {
      for (const method of route.methods) {
        expect(html, `${method} ${path}`).toContain(`<td><code>${method.toUpperCase()}</code></td><td><code>${path}</code></td>`);
      }
    }
    expect(html).not.toMatch(/<script[^>]+src=|https?:\/\/(?!127\.0\.0\.1)/i);
  });

  it("answers an unknown route with a 404 JSON error carrying the request id", async () => {
    const body = await expectError(await fence.request("GET", "/nope"), 404, "not_found");
    expect(body.error.request_id).toMatch(UUID);
    await expectError(await fence.request("POST", "/v1/nope", { key: tenant.key, json: {} }), 404, "not_found");
    await expectError(await fence.request("GET", "/v1/admin/nope", { key: ADMIN_KEY }), 404, "not_found");
    await expectError(await fence.request("PATCH", "/v1/documents", { key: tenant.key, json: {} }), 404, "not_found");
  });

  it("authenticates before routing under /v1, so probing for routes without a key learns nothing", async () => {
    await expectError(await fence.request("GET", "/v1/nope"), 401, "unauthorized");
    await expectError(await fence.request("GET", "/v1/admin/nope"), 401, "unauthorized");
  });

  it("puts a fresh x-request-id on every response, success or failure", async () => {
    const doc = await fence.upload(tenant, { text: "A document to delete." });
    const responses = [
      await fence.request("GET", "/healthz"),
      await fence.request("GET", "/readyz"),
      await fence.request("GET", "/openapi.json"),
      await fence.request("GET", "/docs"),
      await fence.request("GET", "/v1/documents", { key: tenant.key }),
      await fence.request("POST", "/v1/search", { key: tenant.key, json: { query: "delete" } }),
      await fence.request("DELETE", `/v1/documents/${doc.id}`, { key: tenant.key }),
      await fence.request("POST", "/v1/search", { key: tenant.key, json: { query: "" } }),
      await fence.request("POST", "/v1/search", { key: tenant.key, body: "x", headers: { "content-type": "text/plain" } }),
      await fence.request("GET", "/v1/documents"),
      await fence.request("GET", "/nope"),
      await fence.admin("GET", "/tenants"),
    ];
    expect(responses.map((r) => r.status)).toEqual([200, 200, 200, 200, 200, 200, 204, 400, 415, 401, 404, 200]);
    const ids = responses.map((r) => r.headers.get("x-request-id"));
    for (const id of ids) expect(id).toMatch(UUID);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it("echoes a well-formed client x-request-id in the header and the error body", async () => {
    for (const id of ["trace-abc.123:XYZ_9", "a".repeat(128), "01HZX3Q9K6Y7V8W2"]) {
      const ok = await fence.request("GET", "/healthz", { headers: { "x-request-id": id } });
      expect(ok.headers.get("x-request-id")).toBe(id);
      const failed = await fence.request("GET", "/v1/documents", { headers: { "x-request-id": id } });
      expect((await expectError(failed, 401)).error.request_id).toBe(id);
    }
  });

  it.each([
    ["too short", "abc"],
    ["too long", "a".repeat(129)],
    ["with spaces", "my request id"],
    ["with markup", "<script>alert(1)</script>"],
    ["with a CRLF-looking escape", "abcdefgh%0d%0aSet-Cookie:x"],
    ["with latin-1 bytes", "r\u00e9quest-identifier"],
  ])("replaces a malformed client x-request-id (%s) with a fresh UUID", async (_label, id) => {
    const res = await fence.request("GET", "/v1/documents", { headers: { "x-request-id": id } });
    const body = await expectError(res, 401);
    expect(body.error.request_id).toMatch(UUID);
    expect(res.headers.get("x-request-id")).toBe(body.error.request_id);
  });

  it("keeps the contract over real HTTP too", async () => {
    const server = await serveOnLoopback(fence.fence);
    try {
      const health = await fetch(`${server.url}/healthz`, { headers: { "x-request-id": "loopback-trace-0001" } });
      expect(health.status).toBe(200);
      expect(health.headers.get("x-request-id")).toBe("loopback-trace-0001");
      const missing = await fetch(`${server.url}/definitely/not/here`);
      const body = await expectError(missing, 404, "not_found");
      expect(body.error.request_id).toMatch(UUID);
    } finally {
      await server.close();
    }
  });
});
