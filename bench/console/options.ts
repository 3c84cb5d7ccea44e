import { isQuick, parseFlags, rejectUnknownFlags } from "../options.js";

/**
 * Sizes of the console page-time benchmark, from flags (`--requests=200`) or the environment
 * (`BENCH_CONSOLE_REQUESTS=200`); flags win. `--quick` is the CI smoke run (well under a minute).
 *
 *   flag                 FULL     QUICK    what
 *   --documents=N        10,000   1,000    the measured tenant's documents (one chunk each)
 *   --events=N           100,000  10,000   its usage events over the last 30 days
 *   --jobs=N             =documents        its finished upload jobs (one per document, newest first)
 *   --runs=N             50,000   5,000    its run records over the last 30 days (80 % chat, 20 % ingest
 *                                          job attempts; 4 % refused, about 2 % failed), as RunRecords writes them
 *   --audit-events=N     3,000    300      its audit trail over the last year (keys made, rotated and
 *                                          revoked by CI, settings changed), and the revoked keys it names
 *   --queued-jobs=N      40       10       its upload backlog: re-embedding jobs queued for a model other
 *                                          instances run, so they stay queued (Operations, Documents)
 *   --neighbour-share=F  0.05              the neighbour tenant's share of every size above
 *   --idle-tenants=N     50                empty tenants for the platform's lists
 *   --requests=N         200      50       measured requests per page (after --warmup=N: 5 / 3)
 *   --analyze=auto|always|never            ANALYZE after the load (auto: Postgres only)
 *   --target-ms=F        100               the goal: each page's p95 at most this
 *   --seed=N             42                setseed() for the generated data
 *   --backends=pglite,postgres --database-url=URL (or DATABASE_URL): which databases
 */
export type ConsoleBackend = "pglite" | "postgres";

export interface ConsoleBenchOptions {
  quick: boolean;
  /** PGlite, plus Postgres when DATABASE_URL (or --database-url) is set; or as --backends= says. */
  backends: ConsoleBackend[];
  /** Postgres server; the bench makes a scratch database of its own on it and drops it at the end. */
  databaseUrl: string | undefined;
  /** The measured tenant's documents (one chunk each). */
  documents: number;
  /** The measured tenant's usage events, spread over the last 30 days. */
  events: number;
  /** Finished upload jobs of the measured tenant (one per document, newest first): the documents page lists the latest. */
  jobs: number;
  /** The measured tenant's run records (chat requests and ingestion job attempts) over the last 30 days. */
  runs: number;
  /** The measured tenant's audit events over the last year (besides the few its setup through the API writes). */
  auditEvents: number;
  /** Upload jobs of the measured tenant queued for another instance's model (they stay queued): the platform's Operations page shows the backlog. */
  queuedJobs: number;
  /**
   * ANALYZE after the load: `auto` on Postgres only (its autovacuum analyzes a freshly loaded table
   * within a minute; PGlite has no autovacuum, so an embedded Fence's tables have no statistics).
   */
  analyze: "auto" | "always" | "never";
  /** The neighbour tenant's share of the measured tenant's sizes (a smaller tenant on the same tables). */
  neighbourShare: number;
  /** Empty tenants besides the two, so the platform's tenant list is more than a couple of rows. */
  idleTenants: number;
  /** Measured requests per page, after the warm-up. */
  requests: number;
  /** Unmeasured requests per page first (JIT, plan caches, the key directory). */
  warmup: number;
  /** The goal (`--target-ms`): each page's server time p95 at most this (ms). */
  targetP95Ms: number;
  seed: number;
}

const FULL = { documents: 10_000, events: 100_000, runs: 50_000, auditEvents: 3_000, queuedJobs: 40, requests: 200, warmup: 5 };
const QUICK = { documents: 1_000, events: 10_000, runs: 5_000, auditEvents: 300, queuedJobs: 10, requests: 50, warmup: 3 };

export function parseConsoleOptions(argv: readonly string[], env: Record<string, string | undefined>): ConsoleBenchOptions {
  const flags = parseFlags(argv);
  const quick = isQuick(flags, env);
  const base = quick ? QUICK : FULL;
  const known = new Set(["quick", "backends", "database-url"]);
  const raw = (name: string): string | undefined => {
    known.add(name);
    return flags.get(name) ?? env[`BENCH_CONSOLE_${name.toUpperCase().replaceAll("-", "_")}`];
  };
  const number = (name: string, fallback: number, integer = true): number => {
    const value = raw(name);
    if (value === undefined) return fallback;
    const n = Number(value);
    if (!Number.isFinite(n) || n < 0 || (integer && !Number.isInteger(n))) throw new Error(`--${name} must be a non-negative ${integer ? "integer" : "number"}, got ${value}`);
    return n;
  };

  const databaseUrl = flags.get("database-url") ?? env.DATABASE_URL;
  const backends = (flags.get("backends") ?? env.BENCH_BACKENDS ?? (databaseUrl ? "pglite,postgres" : "pglite"))
    .split(",")
    .map((b) => b.trim())
    .filter(Boolean);
  for (const b of backends) {
    if (b !== "pglite" && b !== "postgres") throw new Error(`Unknown backend: ${b} (pglite or postgres)`);
  }
  if (backends.includes("postgres") && !databaseUrl) throw new Error("--backends=postgres needs DATABASE_URL (or --database-url): the server to make a scratch database on");

  const options: ConsoleBenchOptions = {
    quick,
    backends: [...new Set(backends)] as ConsoleBackend[],
    databaseUrl,
    documents: number("documents", base.documents),
    events: number("events", base.events),
    jobs: 0,
    runs: number("runs", base.runs),
    auditEvents: number("audit-events", base.auditEvents),
    queuedJobs: number("queued-jobs", base.queuedJobs),
    analyze: "auto",
    neighbourShare: number("neighbour-share", 0.05, false),
    idleTenants: number("idle-tenants", 50),
    requests: number("requests", base.requests),
    warmup: number("warmup", base.warmup),
    targetP95Ms: number("target-ms", 100, false),
    seed: number("seed", 42),
  };
  options.jobs = number("jobs", options.documents);
  const analyze = raw("analyze") ?? "auto";
  if (analyze !== "auto" && analyze !== "always" && analyze !== "never") throw new Error(`--analyze must be auto, always or never, got ${analyze}`);
  options.analyze = analyze;
  rejectUnknownFlags(flags, known);
  if (options.documents < 100) throw new Error("--documents must be at least 100 (the pages need two pages of documents and a 1 % title match)");
  if (options.runs < 200) throw new Error("--runs must be at least 200 (the runs pages need two pages of runs, and filtered ones)");
  if (options.auditEvents < 100) throw new Error("--audit-events must be at least 100 (the audit page needs two pages)");
  if (options.queuedJobs < 1) throw new Error("--queued-jobs must be at least 1 (the Operations page shows the backlog)");
  if (options.requests < 1) throw new Error("--requests must be at least 1");
  if (options.neighbourShare > 1) throw new Error("--neighbour-share must be at most 1");
  return options;
}
