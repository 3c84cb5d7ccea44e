import { parseArgs } from "node:util";
import { isolateTenantShard } from "../src/db/citus-tenant-shard.js";

/**
 * `npm run citus:isolate-tenant -- <tenant_id> [--to-node host:port]`
 * — on a Citus cluster, gives one tenant a shard group of its own (all its tables move together),
 * and optionally moves it to another node, while Fence keeps serving it. DATABASE_URL is the
 * coordinator, connected as the database owner. See src/db/citus-tenant-shard.ts.
 */
async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { "to-node": { type: "string" } },
  });
  const databaseUrl = process.env.DATABASE_URL;
  if (positionals.length !== 1 || !databaseUrl) {
    console.error("usage: DATABASE_URL=<coordinator> npm run citus:isolate-tenant -- <tenant_id> [--to-node host:port]");
    return 2;
  }
  const started = performance.now();
  const { before, after } = await isolateTenantShard(databaseUrl, positionals[0]!, { toNode: values["to-node"] });
  console.log(
    JSON.stringify({ tenant_id: positionals[0], before, after, seconds: Number(((performance.now() - started) / 1000).toFixed(2)) }, null, 2),
  );
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(`citus:isolate-tenant failed: ${error instanceof Error ? error.message : String(error)}`);
    process.exit(1);
  },
);
