import { Hono } from "hono";
import { auditEventJson } from "../../http/routes/keys.js";
import type { FenceServices } from "../../http/services.js";
import { page, type ConsoleEnv } from "../console-env.js";
import { Layout, Time } from "../layout.js";
import { needsScope } from "./scope-page.js";

/** The tenant's audit trail (GET /v1/audit): who changed which key, setting or plan, and when. */
export function auditPages(services: Pick<FenceServices, "auditLog">) {
  const app = new Hono<ConsoleEnv>();
  app.use("*", needsScope("owner", "Audit"));
  app.get("/", async (c) => {
    const listed = await services.auditLog.forTenant(c.get("tenant"), { limit: 50, cursor: c.req.query("cursor") });
    const events = listed.events.map(auditEventJson);
    return page(
      c,
      <Layout title="Audit" chrome={c.get("chrome")}>
        {events.length === 0 ? (
          <p>Nothing changed yet. Issuing, rotating or revoking a key and changing settings are recorded here.</p>
        ) : (
          <table>
            <thead>
              <tr>
                <th scope="col">When</th>
                <th scope="col">Who</th>
                <th scope="col">What</th>
                <th scope="col">Target</th>
              </tr>
            </thead>
            <tbody>
              {events.map((event) => (
                <tr>
                  <td>
                    <Time at={event.at} />
                  </td>
                  <td>{event.actor_key_id ? `${event.actor} (key ${event.actor_key_id.slice(0, 8)})` : event.actor}</td>
                  <td>{event.action}</td>
                  <td class="muted">{event.target_id ? <code>{event.target_id}</code> : "—"}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
        {listed.nextCursor && (
          <p>
            <a href={`/console/audit?cursor=${encodeURIComponent(listed.nextCursor)}`}>Older events</a>
          </p>
        )}
      </Layout>,
    );
  });
  return app;
}
