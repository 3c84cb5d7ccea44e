import { randomInt } from "node:crypto";
import { multipartBody } from "./multipart.js";
import { makePdfBomb } from "./pdf-bomb.js";

/**
 * The hostile inputs of issue 14, one attack each, as the attacker tenant sends them. Each has its
 * own realistic shape — how many requests, how many at once — and is built up front (`prepare`)
 * so the eval's own work on a 10 MB body never falls inside the window in which the victim is
 * measured. Sizes are the ones the red team reproduced; a fix must bound them, not dodge them.
 */
export interface HostileRequest {
  method: "GET" | "POST";
  path: string;
  headers?: Record<string, string>;
  body?: Uint8Array | string;
  /** Instead of `body`: a body that declares `declaredBytes` and trickles `chunkBytes` every `everyMs`, never finishing. */
  slowBody?: { declaredBytes: number; chunkBytes: number; everyMs: number };
  /** The attacker's own key, or a key of its own making (the bogus-key flood). */
  key: "attacker" | string;
}

export interface HostileInput {
  name: string;
  /** The rows of issue 14 it reproduces. */
  rows: string;
  requests: number;
  concurrency: number;
  /** The input is queued as jobs: its window lasts until the attacker's jobs have ended. */
  queuesJobs?: boolean;
  /** How long the attack may run (default ATTACK_DEADLINE_MS, section.ts), where its own requests take longer by design. */
  deadlineMs?: number;
  /** A known gap on one backend (docs/hostile-input.md): the p99 rule is relaxed there, and only that. */
  knownOpen?: { backends: readonly ("pglite" | "postgres" | "citus")[]; maxRatio: number; reason: string };
  /**
   * A known gap so wide on a backend that the input would freeze or fail it outright: not run
   * there, and reported as not run with the reason (docs/hostile-input.md), never as passed.
   */
  notRunOn?: { backends: readonly ("pglite" | "postgres" | "citus")[]; reason: string };
  prepare(): (i: number) => HostileRequest;
}

/**
 * The gap that stays open (docs/hostile-input.md; its fix belongs to the instance-fairness work):
 * the eval reports its inputs `open` within a ceiling instead of `ok` when they pass 2×, and still
 * fails them on any victim error, on a stall over 1 s, or past the ceiling. Ceilings sit above what
 * was measured (figures in the docs), so that a regression, not the usual noise, is what fails.
 * Figures in the comments below dated before 2026-12-06 were taken by the eval before its victim
 * was corrected (victim.ts, instance.ts): read them as relative to each other, about half the
 * ratio the corrected eval gives.
 */
const LARGE_BODIES =
  "a ~10 MB body is received, copied and parsed (on a parse thread) on the instance's two cores; one tenant's one at a time (large-body places, two in all, fair across tenants), read at 20 MB/s while the victim is served, and it still competes with the victim's search for CPU";

const json = (value: unknown) => ({ headers: { "content-type": "application/json" }, body: JSON.stringify(value) });

function fileUpload(path: string, fileName: string, contentType: string, content: string | Uint8Array, extra: Record<string, string> = {}): Omit<HostileRequest, "key"> {
  const fields = [{ name: "file", value: content, filename: fileName, contentType }, ...Object.entries(extra).map(([name, value]) => ({ name, value }))];
  const { body, contentType: type } = multipartBody(fields);
  return { method: "POST", path, headers: { "content-type": type }, body };
}

/** `fence_<env>_<40 base62>`: the shape src/tenancy/api-keys.ts accepts, so each reaches the key lookup. */
function bogusKey(): string {
  const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
  let secret = "";
  for (let i = 0; i < 40; i++) secret += base62[randomInt(62)];
  return `fence_prod_${secret}`;
}

export const HOSTILE_INPUTS: readonly HostileInput[] = [
  {
    name: "Markdown heading `# a` + 5,000 spaces + `x`",
    rows: "1",
    requests: 4,
    concurrency: 2,
    prepare: () => (i) => ({ method: "POST", path: "/v1/documents", key: "attacker", ...json({ text: `# a${" ".repeat(5000)}x\n\nbody ${i}`, source_id: `redos-${i}` }) }),
  },
  {
    name: "one-chunk upload with a 100 KB heading",
    rows: "3",
    requests: 4,
    concurrency: 2,
    prepare: () => (i) => ({
      method: "POST",
      path: "/v1/documents",
      key: "attacker",
      ...json({ text: `# ${"quarterly figures ".repeat(5600)}\n\nshort body ${i}`, source_id: `heading-${i}` }),
    }),
  },
  {
    name: "PDF compression bomb (~70 KB → ~20 MB)",
    rows: "4",
    requests: 3,
    concurrency: 3,
    prepare: () => {
      const pdf = makePdfBomb();
      return (i) => ({ ...fileUpload("/v1/documents", `report-${i}.pdf`, "application/pdf", pdf, { source_id: `bomb-${i}` }), key: "attacker" });
    },
  },
  {
    name: "batch JSON of 690,000 tiny documents (~10 MB)",
    rows: "5",
    requests: 2,
    concurrency: 2,
    knownOpen: { backends: ["pglite", "postgres"], maxRatio: 8, reason: LARGE_BODIES },
    prepare: () => {
      const body = `{"documents":[${Array.from({ length: 690_000 }, () => '{"text":"a"}').join(",")}]}`;
      return () => ({ method: "POST", path: "/v1/documents/batch", key: "attacker", headers: { "content-type": "application/json" }, body });
    },
  },
  {
    name: "multipart batch of 80,000 one-byte parts",
    rows: "5",
    requests: 2,
    concurrency: 2,
    // With the eval's victim corrected (2026-12-06: fresh queries, default model threads), 2.9x on
    // PGlite and 3.4x on Postgres (2.7x and 5.4x with one model thread).
    knownOpen: { backends: ["pglite", "postgres"], maxRatio: 6, reason: LARGE_BODIES },
    prepare: () => {
      const { body, contentType } = multipartBody(Array.from({ length: 80_000 }, (_, i) => ({ name: "file", value: "a", filename: `p${i}.txt`, contentType: "text/plain" })));
      return () => ({ method: "POST", path: "/v1/documents/batch", key: "attacker", headers: { "content-type": contentType }, body });
    },
  },
  {
    name: "HTML of 2,000 nested <div>",
    rows: "9, 10",
    requests: 6,
    concurrency: 3,
    prepare: () => {
      const html = `<html><body>${"<div>".repeat(2000)}deep${"</div>".repeat(2000)}</body></html>`;
      return (i) => ({ ...fileUpload("/v1/documents", `deep-${i}.html`, "text/html", html, { source_id: `deep-${i}` }), key: "attacker" });
    },
  },
  {
    name: "dates Postgres cannot store (runs since, usage to)",
    rows: "6, 8",
    requests: 40,
    concurrency: 8,
    prepare: () => (i) => ({
      method: "GET",
      path: i % 2 === 0 ? "/v1/runs?since=0000-01-01T00:00:00Z" : "/v1/usage?from=9999-12-01&to=9999-12-31T23:00:00-05:00",
      key: "attacker",
    }),
  },
  {
    name: "lone surrogate title, Prefer: respond-async",
    rows: "7, 8",
    requests: 40,
    concurrency: 8,
    queuesJobs: true,
    prepare: () => (i) => {
      const request = json({ text: `Note ${i} about the weekly team lunch.`, title: "\ud800", source_id: `surrogate-${i}` });
      return { method: "POST", path: "/v1/documents", key: "attacker", body: request.body, headers: { ...request.headers, prefer: "respond-async" } };
    },
  },
  {
    name: "multipart filename of 300,000 characters",
    rows: "11",
    requests: 10,
    concurrency: 4,
    // The name is cut at once; the cost left is storing ten uploads. On PGlite in-process this
    // measured 1.5-2.1x; on its own thread (the default) 0.4-0.9x.
    prepare: () => {
      const name = `${"n".repeat(300_000 - 4)}.txt`;
      return (i) => ({ ...fileUpload("/v1/documents", name, "text/plain", `A short note ${i}.`, { source_id: `filename-${i}` }), key: "attacker" });
    },
  },
  {
    name: "400 bogus well-formed API keys, 24 at once",
    rows: "14",
    requests: 400,
    concurrency: 24,
    // Since the attacker sends from its own thread, the 400 arrive as one burst of ~0.2 s: first
    // windows on Postgres measured 1.4-3.2x (the second, all 429 from a blocked address, 0.7-2.6x).
    // With refused connections read again at low priority: 0.4-1.0x in twelve windows of thirteen
    // over both backends, 2.9x once (Postgres; a second window is taken before a p99 breach fails).
    // Those were measured by the eval before its victim was corrected. With it (2026-12-06), on
    // Postgres, eleven runs over three builds (the oldest, eb1b3d4, among them): the first window
    // breached four times, the second too in three of them (its 400 requests all met a blocked
    // address: 429): 2.2x / 2.2x, 3.8x / 2.9x, 7.5x / 8.6x, and 2.9x / 2.0x; otherwise 0.8-1.8x.
    // A twelfth, marked open there: 7.4x in its only window. PGlite: 0.8-1.3x, once 3.1x in a first
    // window. Open on both; the ceiling is over the worst seen. Found since: the victim waits on its
    // query embedding's CPU and its transactions, not the loop. After a search became one
    // transaction and the blocked address's 429s moved to the front door: 0.9x, 0.7x, 2.1x, 0.7x
    // (Postgres, four runs).
    knownOpen: {
      backends: ["pglite", "postgres"],
      maxRatio: 15,
      reason: "a burst of 400 requests refused (401, then 429 from the blocked address) in ~0.2 s still takes the event loop and cores the victim's search needs",
    },
    prepare: () => {
      const keys = Array.from({ length: 400 }, bogusKey);
      return (i) => ({ method: "GET", path: "/v1/documents?limit=1", key: keys[i]! });
    },
  },
  {
    name: "text upload: 1 MB run of spaces, no newline",
    rows: "1 (class)",
    requests: 4,
    concurrency: 2,
    // Over FENCE_ASYNC_INGEST_BYTES (256 KiB by default): queued, then parsed by the job workers.
    queuesJobs: true,
    // 3.3-10.5x with PGlite on the event loop; on its own thread (the default) and one large body
    // per tenant at a time, 0.7x on PGlite (three runs) and 0.7-1.4x on Postgres (three), by the
    // eval before its victim was corrected. With it (2026-12-06), five full runs: PGlite 1.7, 0.8,
    // 1.9, 1.8x; Postgres 1.3, 0.9, 1.8x, then 2.5x and 3.2x in both windows of a sixth (the
    // second judged against a re-taken baseline). Open on both until what costs the victim here
    // (a 1 MB body read, normalised on a parse thread, and a queued job) is found out.
    knownOpen: {
      backends: ["pglite", "postgres"],
      maxRatio: 6,
      reason: "a 1 MB upload is read, normalised on a parse thread and run as a job on the instance's two cores, beside the victim's search",
    },
    prepare: () => {
      const text = `start${" ".repeat(1_000_000)}end`;
      return (i) => ({ ...fileUpload("/v1/documents", `spaces-${i}.txt`, "text/plain", text, { source_id: `spaces-${i}` }), key: "attacker" });
    },
  },
  {
    // Not of the red team's list: an attack on the large-body places (http/middleware/request-body.ts).
    // Uploads that declare 1 MB and trickle 1 KB every 250 ms hold their place until its deadline
    // (5 s + 1 s a MiB) answers 408; the victim's small requests must not notice. A tenant gets one
    // place at a time, so the four end one after another, after about 24 s.
    name: "slow 1 MB uploads holding the large-body places (4)",
    rows: "class",
    requests: 4,
    concurrency: 4,
    deadlineMs: 35_000,
    prepare: () => () => ({
      method: "POST",
      path: "/v1/documents",
      key: "attacker",
      headers: { "content-type": "application/json", prefer: "respond-async" },
      slowBody: { declaredBytes: 1_000_000, chunkBytes: 1024, everyMs: 250 },
    }),
  },
  {
    name: "flood of async 10 MB uploads (24)",
    rows: "13",
    requests: 24,
    concurrency: 6,
    queuesJobs: true,
    // With the eval's victim corrected (2026-12-06): PGlite 3.4x, Postgres 4.2x (4.8x and 5.1x with
    // one model thread). The figures before it (1.0-2.4x) compared cached searches with a baseline
    // that embedded, and halved every ratio. Large bodies paced (FENCE_LARGE_BODY_PACE_MB), two
    // rounds: PGlite 1.9x, 1.5x, Postgres 1.6x, 2.4x (unpaced beside them: 2.2x, 3.8x; 2.2x, 3.3x).
    knownOpen: { backends: ["pglite", "postgres"], maxRatio: 6, reason: LARGE_BODIES },
    prepare: () => {
      // Just under the default 10 MiB body limit with the JSON around it: accepted as sent today.
      const text = "The quarterly figures for the board are attached below. ".repeat(180_000).slice(0, 10_000_000);
      const head = Buffer.from('{"text":"', "utf8");
      const tail = (i: number) => Buffer.from(`","source_id":"flood-${i}"}`, "utf8");
      const middle = Buffer.from(text, "utf8");
      return (i) => ({
        method: "POST",
        path: "/v1/documents",
        key: "attacker",
        headers: { "content-type": "application/json", prefer: "respond-async" },
        body: new Uint8Array(Buffer.concat([head, middle, tail(i)])),
      });
    },
  },
  {
    name: "flood of 10 MB file uploads, multipart (24)",
    rows: "13",
    requests: 24,
    concurrency: 6,
    queuesJobs: true,
    // The noisiest input: 240 MB sent by the attacker's thread and received by Fence on two cores.
    // With two large bodies of one tenant at once: Postgres 2.6-17.5x, PGlite 2.3-18.8x. One per
    // tenant at a time (request-body.ts): PGlite 1.3-2.5x, Postgres 1.0-2.1x (seven runs each), by
    // the eval before its victim was corrected; with it (2026-12-06), 3.1x on both, then 4.9x and
    // 8.6x on Postgres while each file was still queued, stored and read back for its job to refuse
    // it; refused at the door (413: its text counted), 3.5x and 3.2x. Paced, two rounds: PGlite
    // 1.1x, 1.9x, Postgres 2.5x, 2.9x (unpaced beside them: 2.6x, 4.0x; 2.3x, 2.2x).
    // Before the places: PGlite froze (>= 5.7 s), then 6.7-19.3x; Postgres timed out victim searches in half the runs.
    knownOpen: { backends: ["pglite", "postgres"], maxRatio: 6, reason: LARGE_BODIES },
    prepare: () => {
      // The same 10 MB as the JSON flood, as a file: cut out of its form on a parse thread, then
      // refused (413: past FENCE_MAX_TEXT_CHARS) before anything is stored.
      const text = "The quarterly figures for the board are attached below. ".repeat(180_000).slice(0, 10_000_000);
      return (i) => ({ ...fileUpload("/v1/documents", `figures-${i}.txt`, "text/plain", text, { source_id: `file-flood-${i}` }), key: "attacker" });
    },
  },
];
