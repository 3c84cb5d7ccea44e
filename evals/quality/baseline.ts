import { readFile, writeFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { z } from "zod";
import { METRIC_LABELS, METRICS, type MetricName, type TenantFigures } from "./score.js";

/**
 * The stored baseline: each tenant's own figures, recorded on purpose with `--update-baseline`.
 * A run fails when any tenant falls below its own figure on any metric. There is no tolerance:
 * the default target (extractive answers, local embedding model, a fresh database) gives the same
 * answers on every run, so any drop is a real change. Figures are compared at the 4 decimals they
 * are stored with, so rounding can never fail a run that scored the same.
 *
 * The baseline also records what it was measured against (answer mode and embedding model): a run
 * against a target that differs there is not comparable, and says so instead of passing or failing
 * on numbers that mean something else.
 */

export const DEFAULT_BASELINE_PATH = fileURLToPath(new URL("./baseline.json", import.meta.url));

const Rate = z.number().min(0).max(1).nullable();

const TenantBaseline = z.strictObject({
  questions: z.number().int().nonnegative(),
  retrieval_hit_rate: Rate,
  citation_precision: Rate,
  dont_know_correctness: Rate,
  phrase_pass_rate: Rate,
});

export const BaselineFile = z.strictObject({
  about: z.string().optional(),
  answer_mode: z.string(),
  embedding_model: z.string(),
  tenants: z.record(z.string(), TenantBaseline),
});
export type BaselineFile = z.infer<typeof BaselineFile>;
type TenantBaseline = z.infer<typeof TenantBaseline>;

const FIELD: Record<MetricName, Exclude<keyof TenantBaseline, "questions">> = {
  retrievalHitRate: "retrieval_hit_rate",
  citationPrecision: "citation_precision",
  dontKnowCorrectness: "dont_know_correctness",
  phrasePassRate: "phrase_pass_rate",
};

const ABOUT =
  "Per-tenant quality figures: npm run eval:quality fails when a tenant falls below its own figures here. " +
  "Rewrite on purpose with npm run eval:quality -- --update-baseline (see bench/README.md, Quality eval).";

export class BaselineError extends Error {
  override name = "BaselineError";
}

/** The baseline at `path`, or undefined when there is none yet. */
export async function readBaseline(path: string): Promise<BaselineFile | undefined> {
  let raw: string;
  try {
    raw = await readFile(path, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw error;
  }
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch (error) {
    throw new BaselineError(`${path}: not valid JSON (${(error as Error).message})`);
  }
  const parsed = BaselineFile.safeParse(json);
  if (!parsed.success) {
    throw new BaselineError(`${path} is malformed:\n${parsed.error.issues.map((i) => `  ${i.path.join(".")}: ${i.message}`).join("\n")}`);
  }
  return parsed.data;
}

export const round4 = (value: number | null): number | null => (value === null ? null : Math.round(value * 10_000) / 10_000);

export function toBaseline(answerMode: string, embeddingModel: string, tenants: ReadonlyMap<string, TenantFigures>): BaselineFile {
  const entries = [...tenants.entries()].sort(([a], [b]) => a.localeCompare(b));
  return {
    about: ABOUT,
    answer_mode: answerMode,
    embedding_model: embeddingModel,
    tenants: Object.fromEntries(
      entries.map(([name, figures]) => [
        name,
        {
          questions: figures.questions,
          ...Object.fromEntries(METRICS.map((m) => [FIELD[m], round4(figures[m].value)])),
        } as TenantBaseline,
      ]),
    ),
  };
}

export async function writeBaseline(path: string, baseline: BaselineFile): Promise<void> {
  await writeFile(path, `${JSON.stringify(baseline, null, 2)}\n`);
}

export interface Regression {
  tenant: string;
  /** Undefined for a whole-tenant or whole-run problem (no baseline, different target). */
  metric?: MetricName;
  baseline?: number | null;
  current?: number | null;
  message: string;
}

export interface GateResult {
  passed: boolean;
  regressions: Regression[];
  /** Not failures: a changed question count, a baseline tenant that was not run. */
  notes: string[];
}

/** Each tenant against its own baseline; any drop, or a tenant with no baseline, fails. */
export function checkAgainstBaseline(
  baseline: BaselineFile | undefined,
  run: { answerMode: string; embeddingModel: string; tenants: ReadonlyMap<string, TenantFigures> },
): GateResult {
  const regressions: Regression[] = [];
  const notes: string[] = [];
  if (!baseline) {
    return {
      passed: false,
      regressions: [{ tenant: "*", message: "no baseline file; record one on purpose with --update-baseline" }],
      notes,
    };
  }
  if (baseline.answer_mode !== run.answerMode || baseline.embedding_model !== run.embeddingModel) {
    return {
      passed: false,
      regressions: [
        {
          tenant: "*",
          message:
            `the baseline was recorded with ${baseline.answer_mode} answers and ${baseline.embedding_model}, ` +
            `this target answers ${run.answerMode} with ${run.embeddingModel}: not comparable ` +
            "(use --baseline <file> to keep a baseline per target)",
        },
      ],
      notes,
    };
  }
  for (const [tenant, figures] of run.tenants) {
    const recorded = baseline.tenants[tenant];
    if (!recorded) {
      regressions.push({ tenant, message: "no baseline for this tenant; record it on purpose with --update-baseline" });
      continue;
    }
    if (recorded.questions !== figures.questions) {
      notes.push(`${tenant}: ${figures.questions} questions now, ${recorded.questions} when the baseline was recorded (fixtures or stored cases changed)`);
    }
    for (const metric of METRICS) {
      const was = recorded[FIELD[metric]];
      const now = round4(figures[metric].value);
      if (was === null) continue;
      if (now === null) {
        regressions.push({ tenant, metric, baseline: was, current: now, message: `${METRIC_LABELS[metric]}: nothing to measure now, ${was} in the baseline` });
      } else if (now < was) {
        regressions.push({ tenant, metric, baseline: was, current: now, message: `${METRIC_LABELS[metric]} ${now} < baseline ${was}` });
      }
    }
  }
  for (const tenant of Object.keys(baseline.tenants)) {
    if (!run.tenants.has(tenant)) notes.push(`${tenant}: in the baseline but not run`);
  }
  return { passed: regressions.length === 0, regressions, notes };
}

/** Line-by-line differences between two baselines, for `--update-baseline` to print. */
export function diffBaselines(before: BaselineFile | undefined, after: BaselineFile): string[] {
  const lines: string[] = [];
  if (!before) return ["(no previous baseline)"];
  for (const key of ["answer_mode", "embedding_model"] as const) {
    if (before[key] !== after[key]) lines.push(`${key}: ${before[key]} → ${after[key]}`);
  }
  const names = [...new Set([...Object.keys(before.tenants), ...Object.keys(after.tenants)])].sort();
  for (const name of names) {
    const was = before.tenants[name];
    const now = after.tenants[name];
    if (!was) {
      lines.push(`+ ${name} (new)`);
      continue;
    }
    if (!now) {
      lines.push(`- ${name} (removed)`);
      continue;
    }
    for (const field of ["questions", ...Object.values(FIELD)] as const) {
      if (was[field] === now[field]) continue;
      const down = was[field] !== null && (now[field] === null || now[field] < was[field]!);
      lines.push(`  ${name} ${field}: ${was[field]} → ${now[field]}${down && field !== "questions" ? "  (lower)" : ""}`);
    }
  }
  return lines.length > 0 ? lines : ["(no change)"];
}
