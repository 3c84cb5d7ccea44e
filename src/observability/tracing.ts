/**
 * Optional OpenTelemetry traces, exported over OTLP/HTTP when OTEL_EXPORTER_OTLP_ENDPOINT is set.
 * Without it nothing here is loaded: the SDK is imported dynamically by `startTracing`, and the
 * HTTP layer sees only the `RequestTracer` interface.
 *
 * Every span carries `fence.request_id` and `fence.tenant_id` (`none` before authentication or
 * without a tenant): a span processor stamps them from the request's identity, which travels in the
 * OTel context, so a span started anywhere inside a request — now or by future instrumentation —
 * carries them too. Span names and attributes hold route templates, methods, statuses and ids only:
 * never a raw path, a query string, a header or a body.
 */

/** What the HTTP middleware knows when a request starts, and what it learns by its end. */
export interface RequestSpanStart {
  method: string;
  requestId: string;
  /** Read whenever a span starts: the tenant is known only once authentication has run. */
  tenantId(): string | undefined;
}

export interface RequestSpanEnd {
  routeTemplate: string;
  status: number;
  tenantId: string | undefined;
  errorCode?: string | undefined;
}

export interface RequestTracer {
  /** Runs `handle` inside a server span for the request and ends the span with what `end` reports. */
  traceRequest(start: RequestSpanStart, handle: () => Promise<void>, end: () => RequestSpanEnd): Promise<void>;
}

export interface Tracing extends RequestTracer {
  /** Exports what is buffered now (tests, and shutdown). */
  flush(): Promise<void>;
  shutdown(): Promise<void>;
}

export interface TracingOptions {
  /** OTLP/HTTP base URL (OTEL_EXPORTER_OTLP_ENDPOINT); spans go to `<endpoint>/v1/traces`. */
  endpoint: string;
  serviceName: string;
  /** How long spans are batched before export. */
  exportDelayMs?: number;
}

const NO_TENANT = "none";

export async function startTracing(options: TracingOptions): Promise<Tracing> {
  const [api, sdk, { OTLPTraceExporter }, { resourceFromAttributes }, { AsyncLocalStorageContextManager }] = await Promise.all([
    import("@opentelemetry/api"),
    import("@opentelemetry/sdk-trace"),
    import("@opentelemetry/exporter-trace-otlp-http"),
    import("@opentelemetry/resources"),
    import("@opentelemetry/context-async-hooks"),
  ]);
  type Context = import("@opentelemetry/api").Context;
  type Span = import("@opentelemetry/sdk-trace").Span;

  // Context must follow async work for child spans to find their request. The manager is process
  // wide; if one is installed already (another instance in the same process), it serves as well.
  api.context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  const IDENTITY = api.createContextKey("fence.request_identity");

  const stampIdentity = {
    onStart(span: Span, parent: Context): void {
      const identity = parent.getValue(IDENTITY) as RequestSpanStart | undefined;
      if (!identity) return;
      span.setAttribute("fence.request_id", identity.requestId);
      span.setAttribute("fence.tenant_id", identity.tenantId() ?? NO_TENANT);
    },
    onEnd(): void {},
    forceFlush: () => Promise.resolve(),
    shutdown: () => Promise.resolve(),
  };
  const exporter = new OTLPTraceExporter({ url: `${options.endpoint.replace(/\/+$/, "")}/v1/traces` });
  const batch = new sdk.BatchSpanProcessor({ exporter, scheduledDelayMillis: options.exportDelayMs ?? 2000 });
  const provider = new sdk.TracerProvider({
    resource: resourceFromAttributes({ "service.name": options.serviceName }),
    // The identity processor runs first, so the exporter sees the stamped attributes.
    spanProcessors: [stampIdentity, batch],
  });
  const tracer = provider.getTracer("fence");

  return {
    async traceRequest(start, handle, end) {
      const ctx = api.context.active().setValue(IDENTITY, start);
      const span = tracer.startSpan(`${start.method} request`, { kind: api.SpanKind.SERVER, attributes: { "http.request.method": start.method } }, ctx);
      try {
        await api.context.with(api.trace.setSpan(ctx, span), handle);
      } finally {
        const done = end();
        span.updateName(`${start.method} ${done.routeTemplate}`);
        span.setAttributes({
          "http.route": done.routeTemplate,
          "http.response.status_code": done.status,
          "fence.tenant_id": done.tenantId ?? NO_TENANT,
          ...(done.errorCode ? { "fence.error_code": done.errorCode } : {}),
        });
        if (done.status >= 500) span.setStatus({ code: api.SpanStatusCode.ERROR });
        span.end();
      }
    },
    flush: () => provider.forceFlush(),
    shutdown: () => provider.shutdown(),
  };
}
