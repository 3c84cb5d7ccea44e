import { randomUUID } from "node:crypto";
import { Hono } from "hono";
import { describe, expect, it } from "vitest";
import { BudgetExceededError, RateLimitedError } from "../../../src/core/errors.js";
import { handleError, handleNotFound } from "../../../src/http/error-handler.js";
import { httpMetrics } from "../../../src/http/middleware/http-metrics.js";
import { requestContext } from "../../../src/http/middleware/request-context.js";
import { metricsRoutes } from "../../../src/http/routes/metrics.js";
import type { AppEnv } from "../../../src/http/types.js";
import { createLogger } from "../../../src/observability/logger.js";
import { modelLabel, routeLabel } from "../../../src/observability/metric-labels.js";
import { FenceMetrics } from "../../../src/observability/metrics.js";
import { NO_TENANT, OTHER_TENANTS, TenantLabeler } from "../../../src/observability/tenant-labeler.js";
import { issueTenantContext } from "../../../src/core/tenant-context.js";
import { labelValues, parseExposition, sumOf } from "../../support/prometheus-text.js";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const MINUTE = 60_000;

function fakeClock(start = 1_700_000_000_000) {
  let now = start;
  return { now: () => now, advance: (ms: number) => void (now += ms) };
}

/** Zipf-like traffic: tenant i (0-based) sends ⌊2000 / (i+1)⌋ + 1 requests, all shuffled together. */
function zipfTraffic(tenants: readonly string[]): string[] {
  const events: string[] = [];
  tenants.forEach((id, i) => {
    for (let n = Math.floor(2000 / (i + 1)) + 1; n > 0; n--) events.push(id);
  });
  // Deterministic shuffle (LCG), so a failure reproduces.
  let seed = 42;
  for (let i = events.length - 1; i > 0; i--) {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    const j = seed % (i + 1);
    [events[i], events[j]] = [events[j]!, events[i]!];
  }
  return events;
}

describe("TenantLabeler", () => {
  it("gives at most N tenant label values to 10,000 tenants, and the busiest tenants get their own", () => {
    const clock = fakeClock();
    const labeler = new TenantLabeler({ maxLabelled: 20, minTenureMs: MINUTE, now: clock.now });
    const tenants = Array.from({ length: 10_000 }, () => randomUUID());
    const seen = new Set<string>();
    let mostLabelled = 0;
    for (const tenant of zipfTraffic(tenants)) {
      seen.add(labeler.labelFor(tenant));
      mostLabelled = Math.max(mostLabelled, labeler.labelled.size);
      clock.advance(100);
    }
    const ids = [...seen].filter((v) => v !== OTHER_TENANTS);
    // Over ~47 minutes some labels changed hands, yet never more than 20 at once…
    expect(mostLabelled).toBe(20);
    expect(labeler.labelled.size).toBe(20);
    expect(labeler.replacementCount).toBeGreaterThan(0);
    expect(ids.every((v) => UUID.test(v))).toBe(true);
    expect(seen.has(OTHER_TENANTS)).toBe(true);
    // …and the ten busiest tenants (≥ 182 requests each; the median tenant sent 1) all hold one.
    for (const top of tenants.slice(0, 10)) expect(labeler.peek(top)).toBe(top);
    expect(labeler.peek(tenants[9_999]!)).toBe(OTHER_TENANTS);
  });

  it("hands out labels first come while slots are free, then folds everyone else into `other`", () => {
    const labeler = new TenantLabeler({ maxLabelled: 2 });
    const [a, b, c] = [randomUUID(), randomUUID(), randomUUID()];
    expect(labeler.labelFor(a)).toBe(a);
    expect(labeler.labelFor(b)).toBe(b);
    expect(labeler.labelFor(c)).toBe(OTHER_TENANTS);
    expect(labeler.peek(undefined)).toBe(NO_TENANT);
  });

  it("never uses anything but a UUID as a label value (a name or an e-mail folds into `other`)", () => {
    const labeler = new TenantLabeler({ maxLabelled: 5 });
    for (const notAnId of ["jane.doe@example.com", "Acme Corp", "../../etc", ""]) expect(labeler.labelFor(notAnId)).toBe(OTHER_TENANTS);
    expect(labeler.labelled.size).toBe(0);
  });

  it("does not flap: two tenants of similar traffic never swap, however long they run", () => {
    const clock = fakeClock();
    const labeler = new TenantLabeler({ maxLabelled: 1, minTenureMs: MINUTE, reviewEveryMs: 1000, now: clock.now });
    const [holder, challenger] = [randomUUID(), randomUUID()];
    labeler.labelFor(holder);
    // For six hours the challenger sends 1.5× the holder's traffic (under the 2× hysteresis).
    for (let i = 0; i < 6 * 60 * 60; i++) {
      labeler.labelFor(challenger);
      if (i % 2 === 0) labeler.labelFor(challenger);
      if (i % 2 === 1) labeler.labelFor(holder);
      labeler.labelFor(holder);
      clock.advance(1000);
    }
    expect(labeler.peek(holder)).toBe(holder);
    expect(labeler.replacementCount).toBe(0);
  });

  it("keeps a fresh label for its minimum tenure, then gives it to a much busier tenant", () => {
    const clock = fakeClock();
    const labeler = new TenantLabeler({ maxLabelled: 1, minTenureMs: 10 * MINUTE, reviewEveryMs: 1000, now: clock.now });
    const [quiet, busy] = [randomUUID(), randomUUID()];
    labeler.labelFor(quiet);
    const evicted: string[] = [];
    labeler.onRelabel((id) => evicted.push(id));
    for (let s = 0; s < 9 * 60; s++) {
      for (let n = 0; n < 50; n++) labeler.labelFor(busy);
      clock.advance(1000);
    }
    expect(labeler.peek(busy)).toBe(OTHER_TENANTS); // 9 minutes: still within the holder's tenure
    for (let s = 0; s < 2 * 60; s++) {
      labeler.labelFor(busy);
      clock.advance(1000);
    }
    expect(labeler.peek(busy)).toBe(busy);
    expect(labeler.peek(quiet)).toBe(OTHER_TENANTS);
    expect(evicted).toEqual([quiet]);
  });
});

describe("FenceMetrics tenant folding", () => {
  function observe(metrics: FenceMetrics, tenantId: string | undefined, status = 200) {
    metrics.observeRequest({ routeTemplate: "/v1/search", method: "POST", status, tenantId, seconds: 0.01 });
  }

  it("exposes at most N + `other` + `none` tenant values for 10,000 tenants, and folding keeps every request", async () => {
    const metrics = new FenceMetrics({ topTenants: 20, processMetrics: false });
    const tenants = Array.from({ length: 10_000 }, () => randomUUID());
    let requests = 0;
    for (const [i, tenant] of tenants.entries()) {
      for (let n = i < 5 ? 50 : 1; n > 0; n--, requests++) observe(metrics, tenant, i % 7 === 0 ? 429 : 200);
      metrics.usageCharged(tenant, { feature: "embed_query", model: "local:use-lite-512", inputTokens: 3, outputTokens: 0, costMicros: 1 });
      metrics.cacheLookup(tenant, "query_embeddings", i % 2 === 0);
    }
    observe(metrics, undefined, 401);
    const samples = parseExposition(await metrics.render());
    const tenantValues = labelValues(samples, "tenant");
    expect(tenantValues.size).toBeLessThanOrEqual(22);
    expect(tenantValues).toContain(OTHER_TENANTS);
    expect(tenantValues).toContain(NO_TENANT);
    expect([...tenantValues].filter((v) => v !== OTHER_TENANTS && v !== NO_TENANT).every((v) => UUID.test(v))).toBe(true);
    // No label changed hands (the default tenure is ten minutes), so nothing was dropped: totals are exact.
    expect(sumOf(samples, "fence_http_request_duration_seconds_count")).toBe(requests + 1);
    expect(sumOf(samples, "fence_tokens_total")).toBe(30_000);
    expect(sumOf(samples, "fence_cache_requests_total", { result: "hit" })).toBe(5_000);
    expect(sumOf(samples, "fence_metrics_labelled_tenants")).toBe(20);
    // The first 20 tenants got labels; tenant 30's figures are inside `other`.
    expect(sumOf(samples, "fence_tokens_total", { tenant: tenants[0]! })).toBe(3);
    expect(sumOf(samples, "fence_tokens_total", { tenant: tenants[30]! })).toBe(0);
    expect(sumOf(samples, "fence_tokens_total", { tenant: OTHER_TENANTS })).toBe(3 * 9_980);
  });

  it("removes every series of a tenant that loses its label, so series stay bounded over time", async () => {
    const clock = fakeClock();
    const metrics = new FenceMetrics({ topTenants: 1, processMetrics: false, labeler: { minTenureMs: 0, reviewEveryMs: 1000, now: clock.now } });
    const [first, busier] = [randomUUID(), randomUUID()];
    observe(metrics, first);
    metrics.usageCharged(first, { feature: "chat", model: "gpt-x", inputTokens: 5, outputTokens: 7, costMicros: 9 });
    metrics.cacheLookup(first, "answers", true);
    expect(await metrics.render()).toContain(first);
    for (let n = 0; n < 100; n++) observe(metrics, busier);
    clock.advance(2000);
    observe(metrics, busier); // the review runs on the next call after its interval
    observe(metrics, first);
    const text = await metrics.render();
    expect(text).not.toContain(first);
    const samples = parseExposition(text);
    // The busier tenant's first 100 requests were counted as `other`: a label counts from when it is given.
    expect(sumOf(samples, "fence_http_request_duration_seconds_count", { tenant: busier })).toBe(1);
    expect(sumOf(samples, "fence_http_request_duration_seconds_count", { tenant: OTHER_TENANTS })).toBe(101);
    expect(sumOf(samples, "fence_metrics_tenant_label_replacements")).toBe(1);
  });
});

describe("label values carry no request data", () => {
  const EMAIL = "jane.doe@example.com";
  const tenant = issueTenantContext({ tenantId: randomUUID(), keyId: randomUUID(), project: "default", environment: "prod", scopes: ["owner"], requestId: "r-1" });

  function appWith(metrics: FenceMetrics) {
    const app = new Hono<AppEnv>();
    app.use("*", requestContext(createLogger("silent")));
    app.use("*", httpMetrics(metrics));
    app.onError(handleError);
    app.notFound(handleNotFound);
    app.use("/v1/*", async (c, next) => {
      c.set("tenant", tenant);
      await next();
    });
    app.get("/v1/documents/:id", (c) => c.json({ id: c.req.param("id") }));
    app.post("/v1/search", () => {
      throw new RateLimitedError("rate_limit", 3);
    });
    return app;
  }

  it("labels a request by its route template, never its raw path, method or any text it carried", async () => {
    const metrics = new FenceMetrics({ topTenants: 5, processMetrics: false });
    const app = appWith(metrics);
    expect((await app.request(`/v1/documents/${EMAIL}`)).status).toBe(200);
    expect((await app.request(`/v1/documents/${encodeURIComponent(EMAIL)}?owner=${EMAIL}`)).status).toBe(200);
    expect((await app.request(`/v1/nowhere/${EMAIL}`)).status).toBe(404);
    expect((await app.request(`/${EMAIL}`, { method: "PROPFIND" })).status).toBe(404);
    expect((await app.request("/v1/search", { method: "POST", headers: { "x-request-id": `req-${EMAIL.replace("@", ".")}` } })).status).toBe(429);

    const text = await metrics.render();
    for (const fragment of ["jane", "example.com", "@", "%40", "owner", "PROPFIND", "nowhere"]) expect(text).not.toContain(fragment);
    const samples = parseExposition(text);
    expect(labelValues(samples, "route")).toEqual(new Set(["/v1/documents/:id", "/v1/*", "/*", "/v1/search"]));
    expect(labelValues(samples, "method")).toEqual(new Set(["GET", "POST", "other"]));
    expect(sumOf(samples, "fence_http_request_duration_seconds_count", { route: "/v1/documents/:id", tenant: tenant.tenantId })).toBe(2);
    expect(sumOf(samples, "fence_limit_refusals_total", { reason: "rate_limit", tenant: tenant.tenantId })).toBe(1);
    expect(sumOf(samples, "fence_http_request_errors_total", { route: "/v1/search", code: "rate_limited" })).toBe(1);
    expect(sumOf(samples, "fence_http_request_errors_total", { code: "not_found" })).toBe(2);
    // Every label value of every fence_ metric is from a closed vocabulary of code-defined strings.
    const allowed = /^(\/[A-Za-z0-9._:/*-]*|[A-Za-z0-9_.:+-]+)$/;
    for (const s of samples.filter((x) => x.name.startsWith("fence_"))) {
      for (const value of Object.values(s.labels)) expect(value).toMatch(allowed);
    }
  });

  it("prefers the outcome's codes, as filled by the layers that know", async () => {
    const metrics = new FenceMetrics({ topTenants: 5, processMetrics: false });
    const app = new Hono<AppEnv>();
    app.use("*", requestContext(createLogger("silent")));
    app.use("*", httpMetrics(metrics));
    app.get("/v1/chat", (c) => {
      c.set("tenant", tenant);
      Object.assign(c.get("outcome"), { errorCode: "budget_exceeded", limitReason: "budget_exceeded" });
      return c.json({}, 402);
    });
    await app.request("/v1/chat");
    const samples = parseExposition(await metrics.render());
    expect(sumOf(samples, "fence_limit_refusals_total", { reason: "budget_exceeded", tenant: tenant.tenantId })).toBe(1);
    expect(sumOf(samples, "fence_http_request_errors_total", { code: "budget_exceeded" })).toBe(1);
  });

  it("counts a budget refusal thrown through the error handler as a limit refusal, by the catalogue's reason", async () => {
    const metrics = new FenceMetrics({ topTenants: 5, processMetrics: false });
    const app = appWith(metrics);
    app.post("/v1/chat", () => {
      throw new BudgetExceededError("tokens_per_day", { limit: 10, used: 10, reserved: 0, resets_at: "2030-01-01T00:00:00.000Z" }, "free");
    });
    expect((await app.request("/v1/chat", { method: "POST" })).status).toBe(402);
    const samples = parseExposition(await metrics.render());
    expect(sumOf(samples, "fence_limit_refusals_total", { reason: "budget_exceeded", tenant: tenant.tenantId })).toBe(1);
    expect(sumOf(samples, "fence_http_request_errors_total", { route: "/v1/chat", code: "budget_exceeded" })).toBe(1);
  });

  it("maps unexpected route, model and code strings to fixed fallbacks", () => {
    expect(routeLabel(`/v1/documents/${EMAIL}`)).toBe("unmatched");
    expect(routeLabel("/v1/documents/:id")).toBe("/v1/documents/:id");
    expect(modelLabel(EMAIL)).toBe("other");
    expect(modelLabel("openai:text-embedding-3-small@256")).toBe("openai:text-embedding-3-small@256");
    expect(modelLabel("gpt-4o mini; drop")).toBe("other");
    const metrics = new FenceMetrics({ topTenants: 5, processMetrics: false });
    metrics.observeRequest({ routeTemplate: "/x", method: "GET", status: 500, tenantId: EMAIL, seconds: 0, errorCode: `oops ${EMAIL}` });
    metrics.securityEvent(`kind ${EMAIL}`);
    return metrics.render().then((text) => {
      expect(text).not.toContain(EMAIL);
      const samples = parseExposition(text);
      expect(sumOf(samples, "fence_http_request_errors_total", { code: "unknown", tenant: OTHER_TENANTS })).toBe(1);
      expect(sumOf(samples, "fence_security_events_total", { kind: "other" })).toBe(1);
    });
  });
});

describe("a metric never fails the work it measures", () => {
  it("drops a figure prom-client refuses instead of throwing into the request, ledger or job", async () => {
    const warnings: string[] = [];
    const logger = createLogger("warn", { write: (line: string) => void warnings.push(line) });
    const metrics = new FenceMetrics({ topTenants: 5, processMetrics: false, logger });
    const tenant = randomUUID();
    expect(() => metrics.observeRequest({ routeTemplate: "/v1/search", method: "POST", status: 200, tenantId: tenant, seconds: Number.NaN })).not.toThrow();
    expect(() => metrics.jobs.claimed({ tenantId: tenant, priority: 0, waitedMs: Number.NaN })).not.toThrow();
    expect(warnings.filter((w) => w.includes("metrics: could not record"))).toHaveLength(2);
    metrics.observeRequest({ routeTemplate: "/v1/search", method: "POST", status: 200, tenantId: tenant, seconds: 0.2 });
    expect(sumOf(parseExposition(await metrics.render()), "fence_http_request_duration_seconds_count", { tenant })).toBe(1);
  });
});

describe("scrape-time gauges", () => {
  it("reads lanes, breaker state and the job queue at every scrape, and survives a failing read", async () => {
    const metrics = new FenceMetrics({ topTenants: 5, processMetrics: false });
    const lane = { name: "llm", inFlight: 3, queued: 2, breakerState: "half_open" as "closed" | "half_open" | "open" };
    metrics.watchLane(lane);
    const gate = { inService: 8, waiting: 5 };
    metrics.watchGate("seat", gate);
    metrics.watchGate("large_body", { inService: 2, waiting: 0 });
    const refused = { waiting: 0 };
    expect(sumOf(parseExposition(await metrics.render()), "fence_refused_connections_held")).toBe(0); // none watched yet
    metrics.watchRefusedReads(refused);
    refused.waiting = 12;
    const tenant = randomUUID();
    metrics.observeRequest({ routeTemplate: "/v1/documents", method: "POST", status: 202, tenantId: tenant, seconds: 0.1 });
    let fail = false;
    metrics.watchJobQueue(async () => {
      if (fail) throw new Error("database unavailable");
      return [
        { tenantId: tenant, status: "queued", priority: "interactive", count: 4 },
        { tenantId: randomUUID(), status: "queued", priority: "interactive", count: 2 },
        { tenantId: randomUUID(), status: "queued", priority: "interactive", count: 5 },
      ];
    });
    let samples = parseExposition(await metrics.render());
    expect(sumOf(samples, "fence_provider_lane_in_flight", { provider: "llm" })).toBe(3);
    expect(sumOf(samples, "fence_provider_lane_queued", { provider: "llm" })).toBe(2);
    expect(sumOf(samples, "fence_provider_breaker_state", { provider: "llm" })).toBe(1);
    expect(sumOf(samples, "fence_admission_in_service", { gate: "seat" })).toBe(8);
    expect(sumOf(samples, "fence_admission_waiting", { gate: "seat" })).toBe(5);
    expect(sumOf(samples, "fence_admission_in_service", { gate: "large_body" })).toBe(2);
    expect(sumOf(samples, "fence_admission_waiting", { gate: "large_body" })).toBe(0);
    expect(sumOf(samples, "fence_refused_connections_held")).toBe(12);
    expect(sumOf(samples, "fence_job_queue_depth", { tenant, status: "queued" })).toBe(4);
    expect(sumOf(samples, "fence_job_queue_depth", { tenant: OTHER_TENANTS })).toBe(7); // two unknown tenants, summed

    lane.breakerState = "open";
    lane.inFlight = 0;
    fail = true;
    samples = parseExposition(await metrics.render());
    expect(sumOf(samples, "fence_provider_breaker_state", { provider: "llm" })).toBe(2);
    expect(sumOf(samples, "fence_provider_lane_in_flight", { provider: "llm" })).toBe(0);
    expect(sumOf(samples, "fence_job_queue_depth")).toBe(0);
    // Counted during that scrape, so it shows from the next one (whose own failure shows after it).
    samples = parseExposition(await metrics.render());
    expect(sumOf(samples, "fence_metrics_collect_errors_total", { source: "job_queue" })).toBe(1);
  });

  it("records job waits by priority and tenant, and job outcomes by kind", async () => {
    const metrics = new FenceMetrics({ topTenants: 5, processMetrics: false });
    const tenant = randomUUID();
    metrics.tenants.labelFor(tenant);
    metrics.jobs.claimed({ tenantId: tenant, priority: 0, waitedMs: 1500 });
    metrics.jobs.claimed({ tenantId: tenant, priority: 1, waitedMs: 20 });
    metrics.jobs.finished({ kind: "ingest_document" }, "succeeded");
    metrics.jobs.finished({ kind: "ingest_document" }, "retry");
    const samples = parseExposition(await metrics.render());
    expect(sumOf(samples, "fence_job_wait_seconds_sum", { tenant, priority: "interactive" })).toBeCloseTo(1.5);
    expect(sumOf(samples, "fence_job_wait_seconds_count", { tenant })).toBe(2);
    expect(sumOf(samples, "fence_jobs_finished_total", { kind: "ingest_document" })).toBe(2);
  });
});

describe("GET /metrics access", () => {
  const ADMIN = "admin-key-0123456789abcdef";
  const TOKEN = "scrape-token-0123456789abcdef";

  async function scrape(access: { adminKey?: string; metricsToken?: string }, authorization?: string) {
    const metrics = new FenceMetrics({ topTenants: 5, processMetrics: false });
    const app = new Hono<AppEnv>();
    app.use("*", requestContext(createLogger("silent")));
    app.onError(handleError);
    app.route("/", metricsRoutes({ metrics, adminKey: access.adminKey, metricsToken: access.metricsToken }));
    return app.request("/metrics", { headers: authorization ? { authorization } : {} });
  }

  it("accepts the admin key and the scrape token, and refuses everything else with 401", async () => {
    const both = { adminKey: ADMIN, metricsToken: TOKEN };
    const ok = await scrape(both, `Bearer ${ADMIN}`);
    expect(ok.status).toBe(200);
    expect(ok.headers.get("content-type")).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(await ok.text()).toContain("# TYPE fence_http_request_duration_seconds histogram");
    expect((await scrape(both, `Bearer ${TOKEN}`)).status).toBe(200);
    for (const header of [undefined, "Bearer", `Bearer ${TOKEN}x`, `Basic ${btoa(`x:${ADMIN}`)}`, `Bearer fence_prod_${"a".repeat(40)}`, `${ADMIN}`]) {
      const res = await scrape(both, header);
      expect(res.status).toBe(401);
      expect(await res.text()).not.toContain("fence_");
    }
  });

  it("is closed to everyone when neither secret is configured", async () => {
    expect((await scrape({}, "Bearer ")).status).toBe(401);
    expect((await scrape({}, "Bearer undefined")).status).toBe(401);
    expect((await scrape({ metricsToken: TOKEN }, `Bearer ${TOKEN}`)).status).toBe(200);
  });
});
