import { collectDefaultMetrics, Counter, Histogram, Registry } from "prom-client";
import type { Logger } from "./logger.js";
import {
  errorCodeLabel,
  identifierLabel,
  limitReasonLabel,
  methodLabel,
  modelLabel,
  routeLabel,
  statusClassLabel,
} from "./metric-labels.js";
import { defineScrapeTimeGauges, type ObservedGate, type ObservedLane, type QueueDepthRow } from "./scrape-time-gauges.js";
import { NO_TENANT, TenantLabeler, type TenantLabelerOptions } from "./tenant-labeler.js";

/** What the HTTP middleware reports once per request, when the response is ready. */
export interface RequestObservation {
  /** The matched route's template (`/v1/documents/:id`), never the raw path. */
  routeTemplate: string;
  method: string;
  status: number;
  /** The authenticated tenant, if the request got that far. */
  tenantId: string | undefined;
  seconds: number;
  errorCode?: string | undefined;
  limitReason?: string | undefined;
}

export interface ChargedUsage {
  feature: string;
  model: string;
  inputTokens: number;
  outputTokens: number;
  costMicros: number;
}

const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
const WAIT_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600];

export interface FenceMetricsOptions {
  /** Tenants with a label value of their own; the rest are folded into `other`. */
  topTenants: number;
  /** Overrides for the labeler's tuning (tests use a fake clock). */
  labeler?: Omit<TenantLabelerOptions, "maxLabelled">;
  /** Node process metrics (`process_*`, `nodejs_*`); on by default. */
  processMetrics?: boolean;
  logger?: Logger;
}

type Labels = Record<string, string>;

/**
 * Fence's Prometheus metrics, in a registry of its own (several instances can live in one
 * process; nothing touches prom-client's global registry). Components report through the sinks
 * below, passed to their constructors; gauges of state (lanes, job queue) are read at scrape time.
 *
 * Tenant label values go through the TenantLabeler: at most `topTenants` tenant ids, everything
 * else `other`, unauthenticated work `none`. When a tenant loses its label, every series carrying
 * its id is removed, so the number of series stays bounded for the life of the process.
 */
export class FenceMetrics {
  readonly registry = new Registry();
  readonly tenants: TenantLabeler;
  private readonly lanes: ObservedLane[] = [];
  private readonly gates = new Map<string, ObservedGate>();
  private refusedReads: { readonly waiting: number } | undefined;
  private queueDepth: (() => Promise<QueueDepthRow[]>) | undefined;
  /** For each labelled tenant, the series that carry its id: removed when it loses its label. */
  private readonly seriesOf = new Map<string, Map<string, { metric: Counter | Histogram; labels: Labels }>>();

  private readonly requestDuration: Histogram;
  private readonly requestErrors: Counter;
  private readonly refusals: Counter;
  private readonly tokens: Counter;
  private readonly cost: Counter;
  private readonly cacheRequests: Counter;
  private readonly jobWait: Histogram;
  private readonly jobsFinished: Counter;
  private readonly securityEvents: Counter;
  private readonly collectErrors: Counter;

  constructor(private readonly options: FenceMetricsOptions) {
    this.tenants = new TenantLabeler({ ...options.labeler, maxLabelled: options.topTenants });
    this.tenants.onRelabel((tenantId) => this.removeSeriesOf(tenantId));
    const registers = [this.registry];

    this.requestDuration = new Histogram({
      name: "fence_http_request_duration_seconds",
      help: "Time to the response (for streams, to the first byte), by route template, method, status class and tenant.",
      labelNames: ["route", "method", "status_class", "tenant"],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.requestErrors = new Counter({
      name: "fence_http_request_errors_total",
      help: "Requests answered with an error, by route template, error code and tenant.",
      labelNames: ["route", "code", "tenant"],
      registers,
    });
    this.refusals = new Counter({
      name: "fence_limit_refusals_total",
      help: "Requests refused by a limit: rate_limit, token_limit, concurrency_limit, overloaded, budget_exceeded.",
      labelNames: ["reason", "tenant"],
      registers,
    });
    this.tokens = new Counter({
      name: "fence_tokens_total",
      help: "Metered tokens (charged usage events), by tenant, model, feature and type (prompt, completion).",
      labelNames: ["tenant", "model", "feature", "type"],
      registers,
    });
    this.cost = new Counter({
      name: "fence_cost_micros_total",
      help: "Metered cost in micro-units of the price table's currency (micro-dollars for USD prices), by tenant and model.",
      labelNames: ["tenant", "model"],
      registers,
    });
    this.cacheRequests = new Counter({
      name: "fence_cache_requests_total",
      help: "Tenant-keyed cache lookups, by cache, result (hit, miss) and tenant.",
      labelNames: ["cache", "result", "tenant"],
      registers,
    });
    this.jobWait = new Histogram({
      name: "fence_job_wait_seconds",
      help: "Time a job waited from being due (queued, or its retry time) to being claimed by a worker.",
      labelNames: ["priority", "tenant"],
      buckets: WAIT_BUCKETS,
      registers,
    });
    this.jobsFinished = new Counter({
      name: "fence_jobs_finished_total",
      help: "Job attempts that ended on this instance, by kind and outcome (succeeded, failed, retry).",
      labelNames: ["kind", "outcome"],
      registers,
    });
    this.securityEvents = new Counter({
      name: "fence_security_events_total",
      help: "Security events (see the logs at warn with security_event), by kind.",
      labelNames: ["kind"],
      registers,
    });
    this.collectErrors = new Counter({
      name: "fence_metrics_collect_errors_total",
      help: "Scrape-time reads that failed (that gauge is left empty; counted during the scrape, so shown from the next).",
      labelNames: ["source"],
      registers,
    });
    defineScrapeTimeGauges({
      registers,
      lanes: this.lanes,
      gates: this.gates,
      refusedReads: () => this.refusedReads,
      tenants: this.tenants,
      readQueueDepth: () => this.queueDepth?.(),
      collectErrors: this.collectErrors,
      logger: options.logger,
    });
    if (options.processMetrics !== false) collectDefaultMetrics({ register: this.registry });
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** The exposition text for `GET /metrics`. */
  render(): Promise<string> {
    return this.registry.metrics();
  }

  observeRequest(r: RequestObservation): void {
    this.safely(() => {
      const tenant = r.tenantId === undefined ? NO_TENANT : this.tenants.labelFor(r.tenantId);
      const route = routeLabel(r.routeTemplate);
      this.tracked(this.requestDuration, {
        route,
        method: methodLabel(r.method),
        status_class: statusClassLabel(r.status),
        tenant,
      }).observe(r.seconds);
      if (r.status >= 400) this.tracked(this.requestErrors, { route, code: errorCodeLabel(r.errorCode), tenant }).inc();
      const reason = limitReasonLabel(r.limitReason);
      if (reason) this.tracked(this.refusals, { reason, tenant }).inc();
    });
  }

  /** Ledger sink: called once per newly recorded charged usage event, after its transaction commits. */
  readonly usageCharged = (tenantId: string, usage: ChargedUsage): void =>
    this.safely(() => {
      const tenant = this.tenants.labelOf(tenantId);
      const model = modelLabel(usage.model);
      const feature = identifierLabel(usage.feature);
      if (usage.inputTokens > 0) this.tracked(this.tokens, { tenant, model, feature, type: "prompt" }).inc(usage.inputTokens);
      if (usage.outputTokens > 0) this.tracked(this.tokens, { tenant, model, feature, type: "completion" }).inc(usage.outputTokens);
      if (usage.costMicros > 0) this.tracked(this.cost, { tenant, model }).inc(usage.costMicros);
    });

  /** Cache sink: one call per lookup. */
  readonly cacheLookup = (tenantId: string, cache: string, hit: boolean): void =>
    this.safely(() => {
      const labels = { cache: identifierLabel(cache), result: hit ? "hit" : "miss", tenant: this.tenants.labelOf(tenantId) };
      this.tracked(this.cacheRequests, labels).inc();
    });

  /** Security-event sink (SecurityEvents' onReport). */
  readonly securityEvent = (kind: string): void => this.safely(() => this.securityEvents.inc({ kind: identifierLabel(kind) }));

  /** Job-runner observer. */
  readonly jobs = {
    claimed: (job: { tenantId: string; priority: number; waitedMs: number }): void =>
      this.safely(() => {
        const priority = job.priority === 0 ? "interactive" : "bulk";
        this.tracked(this.jobWait, { priority, tenant: this.tenants.labelOf(job.tenantId) }).observe(Math.max(0, job.waitedMs) / 1000);
      }),
    finished: (job: { kind: string }, outcome: "succeeded" | "failed" | "retry"): void =>
      this.safely(() => this.jobsFinished.inc({ kind: identifierLabel(job.kind), outcome })),
  };

  /** Reports this lane's in-flight and queued calls and breaker state at every scrape. */
  watchLane(lane: ObservedLane): void {
    this.lanes.push(lane);
  }

  /** Reports an admission gate's places in use and requests waiting at every scrape. */
  watchGate(name: "seat" | "large_body", gate: ObservedGate): void {
    this.gates.set(name, gate);
  }

  /** Reports the connections held after a refusal at every scrape. */
  watchRefusedReads(reads: { readonly waiting: number }): void {
    this.refusedReads = reads;
  }

  /** Reads the job queue's depth at every scrape (an audited platform query; see jobs/queue-depth.ts). */
  watchJobQueue(read: () => Promise<QueueDepthRow[]>): void {
    this.queueDepth = read;
  }


  /** A metric must never fail the work it measures: an error here is logged and dropped. */
  private safely(record: () => void): void {
    try {
      record();
    } catch (error) {
      this.options.logger?.warn({ err: error }, "metrics: could not record a figure");
    }
  }

  /** The labelled child of a per-tenant metric, remembered under the tenant so it can be removed. */
  private tracked<M extends Counter | Histogram>(metric: M, labels: Labels): ReturnType<M["labels"]> {
    const tenant = labels.tenant;
    if (tenant !== undefined && this.tenants.isLabelled(tenant)) {
      let series = this.seriesOf.get(tenant);
      if (!series) this.seriesOf.set(tenant, (series = new Map()));
      const key = `${(metric as unknown as { name: string }).name}|${JSON.stringify(labels)}`;
      if (!series.has(key)) series.set(key, { metric, labels });
    }
    return metric.labels(labels) as ReturnType<M["labels"]>;
  }

  private removeSeriesOf(tenantId: string): void {
    for (const { metric, labels } of this.seriesOf.get(tenantId)?.values() ?? []) metric.remove(labels);
    this.seriesOf.delete(tenantId);
  }
}
