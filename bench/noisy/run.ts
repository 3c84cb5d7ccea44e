import { cpus, loadavg } from "node:os";
import { LocalUseEmbeddings } from "../../src/embeddings/local-use.js";
import type { QueueDiscipline } from "../../src/flow/fair-queue.js";
import { progress, runBenchmark } from "../report.js";
import { describeBackend } from "../../test/support/fence-harness.js";
import { since } from "../stats.js";
import { manyTenantsIngestion, type ManyTenantsResult } from "./many-tenants.js";
import { parseNoisyOptions, type NoisyOptions } from "./options.js";
import { floodPhase, soloPhase, type PhaseInputs, type PhaseResult } from "./phases.js";
import { printReport, type NoisyReport } from "./print.js";
import { ServiceUnderTest, type BenchTenant } from "./service.js";
import { startSlowProvider, type SlowProvider } from "./slow-provider.js";
import { articles, QuestionStream, smallDocuments } from "./workload.js";

/**
 * `npm run bench:noisy [-- --quick] [--seconds=N --backend=pglite|postgres …]` (see options.ts).
 *
 * The noisy-neighbour benchmark of issue #5. For each scheduler — a plain global FIFO (the
 * baseline: `buildFence(…, { scheduling: "fifo" })` and a FIFO embedding queue) and Fence's fair
 * scheduling — it builds Fence and seeds a victim and an aggressor tenant; then, the two builds
 * taking turns: the victim alone; ingestion with many tenants at once; the victim under the
 * aggressor's flood. The two schedulers see exactly the same requests (same seeds). Loopback
 * only; every phase is bounded in time.
 */
const PLAN = "noisy-bench";
const DISCIPLINES = ["fifo", "fair"] as const;
const NAME: Record<QueueDiscipline, string> = { fifo: "FIFO baseline", fair: "Fence" };

async function main(): Promise<void> {
  const started = performance.now();
  const startedAt = new Date();
  const options = parseNoisyOptions(process.argv.slice(2), process.env);
  const loadAtStart = loadavg()[0]!;

  progress(
    `loading the local embedding model twice (FIFO queue: ${options.embeddingThreads} threads; ` +
      `fair queue: ${options.embeddingThreads} + ${options.embeddingReservedThreads} reserved)`,
  );
  const t0 = performance.now();
  const models: Record<QueueDiscipline, LocalUseEmbeddings> = {
    fifo: await LocalUseEmbeddings.load({ threads: options.embeddingThreads, discipline: "fifo" }),
    fair: await LocalUseEmbeddings.load({
      threads: options.embeddingThreads,
      reservedThreads: options.embeddingReservedThreads,
      discipline: "fair",
    }),
  };
  const modelLoadMs = since(t0);
  let provider: SlowProvider | undefined;
  const services: Partial<Record<QueueDiscipline, ServiceUnderTest>> = {};
  try {
    provider = await startSlowProvider(options.llmDelayMs, options.llmJitter, options.seed);
    // Both builds live side by side and take turns phase by phase, so a change in the machine's
    // load during the run falls on both alike rather than on whichever went second.
    const setups = {} as Record<QueueDiscipline, { service: ServiceUnderTest; victim: BenchTenant; aggressor: BenchTenant }>;
    let plan: NoisyReport["plan"] | undefined;
    for (const discipline of DISCIPLINES) {
      progress(`${NAME[discipline]}: building Fence on ${options.backend}`);
      const service = await ServiceUnderTest.start(discipline, options, models[discipline], provider.url);
      services[discipline] = service;
      const limits = await service.putBenchPlan(PLAN, { weight: 1, maxRunningJobs: options.maxRunningJobs });
      plan = { name: PLAN, weight: limits.weight, maxRunningJobs: limits.maxRunningJobs };
      const victim = await service.createTenant("victim", PLAN);
      const aggressor = await service.createTenant("aggressor", PLAN);
      progress(`${NAME[discipline]}: seeding ${options.seedDocs} articles per tenant`);
      await Promise.all([
        service.seed(victim, articles(options.seedDocs, options.seed + 1)),
        service.seed(aggressor, articles(options.seedDocs, options.seed + 2)),
      ]);
      setups[discipline] = { service, victim, aggressor };
    }
    const backendLabel = await describeBackend(setups.fifo.service.fence.db, "scratch database");

    const solo = {} as Record<QueueDiscipline, PhaseResult>;
    for (const d of DISCIPLINES) {
      progress(`${NAME[d]}: victim alone for ${options.seconds} s`);
      solo[d] = await soloPhase(setups[d].service, setups[d].victim, options, inputsFor("solo", options), `solo (${NAME[d]})`);
    }

    const many = {} as Record<QueueDiscipline, ManyTenantsResult>;
    for (const d of DISCIPLINES) {
      progress(`${NAME[d]}: ${options.manyTenants} tenants queue ${options.manyTenantDocs} documents each at once`);
      const crowd: BenchTenant[] = [];
      for (let i = 0; i < options.manyTenants; i++) crowd.push(await setups[d].service.createTenant(`crowd-${i + 1}`, PLAN));
      const docsFor = (i: number) =>
        options.quick ? smallDocuments(options.manyTenantDocs, options.seed + 100 + i) : articles(options.manyTenantDocs, options.seed + 100 + i);
      many[d] = await manyTenantsIngestion(setups[d].service, crowd, docsFor, (options.quick ? 60 : 180) * 1000);
    }

    const flood = {} as Record<QueueDiscipline, PhaseResult>;
    for (const d of DISCIPLINES) {
      progress(`${NAME[d]}: victim under the aggressor's flood for ${options.seconds} s (+${options.warmupSeconds} s warm-up)`);
      const { service, victim, aggressor } = setups[d];
      flood[d] = await floodPhase(service, victim, aggressor, options, inputsFor("flood", options), `flood (${NAME[d]})`);
      // The aggressor's leftover batch would only slow the other build's turn down.
      progress(`${NAME[d]}: closing`);
      await service.close();
      delete services[d];
    }

    printReport({
      startedAt,
      options,
      backendLabel,
      machine: `${cpus().length} cores (${cpus()[0]?.model.trim() ?? "unknown CPU"}), Node ${process.version}`,
      plan: plan!,
      modelLoadMs,
      phases: { fifo: [solo.fifo, flood.fifo], fair: [solo.fair, flood.fair] },
      manyTenants: [many.fifo, many.fair],
      load: { start: loadAtStart, end: loadavg()[0]! },
      wallMs: since(started),
    });
  } finally {
    for (const service of Object.values(services)) await service.close().catch(() => undefined);
    await provider?.close();
    await models.fifo.close();
    await models.fair.close();
  }
}

/** The same texts for both schedulers: each phase kind has its own seeded streams. */
function inputsFor(phase: "solo" | "flood", options: NoisyOptions): PhaseInputs {
  const offset = phase === "solo" ? 1000 : 2000;
  const uploads = Math.ceil(options.seconds / options.victimUploadEverySeconds) + 1;
  return {
    victimQuestions: new QuestionStream(`victim ${phase}`, options.seed + offset),
    victimUploads: smallDocuments(uploads, options.seed + offset + 1),
    aggressorQuestions: new QuestionStream(`aggressor ${phase}`, options.seed + offset + 2),
    aggressorDocs: phase === "flood" ? articles(options.aggressorBatchDocs, options.seed + offset + 3) : [],
  };
}

runBenchmark("bench:noisy", main);
