/**
 * Benchmark sizes, from flags (`--chunks=20000`) or environment (`BENCH_CHUNKS=20000`); flags win.
 * `--quick` shrinks every size to a smoke run that CI uses to prove the bench still works (< 60 s).
 */
export type BackendName = "pglite" | "postgres" | "citus";

export interface BenchOptions {
  quick: boolean;
  backends: BackendName[];
  /** Postgres server to benchmark; the bench creates and drops its own database on it. */
  databaseUrl: string;
  /** A Citus cluster's coordinator (`--citus-url`, or CITUS_DATABASE_URL), for `--backends=…,citus`. */
  citusUrl: string | undefined;
  /** Name of the dedicated database the bench recreates on every run (never the one in the URL). */
  benchDatabase: string;
  tenants: number;
  /** Bulk-loaded chunks across all tenants (before the real ingested documents). */
  chunks: number;
  /** Share of the bulk chunks owned by the measured large tenant. */
  largeShare: number;
  /** Bulk chunks owned by the measured small tenant. */
  smallChunks: number;
  /** Real documents ingested through DocumentIngestor (split between the two measured tenants). */
  docs: number;
  /** Measured Retriever.search calls per tenant, after warm-up. */
  queries: number;
  /** Interleaved (RLS, owner) pairs per tenant in the isolation-overhead section. */
  pairs: number;
  k: number;
  seed: number;
}

const FULL = { tenants: 50, chunks: 20_000, largeShare: 0.1, smallChunks: 40, docs: 20, queries: 300, pairs: 400 };
const QUICK = { tenants: 10, chunks: 2_000, largeShare: 0.1, smallChunks: 20, docs: 4, queries: 30, pairs: 30 };

/** Default server: the local development Postgres (a superuser is needed to create the bench database). */
const DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/test";

/** `--name=value` (or a bare `--name`, meaning "true") for every argument; anything else is an error. */
export function parseFlags(argv: readonly string[]): Map<string, string> {
  const flags = new Map<string, string>();
  for (const arg of argv) {
    const match = /^--([a-z-]+)(?:=(.*))?$/.exec(arg);
    if (!match) throw new Error(`Unknown argument: ${arg} (use --name=value)`);
    flags.set(match[1]!, match[2] ?? "true");
  }
  return flags;
}

/** A typo'd flag must not silently run the full benchmark with defaults. */
export function rejectUnknownFlags(flags: Map<string, string>, known: Iterable<string>): void {
  const allowed = new Set(known);
  const unknown = [...flags.keys()].filter((name) => !allowed.has(name));
  if (unknown.length > 0) {
    throw new Error(`Unknown flag${unknown.length > 1 ? "s" : ""}: ${unknown.map((n) => `--${n}`).join(", ")} (known: ${[...allowed].map((n) => `--${n}`).join(" ")})`);
  }
}

/** The short run CI makes: `--quick` or BENCH_QUICK=1. */
export function isQuick(flags: Map<string, string>, env: Record<string, string | undefined>): boolean {
  return flags.get("quick") === "true" || env.BENCH_QUICK === "1";
}

export function parseOptions(argv: readonly string[], env: Record<string, string | undefined>): BenchOptions {
  const flags = parseFlags(argv);
  const quick = isQuick(flags, env);
  const base = quick ? QUICK : FULL;
  const known = new Set(["quick", "backends", "database-url", "citus-url", "bench-database"]);
  const read = (name: string, fallback: number): number => {
    known.add(name);
    const raw = flags.get(name) ?? env[`BENCH_${name.toUpperCase().replaceAll("-", "_")}`];
    if (raw === undefined) return fallback;
    const value = Number(raw);
    if (!Number.isFinite(value) || value <= 0) throw new Error(`--${name} must be a positive number, got ${raw}`);
    return value;
  };
  const backends = (flags.get("backends") ?? env.BENCH_BACKENDS ?? "pglite,postgres")
    .split(",")
    .map((b) => b.trim())
    .filter(Boolean);
  for (const b of backends) {
    if (b !== "pglite" && b !== "postgres" && b !== "citus") throw new Error(`Unknown backend: ${b}`);
  }
  const options: BenchOptions = {
    quick,
    backends: backends as BackendName[],
    databaseUrl: flags.get("database-url") ?? env.DATABASE_URL ?? DEFAULT_DATABASE_URL,
    citusUrl: flags.get("citus-url") ?? env.CITUS_DATABASE_URL,
    benchDatabase: flags.get("bench-database") ?? env.BENCH_DATABASE ?? "fence_bench",
    tenants: Math.trunc(read("tenants", base.tenants)),
    chunks: Math.trunc(read("chunks", base.chunks)),
    largeShare: read("large-share", base.largeShare),
    smallChunks: Math.trunc(read("small-chunks", base.smallChunks)),
    docs: Math.trunc(read("docs", base.docs)),
    queries: Math.trunc(read("queries", base.queries)),
    pairs: Math.trunc(read("pairs", base.pairs)),
    k: Math.trunc(read("k", 8)),
    seed: Math.trunc(read("seed", 42)),
  };
  rejectUnknownFlags(flags, known);
  if (options.tenants < 3) throw new Error("--tenants must be at least 3 (small, large, and others)");
  if (options.largeShare >= 1) throw new Error("--large-share must be below 1");
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(options.benchDatabase)) throw new Error("--bench-database must be a plain identifier");
  return options;
}
