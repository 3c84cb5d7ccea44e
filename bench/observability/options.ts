import { isQuick, parseFlags, rejectUnknownFlags } from "../options.js";

/**
 * Sizes of the observability-overhead benchmark, from flags (`--requests=400`) or the environment
 * (`BENCH_OBS_REQUESTS=400`); flags win. `--quick` is the CI smoke run (well under a minute).
 */
export type ObsBackend = "pglite" | "postgres";

export interface ObsOptions {
  quick: boolean;
  /** PGlite (in memory) unless --backend=postgres, or DATABASE_URL is set. */
  backend: ObsBackend;
  /** Postgres server; the bench creates a scratch database of its own per Fence instance and drops it. */
  databaseUrl: string | undefined;
  /** Measured requests per variant and endpoint, after the warm-up. */
  requests: number;
  /** Unmeasured requests per variant and endpoint first (JIT, connection pools, plan caches). */
  warmup: number;
  /** Help articles (about six chunks each) uploaded to each instance's tenant before measuring. */
  docs: number;
  /**
   * Also build the two half-way variants (logging only, run records only), so the added time can be
   * split between the two, and a second OFF instance (an A/A control: how far two identical
   * instances differ by chance). On by default in the full run; off in the quick run.
   */
  components: boolean;
  /** Also measure POST /v1/search (logging only: a search writes no run record). */
  search: boolean;
  seed: number;
}

const FULL = { requests: 400, warmup: 20, docs: 4, components: true };
const QUICK = { requests: 40, warmup: 10, docs: 2, components: false };

export function parseObsOptions(argv: readonly string[], env: Record<string, string | undefined>): ObsOptions {
  const flags = parseFlags(argv);
  const quick = isQuick(flags, env);
  const base = quick ? QUICK : FULL;
  const known = new Set(["quick", "backend", "database-url"]);
  const raw = (name: string): string | undefined => {
    known.add(name);
    return flags.get(name) ?? env[`BENCH_OBS_${name.toUpperCase().replaceAll("-", "_")}`];
  };
  const count = (name: string, fallback: number, min = 1): number => {
    const value = raw(name);
    if (value === undefined) return fallback;
    const n = Number(value);
    if (!Number.isInteger(n) || n < min) throw new Error(`--${name} must be an integer ≥ ${min}, got ${value}`);
    return n;
  };
  const bool = (name: string, fallback: boolean): boolean => {
    const value = raw(name);
    if (value === undefined) return fallback;
    if (value !== "true" && value !== "false") throw new Error(`--${name} must be true or false, got ${value}`);
    return value === "true";
  };

  const databaseUrl = flags.get("database-url") ?? env.DATABASE_URL;
  const backend = flags.get("backend") ?? (databaseUrl ? "postgres" : "pglite");
  if (backend !== "pglite" && backend !== "postgres") throw new Error(`--backend must be pglite or postgres, got ${backend}`);
  if (backend === "postgres" && !databaseUrl) throw new Error("--backend=postgres needs DATABASE_URL or --database-url");

  const options: ObsOptions = {
    quick,
    backend,
    databaseUrl: backend === "postgres" ? databaseUrl : undefined,
    requests: count("requests", base.requests),
    warmup: count("warmup", base.warmup, 0),
    docs: count("docs", base.docs),
    components: bool("components", base.components),
    search: bool("search", true),
    seed: count("seed", 7),
  };
  rejectUnknownFlags(flags, known);
  return options;
}
