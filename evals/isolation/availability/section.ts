import type { EvalBackend } from "../instance.js";
import { AttackerThread } from "./attacker.js";
import { HOSTILE_INPUTS, type HostileInput } from "./hostile-inputs.js";
import { ATTACKER_HEADERS, startAvailabilityInstance, VICTIM_HEADERS, type AvailabilityInstance } from "./instance.js";
import { judgeWindow, ms, P99_RATIO_LIMIT, summarizeLatencies, tally, VICTIM_TIMEOUT_MS, type Judgement, type LatencySummary } from "./judge.js";
import { VictimLoad, type VictimSettings, type VictimWindow } from "./victim.js";
import { warmUntilSteady, type WarmUpResult } from "../../../test/support/warm-up.js";
import type { JobListJson } from "../../../test/support/api-types.js";

/**
 * The availability section: the victim's latency alone (baseline), then one window per hostile
 * input in which the attacker sends it while the victim keeps searching and probing /healthz.
 * Each window is judged on its own (judge.ts). A window whose instance is still frozen, or still
 * working through the attacker's jobs, at the deadline ends the instance: the next attack gets a
 * fresh one, so no attack is charged for what an earlier one left behind.
 */
const VICTIM: VictimSettings = { searchIntervalMs: 60, probeIntervalMs: 15, timeoutMs: VICTIM_TIMEOUT_MS };
/**
 * Discarded, in blocks of this many, until the victim's median settles (test/support/warm-up.ts):
 * a fresh process's searches keep getting faster for a few hundred requests, and a baseline taken
 * in the first 40 (as until 2026-12-06) flattered every later ratio.
 */
const WARMUP_BLOCK = 50;
/** p99 of ~150 samples: the second-slowest of the run, steady enough on a noisy 2-core machine. */
const BASELINE_SAMPLES = 150;
/** Each window runs at least this many victim searches, so its p99 is comparable with the baseline's. */
const WINDOW_SAMPLES = 100;
/** The victim is already running when the attack begins. */
const LEAD_MS = 300;
/**
 * An attack (with its jobs) not over by then is reported and its instance restarted. Far above
 * what a bounded input costs (the issue wants refusals within a second), and it caps what a
 * frozen instance costs the eval: today's heading ReDoS alone would hold the loop for a minute.
 */
const ATTACK_DEADLINE_MS = 15_000;
/** A pause between windows, so sockets and garbage of one attack are not the next one's cost. */
const SETTLE_MS = 500;

export interface AttackWindow {
  input: HostileInput;
  victim: LatencySummary;
  window: VictimWindow;
  judgement: Judgement;
  /** What the attacker got back: "400 ×2", "timeout ×3". */
  attacker: string;
  restarted: boolean;
  seconds: number;
  /** Set when this is a second window: the first one's p99 ratio, over the limit on the p99 rule only. */
  firstRatio?: number;
  /** The second window's baseline: the victim alone again, just before it. */
  retakenBaseline?: LatencySummary;
}

export interface AvailabilityRun {
  backend: string;
  baseline: LatencySummary | undefined;
  /** How the fresh instance settled before the baseline was taken. */
  warmUp?: WarmUpResult;
  baselineErrors: string[];
  windows: AttackWindow[];
  /** Inputs known to freeze this backend (`notRunOn`), with why: reported, never counted as passed. */
  notRun: { name: string; reason: string }[];
  /** Why the section did not run on this backend. */
  skipped?: string;
  /** Why the section stopped before its last input (a restart that failed); fails the section. */
  stopped?: string;
  seconds: number;
  passed: boolean;
}

/**
 * Why the worker backend skips the section: `wrangler dev` runs every request in one local
 * workerd isolate without Cloudflare's per-request CPU limits, and Fence's jobs there run from the
 * cron trigger, not on a loop of its own. Latency measured against it would judge wrangler's
 * local runtime, not what tenants of a deployed Worker share. The inputs are still refused or
 * bounded by the same app code, which the Node backends exercise.
 */
export const AVAILABILITY_NOT_ON_WORKERS =
  "availability section skipped on the worker backend: wrangler dev's local workerd has no per-request CPU limits and no job loop of Fence's own, so its latency would judge the local runtime, not a deployed Worker";

export async function runAvailability(backend: EvalBackend, allInputs: readonly HostileInput[] = HOSTILE_INPUTS): Promise<AvailabilityRun> {
  const started = performance.now();
  const seconds = () => (performance.now() - started) / 1000;
  if (backend.name === "worker") {
    return { backend: backend.name, baseline: undefined, baselineErrors: [], windows: [], notRun: [], skipped: AVAILABILITY_NOT_ON_WORKERS, seconds: 0, passed: true };
  }
  const backendName = backend.name;
  const notRun = allInputs.filter((input) => input.notRunOn?.backends.includes(backendName)).map((input) => ({ name: input.name, reason: input.notRunOn!.reason }));
  const inputs = allInputs.filter((input) => !input.notRunOn?.backends.includes(backendName));
  const instance = await startAvailabilityInstance(backend);
  try {
    const warmUp = await warmVictim(instance);
    const alone = await victimAlone(instance, BASELINE_SAMPLES);
    const baseline = summarizeLatencies(alone.latencies);
    const windows: AttackWindow[] = [];
    let stopped: string | undefined;
    for (const [i, input] of inputs.entries()) {
      let result = await attackWindow(instance, backend.name, input, baseline);
      if (result.judgement.latencyOnly && !result.restarted) {
        // The p99 of ~100 searches is their second-slowest: one scheduling hiccup of a shared
        // 2-core machine can double it. A window over the limit is measured once more, and the
        // input fails only if the second is over it too (a real regression fails both). The
        // second is judged against the victim alone again, measured just before it: a shared
        // machine drifts over a section's minutes (searches alone 34 ms at the start of a run,
        // ~40 ms under inputs that cost nothing), and a stale baseline charged that to an input.
        // An input that left harm behind cannot hide in it: the victim alone must be within 2x
        // of the first baseline, or the input fails on that.
        await sleep(SETTLE_MS);
        const firstRatio = result.judgement.ratio;
        const retakenBaseline = summarizeLatencies((await victimAlone(instance, BASELINE_SAMPLES)).latencies);
        const second = await attackWindow(instance, backend.name, input, retakenBaseline);
        result = { ...second, firstRatio, retakenBaseline, judgement: withLingeringHarm(second.judgement, baseline, retakenBaseline) };
      }
      windows.push(result);
      if (result.restarted && i < inputs.length - 1) {
        // Keep what was measured: a failed restart ends the section, it does not lose the report.
        try {
          await instance.restart();
          await warmVictim(instance);
        } catch (error) {
          stopped = `${inputs.length - 1 - i} inputs not run: the restart after "${input.name}" failed: ${error instanceof Error ? error.message : String(error)}`;
          break;
        }
      }
      await sleep(SETTLE_MS);
    }
    const passed = !stopped && alone.errors.length === 0 && windows.every((w) => w.judgement.passed);
    return { backend: backend.name, baseline, warmUp, baselineErrors: alone.errors, windows, notRun, stopped, seconds: seconds(), passed };
  } finally {
    await instance.close();
  }
}

/** A second window's judgement, failed too when the victim alone before it was over 2x its first baseline. */
function withLingeringHarm(judgement: Judgement, baseline: LatencySummary, retaken: LatencySummary): Judgement {
  if (retaken.p99 <= P99_RATIO_LIMIT * baseline.p99) return judgement;
  const failure = `the victim alone after the first window: p99 ${ms(retaken.p99)} > ${P99_RATIO_LIMIT}× its first baseline ${ms(baseline.p99)} (harm left behind)`;
  return { ...judgement, passed: false, latencyOnly: false, failures: [...judgement.failures, failure] };
}

function warmVictim(instance: AvailabilityInstance): Promise<WarmUpResult> {
  return warmUntilSteady(async () => summarizeLatencies((await victimAlone(instance, WARMUP_BLOCK)).latencies).p50);
}

async function victimAlone(instance: AvailabilityInstance, samples: number): Promise<VictimWindow> {
  const victim = new VictimLoad(instance.url, instance.victimKey, VICTIM, VICTIM_HEADERS);
  victim.start();
  while (victim.sampleCount < samples) await sleep(50);
  return victim.stop();
}

async function attackWindow(instance: AvailabilityInstance, backendName: "pglite" | "postgres" | "citus", input: HostileInput, baseline: LatencySummary): Promise<AttackWindow> {
  // Built before the window opens, and sent from a thread of its own (attacker-thread.ts).
  const deadlineMs = input.deadlineMs ?? ATTACK_DEADLINE_MS;
  const attacker = await AttackerThread.start({ url: instance.url, attackerKey: instance.attackerKey, inputName: input.name, deadlineMs });
  const started = performance.now();
  const victim = new VictimLoad(instance.url, instance.victimKey, VICTIM, VICTIM_HEADERS);
  victim.start();
  await sleep(LEAD_MS);

  const deadline = AbortSignal.timeout(deadlineMs);
  const outcomes = await attacker.send();
  const leftovers: string[] = [];
  if (outcomes.includes("timeout") || outcomes.includes("not sent")) leftovers.push(`attack still running after ${deadlineMs / 1000} s`);
  else if (input.queuesJobs && !(await jobsDrained(instance, deadline))) leftovers.push(`attacker's jobs still queued or running after ${deadlineMs / 1000} s`);
  while (victim.sampleCount < WINDOW_SAMPLES && !deadline.aborted) await sleep(50);
  const window = await victim.stop();

  return {
    input,
    victim: summarizeLatencies(window.latencies),
    window,
    judgement: judgeWindow(baseline, window, leftovers, input.knownOpen?.backends.includes(backendName) ? input.knownOpen : undefined),
    attacker: tally(outcomes),
    restarted: leftovers.length > 0 || window.stallOngoing,
    seconds: (performance.now() - started) / 1000,
  };
}

/** Polls the attacker's own job list until nothing of it is queued or running. */
async function jobsDrained(instance: AvailabilityInstance, deadline: AbortSignal): Promise<boolean> {
  while (!deadline.aborted) {
    const pending = await Promise.all(
      ["queued", "running"].map(async (status) => {
        const res = await fetch(`${instance.url}/v1/jobs?status=${status}&limit=1`, { headers: { ...ATTACKER_HEADERS, authorization: `Bearer ${instance.attackerKey}` }, signal: deadline }).catch(() => undefined);
        const body = res?.ok ? ((await res.json().catch(() => undefined)) as Partial<JobListJson> | undefined) : undefined;
        return body?.jobs === undefined || body.jobs.length > 0;
      }),
    );
    if (!pending.includes(true)) return true;
    await sleep(250);
  }
  return false;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
