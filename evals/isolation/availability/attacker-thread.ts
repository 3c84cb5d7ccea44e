import { parentPort, workerData } from "node:worker_threads";
import { HOSTILE_INPUTS, type HostileRequest } from "./hostile-inputs.js";
import { ATTACKER_HEADERS } from "./instance.js";

/**
 * The attacker's client, on a thread of its own (started by attacker.ts). The victim's searches
 * and /healthz probes keep their clock on the eval's event loop; were the attacker's requests sent
 * from that loop too, the client's own work on them (fetch copies a 10 MB body before sending it)
 * would be counted as Fence's stall. An attacker is another machine; a thread is the closest this
 * one has. It still shares the machine's two cores with Fence, as a worst case.
 */
export interface AttackerData {
  url: string;
  attackerKey: string;
  inputName: string;
  deadlineMs: number;
}

/** Thread → eval: the requests are built (`ready`), then what the attacker got back (`done`). */
export type AttackerMessage = { type: "ready" } | { type: "done"; outcomes: string[] };

const { url, attackerKey, inputName, deadlineMs } = workerData as AttackerData;
const input = HOSTILE_INPUTS.find((candidate) => candidate.name === inputName);
if (!input) throw new Error(`no hostile input named "${inputName}"`);
const build = input.prepare();
const requests = Array.from({ length: input.requests }, (_, i) => build(i));
parentPort!.postMessage({ type: "ready" } satisfies AttackerMessage);
parentPort!.once("message", () => {
  void sendAll(requests, input.concurrency, AbortSignal.timeout(deadlineMs)).then((outcomes) => parentPort!.postMessage({ type: "done", outcomes } satisfies AttackerMessage));
});

/** Sends every request, `concurrency` at a time; returns each one's status or failure. */
async function sendAll(all: readonly HostileRequest[], concurrency: number, deadline: AbortSignal): Promise<string[]> {
  const outcomes: string[] = [];
  let next = 0;
  const lane = async () => {
    while (next < all.length) {
      const request = all[next++]!;
      if (deadline.aborted) {
        outcomes.push("not sent");
        continue;
      }
      const key = request.key === "attacker" ? attackerKey : request.key;
      try {
        const slow = request.slowBody;
        const res = await fetch(url + request.path, {
          method: request.method,
          headers: { ...ATTACKER_HEADERS, authorization: `Bearer ${key}`, ...request.headers, ...(slow ? { "content-length": String(slow.declaredBytes) } : {}) },
          body: slow ? trickle(slow) : request.body,
          signal: deadline,
          ...(slow ? { duplex: "half" } : {}),
        } as RequestInit);
        await res.arrayBuffer();
        outcomes.push(String(res.status));
      } catch (error) {
        outcomes.push(deadline.aborted ? "timeout" : `network error (${causeOf(error)})`);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, all.length) }, lane));
  return outcomes.sort();
}

/** A JSON body sent a little at a time: its opening, then `chunkBytes` of text every `everyMs`. */
function trickle({ declaredBytes, chunkBytes, everyMs }: NonNullable<HostileRequest["slowBody"]>): ReadableStream<Uint8Array> {
  let sent = 0;
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (sent === 0) {
        const opening = new TextEncoder().encode('{"text":"');
        sent += opening.length;
        controller.enqueue(opening);
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, everyMs));
      const size = Math.min(chunkBytes, declaredBytes - sent);
      if (size <= 0) return controller.close();
      sent += size;
      controller.enqueue(new Uint8Array(size).fill(0x61));
    },
  });
}

function causeOf(error: unknown): string {
  const cause = error instanceof Error ? (error.cause as NodeJS.ErrnoException | undefined) : undefined;
  return cause?.code ?? cause?.message ?? (error instanceof Error ? error.message : String(error));
}
