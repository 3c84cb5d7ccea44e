import { readFileSync } from "node:fs";

/**
 * CPU time one thread of this process has used, in milliseconds, read from Linux's per-thread
 * scheduler statistics (`/proc/self/task/<tid>/schedstat`: nanoseconds on a CPU first).
 * Undefined where that cannot be read (another OS, a kernel without them): callers fall back to
 * wall time.
 *
 * Why CPU time: a limit on what a tenant's document may cost must not fire because the machine is
 * busy. Wall time punishes a normal upload on a loaded machine (a low-priority thread waits for a
 * core) and lets a hostile one run longer on an idle one; CPU time is the cost itself.
 */
export function threadCpuMs(tid: number | undefined): number | undefined {
  if (tid === undefined) return undefined;
  try {
    const onCpuNs = Number(readFileSync(`/proc/self/task/${tid}/schedstat`, "utf8").split(" ")[0]);
    return Number.isFinite(onCpuNs) ? onCpuNs / 1e6 : undefined;
  } catch {
    return undefined;
  }
}
