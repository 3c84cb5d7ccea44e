import { parseSse, type Owner, type RecordedExchange } from "./exchange.js";

/**
 * Leak detection. A needle is something only its owner may ever receive: canaries, secrets, ids
 * (tenant, key, document, chunk), titles, and fingerprints of every stored chunk
 * (so a chunk with no canary in it is still caught). A leak is a needle of another tenant in any
 * byte a party received — status line irrelevant — looked for in several views of the response:
 * headers, the raw body, the decoded JSON strings, and for SSE the answer re-assembled from its
 * token events (a canary split across two tokens would escape a raw scan).
 *
 * Reflection: a needle the party itself sent in that same request (A's tenant id in a smuggled
 * header, A's canary as a search query, A's document id in a path) proves nothing when it comes
 * back (an echoed question, a 404 naming the path), so it is not counted for that exchange. Every
 * other needle still is: a reflected canary cannot hide the chunk ids, fingerprints and other
 * secrets that a real leak of the chunk carries with it.
 */
export type NeedleKind =
  | "canary"
  | "secret"
  | "tenant-id"
  | "tenant-name"
  | "api-key"
  | "key-id"
  | "document-id"
  /** A queued job's id or its batch id. */
  | "job-id"
  | "chunk-id"
  | "title"
  | "chunk-text"
  /** A usage canary's model or project name, or one of its token counts (see usage-canary.ts). */
  | "usage";

export interface Needle {
  owner: Owner;
  kind: NeedleKind;
  value: string;
}

export interface Finding {
  needle: Needle;
  /** Which view of the response it was found in. */
  where: string;
  /** The request that received it: party, method and path. */
  exchange: string;
}

export interface TenantTruth {
  owner: Owner;
  tenantId: string;
  tenantName: string;
  apiKeys: string[];
  keyIds: string[];
  documents: { id: string; title: string; canaries: string[] }[];
  /** Jobs and batches: their ids, and the titles and canaries of the uploads they carry. */
  jobs: { id: string; title: string; canaries: string[] }[];
  chunks: { id: string; text: string }[];
  secrets: string[];
}

/*
 * Source ids are deliberately not needles: they are client-chosen names another tenant can
 * guess and legitimately reuse for its own documents (the source_id collision attack does).
 */

/** Chunk fingerprints are runs of this many words: long enough to be unique to one corpus. */
const FINGERPRINT_WORDS = 7;

/** All needles of one tenant. `otherCorpus` is every other tenant's text, to drop shared phrases. */
export function needlesOf(truth: TenantTruth, otherCorpus: string): Needle[] {
  const needles: Needle[] = [];
  const add = (kind: NeedleKind, value: string) => needles.push({ owner: truth.owner, kind, value });
  add("tenant-id", truth.tenantId);
  add("tenant-name", truth.tenantName);
  truth.apiKeys.forEach((k) => add("api-key", k));
  truth.keyIds.forEach((k) => add("key-id", k));
  truth.secrets.forEach((s) => add("secret", s));
  for (const doc of truth.documents) {
    add("document-id", doc.id);
    add("title", doc.title);
    doc.canaries.forEach((c) => add("canary", c));
  }
  for (const job of truth.jobs) {
    add("job-id", job.id);
    add("title", job.title);
    job.canaries.forEach((c) => add("canary", c));
  }
  const other = normalize(otherCorpus);
  for (const chunk of truth.chunks) {
    add("chunk-id", chunk.id);
    for (const print of fingerprints(chunk.text)) if (!other.includes(print)) add("chunk-text", print);
  }
  return needles;
}

/**
 * Scans exchanges in the order they happened. Besides same-request reflection it remembers what
 * each tenant stored itself: B may upload a document whose metadata names A's tenant id (the
 * smuggling attack does), and reading B's own document back is not a leak. Only accepted uploads
 * and chats (recorded in the tenant's runs) count — a search query is not stored, so it cannot
 * excuse anything in a later response.
 */
export class LeakDetector {
  private readonly stored = new Map<Owner, View[]>();

  constructor(private needles: readonly Needle[]) {}

  /** Needles of data made during the run (a tenant an attack creates): looked for from now on. */
  add(needles: readonly Needle[]): void {
    this.needles = [...this.needles, ...needles];
  }

  /** Needles of tenants other than the receiving party's own, found in what it received. */
  scan(exchange: RecordedExchange): Finding[] {
    const tenant = exchange.party.tenant;
    const forbidden = this.needles.filter((n) => n.owner !== tenant);
    const sent = requestViews(exchange);
    const known = [...sent, ...(tenant ? (this.stored.get(tenant) ?? []) : [])];
    const received = responseViews(exchange);
    const findings: Finding[] = [];
    for (const needle of forbidden) {
      if (known.some((v) => contains(v, needle))) continue;
      const hit = received.find((v) => contains(v, needle));
      if (hit) findings.push({ needle, where: hit.name, exchange: describeExchange(exchange) });
    }
    if (tenant && isStoredByTenant(exchange)) this.stored.set(tenant, [...(this.stored.get(tenant) ?? []), ...sent]);
    return findings;
  }
}

function describeExchange(exchange: RecordedExchange): string {
  const url = new URL(exchange.request.url);
  return `${exchange.party.label} ${exchange.request.method} ${url.pathname}${url.search} → ${exchange.status}`;
}

/**
 * What a tenant stores by sending it: an accepted upload, and a chat that reached the service (the
 * API's or the console's Ask) — its question is kept in the tenant's own run record (GET /v1/runs,
 * the console's Runs page), so B reading back B's own
 * question about A's canary is not a leak. (A 400, 401 or 403 — a key without the `query` scope —
 * is refused before any run is recorded.)
 */
function isStoredByTenant(exchange: RecordedExchange): boolean {
  const path = new URL(exchange.request.url).pathname;
  if (exchange.request.method !== "POST") return false;
  if (path === "/v1/documents") return exchange.status === 200 || exchange.status === 201;
  const asks = path === "/v1/chat" || path === "/console/ask" || path === "/console/ask/stream";
  return asks && ![400, 401, 403].includes(exchange.status);
}

export function describeFinding(finding: Finding): string {
  const { kind, value } = finding.needle;
  const shown = value.length > 40 ? `${value.slice(0, 37)}...` : value;
  return `${kind} "${shown}" in ${finding.where} of ${finding.exchange}`;
}

interface View {
  name: string;
  /** Lower-cased text, for ids, canaries and secrets. */
  lower: string;
  /** Words only, for chunk fingerprints (survives JSON and XML escaping and re-wrapping). */
  words: string;
}

function view(name: string, text: string): View {
  return { name, lower: text.toLowerCase(), words: normalize(text) };
}

function contains(v: View, needle: Needle): boolean {
  if (needle.kind === "chunk-text") return v.words.includes(needle.value);
  if (/^\d+$/.test(needle.value)) return wholeNumber(needle.value).test(v.lower);
  return v.lower.includes(needle.value.toLowerCase());
}

/**
 * A number needle (a usage canary's token count) as a number of its own: not digits inside a
 * longer number or after a decimal point. Seven random digits turn up by chance in the decimals
 * of search scores (one CI run flagged B's own search result that way); a leaked count is an
 * integer, in JSON or CSV, and is still found.
 */
function wholeNumber(digits: string): RegExp {
  return new RegExp(`(?<![0-9.])${digits}(?![0-9])`);
}

function responseViews(exchange: RecordedExchange): View[] {
  const views = [
    view("headers", Object.entries(exchange.headers).map(([k, v]) => `${k}: ${v}`).join("\n")),
    view("body", exchange.body),
  ];
  const isSse = (exchange.headers["content-type"] ?? "").includes("text/event-stream");
  if (isSse) {
    const events = parseSse(exchange.body);
    const answer = events
      .filter((e) => e.event === "token")
      .map((e) => String((safeJson(e.data) as { text?: unknown } | undefined)?.text ?? ""))
      .join("");
    views.push(view("sse answer", answer));
    views.push(view("sse events", events.map((e) => decodedStrings(e.data)).join("\n")));
  } else {
    views.push(view("decoded body", decodedStrings(exchange.body)));
  }
  return views;
}

function requestViews(exchange: RecordedExchange): View[] {
  const { url, headers, body } = exchange.request;
  return [
    view("url", url),
    view("decoded url", safeDecode(url)),
    view("headers", Object.entries(headers).map(([k, v]) => `${k}: ${v}`).join("\n")),
    view("body", body),
    view("decoded body", decodedStrings(body)),
    view("form fields", formFields(headers, body)),
  ];
}

/** The values of a urlencoded form body (the console's forms), which the raw body holds escaped (`+`, `%xx`). */
function formFields(headers: Record<string, string>, body: string): string {
  const type = Object.entries(headers).find(([k]) => k.toLowerCase() === "content-type")?.[1] ?? "";
  if (!/^application\/x-www-form-urlencoded/i.test(type)) return "";
  return [...new URLSearchParams(body)].map(([k, v]) => `${k}\n${v}`).join("\n");
}

/** Every string (keys and values) inside a JSON text, or the text itself when it is not JSON. */
function decodedStrings(text: string): string {
  const parsed = safeJson(text);
  if (parsed === undefined) return text;
  const out: string[] = [];
  const walk = (value: unknown): void => {
    if (typeof value === "string") out.push(value);
    else if (Array.isArray(value)) value.forEach(walk);
    else if (value && typeof value === "object") {
      for (const [k, v] of Object.entries(value)) {
        out.push(k);
        walk(v);
      }
    } else if (value !== null && value !== undefined) out.push(String(value));
  };
  walk(parsed);
  return out.join("\n");
}

/** Lower-case words separated by single spaces; punctuation, markup and escapes become spaces. */
export function normalize(text: string): string {
  return ` ${text.toLowerCase().replace(/&(amp|lt|gt|quot|#39);/g, " ").replace(/[^a-z0-9]+/g, " ").trim()} `;
}

/** Word windows from the start, middle and end of a chunk (bounded by spaces, so no partial words). */
export function fingerprints(text: string): string[] {
  const words = normalize(text).trim().split(" ").filter(Boolean);
  if (words.length < FINGERPRINT_WORDS) return words.length >= 3 ? [` ${words.join(" ")} `] : [];
  const starts = [0, Math.floor((words.length - FINGERPRINT_WORDS) / 2), words.length - FINGERPRINT_WORDS];
  return [...new Set(starts.map((s) => ` ${words.slice(s, s + FINGERPRINT_WORDS).join(" ")} `))];
}

function safeJson(text: string): unknown {
  try {
    return text ? (JSON.parse(text) as unknown) : undefined;
  } catch {
    return undefined;
  }
}

function safeDecode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}
