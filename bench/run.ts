import { loadConfig } from "../src/platform/config.js";
import { LocalUseEmbeddings } from "../src/embeddings/local-use.js";
import { openBackend, postgresReachable, type BenchBackend } from "./backends.js";
import { buildCorpus, type Corpus } from "./corpus.js";
import { benchIngest, type IngestResult } from "./ingest.js";
import { parseOptions, type BackendName } from "./options.js";
import { benchOverhead, type OverheadResult } from "./overhead.js";
import { benchKeyVerification, type KeyVerificationResult } from "./key-verification.js";
import { benchTenantTransaction, type TenantTransactionResult } from "./tenant-transaction.js";
import { printBackendResults, printHeader, type BackendReport } from "./print-results.js";
import { progress } from "./report.js";
import { benchSearch, countChunks, type SearchBenchResult } from "./search.js";
import { since } from "./stats.js";
import { generateDocuments, QUERY_TEXTS } from "./text-corpus.js";

/**
 * `npm run bench [-- --quick] [--chunks=N --tenants=N --docs=N --queries=N --pairs=N --backends=pglite,postgres,citus]`
 * (`citus`: the coordinator at --citus-url or CITUS_DATABASE_URL, Fence's tables distributed by tenant)
 *
 * Runs every section on each backend in turn (never concurrently: the machine is small and the
 * backends would disturb each other), then prints one table per section with the backends side by side.
 */
async function main(): Promise<void> {
  const started = performance.now();
  const startedAt = new Date();
  const options = parseOptions(process.argv.slice(2), process.env);

  // The model as `npm start` runs it: the default provider with its default worker threads.
  const model = loadConfig({
    FENCE_EMBEDDING_THREADS: process.env.FENCE_EMBEDDING_THREADS,
    FENCE_EMBEDDING_RESERVED_THREADS: process.env.FENCE_EMBEDDING_RESERVED_THREADS,
  }).embeddings;
  const { threads, reservedThreads } = model.provider === "local" ? model : { threads: 1, reservedThreads: 0 };
  progress(`loading the default embedding model (USE lite, TF.js WASM, ${threads} worker threads + ${reservedThreads} reserved)`);
  let t0 = performance.now();
  const embeddings = await LocalUseEmbeddings.load({ threads, reservedThreads });
  const modelLoadMs = since(t0);
  // The same query vectors on both backends for the overhead section.
  const queryVectors = await embeddings.embed(QUERY_TEXTS);
  const documents = generateDocuments(options.docs, options.seed);

  const skipped: { name: BackendName; reason: string }[] = [];
  const reports: BackendReport[] = [];
  for (const name of options.backends) {
    if (name === "citus" && !options.citusUrl) {
      skipped.push({ name, reason: "no coordinator given (--citus-url or CITUS_DATABASE_URL)" });
      continue;
    }
    if (name !== "pglite") {
      const reach = await postgresReachable(name === "citus" ? options.citusUrl! : options.databaseUrl);
      if (!reach.ok) {
        skipped.push({ name, reason: `unreachable (${reach.reason})` });
        progress(`postgres skipped: ${reach.reason}`);
        continue;
      }
    }
    t0 = performance.now();
    progress(`${name}: building Fence (migrations, HNSW index)`);
    const backend = await openBackend(name, options, embeddings);
    try {
      reports.push(await runSections(backend, options, documents, queryVectors, t0));
    } finally {
      await backend.close();
    }
  }

  printHeader({ startedAt, options, modelLoadMs, embeddings, reports, skipped });
  printBackendResults(reports, options);
  process.stdout.write(`\nTotal wall time: ${(since(started) / 1000).toFixed(1)} s\n`);
}

async function runSections(
  backend: BenchBackend,
  options: ReturnType<typeof parseOptions>,
  documents: ReturnType<typeof generateDocuments>,
  queryVectors: number[][],
  started: number,
): Promise<BackendReport> {
  progress(`${backend.name}: bulk-loading ${options.chunks} chunks over ${options.tenants} tenants`);
  const corpus: Corpus = await buildCorpus(backend, options);
  progress(`${backend.name}: loaded in ${(corpus.loadMs / 1000).toFixed(1)} s, HNSW built in ${(corpus.indexMs / 1000).toFixed(1)} s`);

  progress(`${backend.name}: ingesting ${documents.length} documents (end to end, embed only, store only)`);
  const ingest: IngestResult = await benchIngest(backend, corpus, documents);

  const search: SearchBenchResult[] = [];
  for (const tenant of [corpus.small, corpus.large]) {
    progress(`${backend.name}: Retriever.search on the ${tenant.label} tenant (${options.queries} queries)`);
    search.push(await benchSearch(backend, tenant, options));
  }

  const overhead: OverheadResult[] = [];
  for (const tenant of [corpus.small, corpus.large]) {
    progress(`${backend.name}: isolation overhead on the ${tenant.label} tenant (${options.pairs} pairs × 2 legs)`);
    overhead.push(await benchOverhead(backend, tenant, options, queryVectors));
  }
  progress(`${backend.name}: withTenant alone on the ${corpus.large.label} tenant (${options.pairs} pairs)`);
  const tenantTransaction: TenantTransactionResult = await benchTenantTransaction(backend, corpus.large, options);
  progress(`${backend.name}: key verification, scoped and owner keys, current and rotated secrets (${options.pairs} pairs)`);
  const keyVerification: KeyVerificationResult = await benchKeyVerification(backend, options);
  return { backend, corpus, ingest, search, overhead, tenantTransaction, keyVerification, totalChunks: await countChunks(backend), wallMs: since(started) };
}

// The loaded model runtime leaves a MessagePort open that keeps the event loop alive, so the process
// exits explicitly once the report has been flushed.
main().then(
  () => process.stdout.write("", () => process.exit(0)),
  (error: unknown) => {
    process.stderr.write(`bench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`, () => process.exit(1));
  },
);
