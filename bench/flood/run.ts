import { writeFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import type { QueueDiscipline } from "../../src/flow/fair-queue.js";
import { postgresReachable } from "../backends.js";
import { startSlowProvider, type SlowProvider } from "../noisy/slow-provider.js";
import { runBenchmark } from "../report.js";
import { since } from "../stats.js";
import { measureCeiling } from "./ceiling.js";
import { cleanUpOnSignal, stopAllChildren } from "./children.js";
import { dropScratchDatabases, startFenceServer, type FenceServer } from "./fence-server.js";
import { LoadGenerator } from "./generator.js";
import { parseFloodOptions, type FloodBackend, type FloodOptions } from "./options.js";
import { BUILDS, runShape, type Build } from "./phases.js";
import { printBackend, printGoals, printHeader } from "./print.js";
import { say } from "./progress.js";
import type { BackendReport, FloodReport } from "./report-types.js";
import { RequestFactory, seedDocuments } from "./requests.js";
import { SHAPES } from "./shapes.js";
import { createTenant, getPlan, seedCorpus } from "./tenants.js";
import { runVictim } from "./victim.js";

/**
 * `npm run bench:flood [-- --quick] [--backend=pglite|postgres|both] [--seconds=N] [--shapes=a,b,c,d,e]`
 *
 * Issue #16's measurement: on each backend, each flood shape (shapes.ts) against the FIFO baseline
 * (`buildFence(…, { scheduling: "fifo" })`) and Fence (`"fair"`), one pair of builds per backend,
 * each in a process of its own (serve.ts). Prints the victim's latency alone and under each flood,
 * the aggressor's throughput and refusals, a bare Hono route's rate as the ceiling, and the
 * issue's goals marked met or not; exits non-zero only if it could not run.
 */
const open = new Set<FenceServer>();
/** The victim's own traffic, unmeasured, before the first phase (the first requests of a build pay for its JIT). */
const warmUpMs = (options: FloodOptions) => (options.quick ? 1000 : 3000);

async function main(): Promise<void> {
  const started = performance.now();
  const startedAt = new Date();
  const options = parseFloodOptions(process.argv.slice(2), process.env);
  const loadAtStart = loadavg()[0]!;
  const machine = `${cpus().length} cores (${cpus()[0]?.model.trim() ?? "unknown CPU"}), Node ${process.version}`;
  if (options.backends.includes("postgres")) {
    // Before anything is started: a run that cannot reach Postgres fails in seconds, not minutes in.
    const reachable = await postgresReachable(options.databaseUrl);
    if (!reachable.ok) throw new Error(`Postgres at ${options.databaseUrl} is not reachable (${reachable.reason}); use --backend=pglite or set DATABASE_URL`);
  }
  cleanUpOnSignal(closeAll);
  printHeader(options, machine, startedAt);

  const backends: BackendReport[] = [];
  let generator: LoadGenerator | undefined;
  let provider: SlowProvider | undefined;
  try {
    generator = await LoadGenerator.start();
    // Shape (e) needs an LLM. The builds then have it for every shape, and shapes (a)–(d) turn it
    // off per tenant (phases.ts): one pair of builds per backend, not two, which is what lets the
    // quick run fit CI's budget (a build's start-up and seeding cost ~30 s).
    if (options.shapes.some((id) => SHAPES[id].llm)) provider = await startSlowProvider(options.llmDelayMs, 0, options.seed);
    for (const backend of options.backends) {
      const t0 = performance.now();
      say(`${backend}: the ceiling (bare Hono route) for ${options.ceilingSeconds} s`);
      const ceiling = await measureCeiling(generator, options);
      const report: BackendReport = { backend, label: "", ceiling, plans: [], shapes: [], wallMs: 0 };
      const builds = await startBuilds(backend, options, provider?.url);
      try {
        report.label = builds.fifo.server.backend;
        report.plans = await Promise.all(["free", "pro", "enterprise"].map((p) => getPlan(builds.fifo.server.api, p)));
        for (const id of options.shapes) report.shapes.push({ shape: id, builds: await runShape(SHAPES[id], builds, generator, options) });
      } finally {
        say(`${backend}: closing the builds`);
        for (const d of BUILDS) await closeServer(builds[d].server);
      }
      report.wallMs = since(t0);
      backends.push(report);
      printBackend(report, options);
    }
  } finally {
    await generator?.close();
    await provider?.close();
    await closeAll();
  }

  const report: FloodReport = {
    startedAt: startedAt.toISOString(),
    machine,
    options,
    load: { start: loadAtStart, end: loadavg()[0]! },
    backends,
    wallMs: since(started),
  };
  printGoals(report);
  if (options.json) {
    writeFileSync(options.json, `${JSON.stringify(report, null, 2)}\n`);
    say(`figures written to ${options.json}`);
  }
}

/**
 * Both builds, started side by side, each with the victim tenant on `pro` and its corpus, warmed
 * up by a short unmeasured run of the victim's own traffic (so the first phase does not measure
 * the JIT compiling the request path). `llmUrl`: the builds get the slow fake LLM.
 */
async function startBuilds(backend: FloodBackend, options: FloodOptions, llmUrl: string | undefined): Promise<Record<QueueDiscipline, Build>> {
  say(`${backend}: starting the FIFO baseline and Fence${llmUrl ? " with the slow LLM" : ""} (each loads the embedding model)`);
  const started = await Promise.allSettled(BUILDS.map((d) => startFenceServer(d, backend, options, llmUrl)));
  for (const s of started) if (s.status === "fulfilled") open.add(s.value);
  const failed = started.find((s) => s.status === "rejected");
  if (failed) throw (failed as PromiseRejectedResult).reason;
  const [fifo, fair] = started.map((s) => (s as PromiseFulfilledResult<FenceServer>).value) as [FenceServer, FenceServer];
  const servers: Record<QueueDiscipline, FenceServer> = { fifo, fair };

  say(`${backend}: builds up; victim tenants, their documents and warm-up`);
  const builds = {} as Record<QueueDiscipline, Build>;
  await Promise.all(
    BUILDS.map(async (d) => {
      const victim = await createTenant(servers[d].api, "victim", "pro");
      await seedCorpus(servers[d].api, victim, seedDocuments(options.victimSeedDocs, options.seed));
      const start = Date.now() + 50;
      await runVictim(servers[d].api, victim.keys[0]!, new RequestFactory("victim warm-up", options.seed + 7), options, { start, end: start + warmUpMs(options) });
      builds[d] = { server: servers[d], victim, llm: llmUrl !== undefined, victimLlm: llmUrl !== undefined };
    }),
  );
  return builds;
}

/** A build leaves `open` only once it is closed, so an interrupt meanwhile still waits for its database to be dropped. */
async function closeServer(server: FenceServer): Promise<void> {
  await server.close();
  open.delete(server);
}

/** Every build still open (its process stopped, its scratch database dropped), then any other child and database. */
async function closeAll(): Promise<void> {
  for (const server of [...open]) await closeServer(server).catch(() => undefined);
  await stopAllChildren();
  await dropScratchDatabases();
}

runBenchmark("bench:flood", main);
