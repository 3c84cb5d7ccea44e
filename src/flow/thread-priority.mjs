// A worker thread's OS identity and priority. Plain JavaScript: it is imported by worker threads,
// which Node starts outside any TypeScript loader.
import { readlinkSync, stat } from "node:fs";
import process from "node:process";
import { getPriority, setPriority } from "node:os";

/** Nice value of a background thread: the OS serves the event loop (and normal threads) first. */
export const LOWERED_NICE = 10;

/** This thread's OS thread id (Linux; undefined elsewhere, or where /proc cannot be read). */
export function osThreadId() {
  if (process.platform !== "linux") return undefined;
  try {
    return Number(readlinkSync("/proc/thread-self").split("/").pop());
  } catch {
    return undefined;
  }
}

/**
 * This thread's nice value, lowered first if asked. Linux keeps a nice value per thread,
 * addressed by the thread's id; elsewhere setpriority() would act on the whole process, so the
 * thread is left alone there (undefined: no per-thread value).
 *
 * Threads a thread starts inherit its nice value. The one pool that matters is libuv's shared I/O
 * pool, started by whichever thread first uses it: lower a thread at once only after
 * `startSharedIoThreads()` ran on the event loop, else only once it has loaded what it needs.
 */
export function threadPriority(lower) {
  const tid = osThreadId();
  if (tid === undefined) return undefined;
  try {
    if (lower) setPriority(tid, Math.max(getPriority(tid), LOWERED_NICE));
    return getPriority(tid);
  } catch {
    return undefined; // a sandbox that refuses setpriority: normal priority
  }
}

/**
 * Makes sure libuv's shared I/O threads exist, started from the calling thread (libuv starts them
 * all on the first request queued to them; later calls cost one stat). Called on the event loop
 * before starting a thread that lowers its priority first thing, so the pool keeps normal priority.
 */
export function startSharedIoThreads() {
  stat(".", () => undefined);
}
