import type { EmbeddingProvider } from "../../src/embeddings/provider.js";
import type { FenceInstance } from "../../src/platform/fence.js";
import type { Flow, QueueDiscipline } from "../../src/flow/fair-queue.js";
import { startFence } from "../../test/support/fence-harness.js";
import { UNLIMITED_PLAN } from "../../test/support/unlimited-plan.js";
import { slowProviderSettings } from "./slow-provider.js";
import type { NoisyOptions } from "./options.js";
import type { IssuedKeyJson, PlanJson, TenantJson } from "../../test/support/api-types.js";

/** One embedding call as the model saw it: whose, how urgent, how many texts, and how long it took (queue + work). */
export interface EmbedRecord {
  flowId: string;
  priority: Flow["priority"];
  texts: number;
  /** Characters over all texts (a query is one short text; a document's chunks are several long ones). */
  chars: number;
  /** The text of a query embedding (one short text), to match it to its chat; absent for documents. */
  query?: string;
  startedAt: number;
  ms: number;
}

/**
 * The shared model, seen through a recorder: every `embed` call's total time (waiting in the
 * model's queue plus the forward pass), by tenant. It changes nothing in how calls are queued; it
 * lets the report say where a victim's chat spent its time.
 */
/** Longer than any question the bench asks, shorter than any chunk it uploads. */
const QUERY_MAX_CHARS = 400;

export class RecordingEmbeddings implements EmbeddingProvider {
  readonly model: string;
  readonly dimensions: number;
  readonly records: EmbedRecord[] = [];

  constructor(private readonly inner: EmbeddingProvider) {
    this.model = inner.model;
    this.dimensions = inner.dimensions;
  }

  async embed(texts: readonly string[], flow?: Flow): Promise<number[][]> {
    const startedAt = Date.now();
    const t0 = performance.now();
    try {
      return await this.inner.embed(texts, flow);
    } finally {
      this.records.push({
        flowId: flow?.id ?? "",
        priority: flow?.priority,
        texts: texts.length,
        chars: texts.reduce((n, t) => n + t.length, 0),
        ...(texts.length === 1 && texts[0]!.length < QUERY_MAX_CHARS ? { query: texts[0] } : {}),
        startedAt,
        ms: performance.now() - t0,
      });
    }
  }
}

export interface BenchTenant {
  id: string;
  name: string;
  key: string;
}

export interface HttpResult {
  status: number;
  body: unknown;
}

/**
 * Fence as the benchmark runs it: built through `buildFence` (the same wiring as `npm start`) with
 * one scheduling discipline, served over real HTTP on a loopback port, with the fake LLM behind
 * a small provider lane. On Postgres every instance gets a scratch database, dropped on close.
 */
export class ServiceUnderTest {
  private constructor(
    readonly discipline: QueueDiscipline,
    readonly fence: FenceInstance,
    readonly url: string,
    readonly embeddings: RecordingEmbeddings,
    private readonly adminKey: string,
    readonly close: () => Promise<void>,
  ) {}

  static async start(
    discipline: QueueDiscipline,
    options: NoisyOptions,
    model: EmbeddingProvider,
    llmUrl: string,
  ): Promise<ServiceUnderTest> {
    const embeddings = new RecordingEmbeddings(model);
    const served = await startFence({
      databaseUrl: options.backend === "postgres" ? options.databaseUrl : undefined,
      scratchPrefix: "fence_bench_noisy",
      env: {
        ...slowProviderSettings(llmUrl, options.llmConcurrency),
        FENCE_JOB_WORKERS: String(options.jobWorkers),
        FENCE_JOB_RESERVED_WORKERS: String(options.reservedWorkers),
        LLM_RESERVED_SLOTS: String(options.llmReservedSlots),
      },
      build: { embeddings, scheduling: discipline },
      serve: true,
    });
    return new ServiceUnderTest(discipline, served.fence, served.url, embeddings, served.adminKey, served.close);
  }

  async request(
    method: string,
    path: string,
    key: string,
    json?: unknown,
    headers: Record<string, string> = {},
    signal?: AbortSignal,
  ): Promise<HttpResult> {
    const response = await fetch(`${this.url}${path}`, {
      method,
      signal,
      headers: {
        authorization: `Bearer ${key}`,
        ...(json === undefined ? {} : { "content-type": "application/json" }),
        ...headers,
      },
      body: json === undefined ? undefined : JSON.stringify(json),
    });
    const text = await response.text();
    let body: unknown = text;
    try {
      body = JSON.parse(text);
    } catch {
      // not JSON: keep the text
    }
    return { status: response.status, body };
  }

  admin(method: string, path: string, json?: unknown): Promise<HttpResult> {
    return this.request(method, `/v1/admin${path}`, this.adminKey, json);
  }

  /**
   * The plan every bench tenant is on, created through the admin API: no admission limit and no
   * budget (requests/min, tokens/min, requests in flight, tokens, spend: all unlimited), so that
   * nothing refuses the flood and what is measured is the scheduler; one weight for all, so what
   * is measured is fairness, not priority.
   */
  async putBenchPlan(name: string, settings: { weight: number; maxRunningJobs: number }): Promise<{ weight: number; maxRunningJobs: number }> {
    const res = await this.admin("PUT", `/plans/${name}`, {
      ...UNLIMITED_PLAN,
      scheduling_weight: settings.weight,
      max_running_jobs: settings.maxRunningJobs,
    });
    if (res.status !== 200 && res.status !== 201) throw new Error(`PUT plan: ${res.status} ${JSON.stringify(res.body)}`);
    const plan = res.body as PlanJson;
    return { weight: plan.scheduling_weight, maxRunningJobs: plan.max_running_jobs };
  }

  async createTenant(name: string, plan: string): Promise<BenchTenant> {
    const tenant = await this.admin("POST", "/tenants", { name, plan });
    if (tenant.status !== 201) throw new Error(`create tenant: ${tenant.status} ${JSON.stringify(tenant.body)}`);
    const id = (tenant.body as TenantJson).id;
    const key = await this.admin("POST", `/tenants/${id}/keys`, { name: "bench" });
    if (key.status !== 201) throw new Error(`issue key: ${key.status} ${JSON.stringify(key.body)}`);
    return { id, name, key: (key.body as IssuedKeyJson).key };
  }

  /** Synchronous uploads (201), before any phase: the tenant's corpus for its chats. */
  async seed(tenant: BenchTenant, docs: readonly { title: string; markdown: string }[]): Promise<void> {
    for (const doc of docs) {
      const res = await this.request("POST", "/v1/documents", tenant.key, { title: doc.title, text: doc.markdown });
      if (res.status !== 201) throw new Error(`seed upload: ${res.status} ${JSON.stringify(res.body)}`);
    }
  }
}
