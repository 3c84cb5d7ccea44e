import { Hono } from "hono";
import { NotFoundError } from "../../core/errors.js";
import { CreateTenantBody } from "../../http/schemas.js";
import type { FenceServices } from "../../http/services.js";
import type { TenantSummary } from "../../tenancy/tenant-admin.js";
import { field, page, validForm, type ConsoleEnv } from "../console-env.js";
import { Csrf, ErrorNote, Layout, Notice, Time, type Chrome } from "../layout.js";

const NOTICES: Record<string, string> = {
  created: "The tenant was made. Issue its first key with POST /v1/admin/tenants/{id}/keys or the CLI.",
  plan: "The tenant's plan was changed; its requests use the new one at once.",
  suspended: "The tenant is suspended: its keys and sessions are refused (403) and its queued jobs wait, until it is resumed.",
  resumed: "The tenant is active again: its keys work from the next request, and its queued jobs run in their turn.",
  purged: "The tenant was purged: its documents, chunks, keys, jobs and cache entries are gone.",
};

/**
 * The platform's tenants (admin session): every tenant with its plan and state, a form to make one,
 * a plan change, a suspend or resume per tenant (undone by the other, so a browser confirm is
 * enough), and a purge behind a confirmation page that asks for the tenant's name — TenantAdmin's
 * and PlanAdmin's calls, as the admin API makes them, audited the same way.
 */
export function tenantPages(services: Pick<FenceServices, "tenantAdmin" | "planAdmin">) {
  const app = new Hono<ConsoleEnv>();

  app.get("/", async (c) => {
    const [tenants, plans] = await Promise.all([services.tenantAdmin.listTenants(), services.planAdmin.list()]);
    const chrome = c.get("chrome");
    const notice = NOTICES[Object.keys(c.req.query()).find((k) => k in NOTICES) ?? ""];
    return page(
      c,
      <Layout title="Tenants" chrome={chrome}>
        <Notice message={notice} />
        {tenants.length === 0 ? (
          <p>No tenants yet. Make the first one below.</p>
        ) : (
          <table>
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Plan</th>
                <th scope="col">State</th>
                <th scope="col">Created</th>
                <th scope="col">Id</th>
                <th scope="col">Purge</th>
              </tr>
            </thead>
            <tbody>
              {tenants.map((t) => (
                <tr>
                  <td>{t.name}</td>
                  <td>
                    <form class="row" method="post" action={`/console/platform/tenants/${t.id}/plan`}>
                      <Csrf chrome={chrome} />
                      <select name="plan" aria-label={`Plan of ${t.name}`}>
                        {plans.map((p) => (
                          <option value={p.name} selected={p.name === t.plan}>
                            {p.name}
                          </option>
                        ))}
                      </select>
                      <button type="submit">Set</button>
                    </form>
                  </td>
                  <td>
                    <TenantState tenant={t} chrome={chrome} />
                  </td>
                  <td>
                    <Time at={t.createdAt} />
                  </td>
                  <td class="muted">
                    <code>{t.id}</code>
                  </td>
                  <td>
                    <a href={`/console/platform/tenants/${t.id}/purge`}>Purge…</a>
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
          <select id="plan" name="plan">
            {plans.map((p) => (
              <option value={p.name} selected={p.name === "free"}>
                {p.name}
              </option>
            ))}
          </select>
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

  app.post("/:id/plan", async (c) => {
    const plan = field(await c.req.parseBody(), "plan") ?? "";
    await services.planAdmin.setTenantPlan(c.req.param("id"), plan);
    return c.redirect("/console/platform/tenants?plan", 303);
  });

  // Each idempotent (TenantAdmin): a form posted twice, or from a page that was out of date, leaves the state asked for.
  app.post("/:id/suspend", async (c) => {
    await services.tenantAdmin.suspendTenant(c.req.param("id"));
    return c.redirect("/console/platform/tenants?suspended", 303);
  });

  app.post("/:id/resume", async (c) => {
    await services.tenantAdmin.resumeTenant(c.req.param("id"));
    return c.redirect("/console/platform/tenants?resumed", 303);
  });

  const tenantNamed = async (id: string) => {
    const tenant = (await services.tenantAdmin.listTenants()).find((t) => t.id === id);
    if (!tenant) throw new NotFoundError("Tenant");
    return tenant;
  };

  // Purging cannot be undone: a page of its own that names what goes, and the tenant's name typed in.
  app.get("/:id/purge", async (c) => {
    const tenant = await tenantNamed(c.req.param("id"));
    return page(c, <PurgePage tenant={tenant} chrome={c.get("chrome")} />);
  });

  app.post("/:id/purge", async (c) => {
    const tenant = await tenantNamed(c.req.param("id"));
    if (field(await c.req.parseBody(), "confirm_name") !== tenant.name) {
      return page(c, <PurgePage tenant={tenant} chrome={c.get("chrome")} error="The name typed is not the tenant's: nothing was purged." />, 400);
    }
    await services.tenantAdmin.purgeTenant(tenant.id);
    return c.redirect("/console/platform/tenants?purged", 303);
  });
  return app;
}

/** Active, or suspended since when; with the button that changes it. */
function TenantState(props: { tenant: TenantSummary; chrome: Chrome }) {
  const { tenant } = props;
  if (tenant.suspendedAt === null) {
    return (
      <form
        class="row"
        method="post"
        action={`/console/platform/tenants/${tenant.id}/suspend`}
        data-confirm={`Suspend “${tenant.name}”? Its keys and sessions are refused at once and its queued jobs wait, until you resume it.`}
      >
        <Csrf chrome={props.chrome} />
        <span class="badge succeeded">Active</span>
        <button type="submit" class="danger" aria-label={`Suspend ${tenant.name}`}>
          Suspend
        </button>
      </form>
    );
  }
  return (
    <form class="row" method="post" action={`/console/platform/tenants/${tenant.id}/resume`}>
      <Csrf chrome={props.chrome} />
      <span>
        <span class="badge failed">Suspended</span> since <Time at={tenant.suspendedAt} />
      </span>
      <button type="submit" aria-label={`Resume ${tenant.name}`}>
        Resume
      </button>
    </form>
  );
}

function PurgePage(props: { tenant: { id: string; name: string; plan: string }; chrome: Chrome; error?: string }) {
  const { tenant } = props;
  return (
    <Layout title={`Purge ${tenant.name}`} chrome={props.chrome}>
      <ErrorNote message={props.error} />
      <p>
        Purging deletes every document, chunk, key, job, run and cache entry of <strong>{tenant.name}</strong> (<code>{tenant.id}</code>, plan {tenant.plan}). It cannot be
        undone; the audit trail keeps the record of it.
      </p>
      <form class="panel" method="post" action={`/console/platform/tenants/${tenant.id}/purge`}>
        <Csrf chrome={props.chrome} />
        <label for="confirm_name">Type the tenant's name to confirm</label>
        <input id="confirm_name" name="confirm_name" type="text" required autocomplete="off" />
        <p>
          <button type="submit" class="danger">
            Purge this tenant
          </button>
        </p>
      </form>
      <p>
        <a href="/console/platform/tenants">Back to tenants</a>
      </p>
    </Layout>
  );
}
