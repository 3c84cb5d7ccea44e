import type { AddressInfo } from "node:net";
import { serve } from "@hono/node-server";
import { Hono } from "hono";

/**
 * The physical ceiling: a bare Hono route on @hono/node-server, in a process of its own exactly
 * like a Fence build. The fastest a refusal can ever be answered on this machine is about what
 * this answers per second to the same load generator. Prints `{ "url": … }` when it listens.
 */
const app = new Hono();
app.get("/", (c) => c.text("ok"));

const server = serve({ fetch: app.fetch, port: 0, hostname: "127.0.0.1" }, (info: AddressInfo) => {
  process.stdout.write(`${JSON.stringify({ url: `http://127.0.0.1:${info.port}` })}\n`);
});

const stop = () => {
  if ("closeAllConnections" in server) server.closeAllConnections();
  server.close(() => process.exit(0));
  setTimeout(() => process.exit(1), 5_000).unref();
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
process.on("disconnect", stop);
