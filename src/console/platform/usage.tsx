import { Hono } from "hono";
import { AdminUsageQuery } from "../../http/schemas-cost.js";
import { usageCsv, usageCsvHeaders } from "../../http/routes/usage.js";
import type { FenceServices } from "../../http/services.js";
import { ADMIN_GROUP_BY } from "../../metering/usage-report.js";
import { page, validForm, type ConsoleContext, type ConsoleEnv } from "../console-env.js";
import { count, dollars, Layout, Time } from "../layout.js";


/**
 * Usage across tenants (admin session): GET /v1/admin/usage as a page — grouped by tenant, day,
 * model, feature, key, project or environment over a window (the budget month by default) — with
 * the same report as CSV to download, and the reconciliation report's counts beside it.
 */
export function usagePages(services: Pick<FenceServices, "usageReports">) {
  const app = new Hono<ConsoleEnv>();

  const queryOf = (c: ConsoleContext) => {
    const q = c.req.query();
    return validForm(c, AdminUsageQuery, { group_by: q.group_by || undefined, from: q.from || undefined, to: q.to || undefined, format: "json" });
  };

  app.get("/", async (c) => {
    const query = queryOf(c);
    const [report, r] = await Promise.all([
      services.usageReports.forAllTenants({ from: query.from, to: query.to, groupBy: query.group_by }),
      services.usageReports.reconcileSummary({ from: query.from, to: query.to }),
    ]);
    const csvLink = `/console/platform/usage/csv?${new URLSearchParams({ group_by: query.group_by, from: report.from, to: report.to }).toString()}`;
    return page(
      c,
      <Layout title="Usage" chrome={c.get("chrome")}>
        <form method="get" action="/console/platform/usage" class="row">
          <div>
            <label for="group_by">Group by</label>
            <select id="group_by" name="group_by">
              {ADMIN_GROUP_BY.map((g) => (
                <option value={g} selected={g === query.group_by}>
                  {g}
                </option>
              ))}
            </select>
          </div>
          <div>
            <label for="from">From (UTC)</label>
            <input id="from" name="from" type="text" value={query.from ?? report.from.slice(0, 10)} />
          </div>
          <div>
            <label for="to">To (UTC, excluded)</label>
            <input id="to" name="to" type="text" value={query.to ?? ""} placeholder="now" />
          </div>
          <button type="submit">Show</button>
          <a href={csvLink}>Download CSV</a>
        </form>
        <p class="muted">
          From <Time at={report.from} /> to <Time at={report.to} />: {count(report.totals.events)} metered calls, {count(report.totals.total_tokens)} tokens,{" "}
          {dollars(report.totals.cost_micros)}.
        </p>
        {report.rows.length === 0 ? (
          <p>No metered usage in this window.</p>
        ) : (
          <table>
            <thead>
              <tr>
                <th scope="col">{query.group_by}</th>
                {query.group_by === "tenant" && <th scope="col">Name</th>}
                <th scope="col" class="num">Calls</th>
                <th scope="col" class="num">Input</th>
                <th scope="col" class="num">Output</th>
                <th scope="col" class="num">Tokens</th>
                <th scope="col" class="num">Cost</th>
              </tr>
            </thead>
            <tbody>
              {report.rows.map((row) => (
                <tr>
                  <td>
                    <code>{row.key}</code>
                  </td>
                  {query.group_by === "tenant" && <td>{row.tenant_name ?? ""}</td>}
                  <td class="num">{count(row.events)}</td>
                  <td class="num">{count(row.input_tokens)}</td>
                  <td class="num">{count(row.output_tokens)}</td>
                  <td class="num">{count(row.total_tokens)}</td>
                  <td class="num">{dollars(row.cost_micros)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
        <h2>Reconciliation</h2>
        <p>
          {`${r.failed_events} failed provider calls (charged nothing), ${r.duplicated_events} duplicated events, ${r.duplicates_prevented} duplicate writes prevented, ${r.retries} retries, ${r.internal_rate_events} events at the internal rate.`}{" "}
          <span class="muted">The details: GET /v1/admin/usage/reconciliation.</span>
        </p>
      </Layout>,
    );
  });

  app.get("/csv", async (c) => {
    const query = queryOf(c);
    const report = await services.usageReports.forAllTenants({ from: query.from, to: query.to, groupBy: query.group_by });
    return c.body(usageCsv(report), 200, usageCsvHeaders(report));
  });
  return app;
}
