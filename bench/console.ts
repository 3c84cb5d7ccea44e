import { sql } from "drizzle-orm";
import { CheapEmbeddings } from "../test/support/cheap-embeddings.js";
import { describeBackend, startFence } from "../test/support/fence-harness.js";
import { postgresReachable } from "./backends.js";
import { BenchBrowser } from "./console/browser.js";
import { parseConsoleOptions, type ConsoleBackend, type ConsoleBenchOptions } from "./console/options.js";
import { seedConsoleData, type Seeded } from "./console/seed.js";
import { ms, printTable, progress, runBenchmark } from "./report.js";
import { since, summarize, type LatencySummary } from "./stats.js";

/**
 * `npm run bench:console [-- --quick] [--backends=pglite,postgres --database-url=… --documents=N
 * --events=N --jobs=N --runs=N --audit-events=N --queued-jobs=N --requests=N --warmup=N
 * --analyze=auto|always|never --target-ms=100]` (see console/options.ts).
 *
 * Issue 19: "each page's server time p95 ≤ 100 ms for a tenant with 100,000 usage events and
 * 10,000 documents". Per backend it builds Fence in-process (PGlite in memory; Postgres on a
 * scratch database of its own, dropped at the end) with hash embeddings — pages, not embedding,
 * are measured — seeds the tenant with set-based SQL (console/seed.ts: documents, upload jobs,
 * usage; console/seed-activity.ts: runs, audit trail, upload backlog), signs in to the console
 * with the tenant's owner key and with the admin key through the sign-in form, warms every page,
 * then requests the pages in turn, one at a time, `requests` times each. A page's server time is
 * `app.request` until its body is read. The backends run one after the other, never together.
 *
 * Every GET page of src/console/ a person reaches is measured: the tenant's (Overview; Documents,
 * found by title and paged, one document, an upload's live job row; Ask; Runs, filtered and paged,
 * one chat run and one ingestion run; Keys; Settings; Audit and its second page), the sign-in
 * page, and the platform's (Tenants and a purge confirmation; Plans and one plan; Usage by tenant
 * this month and by day, model and key over 30 days, and its CSV; Operations). Links to second
 * pages and ids are taken from the pages, as a person follows them. Not measured: the POST forms,
 * `/console` itself (a redirect) and the static assets.
 *
 * A full run exits 1 when any page's p95 is over the target; a quick run (CI) prints the same
 * table but never fails on time (CI machines vary), only when a page does not answer 200.
 */
interface PageSpec {
  name: string;
  path: string;
  as: "owner" | "admin" | "visitor";
  /** What the page must show, checked on its first answer: it read the seeded data. */
  check: (html: string) => string | undefined;
}

interface PageResult {
  page: PageSpec;
  summary: LatencySummary;
}

interface BackendReport {
  backend: ConsoleBackend;
  version: string;
  analyzed: boolean;
  seeded: Seeded;
  results: PageResult[];
  wallMs: number;
}

async function main(): Promise<void> {
  const started = performance.now();
  const options = parseConsoleOptions(process.argv.slice(2), process.env);
  const embeddings = new CheapEmbeddings();
  const reports: BackendReport[] = [];
  for (const backend of options.backends) {
    if (backend === "postgres") {
      const reach = await postgresReachable(options.databaseUrl!);
      if (!reach.ok) throw new Error(`postgres unreachable at DATABASE_URL: ${reach.reason}`);
    }
    const t0 = performance.now();
    progress(`${backend}: building Fence (migrations)`);
    const fence = await startFence({
      databaseUrl: backend === "postgres" ? options.databaseUrl : undefined,
      scratchPrefix: "fence_bench_console",
      build: { embeddings },
    });
    try {
      reports.push(await runBackend(backend, fence, options, embeddings, t0));
    } finally {
      await fence.close();
    }
  }

  const over = print(reports, options);
  process.stdout.write(`\nTotal wall time: ${(since(started) / 1000).toFixed(1)} s\n`);
  if (over.length > 0 && !options.quick) {
    process.stdout.write(`FAIL: p95 over ${options.targetP95Ms} ms: ${over.join(", ")}\n`);
    process.exitCode = 1;
  }
}

async function runBackend(
  backend: ConsoleBackend,
  started: Awaited<ReturnType<typeof startFence>>,
  options: ConsoleBenchOptions,
  embeddings: CheapEmbeddings,
  t0: number,
): Promise<BackendReport> {
  const { fence, adminKey } = started;
  const version = await describeBackend(fence.db, "scratch database");
  progress(
    `${backend}: seeding ${options.documents.toLocaleString("en-US")} documents, ${options.events.toLocaleString("en-US")} usage events, ${options.jobs.toLocaleString("en-US")} upload jobs, ` +
      `${options.runs.toLocaleString("en-US")} runs, ${options.auditEvents.toLocaleString("en-US")} audit events`,
  );
  const seeded = await seedConsoleData(fence, adminKey, options, embeddings.model, embeddings.dimensions);
  progress(`${backend}: seeded in ${(seeded.ms / 1000).toFixed(1)} s (${seeded.query.matches} titles hold "${seeded.query.text}")`);
  // Postgres's autovacuum analyzes a table soon after a bulk load; PGlite has no autovacuum, so
  // by default its tables keep no statistics, as an embedded Fence's would.
  const analyzed = options.analyze === "always" || (options.analyze === "auto" && backend === "postgres");
  if (analyzed) {
    await fence.db.asOwner((tx) =>
      tx.execute(sql`ANALYZE tenants, tenant_configs, plans, api_keys, documents, chunks, jobs, usage_events, usage_counters, usage_daily, runs, runs_daily, audit_events`),
    );
  }

  const owner = new BenchBrowser(fence.app);
  await owner.signIn(seeded.measured.ownerKey);
  const admin = new BenchBrowser(fence.app);
  await admin.signIn(adminKey);
  const visitor = new BenchBrowser(fence.app);
  const m = seeded.measured;

  // Links and ids as a person finds them: the next page's link and a row's link on the page before.
  const read = async (browser: BenchBrowser, path: string): Promise<string> => {
    const res = await browser.page(path);
    if (res.status !== 200) throw new Error(`${backend}: ${path} answered ${res.status}: ${res.html.slice(0, 300)}`);
    return res.html;
  };
  const linkOn = (html: string, pattern: RegExp, what: string): string => {
    const href = pattern.exec(html)?.[1];
    if (!href) throw new Error(`${backend}: no ${what} link on the page`);
    return href.replaceAll("&amp;", "&");
  };

  const first = await read(owner, "/console/documents");
  const nextHref = linkOn(first, /href="(\/console\/documents\?cursor=[^"]+)"/, `"Older documents"`);
  // A document's row links its title; an upload job's row links "Open".
  const documentLinks = (html: string) => [...html.matchAll(/<td><a href="\/console\/documents\/([0-9a-f-]{36})">(?!Open<)/g)].map((x) => x[1]!);
  const documentIds = documentLinks(first);
  const documentId = documentIds[Math.floor(documentIds.length / 2)];
  if (!documentId) throw new Error(`${backend}: the documents page links no document`);
  // A queued upload's row asks for itself again every second (htmx) while the page is open.
  const jobRowHref = linkOn(first, /hx-get="(\/console\/documents\/jobs\/[0-9a-f-]{36})"/, "queued upload's live row");

  // Runs: a row links its run by request id (a job attempt's is `job:<id>`, encoded).
  const runLinks = (html: string) => [...html.matchAll(/<a href="\/console\/runs\/([^"?]+)">/g)].map((x) => x[1]!);
  const runRows = (html: string) => [...html.matchAll(/<tr><td><a href="\/console\/runs\/([^"?]+)">.*?<\/a><\/td><td>(chat|ingest)<\/td><td><span class="badge [a-z]+">(succeeded|refused|failed)<\/span>/g)].map((x) => ({ id: x[1]!, kind: x[2]!, status: x[3]! }));
  const runsFirst = await read(owner, "/console/runs");
  const runsNext = linkOn(runsFirst, /href="(\/console\/runs\?cursor=[^"]+)"/, `"Older runs"`);
  const failedFirst = await read(owner, "/console/runs?status=failed");
  const failedNext = linkOn(failedFirst, /href="(\/console\/runs\?status=failed&amp;cursor=[^"]+)"/, `"Older runs" (failed)`);
  // A chat that went the whole way (retrieval, the model call, the answer): not a cache hit, refused or failed.
  let chatRun: string | undefined;
  for (const row of runRows(runsFirst).filter((r) => r.kind === "chat" && r.status === "succeeded")) {
    if ((await read(owner, `/console/runs/${row.id}`)).includes("model_call")) {
      chatRun = row.id;
      break;
    }
  }
  if (!chatRun) throw new Error(`${backend}: the runs page links no chat run with a model call`);
  const ingestRun = runRows(await read(owner, "/console/runs?kind=ingest")).find((r) => r.status === "succeeded")?.id;
  if (!ingestRun) throw new Error(`${backend}: the ingest runs page links no succeeded run`);

  const auditNext = linkOn(await read(owner, "/console/audit"), /href="(\/console\/audit\?cursor=[^"]+)"/, `"Older events"`);

  // The platform's usage: this month by tenant (the page's default), and the last 30 days as an admin asks for them.
  const from30 = new Date(Date.now() - 30 * 24 * 3600_000).toISOString().slice(0, 10);
  const usageDefault = await read(admin, "/console/platform/usage");
  const csvHref = linkOn(usageDefault, /href="(\/console\/platform\/usage\/csv\?[^"]+)"/, `"Download CSV"`);
  const csvByDayHref = linkOn(
    await read(admin, `/console/platform/usage?group_by=day&from=${from30}`),
    /href="(\/console\/platform\/usage\/csv\?[^"]+)"/,
    `"Download CSV" (by day)`,
  );

  const rows = (html: string) => documentLinks(html).length;
  const count = (html: string, pattern: RegExp) => [...html.matchAll(pattern)].length;
  const expect = (what: string, ok: boolean) => (ok ? undefined : what);
  const auditRows = (h: string) => count(h, /<td>(?:key|settings|tenant|config|plan)\.[a-z_]+<\/td>/g);
  const usageRows = (h: string) => count(h, /<tr><td><code>[^<]+<\/code><\/td>/g);
  const n = (x: number) => x.toLocaleString("en-US");
  const pages: PageSpec[] = [
    {
      name: "overview",
      path: "/console/overview",
      as: "owner",
      check: (h) =>
        expect("30 days of metered calls", /Usage over the last 30 days \(UTC\): [\d,]{5,} metered calls/.test(h)) ??
        expect("the runs' latency and refusals", /<td>chat<\/td><td class="num">[\d,]{3,}<\/td>/.test(h) && h.includes("<code>rate_limited</code>")),
    },
    { name: "documents", path: "/console/documents", as: "owner", check: (h) => expect("50 documents and the queued uploads", rows(h) === 50 && h.includes("badge queued")) },
    {
      name: `documents?q=${seeded.query.text} (${seeded.query.matches} of ${n(m.documents)})`,
      path: `/console/documents?q=${encodeURIComponent(seeded.query.text)}`,
      as: "owner",
      check: (h) => expect(`${Math.min(50, seeded.query.matches)} matches`, rows(h) === Math.min(50, seeded.query.matches)),
    },
    { name: "documents page 2 (cursor)", path: nextHref, as: "owner", check: (h) => expect("50 older documents", rows(h) === 50) },
    { name: "document", path: `/console/documents/${documentId}`, as: "owner", check: (h) => expect("its chunk", h.includes("This section explains the procedure")) },
    { name: "upload job row (htmx poll)", path: jobRowHref, as: "owner", check: (h) => expect("the queued job's row", h.includes("badge queued") && h.includes("hx-trigger=\"every 1s\"")) },
    { name: "ask (GET)", path: "/console/ask", as: "owner", check: (h) => expect("the question form", h.includes('name="question"')) },
    { name: `runs (${n(m.runs)})`, path: "/console/runs", as: "owner", check: (h) => expect("50 runs", runLinks(h).length === 50) },
    {
      name: `runs?status=failed (${n(seeded.runsByStatus.failed)})`,
      path: "/console/runs?status=failed",
      as: "owner",
      check: (h) => expect("50 failed runs", runRows(h).length === 50 && runRows(h).every((r) => r.status === "failed")),
    },
    {
      name: "runs?kind=ingest",
      path: "/console/runs?kind=ingest",
      as: "owner",
      check: (h) => expect("50 ingestion runs", runRows(h).length === 50 && runRows(h).every((r) => r.kind === "ingest")),
    },
    { name: "runs page 2 (cursor)", path: runsNext, as: "owner", check: (h) => expect("50 older runs", runLinks(h).length === 50) },
    {
      name: "runs?status=failed page 2 (cursor)",
      path: failedNext,
      as: "owner",
      check: (h) => {
        const want = Math.min(50, seeded.runsByStatus.failed - 50);
        return expect(`${want} older failed runs`, runRows(h).length === want && runRows(h).every((r) => r.status === "failed"));
      },
    },
    {
      name: "run (chat: timeline)",
      path: `/console/runs/${chatRun}`,
      as: "owner",
      check: (h) => expect("its question, answer and steps", h.includes("<h2>Question</h2>") && h.includes("<h2>Answer</h2>") && h.includes("model_call") && h.includes("<svg")),
    },
    { name: "run (ingest job attempt)", path: `/console/runs/${ingestRun}`, as: "owner", check: (h) => expect("its job steps", h.includes("parse (attempt 1)") && h.includes("store (attempt 1)")) },
    { name: "keys", path: "/console/keys", as: "owner", check: (h) => expect("its live keys only", h.includes("ingest bot") && !h.includes("ci deploy #")) },
    { name: "settings", path: "/console/settings", as: "owner", check: (h) => expect("the owner's persona", h.includes(m.persona.replaceAll("'", "&#39;")) || h.includes(m.persona)) },
    { name: `audit (${n(m.apiAuditEvents + m.auditEvents)} events)`, path: "/console/audit", as: "owner", check: (h) => expect("50 events", auditRows(h) === 50) },
    { name: "audit page 2 (cursor)", path: auditNext, as: "owner", check: (h) => expect("50 older events", auditRows(h) === 50 && h.includes("key.revoked")) },
    { name: "sign-in (signed out)", path: "/console/sign-in", as: "visitor", check: (h) => expect("the key field", h.includes('name="key"')) },
    { name: "platform tenants (admin)", path: "/console/platform/tenants", as: "admin", check: (h) => expect("the tenants", h.includes("Acme Orchards") && h.includes("Idle tenant")) },
    { name: "platform tenant purge (confirm)", path: `/console/platform/tenants/${m.id}/purge`, as: "admin", check: (h) => expect("the tenant's name", h.includes("Purge Acme Orchards")) },
    { name: "platform plans", path: "/console/platform/plans", as: "admin", check: (h) => expect("the bench's plan", h.includes("bench-console") && h.includes("20,000,000")) },
    {
      name: "platform plan (edit)",
      path: "/console/platform/plans/bench-console",
      as: "admin",
      check: (h) => expect("the plan's settings", /tokens_per_day(?:&quot;|")\s*:\s*20000000/.test(h)),
    },
    {
      name: "platform usage (by tenant, this month)",
      path: "/console/platform/usage",
      as: "admin",
      check: (h) => expect("the tenants' usage", h.includes("Acme Orchards") && h.includes("Globex") && /[\d,]{4,} metered calls/.test(h)),
    },
    {
      name: "platform usage?group_by=day (30 days)",
      path: `/console/platform/usage?group_by=day&from=${from30}`,
      as: "admin",
      check: (h) => expect("30 days", usageRows(h) >= 30),
    },
    {
      name: "platform usage?group_by=model (30 days)",
      path: `/console/platform/usage?group_by=model&from=${from30}`,
      as: "admin",
      check: (h) => expect("the models", h.includes("<code>gpt-4o-mini</code>") && h.includes("<code>gpt-4o</code>")),
    },
    {
      name: "platform usage?group_by=key (30 days)",
      path: `/console/platform/usage?group_by=key&from=${from30}`,
      as: "admin",
      check: (h) => expect("the tenants' keys", m.keyIds.every((id) => h.includes(`<code>${id}</code>`))),
    },
    { name: "platform usage CSV (by tenant, this month)", path: csvHref, as: "admin", check: (h) => expect("the measured tenant's row", h.includes(m.id)) },
    {
      name: "platform usage CSV (by day, 30 days)",
      path: csvByDayHref,
      as: "admin",
      check: (h) => expect("30 days of rows", h.trim().split("\n").length >= 31),
    },
    {
      name: "platform operations",
      path: "/console/platform/operations",
      as: "admin",
      check: (h) => expect("the measured tenant's backlog", new RegExp(`Acme Orchards[^<]*<code class="muted">${m.id}</code></td><td class="num">${Math.min(m.queuedJobs, m.documents)}</td>`).test(h)),
    },
  ];
  const browserOf = (p: PageSpec) => (p.as === "admin" ? admin : p.as === "visitor" ? visitor : owner);

  progress(`${backend}: warming ${pages.length} pages (${options.warmup} each)`);
  for (const p of pages) {
    for (let i = 0; i < Math.max(1, options.warmup); i++) {
      const res = await browserOf(p).page(p.path);
      if (res.status !== 200) throw new Error(`${backend}: ${p.path} answered ${res.status}: ${res.html.slice(0, 300)}`);
      const missing = i === 0 ? p.check(res.html) : undefined;
      if (missing) throw new Error(`${backend}: ${p.path} does not show ${missing}`);
    }
  }

  // Round by round, every page once per round, so the machine's drift falls on all pages alike.
  progress(`${backend}: measuring ${pages.length} pages × ${options.requests} requests, one at a time`);
  const times = pages.map(() => [] as number[]);
  for (let round = 0; round < options.requests; round++) {
    for (const [i, p] of pages.entries()) {
      const res = await browserOf(p).page(p.path);
      if (res.status !== 200) throw new Error(`${backend}: ${p.path} answered ${res.status} in round ${round}`);
      times[i]!.push(res.ms);
    }
  }
  return { backend, version, analyzed, seeded, results: pages.map((page, i) => ({ page, summary: summarize(times[i]!) })), wallMs: since(t0) };
}

/** One table per backend; returns the pages over the target ("backend: page"). */
function print(reports: readonly BackendReport[], options: ConsoleBenchOptions): string[] {
  const over: string[] = [];
  const target = options.targetP95Ms;
  process.stdout.write(
    `\nConsole page server time (issue 19: p95 ≤ ${target} ms per page)\n` +
      `${options.quick ? "QUICK run (CI smoke): smaller tenant, fewer requests; times are printed but do not fail the run (CI machines vary).\n" : ""}` +
      `Measured tenant: ${options.documents.toLocaleString("en-US")} documents (1 chunk each), ${options.events.toLocaleString("en-US")} usage events over 30 days, ` +
      `${options.jobs.toLocaleString("en-US")} finished upload jobs, ${options.runs.toLocaleString("en-US")} runs over 30 days, ${options.auditEvents.toLocaleString("en-US")} audit events ` +
      `(and the revoked keys they name), ${options.queuedJobs} queued uploads, 4 live keys; a neighbour tenant with ${Math.round(options.neighbourShare * 100)} % of that, ${options.idleTenants} idle tenants.\n` +
      `Server time = in-process app.request until the body is read; ${options.warmup} warm-up + ${options.requests} measured requests per page, pages in turn, one at a time.\n`,
  );
  for (const r of reports) {
    const rows = r.results.map(({ page, summary }) => {
      const pass = summary.p95 <= target;
      if (!pass) over.push(`${r.backend}: ${page.name}`);
      return [page.name, summary.n, ms(summary.p50), ms(summary.p95), ms(summary.max), pass ? "PASS" : options.quick ? "over (quick: not failed)" : "FAIL"];
    });
    printTable(`${r.backend}: ${r.version}`, ["page", "n", "p50 ms", "p95 ms", "max ms", `p95 ≤ ${target} ms`], rows, [
      `seeded in ${(r.seeded.ms / 1000).toFixed(1)} s (${Object.entries(r.seeded.steps).map(([k, v]) => `${k} ${(v / 1000).toFixed(1)} s`).join(", ")}); statistics: ${r.analyzed ? "ANALYZE after the load (as autovacuum would)" : "none (no ANALYZE; PGlite has no autovacuum)"}; backend wall time ${(r.wallMs / 1000).toFixed(1)} s`,
    ]);
  }
  if (over.length === 0) process.stdout.write(`\nEvery page's p95 is within ${target} ms.\n`);
  else if (options.quick) process.stdout.write(`\nOver ${target} ms p95 (quick run: reported, not failed): ${over.join(", ")}\n`);
  return over;
}

runBenchmark("bench:console", main);
