import { isQuick, parseFlags, rejectUnknownFlags } from "../options.js";
import { SHAPE_IDS, type ShapeId } from "./shapes.js";

/**
 * Sizes of the flood benchmark, from flags (`--seconds=20`) or the environment
 * (`BENCH_FLOOD_SECONDS=20`); flags win. `--quick` is the CI run: both backends and all five
 * shapes in well under six minutes on the 2-core machine, which is a smoke test, not a measurement.
 */
export type FloodBackend = "pglite" | "postgres";

export interface FloodOptions {
  quick: boolean;
  backends: FloodBackend[];
  /** Postgres server; every Fence build gets a scratch database of its own on it, dropped at the end. */
  databaseUrl: string;
  shapes: ShapeId[];
  /** Measured window of every phase. */
  seconds: number;
  /** The aggressor floods this long before a window opens, so queues are full when measuring starts. */
  warmupSeconds: number;
  /** The bare Hono route is hit this long (after the warm-up) for the physical ceiling. */
  ceilingSeconds: number;
  /** Victim: searches and extractive chats per second, open loop at fixed intervals. */
  victimSearchesPerSecond: number;
  victimChatsPerSecond: number;
  /** Victim: one small synchronous upload every this many seconds. */
  victimUploadEverySeconds: number;
  /** Documents the victim owns before the first phase (its searches and chats find passages in them). */
  victimSeedDocs: number;
  /** Documents each aggressor tenant gets before its phase, when its flood searches or chats. */
  aggressorSeedDocs: number;
  /** A victim request unanswered after this long is given up and counted as an error. */
  victimTimeoutSeconds: number;
  /** Shape (e): the fake LLM's time per completion, and Fence's LLM_MAX_CONCURRENCY (as in bench:noisy). */
  llmDelayMs: number;
  llmConcurrency: number;
  seed: number;
  /** Also write every figure as JSON to this file. */
  json: string | undefined;
  /** Both builds run PGlite on a thread of its own, as the service does by default; `--pglite-thread=false` runs it in-process. */
  pgliteThread: boolean;
  /** Fence settings both builds start with (`--fence-env=FENCE_MAX_IN_SERVICE=4,FENCE_…=…`): to try a setting under the floods. */
  fenceEnv: Record<string, string>;
}

const FULL = { seconds: 15, warmupSeconds: 2, ceilingSeconds: 5, victimSeedDocs: 20, aggressorSeedDocs: 10, victimTimeoutSeconds: 30 };
// Quick: every fixed cost trimmed (each document costs ~0.2 s of CPU to ingest) so that both
// backends and all five shapes fit in CI's budget of six minutes.
const QUICK = { seconds: 2, warmupSeconds: 0.5, ceilingSeconds: 2, victimSeedDocs: 8, aggressorSeedDocs: 4, victimTimeoutSeconds: 10 };

/** The local development Postgres, as in `npm run bench`. */
const DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/test";

export function parseFloodOptions(argv: readonly string[], env: Record<string, string | undefined>): FloodOptions {
  const flags = parseFlags(argv);
  const quick = isQuick(flags, env);
  const base = quick ? QUICK : FULL;
  const known = new Set(["quick", "backend", "database-url", "shapes", "json", "pglite-thread", "fence-env"]);
  const raw = (name: string) => flags.get(name) ?? env[`BENCH_FLOOD_${name.toUpperCase().replaceAll("-", "_")}`];
  const read = (name: string, fallback: number, integer = false): number => {
    known.add(name);
    const text = raw(name);
    if (text === undefined) return fallback;
    const value = Number(text);
    if (!Number.isFinite(value) || value <= 0 || (integer && !Number.isInteger(value))) {
      throw new Error(`--${name} must be a positive ${integer ? "integer" : "number"}, got ${text}`);
    }
    return value;
  };

  const backend = raw("backend") ?? "both";
  if (backend !== "pglite" && backend !== "postgres" && backend !== "both") throw new Error(`--backend must be pglite, postgres or both, got ${backend}`);
  const shapes = (raw("shapes") ?? SHAPE_IDS.join(","))
    .split(",")
    .map((s) => s.trim().toLowerCase())
    .filter(Boolean);
  for (const s of shapes) if (!(SHAPE_IDS as readonly string[]).includes(s)) throw new Error(`Unknown shape: ${s} (known: ${SHAPE_IDS.join(",")})`);
  if (shapes.length === 0) throw new Error("--shapes lists no shape");

  const options: FloodOptions = {
    quick,
    backends: backend === "both" ? ["pglite", "postgres"] : [backend],
    databaseUrl: raw("database-url") ?? env.DATABASE_URL ?? DEFAULT_DATABASE_URL,
    // In the order the shapes are defined, whatever order they were listed in.
    shapes: SHAPE_IDS.filter((id) => shapes.includes(id)),
    seconds: read("seconds", base.seconds),
    warmupSeconds: read("warmup-seconds", base.warmupSeconds),
    ceilingSeconds: read("ceiling-seconds", base.ceilingSeconds),
    victimSearchesPerSecond: read("victim-searches-per-second", 3),
    victimChatsPerSecond: read("victim-chats-per-second", 2),
    victimUploadEverySeconds: read("victim-upload-every", 2),
    victimSeedDocs: read("victim-seed-docs", base.victimSeedDocs, true),
    aggressorSeedDocs: read("aggressor-seed-docs", base.aggressorSeedDocs, true),
    victimTimeoutSeconds: read("victim-timeout-seconds", base.victimTimeoutSeconds),
    llmDelayMs: read("llm-delay-ms", 800, true),
    llmConcurrency: read("llm-concurrency", 8, true),
    seed: read("seed", 42, true),
    json: raw("json"),
    pgliteThread: raw("pglite-thread") !== "false",
    fenceEnv: parseFenceEnv(raw("fence-env")),
  };
  rejectUnknownFlags(flags, known);
  return options;
}

/** `FENCE_A=1,FENCE_B=x` → { FENCE_A: "1", FENCE_B: "x" }; only Fence's own settings (FENCE_*). */
function parseFenceEnv(text: string | undefined): Record<string, string> {
  const settings: Record<string, string> = {};
  for (const pair of (text ?? "").split(",").filter(Boolean)) {
    const match = /^(FENCE_[A-Z0-9_]+)=(.*)$/.exec(pair.trim());
    if (!match) throw new Error(`--fence-env takes FENCE_NAME=value pairs separated by commas, got ${pair}`);
    settings[match[1]!] = match[2]!;
  }
  return settings;
}
