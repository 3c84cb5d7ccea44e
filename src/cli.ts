import { parseArgs } from "node:util";

/**
 * `fence` — the admin tasks a platform engineer scripts, against a running Fence over HTTP (so it
 * works the same for the embedded database, which only one process may open, and for Postgres).
 *   FENCE_URL (default http://127.0.0.1:8787) and FENCE_ADMIN_KEY are read from the environment.
 */
const USAGE = `usage: fence <command> [options]

  tenants list
  tenants create --name <name> [--plan <plan>]
  tenants delete <tenant_id>
  keys issue <tenant_id> --name <name> [--project <project>] [--environment prod|test|sandbox]
             [--scopes query,ingest,read,owner] [--expires-at <ISO 8601>] [--description <text>]
  keys revoke <tenant_id> <key_id>

environment: FENCE_URL (default http://127.0.0.1:8787), FENCE_ADMIN_KEY (required)
output: JSON on stdout; errors on stderr with a non-zero exit code`;

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      name: { type: "string" },
      plan: { type: "string" },
      project: { type: "string" },
      environment: { type: "string" },
      scopes: { type: "string" },
      "expires-at": { type: "string" },
      description: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  const [group, command, ...rest] = positionals;
  if (values.help || !group) {
    console.log(USAGE);
    return values.help ? 0 : 2;
  }
  const baseUrl = (process.env.FENCE_URL ?? "http://127.0.0.1:8787").replace(/\/+$/, "");
  const adminKey = process.env.FENCE_ADMIN_KEY;
  if (!adminKey) {
    console.error("FENCE_ADMIN_KEY is not set");
    return 2;
  }
  const call = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${baseUrl}/v1/admin${path}`, {
      method,
      headers: { authorization: `Bearer ${adminKey}`, ...(body ? { "content-type": "application/json" } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    const text = await res.text();
    if (!res.ok) {
      console.error(`${method} ${path} → ${res.status} ${text}`);
      return 1;
    }
    console.log(text ? JSON.stringify(JSON.parse(text), null, 2) : JSON.stringify({ ok: true }));
    return 0;
  };

  switch (`${group} ${command ?? ""}`.trim()) {
    case "tenants list":
      return call("GET", "/tenants");
    case "tenants create":
      if (!values.name) break;
      return call("POST", "/tenants", { name: values.name, ...(values.plan ? { plan: values.plan } : {}) });
    case "tenants delete":
      if (!rest[0]) break;
      return call("DELETE", `/tenants/${encodeURIComponent(rest[0])}`);
    case "keys issue":
      if (!rest[0] || !values.name) break;
      return call("POST", `/tenants/${encodeURIComponent(rest[0])}/keys`, {
        name: values.name,
        ...(values.project ? { project: values.project } : {}),
        ...(values.environment ? { environment: values.environment } : {}),
        ...(values.scopes ? { scopes: values.scopes.split(",").map((s) => s.trim()) } : {}),
        ...(values["expires-at"] ? { expires_at: values["expires-at"] } : {}),
        ...(values.description ? { description: values.description } : {}),
      });
    case "keys revoke":
      if (!rest[0] || !rest[1]) break;
      return call("DELETE", `/tenants/${encodeURIComponent(rest[0])}/keys/${encodeURIComponent(rest[1])}`);
  }
  console.error(USAGE);
  return 2;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(`fence: ${(error as Error).message}`);
    process.exit(1);
  },
);
