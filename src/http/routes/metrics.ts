import { Hono } from "hono";
import { UnauthorizedError } from "../../core/errors.js";
import { bearerToken, secretsEqual } from "../../tenancy/api-keys.js";
import type { AppEnv } from "../types.js";

/** What the route serves (FenceMetrics); an interface so the HTTP layer needs no prom-client. */
export interface MetricsExposition {
  readonly contentType: string;
  render(): Promise<string>;
}

/**
 * What the route reads of FenceServices. Declared here rather than as a Pick of it because
 * FenceServices names MetricsExposition: a Pick would make the two files import each other.
 */
export interface MetricsRouteServices {
  metrics: MetricsExposition;
  /** FENCE_ADMIN_KEY: always accepted. */
  adminKey: string | undefined;
  /** FENCE_METRICS_TOKEN: a scrape-only secret, so Prometheus need not hold the admin key. */
  metricsToken: string | undefined;
}

/**
 * `GET /metrics` in the Prometheus text format. The figures are per tenant, for every tenant,
 * so this is a platform endpoint: a tenant key is refused like no key at all (401, same body),
 * and with neither secret configured nobody can read it. Comparisons are constant-time.
 */
export function metricsRoutes({ metrics, adminKey, metricsToken }: MetricsRouteServices) {
  const secrets = [adminKey, metricsToken].filter((s): s is string => s !== undefined);
  return new Hono<AppEnv>().get("/metrics", async (c) => {
    const presented = bearerToken(c.req.header("authorization"));
    // Every secret is compared, so the time taken does not tell which one nearly matched.
    const matches = presented === undefined ? [] : secrets.map((secret) => secretsEqual(presented, secret));
    if (!matches.includes(true)) throw new UnauthorizedError();
    const body = await metrics.render();
    return c.body(body, 200, { "content-type": metrics.contentType, "cache-control": "no-store" });
  });
}
