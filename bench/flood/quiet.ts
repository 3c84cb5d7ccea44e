import { readFileSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";

/** Sampling period, and CPU (ms, all threads) a process may use in one and still count as idle. */
const SAMPLE_MS = 250;
const IDLE_CPU_MS = 25;
/** Clock ticks per second of /proc/<pid>/stat (USER_HZ): 100 on every Linux Node runs on. */
const TICK_MS = 10;

/**
 * Waits until the given processes (the Fence builds) are idle: two samples in a row in which each
 * used at most 10 % of a core. Requests cut at a window's end may still be running on a build (an
 * upload's chunks on the model threads, a chat's answer), and the next phase, perhaps the other
 * build's on the same two cores, must not pay for them. A health check cannot tell: the event loop
 * answers it while the model threads are still busy, so this reads the processes' CPU time from
 * /proc (all threads). Bounded by `maxMs`; where /proc does not exist it just waits one second.
 */
export async function untilIdle(pids: readonly number[], maxMs = 10_000): Promise<void> {
  if (cpuMs(pids[0]!) === undefined) {
    await sleep(1000);
    return;
  }
  const deadline = Date.now() + maxMs;
  let quietSamples = 0;
  let before = pids.map(cpuMs);
  while (quietSamples < 2 && Date.now() < deadline) {
    await sleep(SAMPLE_MS);
    const now = pids.map(cpuMs);
    const busy = now.some((ms, i) => ms !== undefined && before[i] !== undefined && ms - before[i]! > IDLE_CPU_MS);
    quietSamples = busy ? 0 : quietSamples + 1;
    before = now;
  }
}

/** User + system CPU time of a process, all its threads, in ms; undefined without /proc. */
function cpuMs(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // The command name (field 2) may contain spaces; the fields after its closing parenthesis do not.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) * TICK_MS;
  } catch {
    return undefined;
  }
}
