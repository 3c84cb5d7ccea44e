import { Hono } from "hono";
import { SCOPES } from "../../core/scopes.js";
import { CreateKeyBody } from "../../http/schemas.js";
import type { FenceServices } from "../../http/services.js";
import { DEFAULT_ROTATION_GRACE_SECONDS } from "../../tenancy/tenant-keys.js";
import type { IssuedKey, KeyView } from "../../tenancy/key-records.js";
import { page, validForm, type ConsoleContext, type ConsoleEnv } from "../console-env.js";
import { Csrf, ErrorNote, Layout, Notice, Time, type Chrome } from "../layout.js";
import { needsScope } from "./scope-page.js";

function IssuedNote(props: { issued: IssuedKey; verb: string }) {
  return (
    <div class="notice" role="status">
      <p>
        {`${props.verb} “${props.issued.name}”. Copy the key now: it is shown only once, and only its hash is kept.`}
      </p>
      <pre class="text">
        <code>{props.issued.key}</code>
      </pre>
    </div>
  );
}

function KeysPage(props: { chrome: Chrome; keys: KeyView[]; selfId: string; issued?: { key: IssuedKey; verb: string } | undefined; notice?: string | undefined; error?: string | undefined }) {
  const { chrome } = props;
  return (
    <Layout title="Keys" chrome={chrome}>
      {props.issued && <IssuedNote issued={props.issued.key} verb={props.issued.verb} />}
      <Notice message={props.notice} />
      <ErrorNote message={props.error} />
      <table>
        <thead>
          <tr>
            <th scope="col">Name</th>
            <th scope="col">Scopes</th>
            <th scope="col">Limits</th>
            <th scope="col">Last used</th>
            <th scope="col">Expires</th>
            <th scope="col">Actions</th>
          </tr>
        </thead>
        <tbody>
          {props.keys.map((key) => (
            <tr>
              <td>
                {key.name} <span class="muted">{`${key.prefix}…`}</span>
                {key.id === props.selfId && <span class="badge">this session's key</span>}
                {key.description && <div class="muted">{key.description}</div>}
              </td>
              <td>{key.scopes.join(", ")}</td>
              <td>
                {[
                  key.requests_per_minute !== null ? `${key.requests_per_minute}/min` : undefined,
                  key.tokens_per_month !== null ? `${key.tokens_per_month.toLocaleString("en-US")} tokens/month` : undefined,
                ]
                  .filter(Boolean)
                  .join(" · ") || <span class="muted">the plan's</span>}
              </td>
              <td>
                <Time at={key.last_used_at} />
              </td>
              <td>
                <Time at={key.expires_at} />
              </td>
              <td>
                <form class="inline" method="post" action={`/console/keys/${key.id}/rotate`} data-confirm={`Rotate “${key.name}”? The old secret keeps working for ${DEFAULT_ROTATION_GRACE_SECONDS / 3600} h.`}>
                  <Csrf chrome={chrome} />
                  <button type="submit">Rotate</button>
                </form>{" "}
                <form class="inline" method="post" action={`/console/keys/${key.id}/revoke`} data-confirm={`Revoke “${key.name}” and the keys it made? Requests with it fail at once.`}>
                  <Csrf chrome={chrome} />
                  <button type="submit" class="danger">
                    Revoke
                  </button>
                </form>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <h2>Issue a key</h2>
      <form class="panel" method="post" action="/console/keys">
        <Csrf chrome={chrome} />
        <label for="name">Name</label>
        <input id="name" name="name" type="text" required maxlength={100} />
        <fieldset>
          <legend>Scopes</legend>
          {SCOPES.map((scope) => (
            <label>
              <input type="checkbox" name="scopes" value={scope} checked={scope === "query"} /> {scope}
            </label>
          ))}
        </fieldset>
        <label for="requests_per_minute">Requests per minute (optional; at most this key's own)</label>
        <input id="requests_per_minute" name="requests_per_minute" type="number" min={1} />
        <label for="expires_at">Expires (optional, UTC)</label>
        <input id="expires_at" name="expires_at" type="text" placeholder="2027-01-31T00:00:00Z" />
        <p>
          <button type="submit">Issue key</button>
        </p>
      </form>
    </Layout>
  );
}

/** The issue form as the API's CreateKeyBody: the same schema, the same messages. */
async function keyRequestOf(c: ConsoleContext) {
  const form = await c.req.parseBody({ all: true });
  const one = (name: string) => {
    const value = form[name];
    return typeof value === "string" && value.trim() !== "" ? value.trim() : undefined;
  };
  const scopes = ([] as unknown[]).concat(form.scopes ?? []).filter((s): s is string => typeof s === "string");
  const rpm = one("requests_per_minute");
  return validForm(c, CreateKeyBody, {
    name: one("name"),
    scopes,
    ...(rpm !== undefined ? { requests_per_minute: Number(rpm) } : {}),
    ...(one("expires_at") !== undefined ? { expires_at: one("expires_at") } : {}),
  });
}

/**
 * An owner's keys: list, issue (shown once), rotate (the old secret works for the default grace
 * period), revoke (with the keys it made). The same TenantKeys calls as /v1/keys, with the same
 * bounds: a key never issues one with more scopes or higher limits than its own, nor beyond the plan.
 */
export function keyPages(services: Pick<FenceServices, "tenantKeys">) {
  const app = new Hono<ConsoleEnv>();
  app.use("*", needsScope("owner", "Keys"));

  const render = async (c: ConsoleContext, extra: { issued?: { key: IssuedKey; verb: string }; notice?: string; error?: string } = {}, status: 200 | 201 | 400 = 200) => {
    const ctx = c.get("tenant");
    const keys = await services.tenantKeys.list(ctx, { includeRevoked: false });
    return page(c, <KeysPage chrome={c.get("chrome")} keys={keys} selfId={ctx.keyId} {...extra} />, status === 201 ? 200 : status);
  };

  app.get("/", (c) => render(c, { notice: c.req.query("revoked") !== undefined ? "The key was revoked, with the keys it made." : undefined }));

  app.post("/", async (c) => {
    const request = await keyRequestOf(c);
    const issued = await services.tenantKeys.create(c.get("tenant"), request);
    return render(c, { issued: { key: issued, verb: "Issued" } });
  });

  app.post("/:id/rotate", async (c) => {
    const issued = await services.tenantKeys.rotate(c.get("tenant"), c.req.param("id"), DEFAULT_ROTATION_GRACE_SECONDS);
    return render(c, { issued: { key: issued, verb: "Rotated" } });
  });

  app.post("/:id/revoke", async (c) => {
    await services.tenantKeys.revoke(c.get("tenant"), c.req.param("id"));
    return c.redirect("/console/keys?revoked", 303);
  });
  return app;
}
