/**
 * The attacker's HTTP client. Every request goes over real HTTP (fetch) to the served instance,
 * and every exchange is recorded in full — request as sent, response status, headers and the
 * whole body (an SSE stream is read to its end) — so the leak detector can look at every byte
 * a party received, not only the fields a well-behaved client would read.
 */

/**
 * Who receives a response: a tenant of this run ("A", "B"), or nobody authenticated. "C" is a
 * tenant an attack makes for itself and deletes again (attacks/key-cache.ts): the detector knows
 * its data only through the needles that attack plants (`AttackContext.plant`).
 */
export type Owner = "A" | "B" | "C";

export interface Party {
  label: string;
  /** The tenant whose data this party may legitimately see; null for an attacker with no tenant. */
  tenant: Owner | null;
  /** Sent as `Authorization: Bearer <key>` unless a request overrides the header. */
  key: string | undefined;
}

export interface RecordedExchange {
  party: Party;
  request: { method: string; url: string; headers: Record<string, string>; body: string };
  status: number;
  headers: Record<string, string>;
  body: string;
}

export interface SendOptions {
  json?: unknown;
  form?: FormData;
  /** A raw body, sent as is (malformed JSON and the like). */
  body?: string;
  headers?: Record<string, string>;
  /** `false` sends no Authorization header at all. */
  auth?: boolean;
}

export interface Reply {
  status: number;
  body: string;
  headers: Record<string, string>;
  /** The body parsed as JSON, or undefined when it is not JSON (SSE, empty). */
  json: unknown;
}

export class AttackerHttp {
  readonly exchanges: RecordedExchange[] = [];

  constructor(private readonly baseUrl: string) {}

  async send(party: Party, method: string, path: string, options: SendOptions = {}): Promise<Reply> {
    const headers: Record<string, string> = {};
    if (options.auth !== false && party.key !== undefined) headers.authorization = `Bearer ${party.key}`;
    let body: string | FormData | undefined = options.body;
    let bodyText = options.body ?? "";
    if (options.json !== undefined) {
      headers["content-type"] = "application/json";
      body = bodyText = JSON.stringify(options.json);
    } else if (options.form) {
      body = options.form;
      bodyText = await describeForm(options.form);
    }
    Object.assign(headers, options.headers);
    // `path` is appended verbatim, so percent-encodings and odd slashes reach the server as sent.
    const url = this.baseUrl + path;
    const response = await fetch(url, { method, headers, body, redirect: "manual" });
    const text = await response.text();
    const responseHeaders = Object.fromEntries(response.headers.entries());
    this.exchanges.push({
      party,
      request: { method, url, headers, body: bodyText },
      status: response.status,
      headers: responseHeaders,
      body: text,
    });
    return { status: response.status, body: text, headers: responseHeaders, json: parseJson(text) };
  }
}

/** The text of a multipart body as the server sees it: field values and file contents. */
async function describeForm(form: FormData): Promise<string> {
  const parts: string[] = [];
  for (const [name, value] of form.entries()) {
    parts.push(typeof value === "string" ? `${name}=${value}` : `${name}=${value.name}\n${await value.text()}`);
  }
  return parts.join("\n");
}

function parseJson(text: string): unknown {
  try {
    return text ? (JSON.parse(text) as unknown) : undefined;
  } catch {
    return undefined;
  }
}

export interface SseEvent {
  event: string;
  data: string;
}

/** Splits a text/event-stream body into events (enough of the spec for Hono's streamSSE output). */
export function parseSse(body: string): SseEvent[] {
  const events: SseEvent[] = [];
  for (const block of body.split(/\r?\n\r?\n/)) {
    let event = "message";
    const data: string[] = [];
    for (const line of block.split(/\r?\n/)) {
      if (line.startsWith("event:")) event = line.slice(6).trim();
      else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
    }
    if (data.length > 0) events.push({ event, data: data.join("\n") });
  }
  return events;
}
