import os from "node:os";
import type { EmbeddingProvider } from "../src/embeddings/provider.js";
import type { BenchBackend } from "./backends.js";
import type { Corpus } from "./corpus.js";
import type { IngestResult, ThroughputResult } from "./ingest.js";
import type { BackendName, BenchOptions } from "./options.js";
import type { OverheadLeg, OverheadResult } from "./overhead.js";
import { ms, printTable, ratio } from "./report.js";
import type { SearchBenchResult } from "./search.js";
import type { KeyVerificationResult } from "./key-verification.js";
import type { TenantTransactionResult } from "./tenant-transaction.js";

export interface BackendReport {
  backend: BenchBackend;
  corpus: Corpus;
  ingest: IngestResult;
  search: SearchBenchResult[];
  overhead: OverheadResult[];
  tenantTransaction: TenantTransactionResult;
  keyVerification: KeyVerificationResult;
  /** All chunks in the database while searching (bulk + ingested). */
  totalChunks: number;
  wallMs: number;
}

export function printHeader(input: {
  startedAt: Date;
  options: BenchOptions;
  modelLoadMs: number;
  embeddings: EmbeddingProvider;
  reports: readonly BackendReport[];
  skipped: readonly { name: BackendName; reason: string }[];
}): void {
  const { options, reports } = input;
  const cpu = os.cpus()[0]?.model.trim() ?? "unknown CPU";
  const lines = [
    `Fence benchmark (${options.quick ? "--quick smoke run" : "full run"}), started ${input.startedAt.toISOString()}`,
    `Node ${process.version} on ${process.platform}/${process.arch}, ${os.cpus().length} CPUs (${cpu})`,
    `Embedding model: ${input.embeddings.model} (${input.embeddings.dimensions}-d), loaded in ${(input.modelLoadMs / 1000).toFixed(1)} s`,
    ...reports.map(
      (r) =>
        `Backend ${r.backend.name}: ${r.backend.serverVersion}, pgvector ${r.backend.pgvectorVersion}, ` +
        `${r.backend.name === "pglite" ? "in memory, in process" : r.backend.name === "citus" ? "loopback, a Citus coordinator and two workers, a database of its own" : `loopback, dedicated database ${options.benchDatabase}`}; ` +
        `hnsw.ef_search ${r.backend.config.retrieval.hnswEfSearch}, iterative scan relaxed_order; section wall time ${(r.wallMs / 1000).toFixed(1)} s`,
    ),
    ...input.skipped.map((s) => `Backend ${s.name}: skipped, ${s.reason}`),
    `Sizes: ${options.tenants} tenants, ${options.chunks.toLocaleString("en-US")} bulk chunks (large tenant ${options.largeShare * 100}%, ` +
      `small tenant ${options.smallChunks} + ingested documents), ${options.docs} real documents, k=${options.k}, seed ${options.seed}`,
  ];
  process.stdout.write(`${lines.join("\n")}\n`);
}

export function printBackendResults(reports: readonly BackendReport[], options: BenchOptions): void {
  printTable(
    "0. Corpus (bulk load as owner, set-based SQL; HNSW rebuilt once after the load)",
    ["backend", "tenants", "bulk chunks", "load s", "HNSW build s", "analyze s", "large", "small", "others min/median/max"],
    reports.map(({ backend, corpus: c }) => [
      backend.name, c.tenants, c.bulkChunks, sec(c.loadMs), sec(c.indexMs), sec(c.analyzeMs), c.large.bulkChunks, c.small.bulkChunks,
      `${c.otherTenantChunks.min}/${c.otherTenantChunks.median}/${c.otherTenantChunks.max}`,
    ]),
    ["Bulk vectors are random unit vectors under the default model id; texts are word runs from the shared vocabulary."],
  );

  const stage = (name: string, t: ThroughputResult) =>
    [name, t.docs, t.chunks, sec(t.totalMs), t.chunksPerSecond.toFixed(1), ms(t.perDocument.p50), ms(t.perDocument.p95)] as const;
  printTable(
    "1. Ingest throughput (one stream, documents of ~6 chunks, into a corpus that already holds the bulk chunks)",
    ["backend", "stage", "docs", "chunks", "total s", "chunks/s", "per-doc p50 ms", "per-doc p95 ms"],
    reports.flatMap(({ backend, ingest }) => [
      [backend.name, ...stage("end to end (parse, chunk, embed, store)", ingest.endToEnd)],
      [backend.name, ...stage("embedding only (real model)", ingest.embedOnly)],
      [backend.name, ...stage("store only (chunk + DB transaction)", ingest.storeOnly)],
    ]),
    ["End to end = the ingestion pipeline (ingestUpload) with the real model; store only = the same pipeline with the vectors precomputed."],
  );

  printTable(
    `2. Retriever.search(ctx, text, k=${options.k}) latency, ms (cached query embedding, withTenant + RLS, hybrid SQL, I4 assertion)`,
    ["backend", "tenant", "tenant chunks", "corpus chunks", "queries", "p50", "p95", "p99", "mean", "max", "hits avg/min", "cold p50"],
    reports.flatMap(({ backend, totalChunks, search }) =>
      search.map((s) => [
        backend.name, s.tenant, s.tenantChunks, totalChunks, s.warm.n,
        ms(s.warm.p50), ms(s.warm.p95), ms(s.warm.p99), ms(s.warm.mean), ms(s.warm.max),
        `${s.hitsMean.toFixed(1)}/${s.hitsMin}`, ms(s.cold.p50),
      ]),
    ),
    [
      "cold p50 = first call per distinct query (embedding with the model, cache miss), one per query text.",
      "Measured calls run after one cold and one warm-up pass over the query set.",
    ],
  );

  const leg = (name: string, tenant: string, backend: string, l: OverheadLeg) => [
    backend, tenant, name, l.pairs, ms(l.fenced.p50), ms(l.owner.p50), ratio(l.fenced.p50 / l.owner.p50),
    ms(l.fenced.p95), ms(l.owner.p95), ratio(l.fenced.mean / l.owner.mean), `${l.identical}/${l.pairs}`,
    l.fencedScans === l.ownerScans ? "yes" : "NO",
  ];
  printTable(
    "3. Isolation overhead: withTenant (fence_app + RLS + app filter) vs owner with explicit tenant_id = $1, ms",
    ["backend", "tenant", "query", "pairs", "RLS p50", "owner p50", "p50 ratio", "RLS p95", "owner p95", "mean ratio", "same results", "same scans"],
    reports.flatMap(({ backend, overhead }) =>
      overhead.flatMap((o) => [leg("hybrid", o.tenant, backend.name, o.hybrid), leg("vector leg", o.tenant, backend.name, o.vectorLeg)]),
    ),
    [
      "ratio = RLS / owner. Runs interleaved A B B A …; same query vectors, k, ef_search and iterative-scan mode in both; goal p50 ratio <= 1.10x.",
      "Scans listed from EXPLAIN of the first query in each mode (hnsw = the model's partial HNSW index).",
      ...reports.flatMap(({ backend, overhead }) =>
        overhead.flatMap((o) =>
          (["hybrid", "vectorLeg"] as const).map((k) => {
            const l = o[k];
            const label = `plan ${backend.name}/${o.tenant}/${k === "hybrid" ? "hybrid" : "vector leg"}`;
            if (l.fencedScans === l.ownerScans) return `${label}: ${l.fencedScans}`;
            return `${label} DIFFERS\n      RLS:   ${l.fencedScans}\n      owner: ${l.ownerScans}`;
          }),
        ),
      ),
    ],
  );

  printTable(
    "4. withTenant alone: the smallest tenant statement (count of the tenant's documents) in withTenant vs in a bare owner transaction, ms",
    ["backend", "tenant", "pairs", "withTenant p50", "bare p50", "settings cost p50", "withTenant p95", "bare p95", "same count"],
    reports.map(({ backend, tenantTransaction: t }) => [
      backend.name, t.tenant, t.pairs, ms(t.fenced.p50), ms(t.bare.p50), ms(t.fenced.p50 - t.bare.p50),
      ms(t.fenced.p95), ms(t.bare.p95), `${t.sameCount}/${t.pairs}`,
    ]),
    [
      "settings cost = withTenant p50 - bare p50: one parameterised set_config statement on a single node; on Citus one",
      "simple-protocol message of SET LOCALs (propagated to the worker that runs the statement). Runs interleaved A B B A.",
    ],
  );

  printTable(
    "5. Key verification: a request with an owner key vs a read-only key, and the uncached key lookup by a current vs a rotated-out secret, ms",
    ["backend", "pairs", "owner p50", "scoped p50", "scope cost p50", "lookup current p50", "lookup rotated p50", "lookup p95 cur/rot"],
    reports.map(({ backend, keyVerification: k }) => [
      backend.name, k.pairs, ms(k.ownerRequest.p50), ms(k.scopedRequest.p50), ms(k.scopedRequest.p50 - k.ownerRequest.p50),
      ms(k.lookupCurrent.p50), ms(k.lookupPrior.p50), `${ms(k.lookupCurrent.p95)}/${ms(k.lookupPrior.p95)}`,
    ]),
    [
      "Request = GET /v1/documents?limit=1 through the app (verified key held in memory, admission, one tenant transaction).",
      "Lookup = the key's row read from the database without the cache: one statement, key_hash = $1 OR prior_key_hash = $1. Plans:",
      ...reports.map(({ backend, keyVerification: k }) => `  ${backend.name}: ${k.lookupPlan}`),
      "Runs interleaved A B B A.",
    ],
  );
}

function sec(msValue: number): string {
  return (msValue / 1000).toFixed(1);
}
