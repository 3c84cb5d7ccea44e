import type { GateResult } from "./baseline.js";
import { METRICS, type QuestionOutcome, type Ratio, type TenantFigures } from "./score.js";

/**
 * The printed report: one table row per tenant plus the pooled "overall" row, then the questions
 * that lost points and the gate's verdict. Lines name question ids, fixture phrases, document
 * names and request ids — never answer text, which for a real tenant's stored case would be that
 * tenant's document text in someone's CI log.
 */

export interface TenantReport {
  name: string;
  figures: TenantFigures;
  outcomes: QuestionOutcome[];
  /** How many of the questions came from the tenant's stored cases (null: route not on the target). */
  storedCases: number | null;
  /** Document id → a readable name (the fixture file name), for the failure lines. */
  documentNames: ReadonlyMap<string, string>;
  /**
   * An existing tenant, kept after the run: its request ids lead to its run records
   * (`GET /v1/runs/:request_id`). The eval's own tenants are deleted with their runs.
   */
  persistent: boolean;
}

const HEADERS = ["tenant", "questions", "retrieval hit rate", "citation precision", "don't-know correct", "phrases"];

export function formatRatio(r: Ratio): string {
  return r.value === null ? "–" : `${r.numerator}/${r.denominator} ${r.value.toFixed(3)}`;
}

export function renderTable(tenants: readonly TenantReport[], overall: TenantFigures, gateByTenant: ReadonlyMap<string, string>): string[] {
  const row = (name: string, f: TenantFigures, gate: string) => [name, String(f.questions), ...METRICS.map((m) => formatRatio(f[m])), gate];
  const rows = [
    [...HEADERS, "vs baseline"],
    ...tenants.map((t) => row(t.name, t.figures, gateByTenant.get(t.name) ?? "")),
    row("overall", overall, ""),
  ];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  const line = (r: string[]) => `| ${r.map((cell, i) => cell.padEnd(widths[i]!)).join(" | ")} |`.replace(/\s+\|$/, " |");
  return [line(rows[0]!), `|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`, ...rows.slice(1).map(line)];
}

/** What don't-know correctness is made of, per tenant: declining and answering fail differently. */
export function renderDontKnowBreakdown(tenants: readonly TenantReport[]): string[] {
  return tenants.map((t) => {
    const count = (filter: (o: QuestionOutcome) => boolean) => {
      const asked = t.outcomes.filter(filter);
      return `${asked.filter((o) => o.dontKnowCorrect).length}/${asked.length}`;
    };
    return (
      `${t.name}: declined ${count((o) => o.expect === "dont_know")} it must decline ` +
      `(cross-tenant ${count((o) => o.crossTenant)}), answered ${count((o) => o.expect === "answer")} it must answer` +
      (t.storedCases ? `; ${t.storedCases} stored case(s) included` : "")
    );
  });
}

export function renderProblems(tenants: readonly TenantReport[]): string[] {
  const lines: string[] = [];
  for (const tenant of tenants) {
    const failing = tenant.outcomes.filter((o) => o.problems.length > 0);
    if (failing.length === 0) continue;
    lines.push(`${tenant.name}: ${failing.length} of ${tenant.outcomes.length} questions lost points`);
    for (const o of failing) {
      const cited = o.unexpectedCitations.map((id) => tenant.documentNames.get(id) ?? id);
      const extra = [cited.length > 0 ? `cited ${cited.join(", ")}` : "", tenant.persistent && o.requestId ? `request ${o.requestId}` : ""].filter(Boolean).join("; ");
      lines.push(`  ✗ ${o.id} (${o.expect === "dont_know" ? "expects don't-know" : "expects an answer"}): ${o.problems.join("; ")}${extra ? ` [${extra}]` : ""}`);
    }
  }
  return lines;
}

export function renderGate(gate: GateResult): string[] {
  const lines = gate.notes.map((n) => `note: ${n}`);
  if (gate.passed) lines.push("PASS: every tenant is at or above its own baseline");
  else lines.push(`FAIL: ${gate.regressions.length} regression(s)`, ...gate.regressions.map((r) => `  ${r.tenant}: ${r.message}`));
  return lines;
}
