import { parseArgs } from "node:util";

/**
 * `fence` — the tasks a platform engineer or a tenant's key owner scripts, against a running Fence
 * over HTTP (so it works the same for the embedded database, which only one process may open, and
 * for Postgres). FENCE_URL (default http://127.0.0.1:8787) is read from the environment, and the
 * credential each command needs: FENCE_ADMIN_KEY (the platform admin) or FENCE_API_KEY (a tenant
 * key with the `owner` scope).
 */
const USAGE = `usage: fence <command> [options]

platform admin (FENCE_ADMIN_KEY):
  tenants list
  tenants create --name <name> [--plan <plan>]
  tenants suspend <tenant_id>     (its keys answer 403, its queued jobs wait)
  tenants resume <tenant_id>
  tenants delete <tenant_id>
  keys issue <tenant_id> --name <name> [--project <project>] [--environment prod|test|sandbox]
             [--scopes query,ingest,read,owner] [--expires-at <ISO 8601>] [--description <text>]
             [--requests-per-minute <n>] [--tokens-per-month <n>] [--spend-per-month-micros <n>]
  keys revoke <tenant_id> <key_id>
  audit all [--tenant <tenant_id>] [--action <action>] [--limit <n>]

a tenant's owner (FENCE_API_KEY, a key with the owner scope):
  keys list [--include-revoked]
  keys create --name <name> [--project …] [--environment …] [--scopes …] [--expires-at …] [--description …]
              [--requests-per-minute …] [--tokens-per-month …] [--spend-per-month-micros …]
  keys update <key_id> [--name …] [--description …] [--requests-per-minute <n|none>]
              [--tokens-per-month <n|none>] [--spend-per-month-micros <n|none>]
  keys revoke <key_id>
  keys rotate <key_id> [--grace-seconds <0..86400, default 3600>]
  audit list [--action <action>] [--limit <n>]
  settings get
  settings patch '<JSON merge patch>'   e.g. '{"persona":"Terse.","features":{"chat.streaming":false}}'

environment: FENCE_URL (default http://127.0.0.1:8787), FENCE_ADMIN_KEY, FENCE_API_KEY
output: JSON on stdout; errors on stderr with a non-zero exit code`;

type Credential = "FENCE_ADMIN_KEY" | "FENCE_API_KEY";

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
      "include-revoked": { type: "boolean" },
      "grace-seconds": { type: "string" },
      tenant: { type: "string" },
      action: { type: "string" },
      limit: { type: "string" },
      "requests-per-minute": { type: "string" },
      "tokens-per-month": { type: "string" },
      "spend-per-month-micros": { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  const [group, command, ...rest] = positionals;
  if (values.help || !group) {
    console.log(USAGE);
    return values.help ? 0 : 2;
  }
  const baseUrl = (process.env.FENCE_URL ?? "http://127.0.0.1:8787").replace(/\/+$/, "");
  const call = async (credential: Credential, method: string, path: string, body?: unknown) => {
    const secret = process.env[credential];
    if (!secret) {
      console.error(`${credential} is not set`);
      return 2;
    }
    const res = await fetch(`${baseUrl}${path}`, {
      method,
      headers: { authorization: `Bearer ${secret}`, ...(body ? { "content-type": "application/json" } : {}) },
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
  const admin = (method: string, path: string, body?: unknown) => call("FENCE_ADMIN_KEY", method, `/v1/admin${path}`, body);
  const owner = (method: string, path: string, body?: unknown) => call("FENCE_API_KEY", method, `/v1${path}`, body);
  const keyBody = () => ({
    name: values.name,
    ...(values.project ? { project: values.project } : {}),
    ...(values.environment ? { environment: values.environment } : {}),
    ...(values.scopes ? { scopes: values.scopes.split(",").map((s) => s.trim()) } : {}),
    ...(values["expires-at"] ? { expires_at: values["expires-at"] } : {}),
    ...(values.description ? { description: values.description } : {}),
    ...limits(),
  });
  /** The key limits given, as numbers; `none` (for an update) clears one. Undefined when one is not a number. */
  const limits = (): Record<string, number | null> => {
    const given: Record<string, number | null> = {};
    for (const [option, field] of [
      ["requests-per-minute", "requests_per_minute"],
      ["tokens-per-month", "tokens_per_month"],
      ["spend-per-month-micros", "spend_per_month_micros"],
    ] as const) {
      const value = values[option];
      if (value !== undefined) given[field] = value === "none" ? null : /^\d+$/.test(value) ? Number(value) : Number.NaN;
    }
    return given;
  };
  const query = (params: Record<string, string | undefined>) => {
    const search = new URLSearchParams(Object.entries(params).filter((entry): entry is [string, string] => entry[1] !== undefined));
    return search.size > 0 ? `?${search}` : "";
  };
  const id = encodeURIComponent;
  // NaN is not JSON: a limit that is not a number is the user's mistake, answered with the usage.
  if (Object.values(limits()).some((v) => Number.isNaN(v))) {
    console.error(USAGE);
    return 2;
  }

  switch (`${group} ${command ?? ""}`.trim()) {
    case "tenants list":
      return admin("GET", "/tenants");
    case "tenants create":
      if (!values.name) break;
      return admin("POST", "/tenants", { name: values.name, ...(values.plan ? { plan: values.plan } : {}) });
    case "tenants suspend":
    case "tenants resume":
      if (!rest[0]) break;
      return admin("POST", `/tenants/${id(rest[0])}/${command}`);
    case "tenants delete":
      if (!rest[0]) break;
      return admin("DELETE", `/tenants/${id(rest[0])}`);
    case "keys issue":
      if (!rest[0] || !values.name) break;
      return admin("POST", `/tenants/${id(rest[0])}/keys`, keyBody());
    case "keys revoke":
      // Two ids: the admin revokes any tenant's key; one: the owner revokes a key of its own tenant.
      if (rest[0] && rest[1]) return admin("DELETE", `/tenants/${id(rest[0])}/keys/${id(rest[1])}`);
      if (rest[0]) return owner("DELETE", `/keys/${id(rest[0])}`);
      break;
    case "keys list":
      return owner("GET", `/keys${query({ include_revoked: values["include-revoked"] ? "true" : undefined })}`);
    case "keys create":
      if (!values.name) break;
      return owner("POST", "/keys", keyBody());
    case "keys rotate": {
      if (!rest[0]) break;
      const grace = values["grace-seconds"];
      if (grace !== undefined && !/^\d+$/.test(grace)) break;
      return owner("POST", `/keys/${id(rest[0])}/rotate`, grace === undefined ? {} : { grace_seconds: Number(grace) });
    }
    case "keys update": {
      if (!rest[0]) break;
      const changes = {
        ...(values.name ? { name: values.name } : {}),
        ...(values.description !== undefined ? { description: values.description === "none" ? null : values.description } : {}),
        ...limits(),
      };
      return owner("PATCH", `/keys/${id(rest[0])}`, changes);
    }
    case "settings get":
      return owner("GET", "/settings");
    case "settings patch": {
      if (!rest[0]) break;
      let patch: unknown;
      try {
        patch = JSON.parse(rest[0]);
      } catch {
        console.error("settings patch: the argument is not JSON");
        return 2;
      }
      return owner("PATCH", "/settings", patch);
    }
    case "audit list":
      return owner("GET", `/audit${query({ action: values.action, limit: values.limit })}`);
    case "audit all":
      return admin("GET", `/audit${query({ tenant_id: values.tenant, action: values.action, limit: values.limit })}`);
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
