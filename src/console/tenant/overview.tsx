import { Hono } from "hono";
import type { FenceServices } from "../../http/services.js";
import type { BudgetStatus } from "../../metering/budget-guard.js";
import type { UsageReport, UsageRow } from "../../metering/usage-report.js";
import { page, type ConsoleEnv } from "../console-env.js";
import { count, dollars, Layout, Time } from "../layout.js";
import { needsScope } from "./scope-page.js";

const DAY_MS = 24 * 60 * 60 * 1000;
/** The overview's window: the last 30 UTC days, today included. */
const WINDOW_DAYS = 30;

/** One series per measure, a point per day of the window (days without usage are zeros, not gaps). */
export function dailySeries(report: Pick<UsageReport<string>, "rows">, from: Date, days: number) {
  const byDay = new Map(report.rows.map((row) => [row.key, row]));
  const x: number[] = [];
  const tokens: number[] = [];
  const cost: number[] = [];
  const requests: number[] = [];
  for (let i = 0; i < days; i++) {
    const day = new Date(from.getTime() + i * DAY_MS);
    const row = byDay.get(day.toISOString().slice(0, 10));
    x.push(day.getTime() / 1000);
    tokens.push(row?.total_tokens ?? 0);
    cost.push((row?.cost_micros ?? 0) / 1_000_000);
    requests.push(row?.events ?? 0);
  }
  return { x, tokens, cost, requests };
}


function Gauge(props: { label: string; status: BudgetStatus; format: (n: number) => string }) {
  const { status } = props;
  return (
    <div class="panel">
      <strong>{props.label}</strong>
      {status.limit === null ? (
        <p>
          {props.format(status.used)} used · no limit <span class="muted">(resets <Time at={status.resets_at} />)</span>
        </p>
      ) : (
        <>
          <meter min={0} max={status.limit} low={status.limit * 0.75} high={status.limit * 0.9} optimum={0} value={Math.min(status.used + status.reserved, status.limit)}>
            {`${props.format(status.used)} of ${props.format(status.limit)}`}
          </meter>
          <p>
            {props.format(status.used)} of {props.format(status.limit)}
            {status.reserved > 0 && <span class="muted">{` (+${props.format(status.reserved)} held by requests in flight)`}</span>} · resets <Time at={status.resets_at} />
          </p>
        </>
      )}
    </div>
  );
}

function UsageTable(props: { caption: string; rows: UsageRow[] }) {
  if (props.rows.length === 0) return null;
  return (
    <table>
      <caption class="visually-hidden">{props.caption}</caption>
      <thead>
        <tr>
          <th scope="col">{props.caption}</th>
          <th scope="col" class="num">Requests</th>
          <th scope="col" class="num">Tokens</th>
          <th scope="col" class="num">Cost</th>
        </tr>
      </thead>
      <tbody>
        {props.rows.map((row) => (
          <tr>
            <td>{row.key}</td>
            <td class="num">{count(row.events)}</td>
            <td class="num">{count(row.total_tokens)}</td>
            <td class="num">{dollars(row.cost_micros)}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

/** A uPlot chart drawn by console.js from data-chart, over a table of the same numbers for readers without script. */
function DailyChart(props: { title: string; x: number[]; series: { label: string; values: number[] }[] }) {
  return (
    <figure class="chart panel" data-chart={JSON.stringify({ x: props.x, series: props.series })}>
      <figcaption>{props.title}</figcaption>
      <div class="plot"></div>
      <table>
        <thead>
          <tr>
            <th scope="col">Day</th>
            {props.series.map((s) => (
              <th scope="col" class="num">
                {s.label}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {props.x.map((t, i) => (
            <tr>
              <td>{new Date(t * 1000).toISOString().slice(0, 10)}</td>
              {props.series.map((s) => (
                <td class="num">{s.values[i]}</td>
              ))}
            </tr>
          ))}
        </tbody>
      </table>
    </figure>
  );
}

/**
 * The tenant's overview: its budgets as gauges with their reset times (the tenant's and the
 * signed-in key's own caps), its runs' latency (p50, p95) and refusals by reason, and its metered
 * usage over the last 30 days — per day as charts, and by model, key and feature. The numbers are GET /v1/usage's and GET /v1/limits's, read through
 * the same services under the same TenantContext.
 */
export function overviewPages(services: Pick<FenceServices, "usageReports" | "budgets" | "runs">) {
  return new Hono<ConsoleEnv>().get("/", needsScope("read", "Overview"), async (c) => {
    const ctx = c.get("tenant");
    const now = new Date();
    const from = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate()) - (WINDOW_DAYS - 1) * DAY_MS);
    // To the end of today rather than now: the same events (none is dated in the future), and
    // whole days only, which the daily rollup answers without reading today's events.
    const window = { from: from.toISOString(), to: new Date(from.getTime() + WINDOW_DAYS * DAY_MS).toISOString() };
    await services.runs.settled(ctx.tenantId);
    const [budgets, byDay, byModel, byKey, byFeature, runs] = await Promise.all([
      services.budgets.status(ctx),
      services.usageReports.forTenant(ctx, { ...window, groupBy: "day" }),
      services.usageReports.forTenant(ctx, { ...window, groupBy: "model" }),
      services.usageReports.forTenant(ctx, { ...window, groupBy: "key" }),
      services.usageReports.forTenant(ctx, { ...window, groupBy: "feature" }),
      services.runs.store.summary(ctx, from),
    ]);
    const daily = dailySeries(byDay, from, WINDOW_DAYS);
    const totals = byDay.totals;
    return page(
      c,
      <Layout title="Overview" chrome={c.get("chrome")}>
        <p class="muted">
          Plan <strong>{budgets.plan}</strong>. Usage over the last {WINDOW_DAYS} days (UTC): {count(totals.events)} metered calls, {count(totals.total_tokens)} tokens,{" "}
          {dollars(totals.cost_micros)}.
        </p>
        <h2>Budgets</h2>
        <div class="grid">
          <Gauge label="Tokens today" status={budgets.tokens_per_day} format={count} />
          <Gauge label="Tokens this month" status={budgets.tokens_per_month} format={count} />
          <Gauge label="Spend this month" status={budgets.spend_per_month_micros} format={dollars} />
          <Gauge label="This key's tokens this month" status={budgets.key.tokens_per_month} format={count} />
        </div>
        <h2>Latency and refusals</h2>
        {runs.latency.length === 0 && runs.notSucceeded.length === 0 ? (
          <p>No runs in the last {WINDOW_DAYS} days: each question and each ingested upload is recorded as a run, with its latency.</p>
        ) : (
          <div class="grid">
            <table>
              <caption class="visually-hidden">Latency of succeeded runs</caption>
              <thead>
                <tr>
                  <th scope="col">Succeeded</th>
                  <th scope="col" class="num">Runs</th>
                  <th scope="col" class="num" title="From 10 % latency buckets: within 5 % of the exact percentile">
                    p50 ≈
                  </th>
                  <th scope="col" class="num" title="From 10 % latency buckets: within 5 % of the exact percentile">
                    p95 ≈
                  </th>
                </tr>
              </thead>
              <tbody>
                {runs.latency.map((row) => (
                  <tr>
                    <td>{row.kind}</td>
                    <td class="num">{count(row.runs)}</td>
                    <td class="num">{row.p50Ms === null ? "—" : `${Math.round(row.p50Ms)} ms`}</td>
                    <td class="num">{row.p95Ms === null ? "—" : `${Math.round(row.p95Ms)} ms`}</td>
                  </tr>
                ))}
              </tbody>
            </table>
            <table>
              <caption class="visually-hidden">Refused and failed runs by reason</caption>
              <thead>
                <tr>
                  <th scope="col">Refused or failed</th>
                  <th scope="col">Reason</th>
                  <th scope="col" class="num">Runs</th>
                </tr>
              </thead>
              <tbody>
                {runs.notSucceeded.length === 0 ? (
                  <tr>
                    <td colspan={3} class="muted">
                      None.
                    </td>
                  </tr>
                ) : (
                  runs.notSucceeded.map((row) => (
                    <tr>
                      <td>{`${row.kind} ${row.status}`}</td>
                      <td>
                        <code>{row.code}</code>
                      </td>
                      <td class="num">{count(row.runs)}</td>
                    </tr>
                  ))
                )}
              </tbody>
            </table>
          </div>
        )}
        <h2>Usage</h2>
        {totals.events === 0 ? (
          <p>No metered usage in the last {WINDOW_DAYS} days. Upload a document and ask a question: each embedding and model call is metered here.</p>
        ) : (
          <>
            <div class="grid">
              <DailyChart title="Tokens per day" x={daily.x} series={[{ label: "Tokens", values: daily.tokens }]} />
              <DailyChart title="Cost per day (USD)" x={daily.x} series={[{ label: "Cost", values: daily.cost }]} />
              <DailyChart title="Metered calls per day" x={daily.x} series={[{ label: "Calls", values: daily.requests }]} />
            </div>
            <h3>By model</h3>
            <UsageTable caption="Model" rows={byModel.rows} />
            <h3>By key</h3>
            <UsageTable caption="Key" rows={byKey.rows} />
            <h3>By feature</h3>
            <UsageTable caption="Feature" rows={byFeature.rows} />
          </>
        )}
      </Layout>,
    );
  });
}
