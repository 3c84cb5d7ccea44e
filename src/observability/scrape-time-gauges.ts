import { Gauge, type Counter, type Registry } from "prom-client";
import type { Logger } from "./logger.js";
import { identifierLabel } from "./metric-labels.js";
import type { TenantLabeler } from "./tenant-labeler.js";

/** A provider lane as metrics read it at scrape time (flow/provider-lane.ts). */
export interface ObservedLane {
  readonly name: string;
  readonly inFlight: number;
  readonly queued: number;
  readonly breakerState: "closed" | "half_open" | "open";
}

/** An admission gate of this instance as metrics read it at scrape time (flow/fair-seats.ts). */
export interface ObservedGate {
  readonly inService: number;
  readonly waiting: number;
}

/** Jobs waiting or running, per tenant, status and priority, read from the database at scrape time. */
export interface QueueDepthRow {
  tenantId: string;
  status: string;
  priority: string;
  count: number;
}

const BREAKER_VALUE = { closed: 0, half_open: 1, open: 2 } as const;

export interface ScrapeTimeSources {
  registers: Registry[];
  lanes: readonly ObservedLane[];
  /** By name: `seat` (requests in service), `large_body` (large bodies being read and handled). */
  gates: ReadonlyMap<string, ObservedGate>;
  /** Connections held after a refusal (flow/refused-reads.ts), when the runtime holds them. */
  refusedReads: () => { readonly waiting: number } | undefined;
  tenants: TenantLabeler;
  readQueueDepth: () => Promise<QueueDepthRow[]> | undefined;
  collectErrors: Counter;
  logger: Logger | undefined;
}

/**
 * Gauges of state, read when Prometheus scrapes rather than kept up to date on every change: the
 * provider lanes and admission gates of this instance, and the job queue of all instances (from the database).
 */
export function defineScrapeTimeGauges({ registers, lanes, gates, refusedReads, tenants, readQueueDepth, collectErrors, logger }: ScrapeTimeSources): void {
  new Gauge({
    name: "fence_refused_connections_held",
    help: "Connections whose next request waits unread after a refusal, read again at low priority while other work is served (this instance).",
    registers,
    collect() {
      this.set(refusedReads()?.waiting ?? 0);
    },
  });
  new Gauge({
    name: "fence_provider_lane_in_flight",
    help: "Calls in flight in a provider's lane on this instance.",
    labelNames: ["provider"],
    registers,
    collect() {
      this.reset();
      for (const lane of lanes) this.set({ provider: identifierLabel(lane.name) }, lane.inFlight);
    },
  });
  new Gauge({
    name: "fence_provider_lane_queued",
    help: "Calls waiting for a place in a provider's lane on this instance.",
    labelNames: ["provider"],
    registers,
    collect() {
      this.reset();
      for (const lane of lanes) this.set({ provider: identifierLabel(lane.name) }, lane.queued);
    },
  });
  new Gauge({
    name: "fence_admission_in_service",
    help: "Requests holding a place at an admission gate of this instance: seat (requests in service), large_body (large bodies being read and handled).",
    labelNames: ["gate"],
    registers,
    collect() {
      this.reset();
      for (const [gate, observed] of gates) this.set({ gate }, observed.inService);
    },
  });
  new Gauge({
    name: "fence_admission_waiting",
    help: "Requests waiting for a place at an admission gate of this instance (seat, large_body), in per-tenant fair queues.",
    labelNames: ["gate"],
    registers,
    collect() {
      this.reset();
      for (const [gate, observed] of gates) this.set({ gate }, observed.waiting);
    },
  });
  new Gauge({
    name: "fence_provider_breaker_state",
    help: "A provider's circuit breaker on this instance: 0 closed, 1 half-open, 2 open.",
    labelNames: ["provider"],
    registers,
    collect() {
      this.reset();
      for (const lane of lanes) this.set({ provider: identifierLabel(lane.name) }, BREAKER_VALUE[lane.breakerState]);
    },
  });
  new Gauge({
    name: "fence_job_queue_depth",
    help: "Jobs queued or running (all instances: read from the database), by status, priority and tenant.",
    labelNames: ["status", "priority", "tenant"],
    registers,
    async collect() {
      this.reset();
      let rows: QueueDepthRow[] | undefined;
      try {
        rows = await readQueueDepth();
      } catch (error) {
        collectErrors.inc({ source: "job_queue" });
        logger?.warn({ err: error }, "metrics: could not read the job queue depth");
        return;
      }
      // Folded tenants add up under `other`: sum first, then set.
      const sums = new Map<string, { labels: Record<string, string>; count: number }>();
      for (const row of rows ?? []) {
        const labels = { status: identifierLabel(row.status), priority: identifierLabel(row.priority), tenant: tenants.peek(row.tenantId) };
        const key = `${labels.status}|${labels.priority}|${labels.tenant}`;
        const sum = sums.get(key) ?? { labels, count: 0 };
        sum.count += row.count;
        sums.set(key, sum);
      }
      for (const { labels, count } of sums.values()) this.set(labels, count);
    },
  });
  new Gauge({
    name: "fence_metrics_labelled_tenants",
    help: "Tenants with a label value of their own (at most FENCE_METRICS_TOP_TENANTS); all others are `other`.",
    registers,
    collect() {
      this.set(tenants.labelled.size);
    },
  });
  new Gauge({
    name: "fence_metrics_tenant_label_replacements",
    help: "Times a labelled tenant was replaced by a busier one since start-up (label churn).",
    registers,
    collect() {
      this.set(tenants.replacementCount);
    },
  });
}
