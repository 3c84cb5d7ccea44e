import { summarize, type LatencySummary } from "../stats.js";
import type { BenchTenant, ServiceUnderTest } from "./service.js";
import type { RunJson, RunListJson } from "../../test/support/api-types.js";

/**
 * Where the victim's chats spent their time, read back from Fence's own run records (the
 * product's `GET /v1/runs`): each step's duration, the whole run, and what lies outside the run
 * (HTTP, authentication, admission, writing the response). The client's latency alone cannot say
 * whether a slow chat waited for the LLM lane or for the database; its run record can.
 */
export interface ChatStepBreakdown {
  /** Runs matched to a chat the client saw answered through the LLM. */
  runs: number;
  /** model_call minus the provider's fixed time: the wait for a place in the LLM lane (plus loopback HTTP). */
  laneWait: LatencySummary;
  /** query_embedding: the model's queue and forward pass. */
  queryEmbedding: LatencySummary;
  /** retrieval minus its query embedding: the vector and keyword search in the database. */
  search: LatencySummary;
  budgetReservation: LatencySummary;
  /** The run's latency minus its steps: the tenant settings and data-version read, caching, settling the ledger. */
  betweenSteps: LatencySummary;
  /** Client latency minus the run's: HTTP, key check, admission, response. */
  outsideRun: LatencySummary;
}

/** Reads the tenant's chat runs since `since` and matches them to the client's latencies by question. */
export async function chatStepBreakdown(
  service: ServiceUnderTest,
  tenant: BenchTenant,
  since: number,
  clientLatency: ReadonlyMap<string, number>,
  llmDelayMs: number,
): Promise<ChatStepBreakdown> {
  const runs: RunJson[] = [];
  for (let cursor: string | null = null; ; ) {
    const query = new URLSearchParams({ kind: "chat", since: new Date(since).toISOString(), limit: "100" });
    if (cursor) query.set("cursor", cursor);
    const res = await service.request("GET", `/v1/runs?${query}`, tenant.key);
    if (res.status !== 200) throw new Error(`GET /v1/runs: ${res.status} ${JSON.stringify(res.body)}`);
    const page = res.body as RunListJson;
    runs.push(...page.runs);
    cursor = page.next_cursor;
    if (!cursor) break;
  }
  const samples = { laneWait: [], queryEmbedding: [], search: [], budgetReservation: [], betweenSteps: [], outsideRun: [] } as Record<
    Exclude<keyof ChatStepBreakdown, "runs">,
    number[]
  >;
  let matched = 0;
  for (const run of runs) {
    const latency = run.question === null ? undefined : clientLatency.get(run.question);
    const step = (name: string) => run.steps.find((s) => s.name === name)?.duration_ms;
    const model = step("model_call");
    if (latency === undefined || model === undefined) continue;
    matched++;
    const embedding = step("query_embedding") ?? 0;
    const retrieval = step("retrieval") ?? 0;
    // query_embedding is recorded inside retrieval; the other steps follow one another.
    const stepped = retrieval + (step("context_assembly") ?? 0) + (step("budget_reservation") ?? 0) + model;
    samples.laneWait.push(model - llmDelayMs);
    samples.queryEmbedding.push(embedding);
    samples.search.push(retrieval - embedding);
    samples.budgetReservation.push(step("budget_reservation") ?? 0);
    samples.betweenSteps.push(run.latency_ms - stepped);
    samples.outsideRun.push(latency - run.latency_ms);
  }
  return {
    runs: matched,
    laneWait: summarize(samples.laneWait),
    queryEmbedding: summarize(samples.queryEmbedding),
    search: summarize(samples.search),
    budgetReservation: summarize(samples.budgetReservation),
    betweenSteps: summarize(samples.betweenSteps),
    outsideRun: summarize(samples.outsideRun),
  };
}

/** The victim's upload jobs by step (from the job's own steps): where a slow upload spent its time. */
export interface UploadStepBreakdown {
  jobs: number;
  steps: { name: string; ms: LatencySummary }[];
}

export function uploadStepBreakdown(jobs: readonly { steps: { name: string; duration_ms: number }[] }[]): UploadStepBreakdown {
  const byName = new Map<string, number[]>();
  for (const job of jobs) for (const step of job.steps) (byName.get(step.name) ?? byName.set(step.name, []).get(step.name)!).push(step.duration_ms);
  return { jobs: jobs.length, steps: [...byName].map(([name, samples]) => ({ name, ms: summarize(samples) })) };
}
