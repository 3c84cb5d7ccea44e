import { randomBytes } from "node:crypto";
import { parseArgs } from "node:util";
import { defaultEmbeddings } from "../../test/support/harness.js";
import { startFakeOpenAI } from "../../test/support/fake-openai.js";
import type { ChatVariant } from "./attack.js";
import { loadCorpus } from "./corpus.js";
import type { EvalBackend } from "./instance.js";
import { CITUS_NEEDS_THE_FILTER, modeRunsOn, MODES } from "./modes.js";
import { printModeTable, printSummary, summarize, type ModeSummary } from "./report.js";
import { printAvailability } from "./availability/report.js";
import { HOSTILE_INPUTS, type HostileInput } from "./availability/hostile-inputs.js";
import { runAvailability, type AvailabilityRun } from "./availability/section.js";
import { NOT_ON_WORKERS, runSuite, type SuiteRun } from "./suite.js";

/**
 * `npm run eval:isolation` — the adversarial cross-tenant isolation eval (invariant I8).
 *
 *   --backend pglite|postgres|both|citus|worker   default: postgres when DATABASE_URL is set, else pglite;
 *                                    citus: a Citus cluster's coordinator at CITUS_DATABASE_URL;
 *                                    worker: Fence on workerd (wrangler dev) over DATABASE_URL, mode 1 only
 *   --modes 1,2,3,4                  which mutation modes to run (default 1–4; 5 is opt-in, see modes.ts)
 *   --only leaks|availability        one section: the cross-tenant leak suite (the modes) or the
 *                                    availability section (availability/), once per backend; default both
 *   --input <text>                   availability section: only the hostile inputs whose name contains <text>
 *
 * For every backend and mode: fresh Fence instances (one answering extractively, one through an
 * LLM that echoes its whole prompt), tenant A seeded with secrets, and the attack suite run as
 * tenant B and as outsiders. Exits non-zero on any leak with a lock on, or on no leak with all
 * locks off (a blind eval). The availability section then runs once per backend (not per mode:
 * it weakens no lock) and fails when hostile input from one tenant slows, fails or freezes another.
 */
const USAGE = "usage: tsx evals/isolation/run.ts [--backend pglite|postgres|both|citus|worker] [--modes 1,2,3,4[,5]] [--only leaks|availability] [--input <text>]";
const SECTIONS = ["leaks", "availability"] as const;
type Section = (typeof SECTIONS)[number];

/** A bad command line: printed as a message with the usage, not as a stack trace. */
class UsageError extends Error {}

function parseCli(): { backends: EvalBackend[]; modeIds: number[]; sections: Section[]; inputs: readonly HostileInput[] } {
  const { values } = parseArgs({ options: { backend: { type: "string" }, modes: { type: "string" }, only: { type: "string" }, input: { type: "string" }, help: { type: "boolean" } } });
  if (values.help) {
    console.log(USAGE);
    process.exit(0);
  }
  if (values.only !== undefined && !SECTIONS.includes(values.only as Section)) throw new UsageError(`unknown --only ${values.only}`);
  if (values.only === "availability" && values.modes) throw new UsageError("--modes selects leak-suite modes; the availability section has none");
  const sections: Section[] = values.only ? [values.only as Section] : [...SECTIONS];
  const inputs = values.input === undefined ? HOSTILE_INPUTS : HOSTILE_INPUTS.filter((i) => i.name.toLowerCase().includes(values.input!.toLowerCase()));
  if (inputs.length === 0) throw new UsageError(`no hostile input's name contains "${values.input}"`);
  const databaseUrl = process.env.DATABASE_URL || undefined;
  const choice = values.backend ?? (databaseUrl ? "postgres" : "pglite");
  if (!["pglite", "postgres", "both", "citus", "worker"].includes(choice)) throw new UsageError(`unknown --backend ${choice}`);
  if (choice === "citus") {
    const citusUrl = process.env.CITUS_DATABASE_URL || undefined;
    if (!citusUrl) throw new UsageError("--backend citus needs CITUS_DATABASE_URL (the coordinator's URL)");
    const runnable = MODES.filter((m) => modeRunsOn(m, "citus"));
    const modeIds = values.modes ? values.modes.split(",").map(Number) : runnable.filter((m) => !m.optIn).map((m) => m.id);
    const refused = modeIds.filter((id) => !runnable.some((m) => m.id === id));
    if (refused.length > 0) throw new UsageError(`--backend citus runs modes ${runnable.map((m) => m.id).join(", ")}: not ${refused.join(", ")}, because ${CITUS_NEEDS_THE_FILTER}`);
    return { backends: [{ name: "citus", databaseUrl: citusUrl }], modeIds, sections, inputs };
  }
  if (choice !== "pglite" && !databaseUrl) throw new UsageError(`--backend ${choice} needs DATABASE_URL`);
  if (choice === "worker") {
    // The weakened-lock modes are in-process hooks; a Worker is built from bindings and has none.
    if (values.modes && values.modes !== "1") throw new UsageError("--backend worker runs mode 1 only (the mutation modes need in-process hooks)");
    return { backends: [{ name: "worker", databaseUrl }], modeIds: [1], sections, inputs };
  }
  const backends: EvalBackend[] = [];
  if (choice !== "postgres") backends.push({ name: "pglite", databaseUrl: undefined });
  if (choice !== "pglite") backends.push({ name: "postgres", databaseUrl });
  const modeIds = values.modes ? values.modes.split(",").map(Number) : MODES.filter((m) => !m.optIn).map((m) => m.id);
  if (modeIds.some((id) => !MODES.some((m) => m.id === id))) throw new UsageError(`unknown --modes ${values.modes}`);
  return { backends, modeIds, sections, inputs };
}

async function main(): Promise<number> {
  const started = performance.now();
  const { backends, modeIds, sections, inputs } = parseCli();
  const summaries: ModeSummary[] = [];
  if (sections.includes("leaks")) summaries.push(...(await runLeakSuite(backends, modeIds)));
  const availability: AvailabilityRun[] = [];
  if (sections.includes("availability")) {
    if (!sections.includes("leaks")) console.log(`Fence isolation eval — availability section only; backends: ${backends.map((b) => b.name).join(", ")}`);
    for (const backend of backends) {
      const run = await runAvailability(backend, inputs);
      printAvailability(run);
      availability.push(run);
    }
  }
  printSummary(summaries, (performance.now() - started) / 1000, availability);
  return summaries.every((s) => s.passed) && availability.every((a) => a.passed) ? 0 : 1;
}

/** The cross-tenant leak suite: every backend × mode × chat variant; prints a table per mode. */
async function runLeakSuite(backends: EvalBackend[], modeIds: number[]): Promise<ModeSummary[]> {
  // A fresh id per run: every canary and secret of this run contains it (see fixtures/README.md).
  const runId = randomBytes(4).toString("hex");
  const corpora = { a: await loadCorpus("acme", runId), b: await loadCorpus("globex", runId) };
  const embeddings = await defaultEmbeddings();
  const llm = await startFakeOpenAI();
  // The fake LLM answers with its whole prompt: any foreign chunk that reached it comes back to B.
  llm.setAnswer((prompt) => prompt);
  console.log(
    `Fence isolation eval — run ${runId}; tenant A = ${corpora.a.tenant} (${corpora.a.documents.length} docs), ` +
      `tenant B = ${corpora.b.tenant} (${corpora.b.documents.length} docs); backends: ${backends.map((b) => b.name).join(", ")}; ` +
      `embeddings: ${embeddings.model}`,
  );

  const summaries: ModeSummary[] = [];
  try {
    for (const backend of backends) {
      for (const mode of MODES.filter((m) => modeIds.includes(m.id))) {
        const runs: SuiteRun[] = [];
        for (const variant of ["extractive", "llm"] as ChatVariant[]) {
          runs.push(await runSuite({ backend, mode, variant, embeddings, runId, corpora, llmBaseUrl: llm.url }));
        }
        printModeTable(backend.name, mode, runs);
        summaries.push(summarize(backend.name, mode, runs));
      }
    }
  } finally {
    await llm.close();
  }
  if (backends.some((b) => b.name === "worker")) console.log(`\nnote: not run on the worker backend (no metrics on Workers): ${[...NOT_ON_WORKERS].join("; ")}`);
  if (!MODES.some((m) => m.expectLeak && modeIds.includes(m.id))) console.log("\nnote: mode 4 not run, so this run does not show that the eval can detect a leak");
  return summaries;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    if (error instanceof UsageError) console.error(`${error.message}\n${USAGE}`);
    else console.error(error instanceof Error ? (error.stack ?? error.message) : error);
    process.exit(2);
  },
);
