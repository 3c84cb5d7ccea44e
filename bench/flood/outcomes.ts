/**
 * How a non-2xx answer is counted: its status and the reason Fence gives. A limit's refusal
 * names the limit in `error.details.reason` (rate_limit, concurrency_limit, queue_full, …);
 * anything else is known by `error.code`. The key is what the report prints, e.g. "429 rate_limit".
 */
export function failureKey(status: number, body: string): string {
  try {
    const error = (JSON.parse(body) as { error?: { code?: unknown; details?: { reason?: unknown } } }).error;
    const reason = error?.details?.reason ?? error?.code;
    return typeof reason === "string" ? `${status} ${reason}` : String(status);
  } catch {
    return String(status);
  }
}

/** A request that got no answer at all. */
export const TIMED_OUT = "timeout";
export const NETWORK_ERROR = "network error";

export function isSuccess(status: number): boolean {
  return status >= 200 && status < 300;
}

/** Counts by key, e.g. refusals by reason. */
export type Counts = Record<string, number>;

export function addCount(counts: Counts, key: string, n = 1): void {
  counts[key] = (counts[key] ?? 0) + n;
}

export function total(counts: Counts): number {
  return Object.values(counts).reduce((s, n) => s + n, 0);
}
