import { AsyncLocalStorage } from "node:async_hooks";

/**
 * Whether the work under way has a person waiting on it (a request: `interactive`, the default) or
 * not (queued jobs: `bulk`). Shared queues serve interactive work first — the database's included —
 * so a search never waits behind another tenant's batch of writes.
 */
export type WorkClass = "interactive" | "bulk";

const storage = new AsyncLocalStorage<WorkClass>();

export function asBulkWork<T>(work: () => T): T {
  return storage.run("bulk", work);
}

/** For the few small steps of bulk work that must not wait behind requests (a job's lease renewal). */
export function asInteractiveWork<T>(work: () => T): T {
  return storage.run("interactive", work);
}

export function currentWorkClass(): WorkClass {
  return storage.getStore() ?? "interactive";
}
