import { setMaxListeners } from "node:events";
import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import { Client } from "undici";
import { percentile } from "../stats.js";
import type { GeneratorReply, GeneratorResult, OperationCounts, RunCommand, StopCommand } from "./generator-protocol.js";
import { addCount, failureKey, isSuccess, NETWORK_ERROR } from "./outcomes.js";
import type { Operation } from "./shapes.js";
import { RequestFactory } from "./requests.js";

/**
 * The aggressor's load generator, a child process of the orchestrator (forked with tsx): it sends
 * thousands of requests a second, and the CPU that costs must not land on the victim's client or
 * on the server's event loop. One undici Client per connection (keep-alive, no pipelining), each
 * in a closed loop: the next request goes as soon as the previous one answered, whatever the status.
 * It takes `run` commands over IPC, one at a time, and exits when the orchestrator goes away.
 */

interface Tally {
  sent: number;
  ok: number;
  failed: Record<string, number>;
  okLatencies: number[];
}

/** The stop switch of each run in progress, by id. */
const running = new Map<number, AbortController>();

async function run(command: RunCommand): Promise<GeneratorResult> {
  const factory = new RequestFactory(command.label, command.seed);
  const stop = new AbortController();
  // Every request in flight listens on it (one per connection): not a leak, so no warning.
  setMaxListeners(0, stop.signal);
  running.set(command.id, stop);
  const tallies = new Map<Operation, Tally>();
  const inWindow = (t: number) => t >= command.windowStart && t < command.windowEnd;

  const clients: Client[] = [];
  const loops: Promise<void>[] = [];
  for (const stream of command.streams) {
    const tally: Tally = tallies.get(stream.op) ?? { sent: 0, ok: 0, failed: {}, okLatencies: [] };
    tallies.set(stream.op, tally);
    for (let i = 0; i < stream.connections; i++) {
      const key = command.keys[clients.length % Math.max(1, command.keys.length)] ?? "";
      const client = new Client(command.url, { pipelining: 1, keepAliveTimeout: 60_000 });
      clients.push(client);
      loops.push(closedLoop(client, stream.op, key, factory, tally, inWindow, stop.signal));
    }
  }

  // The window's client-side cost, to tell a saturated generator from a saturated server.
  await sleep(Math.max(0, command.windowStart - Date.now()));
  const elu0 = performance.eventLoopUtilization();
  const cpu0 = process.cpuUsage();
  await sleep(Math.max(0, command.windowEnd - Date.now()));
  const clientBusy = performance.eventLoopUtilization(elu0).utilization;
  const cpu = process.cpuUsage(cpu0);
  const hardStop = setTimeout(() => stop.abort(), Math.max(0, command.stopAt - Date.now()));
  await new Promise<void>((resolve) => (stop.signal.aborted ? resolve() : stop.signal.addEventListener("abort", () => resolve())));
  clearTimeout(hardStop);
  running.delete(command.id);
  await Promise.all(loops);
  await Promise.all(clients.map((c) => c.destroy().catch(() => undefined)));

  const seconds = (command.windowEnd - command.windowStart) / 1000;
  const byOp: GeneratorResult["byOp"] = {};
  for (const [op, t] of tallies) {
    const sorted = t.okLatencies.sort((a, b) => a - b);
    byOp[op] = { sent: t.sent, ok: t.ok, failed: t.failed, okP50: percentile(sorted, 50), okP99: percentile(sorted, 99) } satisfies OperationCounts;
  }
  return { seconds, byOp, clientBusy, clientCpu: (cpu.user + cpu.system) / 1e6 / seconds };
}

async function closedLoop(
  client: Client,
  op: Operation,
  key: string,
  factory: RequestFactory,
  tally: Tally,
  inWindow: (t: number) => boolean,
  signal: AbortSignal,
): Promise<void> {
  while (!signal.aborted) {
    const call = factory.make(op, key);
    const sentAt = Date.now();
    const t0 = performance.now();
    if (inWindow(sentAt)) tally.sent++;
    try {
      const res = await client.request({ ...call, signal });
      let text = "";
      if (isSuccess(res.statusCode)) await res.body.dump();
      else text = await res.body.text();
      const endedAt = Date.now();
      if (!inWindow(endedAt)) continue;
      if (isSuccess(res.statusCode)) {
        tally.ok++;
        tally.okLatencies.push(performance.now() - t0);
      } else addCount(tally.failed, failureKey(res.statusCode, text));
    } catch {
      if (signal.aborted) return; // the window closed with this request in flight: not counted
      if (inWindow(Date.now())) addCount(tally.failed, NETWORK_ERROR);
      // A refused connection fails at once; do not spin on it.
      await sleep(10);
    }
  }
}

function reply(message: GeneratorReply): void {
  process.send?.(message);
}

process.on("message", (message: RunCommand | StopCommand) => {
  if (message.type === "stop") {
    running.get(message.id)?.abort();
    return;
  }
  run(message).then(
    (result) => reply({ type: "result", id: message.id, result }),
    (error: unknown) => reply({ type: "error", id: message.id, message: error instanceof Error ? error.message : String(error) }),
  );
});
// The orchestrator ended (or was killed): nothing is left to measure for.
process.on("disconnect", () => process.exit(0));
reply({ type: "ready" });
