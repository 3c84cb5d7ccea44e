import pg from "pg";

/**
 * Changes the database announces with NOTIFY on one channel (triggers write them; see
 * drizzle/0011), delivered to this process in commit order. What keeps a copy of database rows in
 * memory (the verified-key cache) drops the copies a change names, and trusts its copies only
 * while the feed is current.
 */
export interface ChangeFeed {
  /** Calls `onChange` with each payload, in the order the announcing transactions committed. */
  subscribe(onChange: (payload: string) => void): void;
  /**
   * True when every change committed more than `boundMs` ago has been delivered. While false
   * (the listening connection is down, or slower than the bound), nothing kept by the feed may be
   * trusted.
   */
  isCurrent(): boolean;
  /** Counts connections (re)established; a copy read under another epoch may have missed changes. */
  readonly epoch: number;
  readonly boundMs: number;
  close(): Promise<void>;
}

/**
 * Keeps copies the feed invalidates, and is told directly of a change this instance committed, so
 * this instance never serves a stale copy while its own notification is on the way.
 */
export interface ChangeSink {
  forget(change: string): void;
}

type Listener = (payload: string) => void;

/**
 * PGlite: one process, the database in it. A notification is delivered with the results of the
 * statement that committed it, before that statement's promise resolves: the feed is always
 * current and its bound is 0.
 */
export async function openPgliteChangeFeed(
  client: { listen(channel: string, callback: (payload: string) => void): Promise<() => Promise<void>> },
  channel: string,
): Promise<ChangeFeed> {
  const listeners: Listener[] = [];
  const unlisten = await client.listen(channel, (payload) => {
    for (const listener of listeners) listener(payload);
  });
  return {
    subscribe: (onChange) => void listeners.push(onChange),
    isCurrent: () => true,
    epoch: 0,
    boundMs: 0,
    close: () => unlisten(),
  };
}

export interface PostgresChangeFeedOptions {
  /** A change is delivered within this, or the feed says it is not current (default 1 s). */
  boundMs?: number;
  /** How often the feed proves itself with a heartbeat (default a quarter of the bound). */
  heartbeatMs?: number;
  /** Wait before reconnecting a lost listening connection. */
  reconnectMs?: number;
  onError?: (error: unknown) => void;
}

const HEARTBEAT = "heartbeat:";

/**
 * Postgres: one dedicated connection per process LISTENs (a pooled one cannot: the pool would lend
 * it out). Delivery is usually a millisecond after commit, but "usually" is not a bound, so the
 * feed proves it: every `heartbeatMs` it NOTIFYs its own channel from its own connection, stamped
 * with this process's clock. Postgres delivers notifications in commit order, so once a heartbeat
 * sent at time s has arrived, every change committed before s has arrived too. The feed is current
 * while the newest heartbeat that arrived was sent within `boundMs`: a change committed at t is
 * therefore applied, or the feed reports itself not current, by t + `boundMs`. A lost connection is
 * reconnected; its epoch changes, so copies read before the gap are not trusted after it.
 */
export async function openPostgresChangeFeed(databaseUrl: string, channel: string, options: PostgresChangeFeedOptions = {}): Promise<ChangeFeed> {
  const boundMs = options.boundMs ?? 1000;
  const heartbeatMs = options.heartbeatMs ?? Math.max(10, Math.floor(boundMs / 4));
  const reconnectMs = options.reconnectMs ?? 1000;
  const me = `${HEARTBEAT}${process.pid}-${Math.random().toString(36).slice(2)}:`;
  const listeners: Listener[] = [];
  let client: pg.Client | undefined;
  let epoch = 0;
  let lastBeatSentAt = Number.NEGATIVE_INFINITY;
  let beatPending = false;
  let closed = false;
  let reconnectTimer: NodeJS.Timeout | undefined;

  const lose = (error: unknown) => {
    if (closed) return;
    options.onError?.(error);
    lastBeatSentAt = Number.NEGATIVE_INFINITY;
    const lost = client;
    client = undefined;
    lost?.removeAllListeners();
    lost?.on("error", () => undefined);
    void lost?.end().catch(() => undefined);
    reconnectTimer ??= setTimeout(() => {
      reconnectTimer = undefined;
      void connect().catch(lose);
    }, reconnectMs);
    reconnectTimer.unref();
  };

  const connect = async () => {
    const next = new pg.Client({ connectionString: databaseUrl });
    next.on("error", lose);
    next.on("end", () => {
      if (client === next) lose(new Error("the change feed's connection ended"));
    });
    next.on("notification", (message) => {
      if (message.channel !== channel || message.payload === undefined) return;
      const payload = message.payload;
      if (payload.startsWith(HEARTBEAT)) {
        if (payload.startsWith(me)) lastBeatSentAt = Math.max(lastBeatSentAt, Number(payload.slice(me.length)));
        return; // another instance's heartbeat
      }
      for (const listener of listeners) listener(payload);
    });
    await next.connect();
    await next.query(`LISTEN ${pg.escapeIdentifier(channel)}`);
    if (closed) {
      await next.end();
      return;
    }
    epoch++;
    client = next;
    beat();
  };

  const beat = () => {
    const current = client;
    if (!current || beatPending) return;
    beatPending = true;
    current
      .query("SELECT pg_notify($1, $2)", [channel, `${me}${performance.now()}`])
      .catch((error: unknown) => {
        if (client === current) lose(error);
      })
      .finally(() => {
        beatPending = false;
      });
  };
  const heartbeat = setInterval(beat, heartbeatMs);
  heartbeat.unref();

  try {
    await connect();
  } catch (error) {
    closed = true;
    clearInterval(heartbeat);
    throw error;
  }
  return {
    subscribe: (onChange) => void listeners.push(onChange),
    isCurrent: () => performance.now() - lastBeatSentAt <= boundMs,
    get epoch() {
      return epoch;
    },
    boundMs,
    async close() {
      closed = true;
      clearInterval(heartbeat);
      if (reconnectTimer) clearTimeout(reconnectTimer);
      const last = client;
      client = undefined;
      await last?.end().catch(() => undefined);
    },
  };
}
