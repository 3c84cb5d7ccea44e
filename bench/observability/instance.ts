import { readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { sql } from "drizzle-orm";
import { pino } from "pino";
import { queryRows } from "../../src/db/database.js";
import type { EmbeddingProvider } from "../../src/embeddings/provider.js";
import type { FenceInstance } from "../../src/platform/fence.js";
import { createLogger } from "../../src/observability/logger.js";
import { describeBackend, startFence } from "../../test/support/fence-harness.js";
import { UNLIMITED_PLAN } from "../../test/support/unlimited-plan.js";
import { summarize, type LatencySummary } from "../stats.js";
import type { GeneratedDocument } from "../text-corpus.js";
import type { ClientThread } from "./client.js";
import type { ObsOptions } from "./options.js";
import type { IssuedKeyJson, TenantJson } from "../../test/support/api-types.js";

/**
 * What a Fence instance under test records. `on` is the default configuration (logs at `info`,
 * run records on); `off` is the baseline (logger `silent`, `recordRuns: false`); `logs` and `runs`
 * split the difference between logging and run records; `control` is a second OFF, whose
 * difference from the first shows how far two identical instances differ by chance. Metrics are on
 * in all: they cannot be turned off, so they are not part of the measured difference.
 */
export type Variant = "off" | "control" | "logs" | "runs" | "on";

export const VARIANTS: Record<Variant, { label: string; logging: boolean; runs: boolean }> = {
  off: { label: "OFF (silent, no run records)", logging: false, runs: false },
  control: { label: "OFF again (A/A control)", logging: false, runs: false },
  logs: { label: "logging only", logging: true, runs: false },
  runs: { label: "run records only", logging: false, runs: true },
  on: { label: "ON (info logs + run records)", logging: true, runs: true },
};

export interface HttpResult {
  status: number;
  body: unknown;
  /** Client-side time from sending the request to having read the whole body. */
  ms: number;
}

/** Run-record writes as they happened on an instance that records runs (see `RunWriteTimer`). */
export interface RunWriteTiming {
  /** `RunRecords.save`: masking the run's text and storing it (after the chat has responded). */
  save: LatencySummary;
  /** Of which the database write alone (`RunStore.insert`: one `withTenant` transaction, one INSERT). */
  insert: LatencySummary;
}

/** Every tenant of the bench is on this plan: nothing is refused, so every request does the full work. */
const PLAN = "observability-bench";

/**
 * One Fence built through `buildFence` (the wiring `npm start` uses), served over real HTTP on a
 * loopback port, with one tenant. The embedding model is shared by all instances; each has its own
 * database (PGlite in memory, or a scratch Postgres database dropped on close). A logging instance
 * writes its JSON lines to a file through a pino destination with the same settings as pino's
 * default stdout destination, so serialisation, PII masking and the write are all on the path.
 */
export class BenchInstance {
  private tenantKey = "";

  private constructor(
    readonly variant: Variant,
    readonly fence: FenceInstance,
    readonly url: string,
    private readonly client: ClientThread,
    private readonly adminKey: string,
    readonly logFile: string | undefined,
    readonly runWrites: RunWriteTimer | undefined,
    readonly close: () => Promise<void>,
  ) {}

  static async start(
    variant: Variant,
    options: ObsOptions,
    model: EmbeddingProvider,
    llmUrl: string,
    logDir: string,
    client: ClientThread,
  ): Promise<BenchInstance> {
    const { logging, runs } = VARIANTS[variant];
    let logFile: string | undefined;
    let logger = createLogger("silent");
    let closeLog: (() => Promise<void>) | undefined;
    if (logging) {
      logFile = join(logDir, `${variant}.log`);
      const destination = pino.destination({ dest: logFile, minLength: 0 });
      closeLog = async () => {
        destination.flushSync();
        destination.end();
      };
      logger = createLogger("info", destination);
    }
    const served = await startFence({
      databaseUrl: options.backend === "postgres" ? options.databaseUrl : undefined,
      scratchPrefix: "fence_bench_obs",
      env: { LLM_BASE_URL: llmUrl, LLM_MODEL: "bench-llm", LLM_API_KEY: "bench" },
      build: { embeddings: model, logger, recordRuns: runs },
      afterClose: closeLog,
      serve: true,
    });
    const runWrites = runs ? new RunWriteTimer(served.fence) : undefined;
    return new BenchInstance(variant, served.fence, served.url, client, served.adminKey, logFile, runWrites, served.close);
  }

  async request(method: string, path: string, key: string, json?: unknown): Promise<HttpResult> {
    const headers: Record<string, string> = { authorization: `Bearer ${key}` };
    if (json !== undefined) headers["content-type"] = "application/json";
    const { status, text, ms } = await this.client.request(`${this.url}${path}`, method, headers, json === undefined ? undefined : JSON.stringify(json));
    let body: unknown = text;
    try {
      body = JSON.parse(text);
    } catch {
      // not JSON: keep the text
    }
    return { status, body, ms };
  }

  /**
   * Waits until work this instance does after responding (its run-record writes) has ended, so
   * that it does not run into the next request, whichever instance that goes to: each request is
   * measured on an idle server.
   */
  async settle(): Promise<void> {
    await this.fence.runs.settled();
  }

  /** As the tenant (after `setUpTenant`). */
  asTenant(method: string, path: string, json?: unknown): Promise<HttpResult> {
    return this.request(method, path, this.tenantKey, json);
  }

  private async admin(method: string, path: string, json?: unknown): Promise<HttpResult> {
    const res = await this.request(method, `/v1/admin${path}`, this.adminKey, json);
    if (res.status >= 300) throw new Error(`${method} /v1/admin${path}: ${res.status} ${JSON.stringify(res.body)}`);
    return res;
  }

  /** A plan with no limit and no budget, a tenant on it, a key, and its documents uploaded synchronously (201). */
  async setUpTenant(docs: readonly GeneratedDocument[]): Promise<void> {
    await this.admin("PUT", `/plans/${PLAN}`, UNLIMITED_PLAN);
    const tenant = await this.admin("POST", "/tenants", { name: "obs-bench", plan: PLAN });
    const id = (tenant.body as TenantJson).id;
    const key = await this.admin("POST", `/tenants/${id}/keys`, { name: "bench" });
    this.tenantKey = (key.body as IssuedKeyJson).key;
    for (const doc of docs) {
      const res = await this.asTenant("POST", "/v1/documents", { title: doc.title, text: doc.markdown });
      if (res.status !== 201) throw new Error(`seed upload: ${res.status} ${JSON.stringify(res.body)}`);
    }
  }

  /** Chat run records stored in this instance's database, read as the owner (after the writes under way). */
  async storedChatRuns(): Promise<number> {
    await this.fence.runs.settled();
    const [row] = await this.fence.db.asOwner((tx) => queryRows<{ n: number | string }>(tx, sql`SELECT count(*) AS n FROM runs WHERE kind = 'chat'`));
    return Number(row!.n);
  }

  /** Lines and bytes in this instance's log file so far (0 for a silent instance). */
  async logVolume(): Promise<{ lines: number; bytes: number }> {
    if (!this.logFile) return { lines: 0, bytes: 0 };
    const text = await readFile(this.logFile, "utf8");
    return { lines: text.split("\n").filter(Boolean).length, bytes: (await stat(this.logFile)).size };
  }

  /** PostgreSQL's version, for the report. */
  backendLabel(): Promise<string> {
    return describeBackend(this.fence.db, "scratch database per instance");
  }
}

/**
 * Times every run-record write of an instance where it happens, during the measured requests: it
 * wraps `RunRecords.save` and `RunStore.insert` (two clock reads each, a few hundred nanoseconds).
 */
export class RunWriteTimer {
  private saves: number[] = [];
  private inserts: number[] = [];

  constructor(fence: FenceInstance) {
    const runs = fence.runs;
    const store = runs.store;
    const save = runs.save.bind(runs);
    const insert = store.insert.bind(store);
    runs.save = async (run) => {
      const started = performance.now();
      try {
        await save(run);
      } finally {
        this.saves.push(performance.now() - started);
      }
    };
    store.insert = async (ctx, row) => {
      const started = performance.now();
      try {
        await insert(ctx, row);
      } finally {
        this.inserts.push(performance.now() - started);
      }
    };
  }

  /** Forgets what was timed so far (the set-up and warm-up requests). */
  reset(): void {
    this.saves = [];
    this.inserts = [];
  }

  summary(): RunWriteTiming {
    return { save: summarize(this.saves), insert: summarize(this.inserts) };
  }
}
