/**
 * The victim tenant's side of a window: searches on a steady schedule, each with a short timeout
 * so a frozen instance shows up as errors rather than as a hang, and a tight `/healthz` probe.
 *
 * The probe is sequential (one in flight, the next ~15 ms after the answer), so its latency bounds
 * the instance's longest event-loop block from outside: a probe sent just as the loop blocks is
 * answered only when it unblocks. A probe still unanswered when the window closes counts with the
 * time it has waited so far, a lower bound. /healthz does no I/O, so anything above a few
 * milliseconds in its latency is the instance being unable to run a callback.
 */
export interface VictimSettings {
  searchIntervalMs: number;
  probeIntervalMs: number;
  /** A victim request slower than this is an error (searches are aborted, the probe keeps waiting). */
  timeoutMs: number;
}

export interface VictimWindow {
  /** Latencies of the searches that succeeded, in ms. */
  latencies: number[];
  searches: number;
  /** Failed victim requests, as short reasons ("search: timeout", "healthz: 503"). */
  errors: string[];
  probes: number;
  /** The longest a /healthz probe waited, in ms. */
  worstStallMs: number;
  /** True when the last probe was still unanswered at the close: the stall is a lower bound. */
  stallOngoing: boolean;
  seconds: number;
}

/**
 * Queries differ per search, so each one embeds and searches for real instead of hitting Fence's
 * query-embedding cache. Numbered across every VictimLoad of the process: numbered per load, each
 * new window repeated the queries of the one before, and windows measured cache hits (~7 ms on
 * Postgres) against a baseline that mostly embedded (~20 ms), halving every ratio (until 2026-12-06).
 */
let nextQuery = 0;
const TOPICS = ["quarterly revenue", "onboarding checklist", "incident review", "vendor contract", "travel policy", "security training"];

export class VictimLoad {
  private readonly latencies: number[] = [];
  private readonly errors: string[] = [];
  private readonly inFlight = new Set<Promise<void>>();
  private readonly stopped = new AbortController();
  private searches = 0;
  private probes = 0;
  private worstStallMs = 0;
  private probeSentAt: number | undefined;
  private timer: NodeJS.Timeout | undefined;
  private probeLoop: Promise<void> | undefined;
  private startedAt = 0;

  constructor(
    private readonly url: string,
    private readonly key: string,
    private readonly settings: VictimSettings,
    /** Sent with every request (the victim's client address, see instance.ts). */
    private readonly headers: Readonly<Record<string, string>> = {},
  ) {}

  start(): void {
    this.startedAt = performance.now();
    this.timer = setInterval(() => this.search(), this.settings.searchIntervalMs);
    this.probeLoop = this.probe();
  }

  get sampleCount(): number {
    return this.latencies.length + this.errors.length;
  }

  /** How long the probe now in flight has waited (0 when none is): the instance is frozen if this grows. */
  currentStallMs(): number {
    return this.probeSentAt === undefined ? 0 : performance.now() - this.probeSentAt;
  }

  async stop(): Promise<VictimWindow> {
    clearInterval(this.timer);
    const ongoing = this.currentStallMs();
    if (ongoing > 0) this.worstStallMs = Math.max(this.worstStallMs, ongoing);
    this.stopped.abort();
    await this.probeLoop;
    await Promise.all(this.inFlight);
    return {
      latencies: this.latencies,
      searches: this.searches,
      errors: this.errors,
      probes: this.probes,
      worstStallMs: this.worstStallMs,
      stallOngoing: ongoing >= this.settings.timeoutMs,
      seconds: (performance.now() - this.startedAt) / 1000,
    };
  }

  private search(): void {
    this.searches++;
    const n = nextQuery++;
    const query = `${TOPICS[n % TOPICS.length]} notes ${n}`;
    const sent = performance.now();
    const request = fetch(`${this.url}/v1/search`, {
      method: "POST",
      headers: { ...this.headers, authorization: `Bearer ${this.key}`, "content-type": "application/json" },
      body: JSON.stringify({ query, k: 5 }),
      signal: AbortSignal.timeout(this.settings.timeoutMs),
    })
      .then(async (res) => {
        const body = await res.text();
        if (res.ok) this.latencies.push(performance.now() - sent);
        else this.errors.push(`search: ${res.status}${refusalReason(body)}`);
      })
      .catch((error: unknown) => void this.errors.push(`search: ${reasonOf(error)}`))
      .finally(() => this.inFlight.delete(request));
    this.inFlight.add(request);
  }

  private async probe(): Promise<void> {
    while (!this.stopped.signal.aborted) {
      this.probeSentAt = performance.now();
      try {
        const res = await fetch(`${this.url}/healthz`, { headers: this.headers, signal: this.stopped.signal });
        await res.arrayBuffer();
        const waited = performance.now() - this.probeSentAt;
        this.probes++;
        this.worstStallMs = Math.max(this.worstStallMs, waited);
        if (!res.ok) this.errors.push(`healthz: ${res.status}`);
        else if (waited > this.settings.timeoutMs) this.errors.push("healthz: timeout");
      } catch (error) {
        // Aborted by stop(): the wait so far was already counted there.
        if (this.stopped.signal.aborted) {
          if (this.currentStallMs() >= this.settings.timeoutMs) this.errors.push("healthz: timeout");
          break;
        }
        this.probes++;
        this.errors.push(`healthz: ${reasonOf(error)}`);
      }
      this.probeSentAt = undefined;
      await new Promise((resolve) => setTimeout(resolve, this.settings.probeIntervalMs));
    }
    this.probeSentAt = undefined;
  }
}

/** A 429's reason ("concurrency", "requests_per_minute"): which limit refused the victim matters. */
function refusalReason(body: string): string {
  try {
    const reason = (JSON.parse(body) as { error?: { details?: { reason?: string } } }).error?.details?.reason;
    return reason ? ` (${reason})` : "";
  } catch {
    return "";
  }
}

function reasonOf(error: unknown): string {
  if (error instanceof Error && (error.name === "TimeoutError" || error.name === "AbortError")) return "timeout";
  const cause = error instanceof Error && error.cause instanceof Error ? ((error.cause as NodeJS.ErrnoException).code ?? error.cause.message) : undefined;
  return `network error${cause ? ` (${cause})` : ""}`;
}
