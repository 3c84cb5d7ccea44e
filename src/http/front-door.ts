import type { IncomingMessage, ServerResponse } from "node:http";
import type { Hono } from "hono";
import { limitReasonOf } from "../core/error-catalogue.js";
import type { RefusedReads } from "../flow/refused-reads.js";
import type { RunRecords } from "../runs/run-records.js";
import type { AccessLog } from "./access-log.js";
import { errorBodyOf } from "./error-handler.js";
import { errorHeaders } from "./limit-headers.js";
import { routeTemplateOf, type RequestMetricsSink } from "./middleware/http-metrics.js";
import { clientAddressFrom, requestIdOf } from "./middleware/request-context.js";
import { noteRefusalOnRecord } from "./middleware/known-refusals.js";
import type { RefusalsOnRecord } from "./refusals-on-record.js";
import type { AppEnv } from "./types.js";

type RequestListener = (req: IncomingMessage, res: ServerResponse) => void;

export interface FrontDoorParts {
  /** The app behind the door: its router names the route a refusal was aimed at. */
  app: Hono<AppEnv>;
  onRecord: RefusalsOnRecord;
  runs: RunRecords;
  metrics: RequestMetricsSink;
  accessLog: AccessLog;
  refusedReads?: RefusedReads | undefined;
  trustedProxyHops: number;
}

/**
 * Node's request listener, with the refusals this instance can make from memory answered before
 * Hono (issue 16: "refusals cost next to nothing"). A refused flood is the cheapest attack there
 * is, and through the app each refusal paid for a Request and a Response object, a context, the
 * middleware chain and a child logger — about ten times a bare route. Here a refusal on record
 * (RefusalsOnRecord: a known key's used-up window, an unknown key from a blocked address) is
 * written straight to Node's response: the same status, headers and body the app would give
 * (known-refusals.ts answers the same refusals there), counted the same way (metrics, the sampled
 * access line, the minute's refusal summary), and its connection held for a low-priority read
 * like any other refusal. Everything else goes to the app untouched.
 *
 * Not traced (OpenTelemetry): a refusal on record is counted, not followed.
 */
export class FrontDoor {
  private answeredCount = 0;

  constructor(private readonly parts: FrontDoorParts) {}

  /** Refusals answered here so far (the tests' proof that the app never saw them). */
  get answered(): number {
    return this.answeredCount;
  }

  /** `listener` (the app's) behind the door. */
  wrap(listener: RequestListener): RequestListener {
    return (req, res) => {
      let answered: boolean;
      try {
        answered = this.answer(req, res);
      } catch {
        // Nothing here should throw; if something does, the request is the app's to answer (or,
        // once an answer was started, lost with its connection), never the process's to die of.
        if (res.headersSent) return void req.socket.destroy();
        answered = false;
      }
      if (!answered) listener(req, res);
    };
  }

  /** Answers the request if it is a refusal on record; false leaves it to the app. */
  private answer(req: IncomingMessage, res: ServerResponse): boolean {
    const url = req.url ?? "";
    if (!url.startsWith("/v1/") || url.startsWith("/v1/admin")) return false; // admin keys are never refused on record
    const started = performance.now();
    const { onRecord, trustedProxyHops } = this.parts;
    const found = onRecord.find(headerOf(req, "authorization"), () =>
      clientAddressFrom(headerOf(req, "x-forwarded-for"), req.socket.remoteAddress, trustedProxyHops),
    );
    if (!found) return false;
    const query = url.indexOf("?");
    const path = query < 0 ? url : url.slice(0, query);
    const method = req.method ?? "GET";
    const route = routeTemplateOf(this.parts.app, method, path);
    if (route === undefined) return false; // no such route: the app's own answer (its refusal, or 404)

    const { refusal } = found;
    const requestId = requestIdOf(headerOf(req, "x-request-id"));
    const body = JSON.stringify(errorBodyOf(requestId, refusal.code, refusal.message, refusal.details));
    res.writeHead(429, {
      "content-type": "application/json",
      "x-request-id": requestId,
      ...errorHeaders(refusal),
      "content-length": Buffer.byteLength(body),
    });
    res.end(body);
    this.answeredCount++;

    const tenant = noteRefusalOnRecord(this.parts.runs, found, requestId, method, path);
    const limitReason = limitReasonOf(refusal);
    this.parts.metrics.observeRequest({
      routeTemplate: route,
      method,
      status: 429,
      tenantId: tenant?.tenantId,
      seconds: (performance.now() - started) / 1000,
      errorCode: refusal.code,
      limitReason,
    });
    const outcome = { errorCode: refusal.code, limitReason, refusedOnRecord: true };
    this.parts.accessLog.write({ method, route, status: 429, latencyMs: performance.now() - started, outcome, requestId, tenant });
    this.holdAfter(req, res, found.flow);
    return true;
  }

  /** Holds the connection's next read (RefusedReads) once the answer is out and the body drained. */
  private holdAfter(req: IncomingMessage, res: ServerResponse, flow: string): void {
    const reads = this.parts.refusedReads;
    if (!reads) return;
    // Node's server resumes the socket itself to finish the answer and to discard an unread body,
    // which would undo a pause made earlier.
    res.once("finish", () => {
      if (req.readableEnded) reads.hold(req.socket, flow);
      else req.once("end", () => reads.hold(req.socket, flow));
    });
  }
}

function headerOf(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}
