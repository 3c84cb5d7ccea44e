import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { backends, TestFence, type TestTenant } from "../../support/harness.js";

/**
 * OpenTelemetry traces: with OTEL_EXPORTER_OTLP_ENDPOINT set, Fence exports a span per request over
 * OTLP/HTTP (JSON) to a small local receiver, each with the request id and the tenant id; route
 * templates name them, and nothing from a path reaches them. Without the endpoint there is no tracer.
 */
interface OtlpAttribute {
  key: string;
  value: { stringValue?: string; intValue?: number | string };
}
interface OtlpSpan {
  name: string;
  attributes: OtlpAttribute[];
}
interface OtlpExport {
  resourceSpans: { resource: { attributes: OtlpAttribute[] }; scopeSpans: { spans: OtlpSpan[] }[] }[];
}

function attributes(list: OtlpAttribute[]): Record<string, string> {
  return Object.fromEntries(list.map((a) => [a.key, String(a.value.stringValue ?? a.value.intValue)]));
}

async function startReceiver(): Promise<{ url: string; bodies: string[]; close(): Promise<void> }> {
  const bodies: string[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      if (req.method === "POST" && req.url === "/v1/traces") bodies.push(Buffer.concat(chunks).toString("utf8"));
      res.writeHead(200, { "content-type": "application/json" }).end("{}");
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, bodies, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

describe.each(backends)("OpenTelemetry traces on $name", (backend) => {
  let receiver: Awaited<ReturnType<typeof startReceiver>>;
  let fence: TestFence;
  let tenant: TestTenant;

  beforeAll(async () => {
    receiver = await startReceiver();
    fence = await TestFence.start(backend, { env: { OTEL_EXPORTER_OTLP_ENDPOINT: `${receiver.url}/`, OTEL_SERVICE_NAME: "fence-test" } });
    tenant = await fence.createTenant("tracing-tenant");
  }, 60_000);

  afterAll(async () => {
    await fence?.close();
    await receiver?.close();
  });

  it("exports a span per request with the tenant id and request id, named by route template", async () => {
    const search = await fence.request("POST", "/v1/search", { key: tenant.key, json: { query: "anything at all" } });
    expect(search.status).toBe(200);
    const missing = await fence.request("GET", "/v1/documents/jane.doe@example.com", { key: tenant.key });
    expect(missing.status).toBe(404);
    const anonymous = await fence.request("GET", "/v1/documents");
    expect(anonymous.status).toBe(401);
    await fence.fence.tracing!.flush();

    const exports = receiver.bodies.map((b) => JSON.parse(b) as OtlpExport);
    const resources = exports.flatMap((e) => e.resourceSpans);
    expect(resources.length).toBeGreaterThan(0);
    expect(attributes(resources[0]!.resource.attributes)["service.name"]).toBe("fence-test");
    const spans = resources.flatMap((r) => r.scopeSpans.flatMap((s) => s.spans)).map((s) => ({ name: s.name, attrs: attributes(s.attributes) }));
    const byRequest = (res: Response) => spans.find((s) => s.attrs["fence.request_id"] === res.headers.get("x-request-id"));

    expect(byRequest(search)).toMatchObject({
      name: "POST /v1/search",
      attrs: { "fence.tenant_id": tenant.id, "http.route": "/v1/search", "http.response.status_code": "200" },
    });
    expect(byRequest(missing)).toMatchObject({ name: "GET /v1/documents/:id", attrs: { "fence.tenant_id": tenant.id, "fence.error_code": "not_found" } });
    expect(byRequest(anonymous)).toMatchObject({ attrs: { "fence.tenant_id": "none", "http.response.status_code": "401" } });
    // Every span carries both ids; no span carries anything from a path.
    for (const span of spans) {
      expect(span.attrs["fence.request_id"]).toBeTruthy();
      expect(span.attrs["fence.tenant_id"]).toMatch(/^([0-9a-f-]{36}|none)$/);
    }
    const raw = receiver.bodies.join("\n");
    expect(raw).not.toContain("jane");
    expect(raw).not.toContain("example.com");
  });
});

describe("without OTEL_EXPORTER_OTLP_ENDPOINT", () => {
  it("builds no tracer", async () => {
    const fence = await TestFence.start(backends[0]!);
    try {
      expect(fence.fence.tracing).toBeUndefined();
      expect((await fence.request("GET", "/healthz")).status).toBe(200);
    } finally {
      await fence.close();
    }
  });
});
