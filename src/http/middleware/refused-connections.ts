import type { MiddlewareHandler } from "hono";
import type { PausableConnection, RefusedReads } from "../../flow/refused-reads.js";
import type { AppEnv } from "../types.js";
import { clientAddress } from "./request-context.js";

/** Refusals: a bad key, a used-up limit, a full instance. Errors of admitted requests are not. */
const REFUSALS = new Set([401, 429, 503]);

/** What Node's server (@hono/node-server) passes as the environment; other runtimes pass something else. */
interface NodeBindings {
  incoming?: { socket?: PausableConnection; readableEnded: boolean; once(event: "end", listener: () => void): unknown };
  outgoing?: { once(event: "finish", listener: () => void): unknown };
}

/**
 * After a refusal, the connection's next request is read at low priority (RefusedReads), in the
 * queue of the tenant refused (or of the client's address, when no key was valid). Node only:
 * elsewhere there is no connection to hold.
 */
export function refusedConnections(reads: RefusedReads, trustedProxyHops: number): MiddlewareHandler<AppEnv> {
  return async function refusedConnectionsMiddleware(c, next) {
    await next();
    if (!REFUSALS.has(c.res.status)) return;
    const env = c.env as NodeBindings | undefined;
    const incoming = env?.incoming;
    const socket = incoming?.socket;
    if (!incoming || !socket || typeof env?.outgoing?.once !== "function") return;
    // Held once the answer is out and the request's unread body is drained: Node's server resumes
    // the socket itself to finish either, undoing a pause made earlier.
    const flow = c.get("tenant")?.tenantId ?? clientAddress(c, trustedProxyHops) ?? "unknown";
    env.outgoing.once("finish", () => {
      if (incoming.readableEnded) reads.hold(socket, flow);
      else incoming.once("end", () => reads.hold(socket, flow));
    });
  };
}
