import { setTimeout as sleep } from "node:timers/promises";
import type { QueueDiscipline } from "../../src/flow/fair-queue.js";
import { summarize, type LatencySummary } from "../stats.js";
import type { GeneratedDocument } from "../text-corpus.js";
import { chatStepBreakdown, uploadStepBreakdown, type ChatStepBreakdown, type UploadStepBreakdown } from "./step-breakdown.js";
import { DONE, getJob, jobChunks, jobEnd, listJobs } from "./jobs.js";
import type { NoisyOptions } from "./options.js";
import type { BenchTenant, ServiceUnderTest } from "./service.js";
import type { QuestionStream } from "./workload.js";
import type { ChatBody, JobJson } from "../../test/support/api-types.js";

export interface VictimResult {
  chats: number;
  chat: LatencySummary;
  /** Chats still unanswered at the time limit: counted in `chat` at the limit, so its p99 is then a lower bound. */
  chatsUnfinished: number;
  /** Chats that did not answer 200 (refused or failed); not in the latency summary. */
  chatErrors: number;
  /** Share of answered chats that went through the LLM (the rest: no passage found, or extractive). */
  chatLlmShare: number;
  uploads: number;
  /** Upload latency: from the moment the upload was due to be sent to the end of its job. */
  upload: LatencySummary;
  /** Uploads whose job had not finished when the phase ended; counted in `upload` at the time waited (a lower bound). */
  uploadsUnfinished: number;
  uploadErrors: number;
  /** Of the upload latency, the part before a worker picked the job up (its first step started). */
  uploadWait: LatencySummary;
  /** The victim's query embeddings (queue wait + forward pass) inside the window. */
  queryEmbed: LatencySummary;
  /**
   * Per answered chat: its latency minus its query embedding and the provider's fixed time. What
   * is left is the wait for a place in the LLM lane, the database work and queueing, and HTTP.
   */
  chatRest: LatencySummary;
  /**
   * Event-loop utilisation of the main thread over the window (0–1). The HTTP server, the database
   * when it is PGlite (WASM, in process) and the benchmark's own clients all run on it.
   */
  mainThreadBusy: number;
  /** The answered LLM chats' time by step, from their run records. */
  steps: ChatStepBreakdown;
  /** The finished uploads' jobs by step. */
  uploadSteps: UploadStepBreakdown;
}

export interface AggressorResult {
  /** Chats/s the aggressor's client tried to send (open loop), and what it sent and got answered in the window. */
  offeredPerSecond: number;
  sentPerSecond: number;
  chatsPerSecond: number;
  chatErrors: number;
  chatLlmShare: number;
  chat: LatencySummary;
  docsQueued: number;
  docsPerSecond: number;
  chunksPerSecond: number;
  docsDoneInWindow: number;
  docsLeftQueued: number;
}

export interface PhaseResult {
  label: string;
  discipline: QueueDiscipline;
  flood: boolean;
  seconds: number;
  victim: VictimResult;
  aggressor?: AggressorResult;
  /** The victim's chats answered through the LLM per second, counted by when they ended, inside the window. */
  victimLlmPerSecond: number;
  /** The same for victim and aggressor together, to hold against the LLM lane's capacity. */
  llmCallsPerSecond: number;
}

/** Texts the victim and aggressor send, one stream each per phase, so no phase sees another's questions. */
export interface PhaseInputs {
  victimQuestions: QuestionStream;
  victimUploads: GeneratedDocument[];
  aggressorQuestions: QuestionStream;
  aggressorDocs: GeneratedDocument[];
}

async function sleepUntil(target: number): Promise<void> {
  const wait = target - performance.now();
  if (wait > 0) await sleep(wait);
}

interface ChatOutcome {
  /** HTTP status; 0 when the request failed or timed out. */
  status: number;
  llm: boolean;
  timedOut: boolean;
}

/** A chat may take at most this long (the phase must end); a slower one is given up and counted at this time. */
function chatTimeoutMs(options: NoisyOptions): number {
  return (options.seconds + options.drainSeconds) * 1000;
}

async function sendChat(
  service: ServiceUnderTest,
  tenant: BenchTenant,
  question: string,
  timeoutMs: number,
  stop?: AbortSignal,
): Promise<ChatOutcome> {
  const timeout = AbortSignal.timeout(timeoutMs);
  try {
    const res = await service.request("POST", "/v1/chat", tenant.key, { question }, {}, stop ? AbortSignal.any([timeout, stop]) : timeout);
    return { status: res.status, llm: res.status === 200 && (res.body as Partial<ChatBody>).mode === "llm", timedOut: false };
  } catch {
    return { status: 0, llm: false, timedOut: timeout.aborted };
  }
}

/**
 * The victim: open loop at fixed intervals (each request is sent when it is due, whether or not
 * the earlier ones have answered), chats and small uploads sent as jobs (`Prefer: respond-async`).
 * Chat latency runs from when the chat was due (so a late timer counts against the service, not
 * for it) to the whole answer; upload latency from when the upload was due to the end of its job.
 */
async function runVictim(service: ServiceUnderTest, victim: BenchTenant, options: NoisyOptions, inputs: PhaseInputs) {
  const windowMs = options.seconds * 1000;
  const chatEvery = 1000 / options.victimChatsPerSecond;
  const uploadEvery = options.victimUploadEverySeconds * 1000;
  const events: { at: number; kind: "chat" | "upload" }[] = [];
  for (let at = 0; at < windowMs; at += chatEvery) events.push({ at, kind: "chat" });
  for (let at = chatEvery / 2; at < windowMs; at += uploadEvery) events.push({ at, kind: "upload" });
  events.sort((a, b) => a.at - b.at);

  const chatLatencies: number[] = [];
  const answered = new Map<string, number>();
  let chatsUnfinished = 0;
  let chatErrors = 0;
  /** When each of the victim's LLM answers arrived (epoch ms). */
  const llmAnswerEnds: number[] = [];
  const uploads: { due: number; jobId?: string }[] = [];
  let uploadIndex = 0;
  const t0 = performance.now();
  const epoch0 = Date.now();
  const elu0 = performance.eventLoopUtilization();
  const inFlight: Promise<void>[] = [];
  for (const event of events) {
    await sleepUntil(t0 + event.at);
    if (event.kind === "chat") {
      const question = inputs.victimQuestions.next();
      inFlight.push(
        sendChat(service, victim, question, chatTimeoutMs(options)).then((outcome) => {
          if (outcome.timedOut) {
            chatsUnfinished++;
            chatLatencies.push(chatTimeoutMs(options));
          } else if (outcome.status !== 200) chatErrors++;
          else {
            const latency = performance.now() - (t0 + event.at);
            chatLatencies.push(latency);
            if (outcome.llm) {
              answered.set(question, latency);
              llmAnswerEnds.push(Date.now());
            }
          }
        }),
      );
    } else {
      const doc = inputs.victimUploads[uploadIndex++ % inputs.victimUploads.length]!;
      const record: { due: number; jobId?: string } = { due: epoch0 + event.at };
      uploads.push(record);
      inFlight.push(
        service
          .request(
            "POST",
            "/v1/documents",
            victim.key,
            { title: doc.title, text: doc.markdown },
            { prefer: "respond-async" },
            AbortSignal.timeout(chatTimeoutMs(options)),
          )
          .then((res) => {
            if (res.status === 202) record.jobId = (res.body as JobJson).id;
          })
          .catch(() => undefined),
      );
    }
  }
  await sleepUntil(t0 + windowMs);
  const mainThreadBusy = performance.eventLoopUtilization(elu0).utilization;
  await Promise.all(inFlight);
  const windowEnd = epoch0 + windowMs;

  // The uploads' jobs may still be queued or running: wait for them (the flood goes on meanwhile),
  // up to the deadline, which also bounds the status requests themselves.
  const deadline = windowEnd + options.drainSeconds * 1000;
  const jobs = new Map<string, JobJson>();
  const isOpen = (u: { jobId?: string }) => u.jobId !== undefined && !DONE.has(jobs.get(u.jobId)?.status ?? "queued");
  while (uploads.some(isOpen) && Date.now() < deadline) {
    const signal = AbortSignal.timeout(Math.max(1, deadline - Date.now()));
    await Promise.all(
      uploads.filter(isOpen).map(async (u) => {
        const job = await getJob(service, victim, u.jobId!, signal).catch(() => undefined);
        if (job) jobs.set(u.jobId!, job);
      }),
    );
    if (uploads.some(isOpen)) await sleep(Math.min(250, Math.max(0, deadline - Date.now())));
  }
  const cutoff = Date.now();
  const uploadLatencies: number[] = [];
  const uploadWaits: number[] = [];
  let unfinished = 0;
  let uploadErrors = 0;
  const succeeded: JobJson[] = [];
  for (const u of uploads) {
    const job = u.jobId ? jobs.get(u.jobId) : undefined;
    if (!u.jobId || job?.status === "failed" || job?.status === "cancelled") uploadErrors++;
    else if (job?.status === "succeeded") {
      succeeded.push(job);
      uploadLatencies.push(jobEnd(job)! - u.due);
      uploadWaits.push(Date.parse(job.steps[0]!.started_at) - u.due);
    } else {
      unfinished++;
      uploadLatencies.push(cutoff - u.due);
    }
  }

  const victimQueries = service.embeddings.records.filter(
    (r) => r.flowId === victim.id && r.query !== undefined && r.startedAt >= epoch0 && r.startedAt < windowEnd,
  );
  const embedOf = new Map(victimQueries.map((r) => [r.query!, r.ms]));
  const chatRest = [...answered]
    .filter(([question]) => embedOf.has(question))
    .map(([question, latency]) => latency - embedOf.get(question)! - options.llmDelayMs);

  const result: VictimResult = {
    chats: events.filter((e) => e.kind === "chat").length,
    chat: summarize(chatLatencies),
    chatsUnfinished,
    chatErrors,
    chatLlmShare: chatLatencies.length > chatsUnfinished ? llmAnswerEnds.length / (chatLatencies.length - chatsUnfinished) : 0,
    uploads: uploads.length,
    upload: summarize(uploadLatencies),
    uploadsUnfinished: unfinished,
    uploadErrors,
    uploadWait: summarize(uploadWaits),
    queryEmbed: summarize(victimQueries.map((r) => r.ms)),
    chatRest: summarize(chatRest),
    mainThreadBusy,
    steps: await chatStepBreakdown(service, victim, epoch0, answered, options.llmDelayMs),
    uploadSteps: uploadStepBreakdown(succeeded),
  };
  const llmAnswers = llmAnswerEnds.filter((t) => t >= epoch0 && t < windowEnd).length;
  return { result, windowStart: epoch0, windowEnd, llmAnswers };
}

/**
 * The aggressor: a big batch of documents queued up front, and chats offered open loop at
 * `floodFactor` times the victim's rate. Its client keeps at most `aggressorInFlight` chats in
 * flight; when they are all out, the next chat goes as soon as one answers (the offered rate is
 * above what the service can take, so in practice it is a closed loop that keeps Fence full).
 */
class Aggressor {
  private readonly chatsDone: { endedAt: number; latencyMs: number; status: number; llm: boolean }[] = [];
  private readonly workers: Promise<void>[] = [];
  /** Stops the clients and abandons the chats still in flight (they are outside the measured window). */
  private readonly stopping = new AbortController();
  private readonly sentAt: number[] = [];
  docsQueued = 0;

  constructor(
    private readonly service: ServiceUnderTest,
    private readonly tenant: BenchTenant,
    private readonly questions: QuestionStream,
    private readonly timeoutMs: number,
  ) {}

  async queueDocuments(docs: readonly GeneratedDocument[]): Promise<void> {
    for (let i = 0; i < docs.length; i += 100) {
      const documents = docs.slice(i, i + 100).map((d) => ({ title: d.title, text: d.markdown }));
      const res = await this.service.request("POST", "/v1/documents/batch", this.tenant.key, { documents });
      if (res.status !== 202) throw new Error(`aggressor batch: ${res.status} ${JSON.stringify(res.body)}`);
      this.docsQueued += documents.length;
    }
  }

  startChats(perSecond: number, maxInFlight: number): void {
    const interval = 1000 / perSecond;
    const t0 = performance.now();
    let slot = 0;
    for (let w = 0; w < maxInFlight; w++) {
      this.workers.push(
        (async () => {
          const stop = this.stopping.signal;
          while (!stop.aborted) {
            await sleepUntil(t0 + slot++ * interval);
            if (stop.aborted) return;
            const started = performance.now();
            this.sentAt.push(Date.now());
            const outcome = await sendChat(this.service, this.tenant, this.questions.next(), this.timeoutMs, stop);
            if (!stop.aborted) this.chatsDone.push({ endedAt: Date.now(), latencyMs: performance.now() - started, ...outcome });
          }
        })(),
      );
    }
  }

  async stop(): Promise<void> {
    this.stopping.abort();
    await Promise.all(this.workers);
  }

  async result(windowStart: number, windowEnd: number, offered: number): Promise<AggressorResult> {
    const seconds = (windowEnd - windowStart) / 1000;
    const inWindow = this.chatsDone.filter((c) => c.endedAt >= windowStart && c.endedAt < windowEnd);
    const answered = inWindow.filter((c) => c.status === 200);
    const jobs = await listJobs(this.service, this.tenant);
    const done = jobs.filter((j) => j.status === "succeeded" && jobEnd(j)! >= windowStart && jobEnd(j)! < windowEnd);
    return {
      offeredPerSecond: offered,
      sentPerSecond: this.sentAt.filter((t) => t >= windowStart && t < windowEnd).length / seconds,
      chatsPerSecond: answered.length / seconds,
      chatErrors: inWindow.length - answered.length,
      chatLlmShare: answered.length ? answered.filter((c) => c.llm).length / answered.length : 0,
      chat: summarize(answered.map((c) => c.latencyMs)),
      docsQueued: this.docsQueued,
      docsPerSecond: done.length / seconds,
      chunksPerSecond: done.reduce((s, j) => s + jobChunks(j), 0) / seconds,
      docsDoneInWindow: done.length,
      docsLeftQueued: jobs.filter((j) => j.status === "queued").length,
    };
  }

  llmAnswersIn(windowStart: number, windowEnd: number): number {
    return this.chatsDone.filter((c) => c.llm && c.endedAt >= windowStart && c.endedAt < windowEnd).length;
  }
}

/** The victim alone. */
export async function soloPhase(
  service: ServiceUnderTest,
  victim: BenchTenant,
  options: NoisyOptions,
  inputs: PhaseInputs,
  label: string,
): Promise<PhaseResult> {
  const run = await runVictim(service, victim, options, inputs);
  return {
    label,
    discipline: service.discipline,
    flood: false,
    seconds: options.seconds,
    victim: run.result,
    victimLlmPerSecond: run.llmAnswers / options.seconds,
    llmCallsPerSecond: run.llmAnswers / options.seconds,
  };
}

/** The victim's same trickle while the aggressor floods (it starts `warmupSeconds` earlier and goes on until the victim's uploads are done). */
export async function floodPhase(
  service: ServiceUnderTest,
  victim: BenchTenant,
  aggressorTenant: BenchTenant,
  options: NoisyOptions,
  inputs: PhaseInputs,
  label: string,
): Promise<PhaseResult> {
  const aggressor = new Aggressor(service, aggressorTenant, inputs.aggressorQuestions, chatTimeoutMs(options));
  const offered = options.victimChatsPerSecond * options.floodFactor;
  try {
    await aggressor.queueDocuments(inputs.aggressorDocs);
    aggressor.startChats(offered, options.aggressorInFlight);
    await sleep(options.warmupSeconds * 1000);
    const run = await runVictim(service, victim, options, inputs);
    await aggressor.stop();
    const aggressorResult = await aggressor.result(run.windowStart, run.windowEnd, offered);
    return {
      label,
      discipline: service.discipline,
      flood: true,
      seconds: options.seconds,
      victim: run.result,
      aggressor: aggressorResult,
      victimLlmPerSecond: run.llmAnswers / options.seconds,
      llmCallsPerSecond: (run.llmAnswers + aggressor.llmAnswersIn(run.windowStart, run.windowEnd)) / options.seconds,
    };
  } finally {
    await aggressor.stop();
  }
}
