import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { gzipSync } from "node:zlib";

/**
 * `npm run build:worker` — bundles the Worker exactly as `wrangler deploy` would (dry run, into
 * dist/worker), prints its size raw and gzipped, and fails above the Workers paid-plan limit
 * (10 MB compressed), so a dependency that drags Node-only code or a model into the bundle shows here.
 */
const OUT_DIR = "dist/worker";
const LIMIT_GZIP_BYTES = 10 * 1024 * 1024;

/** Node-only code that must never reach the Worker (it would fail there, or only add weight). */
const NODE_ONLY = /node_modules\/(@electric-sql\/pglite|prom-client|@opentelemetry\/(sdk-trace|context-async-hooks|exporter-trace-otlp-http|resources)|ioredis|@energetic-ai|@xenova|@tensorflow|onnxruntime)\/|src\/(db\/connect|db\/migrate|fence|redis|ingest\/parse-thread-pool|embeddings\/local-use|embeddings\/transformers|observability\/(metrics|tracing))\.ts$/;

const build = spawnSync("npx", ["wrangler", "deploy", "--dry-run", "--outdir", OUT_DIR, "--metafile", `${OUT_DIR}/meta.json`], {
  stdio: "inherit",
  env: { ...process.env, WRANGLER_SEND_METRICS: "false" },
});
if (build.status !== 0) process.exit(build.status ?? 1);
const bundle = readFileSync(`${OUT_DIR}/worker.js`);
const gzip = gzipSync(bundle, { level: 9 }).length;
const mb = (n: number) => `${(n / 1024 / 1024).toFixed(2)} MB`;
console.log(`worker bundle: ${mb(bundle.length)} raw, ${mb(gzip)} gzip (limit ${mb(LIMIT_GZIP_BYTES)} gzip)`);
const inputs = Object.keys((JSON.parse(readFileSync(`${OUT_DIR}/meta.json`, "utf8")) as { inputs: Record<string, unknown> }).inputs);
const nodeOnly = inputs.filter((input) => NODE_ONLY.test(input));
if (nodeOnly.length > 0) {
  console.error(`Node-only modules in the worker bundle:\n  ${nodeOnly.join("\n  ")}`);
  process.exit(1);
}
console.log(`worker bundle: ${inputs.length} modules, none Node-only`);
if (gzip > LIMIT_GZIP_BYTES) {
  console.error("worker bundle is over the Workers size limit");
  process.exit(1);
}
