/**
 * How fast one large request body is read while other tenants are being served.
 *
 * A 10 MB upload read as fast as the client sends it is a burst of copies and garbage on the event
 * loop and the instance's cores, and another tenant's search that arrives during it waits for them
 * (issue 14: a flood of 10 MB uploads put a searching tenant's p99 at 2.2–3.8× its own alone). While
 * someone else is in service the body is read at `bytesPerSecond` instead: the same work, spread
 * thin. With nobody else in service it is read at full speed, so a tenant alone never waits for a
 * pace. A body is held back by not reading its socket: TCP holds the sender back, and nothing is
 * buffered meanwhile.
 */
export class ReadPace {
  private due = Number.NEGATIVE_INFINITY;
  private readonly bytesPerMs: number;

  constructor(
    bytesPerSecond: number,
    private readonly now: () => number = () => performance.now(),
  ) {
    if (!(bytesPerSecond > 0)) throw new RangeError("a read pace is a positive number of bytes per second");
    this.bytesPerMs = bytesPerSecond / 1000;
  }

  /**
   * `bytes` more of the body were read; `contended`: another tenant has a request in service.
   * Returns how long to leave the body unread before reading on, in ms (0: read on now).
   */
  read(bytes: number, contended: boolean): number {
    const now = this.now();
    if (!contended) {
      this.due = now;
      return 0;
    }
    // No credit for idle time beyond a few ms: a body that waited on its network has not earned a
    // burst. Its bytes are due at the pace from then on.
    this.due = Math.max(this.due, now - SLACK_MS) + bytes / this.bytesPerMs;
    const wait = this.due - now;
    return wait >= MIN_WAIT_MS ? wait : 0;
  }
}

/** Idle time a body may make up at full speed. */
const SLACK_MS = 5;
/** Shorter holds are not worth a timer: they are carried over to the next read. */
const MIN_WAIT_MS = 1;
