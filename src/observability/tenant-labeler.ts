import { isUuid } from "../core/tenant-context.js";

/** The label value every tenant without a label of its own is folded into. */
export const OTHER_TENANTS = "other";
/** The label value of work that belongs to no tenant (unauthenticated requests, admin, health). */
export const NO_TENANT = "none";

export interface TenantLabelerOptions {
  /** Tenants that get a label value of their own (FENCE_METRICS_TOP_TENANTS). */
  maxLabelled: number;
  /** Unlabelled tenants whose traffic is tracked as challengers (Space-Saving counters). */
  trackedCandidates?: number;
  /** Traffic scores halve in this time, so "top" means top lately, not top since start-up. */
  halfLifeMs?: number;
  /** A label, once given, is kept at least this long: no flapping between scrapes. */
  minTenureMs?: number;
  /** A challenger must be this many times busier than the quietest labelled tenant to replace it. */
  hysteresis?: number;
  /** How often replacements are considered (on the next call after the interval; no timers). */
  reviewEveryMs?: number;
  now?: () => number;
}

interface Candidate {
  /** Decayed traffic, possibly overestimated by `error` (inherited from the counter it replaced). */
  count: number;
  error: number;
}

interface Holder {
  /** Exact decayed traffic since the tenant got its label. */
  score: number;
  since: number;
}

/** Decay is applied by growing the weight of new traffic; counts are rescaled before it overflows. */
const RESCALE_AT = 2 ** 64;

/**
 * Bounded tenant label values for metrics. At most `maxLabelled` tenants have their own label
 * value (their tenant id); every other tenant's figures are added up under `other`, so a platform
 * with ten thousand tenants still exposes a fixed number of series.
 *
 * The value is the tenant id (a UUID), never the tenant's name: names are free text chosen by a
 * customer (often a company or a person, sometimes an e-mail address) and can change, while the
 * id is stable, carries nothing personal, and is the same id the logs, run records and admin API
 * use — so a spike on a dashboard leads straight to `GET /v1/admin/tenants` and the tenant's logs.
 *
 * Who is "top": traffic is counted with exponential decay (half-life `halfLifeMs`). Labelled
 * tenants keep an exact score; unlabelled ones compete in a Space-Saving sketch of
 * `trackedCandidates` counters (memory stays bounded however many tenants there are; a counter's
 * count − error is a guaranteed lower bound of its traffic). Labels are handed out first come while
 * slots are free; after that, every `reviewEveryMs` the busiest challenger (by its guaranteed
 * count) replaces the quietest labelled tenant only if it is `hysteresis` times busier and that
 * tenant has held its label for `minTenureMs` — two tenants of similar traffic never swap back and
 * forth. A replaced tenant's series are removed (see `onRelabel`) and its traffic counts as `other`
 * from then on.
 */
export class TenantLabeler {
  private readonly holders = new Map<string, Holder>();
  private readonly candidates = new Map<string, Candidate>();
  private readonly listeners: ((tenantId: string) => void)[] = [];
  private readonly maxLabelled: number;
  private readonly trackedCandidates: number;
  private readonly halfLifeMs: number;
  private readonly minTenureMs: number;
  private readonly hysteresis: number;
  private readonly reviewEveryMs: number;
  private readonly now: () => number;
  private epoch: number;
  private lastReview: number;
  private replacements = 0;

  constructor(options: TenantLabelerOptions) {
    if (!Number.isInteger(options.maxLabelled) || options.maxLabelled < 0) throw new RangeError("maxLabelled must be an integer ≥ 0");
    this.maxLabelled = options.maxLabelled;
    this.trackedCandidates = options.trackedCandidates ?? Math.max(64, 8 * options.maxLabelled);
    this.halfLifeMs = options.halfLifeMs ?? 15 * 60_000;
    this.minTenureMs = options.minTenureMs ?? 10 * 60_000;
    this.hysteresis = options.hysteresis ?? 2;
    this.reviewEveryMs = options.reviewEveryMs ?? 30_000;
    this.now = options.now ?? Date.now;
    this.epoch = this.lastReview = this.now();
  }

  /** Counts one unit of the tenant's traffic and returns its label value. */
  labelFor(tenantId: string, weight = 1): string {
    if (!isUuid(tenantId)) return OTHER_TENANTS; // only ever an id: nothing else can become a label
    const now = this.now();
    const increment = weight * this.decayWeight(now);
    const holder = this.holders.get(tenantId);
    if (holder) holder.score += increment;
    else if (this.holders.size < this.maxLabelled) this.holders.set(tenantId, { score: increment, since: now });
    else this.countCandidate(tenantId, { count: increment, error: 0 });
    if (now - this.lastReview >= this.reviewEveryMs) this.review(now);
    return this.peek(tenantId);
  }

  /**
   * The tenant's label value for figures that are not requests (tokens, cache lookups, job waits):
   * counts no traffic, but gives the tenant a free slot if there is one — its usage may be
   * recorded before its first request has finished.
   */
  labelOf(tenantId: string): string {
    if (!this.holders.has(tenantId) && this.holders.size < this.maxLabelled && isUuid(tenantId)) {
      this.holders.set(tenantId, { score: 0, since: this.now() });
    }
    return this.peek(tenantId);
  }

  /** The tenant's label value as it stands (scrape-time gauges): assigns nothing, counts nothing. */
  peek(tenantId: string | undefined): string {
    if (tenantId === undefined) return NO_TENANT;
    return this.holders.has(tenantId) ? tenantId : OTHER_TENANTS;
  }

  /** Called with a tenant id when that tenant loses its label, so its series can be removed. */
  onRelabel(listener: (tenantId: string) => void): void {
    this.listeners.push(listener);
  }

  isLabelled(tenantId: string): boolean {
    return this.holders.has(tenantId);
  }

  /** The tenants that have a label value of their own. */
  get labelled(): ReadonlySet<string> {
    return new Set(this.holders.keys());
  }

  /** How many times a labelled tenant was replaced (churn; exposed as a metric). */
  get replacementCount(): number {
    return this.replacements;
  }

  /** Weight of one unit of traffic now: 2^(elapsed / half-life), which is decay seen from the other side. */
  private decayWeight(now: number): number {
    let weight = 2 ** ((now - this.epoch) / this.halfLifeMs);
    if (weight >= RESCALE_AT) {
      for (const h of this.holders.values()) h.score /= weight;
      for (const c of this.candidates.values()) {
        c.count /= weight;
        c.error /= weight;
      }
      this.epoch = now;
      weight = 1;
    }
    return weight;
  }

  /** Space-Saving: a new tenant in a full sketch takes the smallest counter, inheriting its count as error. */
  private countCandidate(tenantId: string, add: Candidate): void {
    const known = this.candidates.get(tenantId);
    if (known) {
      known.count += add.count;
      known.error += add.error;
      return;
    }
    if (this.candidates.size < this.trackedCandidates) {
      this.candidates.set(tenantId, { ...add });
      return;
    }
    let smallestId: string | undefined;
    let smallest = Infinity;
    for (const [id, c] of this.candidates) {
      if (c.count < smallest) {
        smallest = c.count;
        smallestId = id;
      }
    }
    this.candidates.delete(smallestId!);
    this.candidates.set(tenantId, { count: smallest + add.count, error: smallest + add.error });
  }

  private review(now: number): void {
    this.lastReview = now;
    const challengers = [...this.candidates].sort(([, x], [, y]) => y.count - y.error - (x.count - x.error));
    for (const [challengerId, challenger] of challengers) {
      if (!this.candidates.has(challengerId)) continue; // pushed out of the sketch by a replaced tenant
      const guaranteed = challenger.count - challenger.error;
      let quietestId: string | undefined;
      let quietest: Holder | undefined;
      for (const [id, h] of this.holders) {
        if (now - h.since < this.minTenureMs) continue;
        if (!quietest || h.score < quietest.score) {
          quietest = h;
          quietestId = id;
        }
      }
      // Challengers are sorted, so once the best remaining one cannot win, none can.
      if (!quietest || guaranteed <= this.hysteresis * quietest.score) return;
      this.holders.delete(quietestId!);
      this.candidates.delete(challengerId);
      this.holders.set(challengerId, { score: guaranteed, since: now });
      this.countCandidate(quietestId!, { count: quietest.score, error: 0 });
      this.replacements++;
      for (const listener of this.listeners) listener(quietestId!);
    }
  }
}
