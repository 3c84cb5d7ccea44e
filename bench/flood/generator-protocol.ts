import type { Counts } from "./outcomes.js";
import type { Operation, Stream } from "./shapes.js";

/**
 * What the orchestrator and the load generator (load-generator.ts, a child process of its own)
 * say to each other over the IPC channel. Times are epoch milliseconds: both processes read the
 * same clock, so the generator counts exactly the answers inside the window the victim measures.
 */
export interface RunCommand {
  type: "run";
  id: number;
  url: string;
  /** Connection i uses key i mod keys.length. */
  keys: string[];
  streams: Stream[];
  /** Texts are seeded per run, so the FIFO and the fair build see the same requests. */
  label: string;
  seed: number;
  /** The flood starts at once; answers count from windowStart to windowEnd. */
  windowStart: number;
  windowEnd: number;
  /**
   * Every connection is cut at a `stop` command or at stopAt, whichever comes first (stopAt ≥
   * windowEnd). Under a flood the orchestrator stops it only once the victim's last request has
   * answered, so that request too was served under the flood.
   */
  stopAt: number;
}

export interface StopCommand {
  type: "stop";
  id: number;
}

export interface OperationCounts {
  /** Requests sent inside the window. */
  sent: number;
  /** 2xx answers that arrived inside the window. */
  ok: number;
  /** Non-2xx answers (and failures) inside the window, by "status reason". */
  failed: Counts;
  /** Latency of the 2xx answers (ms): p50 and p99 only, the samples stay in the generator. */
  okP50: number;
  okP99: number;
}

export interface GeneratorResult {
  seconds: number;
  byOp: Partial<Record<Operation, OperationCounts>>;
  /**
   * Event-loop utilisation of the generator over the window (0–1). Near 1, the generator itself
   * is the bottleneck and the rate it measured is a floor, not the server's capacity.
   */
  clientBusy: number;
  /** CPU the generator used over the window, in seconds per second (up to ~1 for one thread). */
  clientCpu: number;
}

export type GeneratorReply =
  | { type: "ready" }
  | { type: "result"; id: number; result: GeneratorResult }
  | { type: "error"; id: number; message: string };
