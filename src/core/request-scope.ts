import { AsyncLocalStorage } from "node:async_hooks";

/**
 * One Worker invocation (a fetch or a cron run). Workers bind every socket to the invocation that
 * opened it — a connection made for one request cannot be used by the next — so the database pool
 * lives here rather than in the isolate, and background work (jobs run after a 202) is tracked so
 * the pool is closed only after it.
 */
export interface RequestScope {
  /** Made on first use by the scope's owner (the per-request pool), closed at the end. */
  resources: Map<string, { close(): Promise<void> }>;
  /** Work that outlives the response (`ctx.waitUntil`), awaited before the resources close. */
  background: Promise<unknown>[];
}

const storage = new AsyncLocalStorage<RequestScope>();

export function currentScope(): RequestScope {
  const scope = storage.getStore();
  if (!scope) throw new Error("No request scope: database access on Workers must happen inside fetch() or scheduled().");
  return scope;
}

/** Runs `fn` in a fresh scope; `settle` waits for its background work, then closes its resources. */
export function withRequestScope<T>(fn: () => Promise<T>): { result: Promise<T>; settle(): Promise<void> } {
  const scope: RequestScope = { resources: new Map(), background: [] };
  const result = storage.run(scope, fn);
  return {
    result,
    async settle() {
      // Background work may queue more background work (a job run after a job): drain to a fixed point.
      while (scope.background.length > 0) await Promise.allSettled(scope.background.splice(0));
      await Promise.allSettled([...scope.resources.values()].map((resource) => resource.close()));
      scope.resources.clear();
    },
  };
}

/** Keeps `work` going after the response, within this invocation (ctx.waitUntil covers the settle). */
export function runInBackground(work: () => Promise<unknown>): void {
  const scope = storage.getStore();
  if (!scope) return;
  scope.background.push(work());
}
