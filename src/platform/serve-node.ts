import { createServer, type IncomingMessage, type RequestListener, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { serve, type ServerType } from "@hono/node-server";
import type { ComposedFence } from "./compose-fence.js";

/**
 * Serves a Fence over Node's HTTP server: the app's request listener (@hono/node-server) behind
 * the front door, which answers refusals on record before the app (http/front-door.ts). What
 * `npm start` runs, and what the tests and benchmarks serve over real HTTP.
 */
export function serveFence(
  fence: Pick<ComposedFence, "app" | "frontDoor">,
  address: { port: number; hostname: string },
  onListening?: (info: AddressInfo) => void,
): ServerType {
  const { frontDoor } = fence;
  return serve(
    {
      fetch: fence.app.fetch,
      port: address.port,
      hostname: address.hostname,
      ...(frontDoor
        ? {
            createServer: ((options: object, listener: RequestListener<typeof IncomingMessage, typeof ServerResponse>) =>
              createServer(options, frontDoor.wrap(listener))) as typeof createServer,
          }
        : {}),
    },
    onListening,
  );
}
