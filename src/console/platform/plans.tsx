import { Hono } from "hono";
import type { FenceServices } from "../../http/services.js";
import type { PlanJson } from "../../plans/plan-admin.js";
import { ValidationError } from "../../core/errors.js";
import { field, page, type ConsoleEnv } from "../console-env.js";
import { Csrf, ErrorNote, Layout, Notice, Time, type Chrome } from "../layout.js";

const limit = (n: number | null) => (n === null ? "unlimited" : n.toLocaleString("en-US"));

/** A plan's settings as PUT /v1/admin/plans/{plan} takes them: everything but its name and time. */
function settingsOf(plan: PlanJson): Omit<PlanJson, "name" | "updated_at"> {
  const { name: _name, updated_at: _updated, ...settings } = plan;
  return settings;
}

function PlanEditor(props: { chrome: Chrome; plan: PlanJson; text?: string; error?: string | undefined; saved?: boolean }) {
  const { plan } = props;
  return (
    <Layout title={`Plan ${plan.name}`} chrome={props.chrome}>
      <Notice message={props.saved ? "Saved: every tenant on this plan uses it from its next request." : undefined} />
      <ErrorNote message={props.error} />
      <p class="muted">
        The whole plan, as <code>PUT /v1/admin/plans/{plan.name}</code> takes it: the three budgets must be present (null is unlimited), unknown fields are refused. Last
        changed <Time at={plan.updated_at} />.
      </p>
      <form class="panel" method="post" action={`/console/platform/plans/${plan.name}`}>
        <Csrf chrome={props.chrome} />
        <label for="settings">Settings (JSON)</label>
        <textarea id="settings" name="settings" rows={22} spellcheck={false}>
          {props.text ?? JSON.stringify(settingsOf(plan), null, 2)}
        </textarea>
        <p>
          <button type="submit">Save plan</button>
        </p>
      </form>
      <p>
        <a href="/console/platform/plans">All plans</a>
      </p>
    </Layout>
  );
}

/** The plans (admin session): their budgets and limits at a glance, and each one edited whole, through PlanAdmin with its validation and audit. */
export function planPages(services: Pick<FenceServices, "planAdmin">) {
  const app = new Hono<ConsoleEnv>();

  app.get("/", async (c) => {
    const plans = await services.planAdmin.list();
    return page(
      c,
      <Layout title="Plans" chrome={c.get("chrome")}>
        <table>
          <thead>
            <tr>
              <th scope="col">Plan</th>
              <th scope="col" class="num">Tokens/day</th>
              <th scope="col" class="num">Tokens/month</th>
              <th scope="col" class="num">Spend/month (µ$)</th>
              <th scope="col" class="num">Requests/min</th>
              <th scope="col" class="num">Concurrency</th>
              <th scope="col" class="num">Weight</th>
            </tr>
          </thead>
          <tbody>
            {plans.map((p) => (
              <tr>
                <td>
                  <a href={`/console/platform/plans/${p.name}`}>{p.name}</a>
                </td>
                <td class="num">{limit(p.tokens_per_day)}</td>
                <td class="num">{limit(p.tokens_per_month)}</td>
                <td class="num">{limit(p.spend_per_month_micros)}</td>
                <td class="num">{limit(p.requests_per_minute)}</td>
                <td class="num">{limit(p.max_concurrency)}</td>
                <td class="num">{p.scheduling_weight}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </Layout>,
    );
  });

  app.get("/:name", async (c) => {
    const plan = await services.planAdmin.get(c.req.param("name"));
    return page(c, <PlanEditor chrome={c.get("chrome")} plan={plan} saved={c.req.query("saved") !== undefined} />);
  });

  app.post("/:name", async (c) => {
    const name = c.req.param("name");
    const text = field(await c.req.parseBody(), "settings") ?? "";
    // A refusal is shown beside what was typed, so a typo is mended rather than typed again.
    const refused = async (message: string) => page(c, <PlanEditor chrome={c.get("chrome")} plan={await services.planAdmin.get(name)} text={text} error={message} />, 400);
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      return refused("Invalid request: settings: not JSON");
    }
    try {
      await services.planAdmin.put(name, body);
    } catch (error) {
      if (error instanceof ValidationError) return refused(error.message);
      throw error;
    }
    return c.redirect(`/console/platform/plans/${encodeURIComponent(name)}?saved`, 303);
  });
  return app;
}
