import { Hono } from "hono";
import { OwnerSettingsPatch } from "../../http/schemas-keys.js";
import type { FenceServices } from "../../http/services.js";
import { FEATURE_FLAGS } from "../../plans/tenant-settings.js";
import type { OwnerSettingsJson } from "../../plans/owner-settings.js";
import { field, page, validForm, type ConsoleEnv } from "../console-env.js";
import { Csrf, Layout, Notice, Time, type Chrome } from "../layout.js";
import { needsScope } from "./scope-page.js";

const ANSWER_STYLES = ["concise", "detailed", "bullet_points"] as const;

function SettingsPage(props: { chrome: Chrome; settings: OwnerSettingsJson; notice?: string | undefined }) {
  const { settings, chrome } = props;
  return (
    <Layout title="Settings" chrome={chrome}>
      <Notice message={props.notice} />
      <p class="muted">
        Plan <strong>{settings.plan}</strong>. The plan, budgets and rate limits are the platform's; these are yours. Last changed <Time at={settings.updated_at} />.
      </p>
      <form class="panel" method="post" action="/console/settings">
        <Csrf chrome={chrome} />
        <label for="persona">Persona (the start of the system prompt; empty for the default)</label>
        <textarea id="persona" name="persona" maxlength={2000}>
          {settings.persona ?? ""}
        </textarea>
        <label for="answer_style">Answer style</label>
        <select id="answer_style" name="answer_style">
          <option value="">default</option>
          {ANSWER_STYLES.map((style) => (
            <option value={style} selected={settings.answer_style === style}>
              {style.replace("_", " ")}
            </option>
          ))}
        </select>
        <label for="retrieval_k">Passages retrieved per question (empty for the default)</label>
        <input id="retrieval_k" name="retrieval_k" type="number" min={1} max={50} value={settings.retrieval_k ?? ""} />
        <fieldset>
          <legend>Features</legend>
          {FEATURE_FLAGS.map((flag) => {
            const state = settings.features[flag];
            return (
              <label>
                <input type="checkbox" name="features" value={flag} checked={state.enabled} disabled={!state.available && !state.enabled} /> {flag}
                {!state.available && <span class="muted"> — not in your plan</span>}
              </label>
            );
          })}
        </fieldset>
        <p>
          <button type="submit">Save settings</button>
        </p>
      </form>
    </Layout>
  );
}

/**
 * The owner's settings (GET/PATCH /v1/settings): persona, answer style, passages per question and
 * feature flags, within the plan. A flag the plan leaves out shows disabled; posting it anyway is
 * the API's 403 beyond_plan, shown as its message.
 */
export function settingsPages(services: Pick<FenceServices, "ownerSettings">) {
  const app = new Hono<ConsoleEnv>();
  app.use("*", needsScope("owner", "Settings"));

  app.get("/", async (c) => {
    const settings = await services.ownerSettings.get(c.get("tenant"));
    return page(c, <SettingsPage chrome={c.get("chrome")} settings={settings} notice={c.req.query("saved") !== undefined ? "Settings saved." : undefined} />);
  });

  app.post("/", async (c) => {
    const ctx = c.get("tenant");
    const form = await c.req.parseBody({ all: true });
    const current = await services.ownerSettings.get(ctx);
    const checked = new Set(([] as unknown[]).concat(form.features ?? []));
    const text = (name: string) => field(form, name)?.trim() ?? "";
    const k = text("retrieval_k");
    // A checkbox left unticked is a flag switched off; only flags whose state changes are sent,
    // so an untouched flag the plan leaves out is never "switched" and refused.
    const features = Object.fromEntries(FEATURE_FLAGS.filter((flag) => checked.has(flag) !== current.features[flag].enabled).map((flag) => [flag, checked.has(flag)]));
    const patch = validForm(c, OwnerSettingsPatch, {
      persona: text("persona") || null,
      answer_style: text("answer_style") || null,
      retrieval_k: k === "" ? null : Number(k),
      ...(Object.keys(features).length > 0 ? { features } : {}),
    });
    await services.ownerSettings.patch(ctx, patch);
    return c.redirect("/console/settings?saved", 303);
  });
  return app;
}
