// A worker thread's OS priority. Plain JavaScript: it is imported by worker threads, which Node
// starts outside any TypeScript loader.
import { readlinkSync } from "node:fs";
import process from "node:process";
import { getPriority, setPriority } from "node:os";

/** Nice value of a background thread: the OS serves the event loop (and normal threads) first. */
export const LOWERED_NICE = 10;

/**
 * This thread's nice value, lowered first if asked. Linux keeps a nice value per thread,
 * addressed by the thread's id; elsewhere setpriority() would act on the whole process, so the
 * thread is left alone there (undefined: no per-thread value).
 *
 * Lower a thread only once it has loaded what it needs: threads it starts inherit its nice value,
 * and loading may be what starts the process's shared I/O thread pool, which must keep normal priority.
 */
export function threadPriority(lower) {
  if (process.platform !== "linux") return undefined;
  try {
    const tid = Number(readlinkSync("/proc/thread-self").split("/").pop());
    if (lower) setPriority(tid, Math.max(getPriority(tid), LOWERED_NICE));
    return getPriority(tid);
  } catch {
    return undefined; // no /proc, or a sandbox that refuses setpriority: normal priority
  }
}
