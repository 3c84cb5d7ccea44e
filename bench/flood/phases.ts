import type { QueueDiscipline } from "../../src/flow/fair-queue.js";
import { say } from "./progress.js";
import type { FenceServer } from "./fence-server.js";
import type { LoadGenerator } from "./generator.js";
import type { GeneratorResult } from "./generator-protocol.js";
import type { FloodOptions } from "./options.js";
import { RequestFactory, seedDocuments } from "./requests.js";
import { untilIdle } from "./quiet.js";
import { AGGRESSOR_KEYS, type Shape } from "./shapes.js";
import { createTenant, deleteTenant, seedCorpus, setLlm, type BenchTenant } from "./tenants.js";
import { runVictim, type VictimResult } from "./victim.js";

export const BUILDS = ["fifo", "fair"] as const satisfies readonly QueueDiscipline[];
export const BUILD_NAME: Record<QueueDiscipline, string> = { fifo: "FIFO baseline", fair: "Fence" };

/** A build ready for the phases: its server, and the victim tenant seeded on it. */
export interface Build {
  server: FenceServer;
  victim: BenchTenant;
  /** The build has the slow fake LLM; shapes without `llm` turn it off for their tenants. */
  llm: boolean;
  /** Whether the victim's chats currently go through the LLM (the `chat.llm` flag, default on). */
  victimLlm: boolean;
}

export interface BuildShapeResult {
  victimAlone: VictimResult;
  /** The aggressor alone: its 2xx/s here is the capacity the flood phase is compared with. */
  aggressorAlone: GeneratorResult;
  flood: { victim: VictimResult; aggressor: GeneratorResult };
}

type Phase = "victim alone" | "aggressor alone" | "flood";

/**
 * One shape on both builds: the victim alone, the aggressor alone, then both together. The two
 * builds take turns phase by phase, so a change in the machine's load falls on both alike; both
 * see the same requests (texts are seeded per shape and phase, not per build). Every aggressor
 * phase has a fresh aggressor tenant, purged afterwards: its per-minute windows start empty in
 * every phase, and none of its work (a queued job, a cut request) runs on into the next phase.
 */
export async function runShape(
  shape: Shape,
  builds: Record<QueueDiscipline, Build>,
  generator: LoadGenerator,
  options: FloodOptions,
): Promise<Record<QueueDiscipline, BuildShapeResult>> {
  const seed = options.seed + 1000 * (shape.id.charCodeAt(0) - 96);
  const windowMs = options.seconds * 1000;
  // Before every phase both builds must be idle: they share the two cores. (The quick run, a smoke
  // test, waits less for them.)
  const pids = BUILDS.map((d) => builds[d].server.pid);
  const idle = () => untilIdle(pids, options.quick ? 4000 : 10_000);
  const announce = (phase: Phase, d: QueueDiscipline) => say(`(${shape.id}) ${BUILD_NAME[d]}: ${phase} for ${options.seconds} s`);

  // All four aggressor tenants of the shape up front, on both builds at once: set-up time is not
  // spent between phases.
  say(`(${shape.id}) aggressor tenants on '${shape.plan}'${shape.seedAggressor ? `, ${options.aggressorSeedDocs} documents each` : ""}`);
  const aggressors = {} as Record<QueueDiscipline, { alone: BenchTenant; flood: BenchTenant }>;
  await Promise.all(
    BUILDS.map(async (d) => {
      const b = builds[d];
      if (b.llm && b.victimLlm !== shape.llm) {
        // The victim's chats go through the LLM in shape (e) only; the warm-up runs the path it now takes.
        await setLlm(b.server.api, b.victim, shape.llm);
        b.victimLlm = shape.llm;
        const start = Date.now() + 50;
        await runVictim(b.server.api, b.victim.keys[0]!, new RequestFactory(`victim ${shape.id} warm-up`, seed + 600), options, { start, end: start + 1000 });
      }
      const alone = await prepareAggressor(b, shape, "alone", seed + 100, options);
      aggressors[d] = { alone, flood: await prepareAggressor(b, shape, "flood", seed + 300, options) };
    }),
  );

  const victimAlone = {} as Record<QueueDiscipline, VictimResult>;
  for (const d of BUILDS) {
    await idle();
    announce("victim alone", d);
    const start = Date.now() + 100;
    victimAlone[d] = await runVictim(builds[d].server.api, builds[d].victim.keys[0]!, new RequestFactory(`victim ${shape.id} alone`, seed), options, {
      start,
      end: start + windowMs,
    });
  }

  const aggressorAlone = {} as Record<QueueDiscipline, GeneratorResult>;
  for (const d of BUILDS) {
    await idle();
    announce("aggressor alone", d);
    const start = Date.now() + options.warmupSeconds * 1000;
    const run = generator.start({
      ...floodOf(builds[d], aggressors[d].alone, shape, seed + 200),
      windowStart: start,
      windowEnd: start + windowMs,
      stopAt: start + windowMs,
    });
    aggressorAlone[d] = await run.result;
    await deleteTenant(builds[d].server.api, aggressors[d].alone);
  }

  const flood = {} as Record<QueueDiscipline, BuildShapeResult["flood"]>;
  for (const d of BUILDS) {
    await idle();
    announce("flood", d);
    const start = Date.now() + options.warmupSeconds * 1000;
    const window = { start, end: start + windowMs };
    const run = generator.start({
      ...floodOf(builds[d], aggressors[d].flood, shape, seed + 400),
      windowStart: window.start,
      windowEnd: window.end,
      stopAt: window.end + options.victimTimeoutSeconds * 1000,
    });
    // The flood goes on until the victim's last request has answered.
    const victim = await runVictim(builds[d].server.api, builds[d].victim.keys[0]!, new RequestFactory(`victim ${shape.id} flood`, seed + 500), options, window).finally(
      run.stop,
    );
    flood[d] = { victim, aggressor: await run.result };
    await deleteTenant(builds[d].server.api, aggressors[d].flood);
  }

  return {
    fifo: { victimAlone: victimAlone.fifo, aggressorAlone: aggressorAlone.fifo, flood: flood.fifo },
    fair: { victimAlone: victimAlone.fair, aggressorAlone: aggressorAlone.fair, flood: flood.fair },
  };
}

function floodOf(build: Build, aggressor: BenchTenant, shape: Shape, seed: number) {
  return { url: build.server.api.url, keys: aggressor.keys, streams: shape.streams, label: `aggressor ${shape.id}`, seed };
}

async function prepareAggressor(build: Build, shape: Shape, phase: string, seed: number, options: FloodOptions): Promise<BenchTenant> {
  const tenant = await createTenant(build.server.api, `aggressor-${shape.id}-${phase}`, shape.plan, AGGRESSOR_KEYS);
  if (build.llm) await setLlm(build.server.api, tenant, shape.llm);
  if (shape.seedAggressor) await seedCorpus(build.server.api, tenant, seedDocuments(options.aggressorSeedDocs, seed));
  return tenant;
}
