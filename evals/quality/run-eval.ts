import { randomBytes } from "node:crypto";
import { relative } from "node:path";
import type { EmbeddingProvider } from "../../src/embeddings/provider.js";
import {
  checkAgainstBaseline,
  DEFAULT_BASELINE_PATH,
  diffBaselines,
  readBaseline,
  toBaseline,
  writeBaseline,
  type GateResult,
} from "./baseline.js";
import { AdminClient, readTargetInfo, STORED_CASES_PATH, TenantClient } from "./client.js";
import { DEFAULT_FIXTURES_DIR, loadQualityFixtures, type TenantFixture } from "./fixtures.js";
import { fromFixture, fromStoredCase } from "./questions.js";
import { renderDontKnowBreakdown, renderGate, renderProblems, renderTable, type TenantReport } from "./report.js";
import { aggregate, scoreAnswer, type EvalQuestion, type QuestionOutcome, type TenantFigures } from "./score.js";
import { remoteTarget, startInProcessTarget, type QualityTarget } from "./target.js";

/**
 * One quality eval run: load and validate the fixtures and the baseline, reach the target (or
 * start one), create a tenant per fixture folder through the admin API, upload its documents as a
 * batch and wait for the jobs, ask its questions (plus any cases the tenant stored, when the
 * target has that route), score, delete the tenants, and gate every tenant against its own
 * baseline. The CLI (run.ts) and the integration test both call this.
 */

export interface QualityEvalOptions {
  /** A running Fence; without it, one is started in-process on a temp PGlite folder. */
  url?: string | undefined;
  adminKey?: string | undefined;
  fixturesDir?: string;
  baselinePath?: string;
  /** Rewrite the baseline with this run's figures (on purpose) instead of gating against it. */
  updateBaseline?: boolean;
  /** Existing tenants of the target, by key, whose stored cases are evaluated too (never modified). */
  tenantKeys?: { label: string; key: string }[];
  /** In-process target only: share an already-loaded embedding model. */
  embeddings?: EmbeddingProvider;
  ingestTimeoutMs?: number;
  print?: (line: string) => void;
}

export interface QualityEvalResult {
  exitCode: 0 | 1;
  tenants: TenantReport[];
  overall: TenantFigures;
  gate: GateResult;
  answerMode: string;
  embeddingModel: string;
  /** False when the target has no stored-cases route. */
  storedCasesRoute: boolean;
}

export async function runQualityEval(options: QualityEvalOptions = {}): Promise<QualityEvalResult> {
  const print = options.print ?? ((line: string) => console.log(line));
  const printAll = (lines: readonly string[]) => lines.forEach((line) => print(line));
  const baselinePath = options.baselinePath ?? DEFAULT_BASELINE_PATH;
  // Both are validated before anything is started, so a malformed file fails in a second.
  const fixtures = await loadQualityFixtures(options.fixturesDir ?? DEFAULT_FIXTURES_DIR);
  const baseline = await readBaseline(baselinePath);
  if (options.url && !options.adminKey) throw new Error("--url needs --admin-key (or FENCE_ADMIN_KEY)");

  const started = performance.now();
  const target: QualityTarget = options.url
    ? remoteTarget(options.url, options.adminKey!)
    : await startInProcessTarget({ embeddings: options.embeddings });
  const runId = randomBytes(4).toString("hex");
  const admin = new AdminClient(target.url, target.adminKey);
  const created: string[] = [];
  const tenants: TenantReport[] = [];
  const seen: AnswerModes = { modes: new Set(), models: new Set() };
  let storedCasesRoute = true;
  let embeddingModel: string;
  try {
    embeddingModel = (await readTargetInfo(target.url)).embeddingModel ?? "unknown";
    print(`Fence quality eval — run ${runId}; target: ${target.description}; embeddings: ${embeddingModel}`);
    for (const fixture of fixtures) {
      const { id, key } = await createTenant(admin, `quality-${fixture.name}-${runId}`);
      created.push(id);
      const report = await evaluateFixtureTenant(fixture, new TenantClient(target.url, key), runId, options.ingestTimeoutMs ?? 120_000, seen);
      if (report.storedCases === null) storedCasesRoute = false;
      tenants.push(report);
    }
    for (const { label, key } of options.tenantKeys ?? []) {
      const report = await evaluateExistingTenant(label, new TenantClient(target.url, key), seen);
      if (report.storedCases === null) {
        storedCasesRoute = false;
        print(`note: ${label} skipped: without stored cases there is nothing to ask an existing tenant`);
      } else tenants.push(report);
    }
  } finally {
    // Deleted on every target, also after a failure: a shared instance keeps no eval tenants.
    const cleanup = await Promise.allSettled(created.map((id) => admin.deleteTenant(id)));
    await target.close();
    const failed = cleanup.filter((c) => c.status === "rejected").length;
    if (failed > 0) print(`warning: ${failed} eval tenant(s) could not be deleted (names start with quality-…-${runId})`);
  }

  const answerMode = describeModes(seen);
  const figures = new Map(tenants.map((t) => [t.name, t.figures]));
  const overall = aggregate(tenants.flatMap((t) => t.outcomes));
  print(`answers: ${answerMode}; ${tenants.reduce((n, t) => n + t.outcomes.length, 0)} questions in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  if (!storedCasesRoute) print(`note: the target has no ${STORED_CASES_PATH} route (404); tenant-added cases skipped`);

  if (options.updateBaseline) {
    const next = toBaseline(answerMode, embeddingModel, figures);
    await writeBaseline(baselinePath, next);
    const table = renderTable(tenants, overall, new Map());
    printAll(["", ...table, "", ...renderDontKnowBreakdown(tenants), "", ...renderProblems(tenants)]);
    printAll(["", `baseline written to ${relative(process.cwd(), baselinePath)}:`, ...diffBaselines(baseline, next).map((l) => `  ${l}`)]);
    const gate: GateResult = { passed: true, regressions: [], notes: [] };
    return { exitCode: 0, tenants, overall, gate, answerMode, embeddingModel, storedCasesRoute };
  }

  const gate = checkAgainstBaseline(baseline, { answerMode, embeddingModel, tenants: figures });
  const verdicts = new Map(
    tenants.map((t) => {
      const own = gate.regressions.filter((r) => r.tenant === t.name || r.tenant === "*");
      return [t.name, own.length === 0 ? "ok" : "BELOW"];
    }),
  );
  printAll(["", ...renderTable(tenants, overall, verdicts), "", ...renderDontKnowBreakdown(tenants), "", ...renderProblems(tenants), "", ...renderGate(gate)]);
  return { exitCode: gate.passed ? 0 : 1, tenants, overall, gate, answerMode, embeddingModel, storedCasesRoute };
}

async function createTenant(admin: AdminClient, name: string): Promise<{ id: string; key: string }> {
  const { id } = await admin.createTenant(name);
  return { id, key: await admin.issueKey(id) };
}

/** Which answer paths the target used: `extractive`, or `llm:<model>` (a baseline holds for one). */
interface AnswerModes {
  modes: Set<string>;
  models: Set<string>;
}

function describeModes(seen: AnswerModes): string {
  const modes = [...seen.modes].sort();
  if (modes.length === 0) return "none";
  return modes.map((m) => (m === "llm" && seen.models.size > 0 ? `llm:${[...seen.models].sort().join(",")}` : m)).join("+");
}

async function evaluateFixtureTenant(fixture: TenantFixture, client: TenantClient, runId: string, ingestTimeoutMs: number, seen: AnswerModes): Promise<TenantReport> {
  const sourceId = (fileName: string) => `quality/${fixture.name}/${fileName}`;
  const ids = await client.uploadAndWait(
    fixture.documents.map((d) => ({ title: d.title, text: d.text, source_id: sourceId(d.fileName) })),
    ingestTimeoutMs,
  );
  const documentIdOf = (fileName: string) => {
    const id = ids.get(sourceId(fileName));
    if (!id) throw new Error(`run ${runId}: ${fixture.name}/${fileName} was not stored`);
    return id;
  };
  const stored = await client.storedCases();
  const questions: EvalQuestion[] = [...fixture.questions.map((q) => fromFixture(q, documentIdOf)), ...(stored ?? []).map(fromStoredCase)];
  const documentNames = new Map(fixture.documents.map((d) => [documentIdOf(d.fileName), d.fileName]));
  const outcomes = await ask(client, questions, seen);
  return { name: fixture.name, figures: aggregate(outcomes), outcomes, storedCases: stored?.length ?? null, documentNames, persistent: false };
}

async function evaluateExistingTenant(label: string, client: TenantClient, seen: AnswerModes): Promise<TenantReport> {
  const stored = await client.storedCases();
  const outcomes = await ask(client, (stored ?? []).map(fromStoredCase), seen);
  return { name: label, figures: aggregate(outcomes), outcomes, storedCases: stored?.length ?? null, documentNames: new Map(), persistent: true };
}

/** One question at a time: the answers do not depend on each other, and order keeps runs identical. */
async function ask(client: TenantClient, questions: readonly EvalQuestion[], seen: AnswerModes): Promise<QuestionOutcome[]> {
  const outcomes: QuestionOutcome[] = [];
  for (const question of questions) {
    const reply = await client.chat(question.question);
    seen.modes.add(reply.mode);
    if (reply.model) seen.models.add(reply.model);
    outcomes.push(
      scoreAnswer(question, {
        answer: reply.answer,
        noAnswer: reply.no_answer,
        citedDocumentIds: reply.citations.map((c) => c.document_id),
        requestId: reply.request_id,
      }),
    );
  }
  return outcomes;
}
