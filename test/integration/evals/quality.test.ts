import { execFile } from "node:child_process";
import { cp, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DEFAULT_BASELINE_PATH, readBaseline, round4, type BaselineFile } from "../../../evals/quality/baseline.js";
import { DEFAULT_FIXTURES_DIR, FixtureError, loadQualityFixtures } from "../../../evals/quality/fixtures.js";
import { runQualityEval } from "../../../evals/quality/run-eval.js";
import { METRICS } from "../../../evals/quality/score.js";
import type { EmbeddingProvider } from "../../../src/embeddings/provider.js";
import { ADMIN_KEY, backends, defaultEmbeddings, serveOnLoopback, TestFence } from "../../support/harness.js";
import type { ChatBody, TenantListJson } from "../../support/api-types.js";

/**
 * `npm run eval:quality` end to end: against its own in-process Fence it reproduces the stored
 * baseline exactly and passes; against a running instance (each backend) with a baseline raised
 * above what is achievable it fails, names exactly the raised figures, includes a tenant's stored
 * case, and leaves no eval tenant behind. Fixture mistakes fail at load, clearly.
 */

const REPO_ROOT = fileURLToPath(new URL("../../..", import.meta.url));
const run = promisify(execFile);

let scratch: string;
beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), "quality-eval-test-"));
});
afterAll(async () => {
  await rm(scratch, { recursive: true, force: true });
});

/** A copy of the real fixtures with one file rewritten, so each test breaks exactly one thing. */
async function fixturesWith(name: string, path: string, edit: (text: string) => string): Promise<string> {
  const dir = join(scratch, name);
  await cp(DEFAULT_FIXTURES_DIR, dir, { recursive: true });
  await writeFile(join(dir, path), edit(await readFile(join(dir, path), "utf8")));
  return dir;
}

describe("quality eval fixtures", () => {
  it("hold three tenants, each with 10–16 questions, 3+ it must decline and 2+ only another tenant can answer", async () => {
    const tenants = await loadQualityFixtures();
    expect(tenants.map((t) => t.name)).toEqual(["northwind-hr", "riverside-clinic", "voltline-manual"]);
    for (const t of tenants) {
      expect(t.questions.length, t.name).toBeGreaterThanOrEqual(10);
      expect(t.questions.length, t.name).toBeLessThanOrEqual(16);
      expect(t.questions.filter((q) => q.expect === "dont_know").length, t.name).toBeGreaterThanOrEqual(3);
      expect(t.questions.filter((q) => q.expect === "dont_know" && q.why === "cross_tenant").length, t.name).toBeGreaterThanOrEqual(2);
      expect(t.documents.length, t.name).toBeGreaterThanOrEqual(3);
    }
  });

  it("rejects a malformed questions.json, naming the file and the field", async () => {
    const dir = await fixturesWith("bad-field", "northwind-hr/questions.json", (t) => t.replace('"expected_documents": ["annual-leave.md"], "must_contain": ["25 days"]', '"expected_documents": []'));
    const error = await loadQualityFixtures(dir).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(FixtureError);
    expect((error as Error).message).toMatch(/northwind-hr\/questions\.json is malformed/);
    expect((error as Error).message).toMatch(/questions\.0\.expected_documents: an answerable question needs at least one expected document/);
  });

  it("rejects a phrase that none of the expected documents contains, and an expected document that does not exist", async () => {
    const typo = await fixturesWith("typo", "voltline-manual/questions.json", (t) => t.replace('"48 hours"', '"84 hours"'));
    await expect(loadQualityFixtures(typo)).rejects.toThrow(/question "battery-backup": must_contain "84 hours" occurs in none of its expected documents/);
    const missing = await fixturesWith("missing-doc", "riverside-clinic/questions.json", (t) => t.replace('["opening-hours.md"], "must_contain": ["116117"]', '["hours.md"]'));
    await expect(loadQualityFixtures(missing)).rejects.toThrow(/question "out-of-hours": expected document "hours.md" is not in/);
  });

  it("rejects a cross-tenant question whose answering document is not another tenant's fixture", async () => {
    const dir = await fixturesWith("cross", "northwind-hr/questions.json", (t) => t.replace('"voltline-manual/warranty.md"', '"voltline-manual/guarantee.md"'));
    await expect(loadQualityFixtures(dir)).rejects.toThrow(/answered_by "voltline-manual\/guarantee.md" is not a fixture document/);
  });

  it("makes the CLI exit 2 with the problem printed, before starting anything", async () => {
    const dir = await fixturesWith("cli", "riverside-clinic/questions.json", () => "{ not json");
    const failure = await run("npx", ["tsx", "evals/quality/run.ts", "--fixtures", dir], { cwd: REPO_ROOT }).catch((e: { code: number; stderr: string }) => e);
    expect(failure).toMatchObject({ code: 2 });
    expect((failure as { stderr: string }).stderr).toMatch(/riverside-clinic\/questions\.json: not valid JSON/);
  });
});

describe("quality eval, end to end", () => {
  let embeddings: EmbeddingProvider;
  let baseline: BaselineFile;
  beforeAll(async () => {
    embeddings = await defaultEmbeddings();
    baseline = (await readBaseline(DEFAULT_BASELINE_PATH))!;
  });

  it("reproduces every tenant's stored baseline on its own in-process instance, and passes", async () => {
    const before = new Set((await readdir(tmpdir())).filter((n) => n.startsWith("fence-quality-")));
    const lines: string[] = [];
    const result = await runQualityEval({ embeddings, print: (l) => lines.push(l) });

    expect(result.gate).toEqual({ passed: true, regressions: [], notes: [] });
    expect(result.exitCode).toBe(0);
    expect(result.answerMode).toBe(baseline.answer_mode);
    // Not only "at or above": the default target is deterministic, so the figures are the same.
    for (const tenant of result.tenants) {
      const recorded = baseline.tenants[tenant.name]!;
      expect(tenant.figures.questions, tenant.name).toBe(recorded.questions);
      expect(METRICS.map((m) => round4(tenant.figures[m].value)), tenant.name).toEqual([
        recorded.retrieval_hit_rate,
        recorded.citation_precision,
        recorded.dont_know_correctness,
        recorded.phrase_pass_rate,
      ]);
    }
    expect(lines).toContainEqual(expect.stringMatching(/^\| tenant +\| questions +\| retrieval hit rate/));
    expect(lines).toContainEqual(expect.stringMatching(/^\| overall /));
    expect(lines.at(-1)).toBe("PASS: every tenant is at or above its own baseline");
    // Its temp data folder is gone again.
    expect((await readdir(tmpdir())).filter((n) => n.startsWith("fence-quality-") && !before.has(n))).toEqual([]);
  });

  describe.each(backends)("against a running instance on $name", (backend) => {
    let fence: TestFence;
    let server: { url: string; close(): Promise<void> };
    beforeAll(async () => {
      fence = await TestFence.start(backend, { embeddings });
      server = await serveOnLoopback((req) => fence.fence.app.fetch(req));
    });
    afterAll(async () => {
      await server?.close();
      await fence?.close();
    });

    it("fails when the baseline is raised above what is achievable, naming exactly those figures, and cleans up", async () => {
      // An existing tenant that turned a bad answer into a stored case (when the target has the route).
      const reporter = await fence.createTenant(`quality-reporter-${Math.random().toString(36).slice(2, 8)}`);
      const doc = await fence.upload(reporter, { title: "Refunds", text: "# Refunds\n\nCustomers can request a refund within 30 days of purchase." });
      const chat = await fence.request("POST", "/v1/chat", { key: reporter.key, json: { question: "How many days do I have to ask for a refund?" } });
      const { request_id } = (await chat.json()) as ChatBody;
      const caseRes = await fence.request("POST", "/v1/evals/cases", {
        key: reporter.key,
        json: { request_id, expected_document_ids: [doc.id], must_contain: ["30 days"] },
      });
      const routeExists = caseRes.status !== 404;
      if (routeExists) expect(caseRes.status).toBe(201);

      const raised: BaselineFile = structuredClone(baseline);
      for (const entry of Object.values(raised.tenants)) entry.dont_know_correctness = 1;
      raised.tenants.reporter = { questions: 1, retrieval_hit_rate: 1, citation_precision: 1, dont_know_correctness: 1, phrase_pass_rate: 1 };
      const raisedPath = join(scratch, `raised-${backend.name}.json`);
      await writeFile(raisedPath, JSON.stringify(raised));

      const lines: string[] = [];
      const result = await runQualityEval({
        url: server.url,
        adminKey: ADMIN_KEY,
        baselinePath: raisedPath,
        tenantKeys: [{ label: "reporter", key: reporter.key }],
        print: (l) => lines.push(l),
      });

      expect(result.exitCode).toBe(1);
      expect(result.gate.regressions.map((r) => [r.tenant, r.metric])).toEqual([
        ["northwind-hr", "dontKnowCorrectness"],
        ["riverside-clinic", "dontKnowCorrectness"],
        ["voltline-manual", "dontKnowCorrectness"],
      ]);
      expect(lines).toContain("FAIL: 3 regression(s)");
      expect(result.storedCasesRoute).toBe(routeExists);
      const reported = result.tenants.find((t) => t.name === "reporter");
      if (routeExists) {
        expect(reported?.storedCases).toBe(1);
        expect(lines).toContain("reporter: declined 0/0 it must decline (cross-tenant 0/0), answered 1/1 it must answer; 1 stored case(s) included");
        expect(reported?.outcomes).toMatchObject([{ source: "stored_case", expect: "answer", hit: true, dontKnowCorrect: true, phrasesPassed: true }]);
      } else {
        expect(reported).toBeUndefined();
        expect(lines).toContain("note: the target has no /v1/evals/cases route (404); tenant-added cases skipped");
      }

      // The eval's own tenants are gone from the shared instance; the existing tenant is untouched.
      const listed = (await (await fence.admin("GET", "/tenants")).json()) as TenantListJson;
      expect(listed.tenants.filter((t) => /^quality-(northwind-hr|riverside-clinic|voltline-manual)-/.test(t.name))).toEqual([]);
      expect(listed.tenants.map((t) => t.name)).toContain(reporter.name);
    });
  });
});
