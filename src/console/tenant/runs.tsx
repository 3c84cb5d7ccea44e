import { Hono } from "hono";
import { runJson } from "../../http/routes/runs.js";
import type { FenceServices } from "../../http/services.js";
import type { RunKind, RunStatus, RunStep } from "../../db/schema.js";
import { page, type ConsoleEnv } from "../console-env.js";
import { Layout, Time } from "../layout.js";
import { needsScope } from "./scope-page.js";

const PAGE_SIZE = 50;
const KINDS: readonly RunKind[] = ["chat", "ingest"];
const STATUSES: readonly RunStatus[] = ["succeeded", "refused", "failed"];
type Run = ReturnType<typeof runJson>;

/** A filter value from the query string, if it is one of the allowed ones (anything else is no filter). */
function oneOf<T extends string>(allowed: readonly T[], value: string | undefined): T | undefined {
  return allowed.find((v) => v === value);
}

/**
 * A run's steps drawn as a timeline: one bar per step, placed at its start and as long as it
 * lasted, on the run's own time axis. SVG with attributes only (the CSP allows no inline style).
 */
export function Timeline(props: { run: Run }) {
  const steps = props.run.steps as RunStep[];
  if (steps.length === 0) return <p class="muted">No steps recorded (a refused run stops before its first).</p>;
  const start = new Date(props.run.started_at).getTime();
  const span = Math.max(1, props.run.latency_ms, ...steps.map((s) => new Date(s.started_at).getTime() - start + s.duration_ms));
  const rowHeight = 22;
  const labelWidth = 150;
  const width = 600;
  const scale = (ms: number) => ((width - labelWidth - 70) * ms) / span;
  return (
    <svg class="timeline" role="img" aria-label="The run's steps over time" viewBox={`0 0 ${width} ${steps.length * rowHeight + 4}`} width="100%">
      {steps.map((step, i) => {
        const offset = Math.max(0, new Date(step.started_at).getTime() - start);
        const y = i * rowHeight + 2;
        return (
          <g>
            <title>{`${step.name}: ${step.duration_ms} ms from +${offset} ms${step.error ? ` — ${step.error}` : ""}`}</title>
            <text x="0" y={y + 15} font-size="12" fill="currentColor">
              {step.attempt ? `${step.name} (attempt ${step.attempt})` : step.name}
            </text>
            <rect x={labelWidth + scale(offset)} y={y + 4} width={Math.max(2, scale(step.duration_ms))} height="12" rx="2" fill={step.status === "failed" ? "#c2410c" : "#2156c9"} />
            <text x={labelWidth + scale(offset) + Math.max(2, scale(step.duration_ms)) + 4} y={y + 15} font-size="11" fill="currentColor">
              {`${step.duration_ms} ms`}
            </text>
          </g>
        );
      })}
    </svg>
  );
}

/**
 * The tenant's runs (GET /v1/runs): a list filtered by kind and status, paged by cursor, and one
 * run with its question, answer, error and steps as a timeline. Reads wait for this instance's
 * run writes still under way, as the API's do, so a run just asked in Ask is there.
 */
export function runPages(services: Pick<FenceServices, "runs">) {
  const app = new Hono<ConsoleEnv>();
  app.use("*", needsScope("read", "Runs"));
  const { store } = services.runs;

  app.get("/", async (c) => {
    const ctx = c.get("tenant");
    const kind = oneOf(KINDS, c.req.query("kind"));
    const status = oneOf(STATUSES, c.req.query("status"));
    await services.runs.settled(ctx.tenantId);
    const listed = await store.list(ctx, { kind, status, limit: PAGE_SIZE, cursor: c.req.query("cursor") });
    const runs = listed.runs.map(runJson);
    const filters = { ...(kind ? { kind } : {}), ...(status ? { status } : {}) };
    return page(
      c,
      <Layout title="Runs" chrome={c.get("chrome")}>
        <form method="get" action="/console/runs" class="row">
          <div>
            <label for="kind">Kind</label>
            <select id="kind" name="kind">
              <option value="">any</option>
              {KINDS.map((k) => (
                <option value={k} selected={k === kind}>
                  {k}
                </option>
              ))}
            </select>
          </div>
          <div>
            <label for="status">Status</label>
            <select id="status" name="status">
              <option value="">any</option>
              {STATUSES.map((s) => (
                <option value={s} selected={s === status}>
                  {s}
                </option>
              ))}
            </select>
          </div>
          <button type="submit">Filter</button>
        </form>
        {runs.length === 0 ? (
          <p>{kind || status ? "No runs match these filters." : "No runs yet. Each question asked (Ask, POST /v1/chat) and each upload ingested is recorded here with its steps."}</p>
        ) : (
          <table>
            <thead>
              <tr>
                <th scope="col">Started</th>
                <th scope="col">Kind</th>
                <th scope="col">Status</th>
                <th scope="col">Question or model</th>
                <th scope="col" class="num">Latency</th>
              </tr>
            </thead>
            <tbody>
              {runs.map((run) => (
                <tr>
                  <td>
                    <a href={`/console/runs/${encodeURIComponent(run.request_id)}`}>
                      <Time at={run.started_at} />
                    </a>
                  </td>
                  <td>{run.kind}</td>
                  <td>
                    <span class={`badge ${run.status === "succeeded" ? "succeeded" : "failed"}`}>{run.status}</span>
                    {run.error && <div class="muted">{run.error.code}</div>}
                  </td>
                  <td>{run.question ?? run.model ?? <span class="muted">—</span>}</td>
                  <td class="num">{`${run.latency_ms} ms`}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
        {listed.nextCursor && (
          <p>
            <a href={`/console/runs?${new URLSearchParams({ ...filters, cursor: listed.nextCursor }).toString()}`}>Older runs</a>
          </p>
        )}
      </Layout>,
    );
  });

  app.get("/:requestId", async (c) => {
    const ctx = c.get("tenant");
    await services.runs.settled(ctx.tenantId);
    const run = runJson(await store.get(ctx, c.req.param("requestId")));
    return page(
      c,
      <Layout title={`Run ${run.request_id}`} chrome={c.get("chrome")}>
        <p>
          <span class={`badge ${run.status === "succeeded" ? "succeeded" : "failed"}`}>{run.status}</span> {run.kind} run, started <Time at={run.started_at} />,{" "}
          {`${run.latency_ms} ms`}
          {run.model && ` · ${run.provider ?? ""} ${run.model}`}
          {run.prompt_version && ` · prompt ${run.prompt_version}`}
        </p>
        {run.error && (
          <p class="error">
            {run.error.code}: {run.error.message}
          </p>
        )}
        {run.question && (
          <>
            <h2>Question</h2>
            <pre class="text">{run.question}</pre>
          </>
        )}
        {run.answer && (
          <>
            <h2>Answer</h2>
            <pre class="text">{run.answer}</pre>
          </>
        )}
        <h2>Steps</h2>
        <Timeline run={run} />
        <p>
          <a href="/console/runs">All runs</a>
        </p>
      </Layout>,
    );
  });
  return app;
}
