/** One kind of line, the last one seen (whatever it is made from), and how many were not written. */
interface Repeats<T> {
  last: T;
  writtenAt: number;
  skipped: number;
}

/**
 * Samples lines that repeat (issue 16: a flood of refusals wrote one access-log line each, and the
 * logging cost more than refusing). The first line of a kind in each window is written, with
 * `repeated`: how many of that kind were skipped since the previous one written; skipped lines
 * still left at the end of a window are written as one line by `drain`, so every line is counted.
 * A kind is whatever `signature` says is the same line (route, status, reason, tenant, key).
 */
export class RepeatSampler<T = Record<string, unknown>> {
  private readonly kinds = new Map<string, Repeats<T>>();

  constructor(
    private readonly windowMs = 1000,
    private readonly now: () => number = Date.now,
    private readonly maxKinds = 10_000,
  ) {}

  /** Whether to write this line now, and how many of its kind were skipped before it. */
  sample(signature: string, line: T): { write: boolean; repeated: number } {
    const at = this.now();
    const kind = this.kinds.get(signature);
    if (kind && at - kind.writtenAt < this.windowMs) {
      kind.skipped++;
      kind.last = line;
      return { write: false, repeated: 0 };
    }
    const repeated = kind?.skipped ?? 0;
    if (!kind && this.kinds.size >= this.maxKinds) return { write: true, repeated: 0 }; // too many kinds to track: no sampling
    this.kinds.set(signature, { last: line, writtenAt: at, skipped: 0 });
    return { write: true, repeated };
  }

  /** Whether some kind holds skipped lines that a later `drain` must still write. */
  holdsSkipped(): boolean {
    for (const kind of this.kinds.values()) if (kind.skipped > 0) return true;
    return false;
  }

  /** The kinds with lines skipped in a window that is over: write each once, with its count. */
  drain(): { last: T; repeated: number }[] {
    const at = this.now();
    const out: { last: T; repeated: number }[] = [];
    for (const [signature, kind] of this.kinds) {
      if (at - kind.writtenAt < this.windowMs) continue;
      if (kind.skipped > 0) out.push({ last: kind.last, repeated: kind.skipped });
      this.kinds.delete(signature);
    }
    return out;
  }
}
