import { createConnection, createServer, type Server, type Socket } from "node:net";

/**
 * A loopback TCP proxy in front of a real service (here: Redis), so a test can make the service
 * slow (every client→server chunk waits `delayMs`) or take it away (`cut`: existing connections
 * drop and new ones are refused) and bring it back (`restore`), without touching the service.
 */
export interface TcpProxy {
  port: number;
  setDelay(ms: number): void;
  cut(): Promise<void>;
  restore(): Promise<void>;
  close(): Promise<void>;
}

export async function startTcpProxy(target: { host: string; port: number }): Promise<TcpProxy> {
  const sockets = new Set<Socket>();
  let delayMs = 0;

  const onConnection = (client: Socket) => {
    const upstream = createConnection(target);
    sockets.add(client).add(upstream);
    // Chunks keep their order: each waits for the one before it, then for the delay.
    let queue = Promise.resolve();
    client.on("data", (chunk) => {
      queue = queue.then(async () => {
        if (delayMs > 0) await new Promise((r) => setTimeout(r, delayMs));
        if (!upstream.destroyed) upstream.write(chunk);
      });
    });
    upstream.pipe(client);
    const drop = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on("close", drop).on("error", drop);
    upstream.on("close", drop).on("error", drop);
  };

  let server: Server = createServer(onConnection);
  const listen = (port: number) => new Promise<void>((resolve, reject) => server.once("error", reject).listen(port, "127.0.0.1", resolve));
  await listen(0);
  const port = (server.address() as { port: number }).port;
  const stop = async () => {
    for (const socket of sockets) socket.destroy();
    sockets.clear();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };

  return {
    port,
    setDelay(ms) {
      delayMs = ms;
    },
    cut: stop,
    async restore() {
      server = createServer(onConnection);
      await listen(port);
    },
    close: () => (server.listening ? stop() : Promise.resolve()),
  };
}
