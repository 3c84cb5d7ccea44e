import { parseArgs } from "node:util";
import { BaselineError } from "./baseline.js";
import { TargetError } from "./client.js";
import { FixtureError } from "./fixtures.js";
import { runQualityEval } from "./run-eval.js";

/**
 * `npm run eval:quality` — per-tenant answer quality, gated by each tenant's own baseline.
 *
 *   --url <base>            a running Fence (env FENCE_URL); default: start one in-process
 *   --admin-key <key>       its admin key (env FENCE_ADMIN_KEY)
 *   --tenant <label>=<key>  also evaluate an existing tenant's stored cases (repeatable)
 *   --baseline <file>       default evals/quality/baseline.json
 *   --fixtures <dir>        default fixtures/quality
 *   --update-baseline       record this run's figures as the baseline (prints the diff)
 *
 * Exit codes: 0 at or above the baseline, 1 below it (or no comparable baseline), 2 when the
 * eval itself could not run (bad fixtures, unreachable target, bad command line).
 */
const USAGE =
  "usage: tsx evals/quality/run.ts [--url <base> --admin-key <key>] [--tenant <label>=<key> ...] " +
  "[--baseline <file>] [--fixtures <dir>] [--update-baseline]";

class UsageError extends Error {}

function parseCli() {
  const { values } = parseArgs({
    options: {
      url: { type: "string" },
      "admin-key": { type: "string" },
      tenant: { type: "string", multiple: true },
      baseline: { type: "string" },
      fixtures: { type: "string" },
      "update-baseline": { type: "boolean" },
      help: { type: "boolean" },
    },
  });
  if (values.help) {
    console.log(USAGE);
    process.exit(0);
  }
  const url = values.url ?? (process.env.FENCE_URL || undefined);
  const adminKey = values["admin-key"] ?? (process.env.FENCE_ADMIN_KEY || undefined);
  if (url && !/^https?:\/\//.test(url)) throw new UsageError(`--url must be an http(s) URL, got ${url}`);
  if (url && !adminKey) throw new UsageError("--url needs --admin-key (or FENCE_ADMIN_KEY): the eval creates and deletes its own tenants");
  const tenantKeys = (values.tenant ?? []).map((spec) => {
    const at = spec.indexOf("=");
    if (at < 1 || at === spec.length - 1) throw new UsageError(`--tenant takes <label>=<key>, got ${spec.slice(0, 20)}…`);
    return { label: spec.slice(0, at), key: spec.slice(at + 1) };
  });
  if (tenantKeys.length > 0 && !url) throw new UsageError("--tenant needs --url: existing tenants live on a running instance");
  return {
    url,
    adminKey,
    tenantKeys,
    baselinePath: values.baseline,
    fixturesDir: values.fixtures,
    updateBaseline: values["update-baseline"] === true,
  };
}

async function main(): Promise<number> {
  const result = await runQualityEval(parseCli());
  return result.exitCode;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    if (error instanceof UsageError) console.error(`${error.message}\n${USAGE}`);
    else if (error instanceof FixtureError || error instanceof BaselineError || error instanceof TargetError) console.error(`quality eval: ${error.message}`);
    else console.error(error instanceof Error ? (error.stack ?? error.message) : error);
    process.exit(2);
  },
);
