import { isQuick, parseFlags, rejectUnknownFlags } from "../options.js";

/**
 * Sizes of the noisy-neighbour benchmark, from flags (`--seconds=20`) or the environment
 * (`BENCH_NOISY_SECONDS=20`); flags win. `--quick` is the CI smoke run (well under two minutes).
 */
export type NoisyBackend = "pglite" | "postgres";

export interface NoisyOptions {
  quick: boolean;
  /** PGlite (in memory) unless --backend=postgres, or DATABASE_URL is set. */
  backend: NoisyBackend;
  /** Postgres server; the bench creates a scratch database of its own per Fence instance and drops it. */
  databaseUrl: string | undefined;
  /** Measured window of each phase: the victim sends for this long. */
  seconds: number;
  /** The aggressor floods this long before the victim's window opens (the queues fill up). */
  warmupSeconds: number;
  /** After the window, how long the victim's last uploads may still take before they are counted as unfinished. */
  drainSeconds: number;
  /** Victim: chats per second, open loop at a fixed interval. */
  victimChatsPerSecond: number;
  /** Victim: one small upload (a job) every this many seconds. */
  victimUploadEverySeconds: number;
  /** The aggressor offers this many times the victim's request rate. */
  floodFactor: number;
  /** The aggressor's client keeps at most this many chats in flight (beyond that it waits, as a connection pool would). */
  aggressorInFlight: number;
  /** Documents the aggressor queues up front as batches (POST /v1/documents/batch), 100 per batch. */
  aggressorBatchDocs: number;
  /** Seed documents uploaded per tenant before the phases, so chats have passages to cite. */
  seedDocs: number;
  /**
   * The fake provider's fixed time per chat completion. 800 ms makes the provider lane the
   * contended resource: at 45 ms (89 calls/s with 4 slots) the lane is never full on a 2-core
   * machine, because Fence's own work per chat (database, embedding, HTTP) runs out of CPU first,
   * and the bench would measure that instead of the scheduler.
   */
  llmDelayMs: number;
  /**
   * Spread of the provider's time per completion, as a fraction of it (0.25: evenly between 0.75× and
   * 1.25×). 0: every completion takes exactly llmDelayMs, so calls that enter the lane together
   * leave it together, and its slots free up in lockstep.
   */
  llmJitter: number;
  /**
   * LLM_MAX_CONCURRENCY: the provider lane is the contended resource. 8 slots at 800 ms: ≈ 10 calls/s,
   * of which the victim's 2 chats/s keep 1.6 slots busy — 40 % of its fair half under the flood, a
   * trickle next to the aggressor's 200/s offered. At 4 slots the victim would need 80 % of its
   * half, and its own calls would queue behind each other under any fair scheduler.
   */
  llmConcurrency: number;
  /** FENCE_JOB_WORKERS. */
  jobWorkers: number;
  /** FENCE_JOB_RESERVED_WORKERS (Fence's default: 1; 0 turns the reservation off). */
  reservedWorkers: number;
  /** LLM_RESERVED_SLOTS (Fence's default: 1; 0 turns the reservation off). */
  llmReservedSlots: number;
  /** The bench plan's max_running_jobs (per tenant; the seeded enterprise plan has 4). */
  maxRunningJobs: number;
  /** Worker threads of the local embedding model (FENCE_EMBEDDING_THREADS). */
  embeddingThreads: number;
  /** FENCE_EMBEDDING_RESERVED_THREADS: model threads kept for light tenants (Fence's default: 2; the FIFO baseline has none). */
  embeddingReservedThreads: number;
  /**
   * Ingestion with many tenants at once: tenants, and documents each queues (help articles of
   * about six chunks; small two-chunk documents in the quick run).
   */
  manyTenants: number;
  manyTenantDocs: number;
  seed: number;
}

const FULL = {
  seconds: 30,
  warmupSeconds: 3,
  drainSeconds: 15,
  aggressorBatchDocs: 400,
  seedDocs: 6,
  manyTenants: 20,
  manyTenantDocs: 4,
};
const QUICK = {
  seconds: 8,
  warmupSeconds: 2,
  drainSeconds: 5,
  aggressorBatchDocs: 200,
  seedDocs: 2,
  manyTenants: 20,
  manyTenantDocs: 2,
};

export function parseNoisyOptions(argv: readonly string[], env: Record<string, string | undefined>): NoisyOptions {
  const flags = parseFlags(argv);
  const quick = isQuick(flags, env);
  const base = quick ? QUICK : FULL;
  const known = new Set(["quick", "backend", "database-url"]);
  const read = (name: string, fallback: number, integer = true): number => {
    known.add(name);
    const raw = flags.get(name) ?? env[`BENCH_NOISY_${name.toUpperCase().replaceAll("-", "_")}`];
    if (raw === undefined) return fallback;
    const value = Number(raw);
    if (!Number.isFinite(value) || value <= 0 || (integer && !Number.isInteger(value))) {
      throw new Error(`--${name} must be a positive ${integer ? "integer" : "number"}, got ${raw}`);
    }
    return value;
  };
  const readFraction = (name: string, fallback: number): number => {
    known.add(name);
    const raw = flags.get(name) ?? env[`BENCH_NOISY_${name.toUpperCase().replaceAll("-", "_")}`];
    if (raw === undefined) return fallback;
    const value = Number(raw);
    if (!Number.isFinite(value) || value < 0 || value >= 1) throw new Error(`--${name} must be at least 0 and below 1, got ${raw}`);
    return value;
  };
  const readCount = (name: string, fallback: number): number => {
    known.add(name);
    const raw = flags.get(name) ?? env[`BENCH_NOISY_${name.toUpperCase().replaceAll("-", "_")}`];
    if (raw === undefined) return fallback;
    const value = Number(raw);
    if (!Number.isInteger(value) || value < 0) throw new Error(`--${name} must be a whole number, got ${raw}`);
    return value;
  };
  const databaseUrl = flags.get("database-url") ?? env.DATABASE_URL;
  const backend = flags.get("backend") ?? (databaseUrl ? "postgres" : "pglite");
  if (backend !== "pglite" && backend !== "postgres") throw new Error(`Unknown backend: ${backend}`);
  if (backend === "postgres" && !databaseUrl) throw new Error("--backend=postgres needs DATABASE_URL (or --database-url)");
  const options: NoisyOptions = {
    quick,
    backend,
    databaseUrl,
    seconds: read("seconds", base.seconds, false),
    warmupSeconds: read("warmup-seconds", base.warmupSeconds, false),
    drainSeconds: read("drain-seconds", base.drainSeconds, false),
    victimChatsPerSecond: read("victim-chats-per-second", 2, false),
    victimUploadEverySeconds: read("victim-upload-every", 2, false),
    floodFactor: read("flood-factor", 100, false),
    aggressorInFlight: read("aggressor-in-flight", 64),
    aggressorBatchDocs: read("aggressor-batch-docs", base.aggressorBatchDocs),
    seedDocs: read("seed-docs", base.seedDocs),
    llmDelayMs: read("llm-delay-ms", 800),
    llmJitter: readFraction("llm-jitter", 0),
    llmConcurrency: read("llm-concurrency", 8),
    jobWorkers: read("job-workers", 2),
    reservedWorkers: readCount("reserved-workers", 1),
    llmReservedSlots: readCount("llm-reserved-slots", 1),
    maxRunningJobs: read("max-running-jobs", 4),
    embeddingThreads: read("embedding-threads", 2),
    embeddingReservedThreads: readCount("embedding-reserved-threads", 2),
    manyTenants: read("many-tenants", base.manyTenants),
    manyTenantDocs: read("many-tenant-docs", base.manyTenantDocs),
    seed: read("seed", 42),
  };
  rejectUnknownFlags(flags, known);
  return options;
}
