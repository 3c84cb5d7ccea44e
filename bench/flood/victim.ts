import { setTimeout as sleep } from "node:timers/promises";
import { summarize, type LatencySummary } from "../stats.js";
import type { FenceApi } from "./api.js";
import type { FloodOptions } from "./options.js";
import { addCount, failureKey, isSuccess, NETWORK_ERROR, TIMED_OUT, type Counts } from "./outcomes.js";
import type { RequestFactory } from "./requests.js";

/** What the victim does: a paying tenant well inside its plan. */
export const VICTIM_OPS = ["search", "chat", "upload"] as const;
export type VictimOp = (typeof VICTIM_OPS)[number];

export interface VictimOpResult {
  /** Requests due inside the window. */
  sent: number;
  /** Latency of the 2xx answers, from when the request was due to its whole body. */
  latency: LatencySummary;
  /** Anything else: a refusal, a failure, no answer in time. Every one is a failure of isolation. */
  failed: Counts;
}

export interface VictimResult {
  ops: Record<VictimOp, VictimOpResult>;
  /** All operations together. */
  all: LatencySummary;
}

/**
 * The victim, open loop at fixed intervals in the orchestrator's main thread (the load generator
 * runs in another process): each request is sent when it is due, whether or not earlier ones have
 * answered, and its latency runs from when it was due, so a late timer counts against the service.
 * Searches, extractive chats (LLM chats when the build has an LLM) and one small synchronous upload
 * every few seconds, offset from each other so they do not all start on the same millisecond.
 */
export async function runVictim(
  api: FenceApi,
  key: string,
  factory: RequestFactory,
  options: FloodOptions,
  window: { start: number; end: number },
): Promise<VictimResult> {
  const windowMs = window.end - window.start;
  const due: { at: number; op: VictimOp }[] = [];
  const every = (op: VictimOp, intervalMs: number, offsetMs: number) => {
    for (let at = offsetMs; at < windowMs; at += intervalMs) due.push({ at, op });
  };
  every("search", 1000 / options.victimSearchesPerSecond, 0);
  every("chat", 1000 / options.victimChatsPerSecond, 137);
  every("upload", options.victimUploadEverySeconds * 1000, 271);
  due.sort((a, b) => a.at - b.at);

  const latencies: Record<VictimOp, number[]> = { search: [], chat: [], upload: [] };
  const failed: Record<VictimOp, Counts> = { search: {}, chat: {}, upload: {} };
  const inFlight: Promise<void>[] = [];
  const timeoutMs = options.victimTimeoutSeconds * 1000;
  // performance.now() for the latencies; the window itself is on the shared epoch clock.
  const t0 = performance.now() + (window.start - Date.now());
  for (const { at, op } of due) {
    const wait = t0 + at - performance.now();
    if (wait > 0) await sleep(wait);
    const call = factory.make(op, key);
    const signal = AbortSignal.timeout(timeoutMs);
    inFlight.push(
      api.send(call, signal).then(
        (answer) => {
          if (isSuccess(answer.status)) latencies[op].push(performance.now() - (t0 + at));
          else addCount(failed[op], failureKey(answer.status, answer.text));
        },
        () => addCount(failed[op], signal.aborted ? TIMED_OUT : NETWORK_ERROR),
      ),
    );
  }
  await Promise.all(inFlight);

  const ops = {} as Record<VictimOp, VictimOpResult>;
  for (const op of VICTIM_OPS) {
    ops[op] = { sent: due.filter((d) => d.op === op).length, latency: summarize(latencies[op]), failed: failed[op] };
  }
  return { ops, all: summarize(VICTIM_OPS.flatMap((op) => latencies[op])) };
}
