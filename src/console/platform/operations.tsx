import { Hono } from "hono";
import type { FenceServices } from "../../http/services.js";
import { readQueueDepth } from "../../jobs/queue-depth.js";
import { page, type ConsoleEnv } from "../console-env.js";
import { Layout } from "../layout.js";

/**
 * What the platform is doing now (admin session): the ingestion queue per tenant over every
 * instance (the same audited read the metrics make), and this instance's provider lanes — calls in
 * flight, calls waiting, and the circuit breaker's state.
 */
export function operationsPages(services: Pick<FenceServices, "db" | "providerLanes" | "tenantAdmin">) {
  return new Hono<ConsoleEnv>().get("/", async (c) => {
    const [depth, tenants] = await Promise.all([readQueueDepth(services.db), services.tenantAdmin.listTenants()]);
    const names = new Map(tenants.map((t) => [t.id, t.name]));
    const byTenant = new Map<string, { queued: number; running: number }>();
    for (const row of depth) {
      const entry = byTenant.get(row.tenantId) ?? { queued: 0, running: 0 };
      entry[row.status] += row.count;
      byTenant.set(row.tenantId, entry);
    }
    const rows = [...byTenant].sort((a, b) => b[1].queued + b[1].running - (a[1].queued + a[1].running));
    return page(
      c,
      <Layout title="Operations" chrome={c.get("chrome")}>
        <h2>Ingestion queue</h2>
        {rows.length === 0 ? (
          <p>No job is queued or running.</p>
        ) : (
          <table>
            <thead>
              <tr>
                <th scope="col">Tenant</th>
                <th scope="col" class="num">Queued</th>
                <th scope="col" class="num">Running</th>
              </tr>
            </thead>
            <tbody>
              {rows.map(([tenantId, n]) => (
                <tr>
                  <td>
                    {names.get(tenantId) ?? ""} <code class="muted">{tenantId}</code>
                  </td>
                  <td class="num">{n.queued}</td>
                  <td class="num">{n.running}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
        <h2>Provider lanes (this instance)</h2>
        {services.providerLanes.length === 0 ? (
          <p>No remote provider: embeddings run on this machine's model and answers are extractive (set LLM_BASE_URL for a model).</p>
        ) : (
          <table>
            <thead>
              <tr>
                <th scope="col">Lane</th>
                <th scope="col" class="num">In flight</th>
                <th scope="col" class="num">Waiting</th>
                <th scope="col">Breaker</th>
              </tr>
            </thead>
            <tbody>
              {services.providerLanes.map((lane) => (
                <tr>
                  <td>{lane.name}</td>
                  <td class="num">{lane.inFlight}</td>
                  <td class="num">{lane.queued}</td>
                  <td>
                    <span class={`badge ${lane.breakerState === "closed" ? "succeeded" : "failed"}`}>{lane.breakerState.replace("_", " ")}</span>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </Layout>,
    );
  });
}
