import { Pool } from "undici";
import type { Call } from "./requests.js";

export interface Answer {
  status: number;
  text: string;
}

/**
 * The orchestrator's HTTP client for one Fence build: the admin calls that set tenants up, and
 * the victim's requests. A small undici pool of keep-alive connections, so a victim request never
 * waits for a TCP handshake, and never for one of its own requests (open loop, up to 16 in flight).
 */
export class FenceApi {
  private readonly pool: Pool;

  constructor(
    readonly url: string,
    private readonly adminKey: string,
  ) {
    this.pool = new Pool(url, { connections: 16, pipelining: 1, keepAliveTimeout: 60_000 });
  }

  /** Without a signal of its own, a request gives up after a minute: no set-up step can hang the run. */
  async send(call: Call, signal: AbortSignal = AbortSignal.timeout(60_000)): Promise<Answer> {
    const res = await this.pool.request({ ...call, signal });
    return { status: res.statusCode, text: await res.body.text() };
  }

  /** JSON in, JSON out, with the admin key; fails unless the status is one of `expect`. */
  async admin<T>(method: Call["method"], path: string, json?: unknown, expect: number[] = [200, 201, 204]): Promise<T> {
    const answer = await this.send({
      method,
      path: `/v1/admin${path}`,
      headers: { authorization: `Bearer ${this.adminKey}`, ...(json === undefined ? {} : { "content-type": "application/json" }) },
      ...(json === undefined ? {} : { body: JSON.stringify(json) }),
    });
    if (!expect.includes(answer.status)) throw new Error(`${method} /v1/admin${path}: ${answer.status} ${answer.text.slice(0, 300)}`);
    return (answer.text ? JSON.parse(answer.text) : undefined) as T;
  }

  close(): Promise<void> {
    return this.pool.destroy();
  }
}
