import { isQuick, parseFlags, rejectUnknownFlags } from "../options.js";

/**
 * Sizes of the console page-time benchmark, from flags (`--requests=200`) or the environment
 * (`BENCH_CONSOLE_REQUESTS=200`); flags win. `--quick` is the CI smoke run (well under a minute).
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

const FULL = { documents: 10_000, events: 100_000, requests: 200, warmup: 5 };
const QUICK = { documents: 1_000, events: 10_000, requests: 50, warmup: 3 };

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
  if (options.requests < 1) throw new Error("--requests must be at least 1");
  if (options.neighbourShare > 1) throw new Error("--neighbour-share must be at most 1");
  return options;
}
