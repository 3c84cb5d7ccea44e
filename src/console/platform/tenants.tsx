import { Hono } from "hono";
import { CreateTenantBody } from "../../http/schemas.js";
import type { FenceServices } from "../../http/services.js";
import { field, page, validForm, type ConsoleEnv } from "../console-env.js";
import { Csrf, Layout, Notice, Time } from "../layout.js";

/**
 * The platform's tenants (admin session): every tenant with its plan, and a form to make one —
 * TenantAdmin's calls, as POST/GET /v1/admin/tenants make them, audited the same way.
 */
export function tenantPages(services: Pick<FenceServices, "tenantAdmin">) {
  const app = new Hono<ConsoleEnv>();

  app.get("/", async (c) => {
    const tenants = await services.tenantAdmin.listTenants();
    const chrome = c.get("chrome");
    const created = c.req.query("created");
    return page(
      c,
      <Layout title="Tenants" chrome={chrome}>
        <Notice message={created !== undefined ? "The tenant was made. Issue its first key with POST /v1/admin/tenants/{id}/keys or the CLI." : undefined} />
        {tenants.length === 0 ? (
          <p>No tenants yet. Make the first one below.</p>
        ) : (
          <table>
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Plan</th>
                <th scope="col">Created</th>
                <th scope="col">Id</th>
              </tr>
            </thead>
            <tbody>
              {tenants.map((t) => (
                <tr>
                  <td>{t.name}</td>
                  <td>{t.plan}</td>
                  <td>
                    <Time at={t.createdAt} />
                  </td>
                  <td class="muted">
                    <code>{t.id}</code>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
        <h2>Make a tenant</h2>
        <form class="panel" method="post" action="/console/platform/tenants">
          <Csrf chrome={chrome} />
          <label for="name">Name</label>
          <input id="name" name="name" type="text" required maxlength={100} />
          <label for="plan">Plan</label>
          <input id="plan" name="plan" type="text" value="free" required />
          <p>
            <button type="submit">Make tenant</button>
          </p>
        </form>
      </Layout>,
    );
  });

  app.post("/", async (c) => {
    const form = await c.req.parseBody();
    const input = validForm(c, CreateTenantBody, { name: field(form, "name")?.trim(), plan: field(form, "plan")?.trim() || undefined });
    await services.tenantAdmin.createTenant(input);
    return c.redirect("/console/platform/tenants?created", 303);
  });
  return app;
}
