import type { Logger } from "../observability/logger.js";
import type { RunStore } from "./run-store.js";

const DAY_MS = 24 * 60 * 60 * 1000;

export interface RetentionOptions {
  retentionDays: number;
  /** Time between sweeps. */
  intervalMs: number;
}

/**
 * Deletes run records older than the retention period, periodically, on every instance (the
 * deletes are bounded batches, so instances sweeping at once only find less to do). The timer
 * does not keep the process alive, and `stop` waits for a sweep in progress.
 */
export class RunRetentionSweep {
  private timer: ReturnType<typeof setTimeout> | undefined;
  private running: Promise<number> | undefined;
  private stopped = true;

  constructor(
    private readonly store: RunStore,
    private readonly logger: Logger,
    private readonly options: RetentionOptions,
  ) {}

  /** The first sweep a minute after start (an instance restarted hourly still sweeps), then every interval. */
  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.schedule(Math.min(60_000, this.options.intervalMs));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.running?.catch(() => undefined);
  }

  private schedule(delayMs: number): void {
    this.timer = setTimeout(() => {
      void this.sweep().finally(() => {
        if (!this.stopped) this.schedule(this.options.intervalMs);
      });
    }, delayMs);
    // Node: the timer must not keep the process alive (elsewhere `unref` does not exist).
    (this.timer as { unref?: () => void }).unref?.();
  }

  /** One sweep now: returns how many runs were deleted (0 when one is already in progress). */
  async sweep(now = new Date()): Promise<number> {
    if (this.running) return 0;
    const before = new Date(now.getTime() - this.options.retentionDays * DAY_MS);
    this.running = this.store.deleteExpired(before);
    try {
      const deleted = await this.running;
      if (deleted > 0) this.logger.info({ deleted, retention_days: this.options.retentionDays }, "expired run records deleted");
      return deleted;
    } catch (error) {
      this.logger.warn({ err: error }, "run retention sweep failed");
      return 0;
    } finally {
      this.running = undefined;
    }
  }
}
