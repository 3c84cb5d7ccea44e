import type { JobJson, JobListJson } from "./api-types.js";

/**
 * Helpers for the durable-ingestion suites (jobs/jobs-api, jobs/crash-resume): a transport-agnostic
 * poll for a job's state (the Job JSON is api-types.ts's `JobJson`), and generators of multi-chunk
 * text. Polling runs at a modest interval so a suite stays well inside its tenant's requests-per-minute.
 */

export const TERMINAL: ReadonlySet<JobJson["status"]> = new Set(["succeeded", "failed", "cancelled"]);

/** GET a path as a tenant: in-process (TestFence.request) or over HTTP (a spawned process). */
export type TenantGet = (path: string) => Promise<Response>;

/**
 * Polls `check` every `intervalMs` until it returns a value other than undefined. On timeout the
 * error carries `describe()` (e.g. the last job seen), so a hang is diagnosable from the output.
 */
export async function pollUntil<T>(
  check: () => Promise<T | undefined>,
  options: { timeoutMs?: number; intervalMs?: number; describe?: () => string } = {},
): Promise<T> {
  const { timeoutMs = 20_000, intervalMs = 50 } = options;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`condition not reached in ${timeoutMs} ms${options.describe ? `: ${options.describe()}` : ""}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

export async function getJob(get: TenantGet, id: string): Promise<JobJson> {
  const res = await get(`/v1/jobs/${id}`);
  if (res.status !== 200) throw new Error(`GET /v1/jobs/${id}: ${res.status} ${await res.text()}`);
  return (await res.json()) as JobJson;
}

/** Polls one job until `until` holds (default: it has ended). */
export async function waitForJob(
  get: TenantGet,
  id: string,
  until: (job: JobJson) => boolean = (job) => TERMINAL.has(job.status),
  timeoutMs = 20_000,
): Promise<JobJson> {
  let last: JobJson | undefined;
  return pollUntil(
    async () => {
      last = await getJob(get, id);
      return until(last) ? last : undefined;
    },
    { timeoutMs, describe: () => JSON.stringify(last) },
  );
}

/** Every job of a batch (at most 100), once all of them have ended. */
export async function waitForBatch(get: TenantGet, batchId: string, expected: number, timeoutMs = 30_000): Promise<JobJson[]> {
  let last: JobJson[] = [];
  return pollUntil(
    async () => {
      last = await listJobs(get, `batch_id=${batchId}&limit=100`);
      return last.length === expected && last.every((job) => TERMINAL.has(job.status)) ? last : undefined;
    },
    { timeoutMs, intervalMs: 100, describe: () => JSON.stringify(last.map((j) => ({ id: j.id, status: j.status, attempts: j.attempts, error: j.error }))) },
  );
}

export async function listJobs(get: TenantGet, query = "limit=100"): Promise<JobJson[]> {
  const res = await get(`/v1/jobs?${query}`);
  if (res.status !== 200) throw new Error(`GET /v1/jobs?${query}: ${res.status} ${await res.text()}`);
  return ((await res.json()) as JobListJson).jobs;
}

/** The step names of one attempt, in the order they were recorded. */
export function stepsOf(job: JobJson, attempt: number): string[] {
  return job.steps.filter((s) => s.attempt === attempt).map((s) => `${s.name}:${s.status}`);
}

/**
 * Text that chunks into about `paragraphs` chunks (one ~700-character paragraph per chunk with the
 * default 900-character chunks), with words unique to `topic` so searches can find it.
 */
export function multiChunkText(topic: string, paragraphs: number): string {
  const parts = [`# ${topic}`];
  for (let i = 0; i < paragraphs; i++) {
    const sentence = `Section ${i + 1} of the ${topic} handbook explains procedure number ${i + 1} in careful detail, covering staff duties, equipment checks and the paperwork that follows. `;
    parts.push(sentence.repeat(Math.floor(700 / sentence.length)).trim());
  }
  return parts.join("\n\n");
}
