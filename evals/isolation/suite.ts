import type { EmbeddingProvider } from "../../src/embeddings/provider.js";
import { isAssertionBlock, type Attack, type AttackContext, type ChatVariant, type Parties } from "./attack.js";
import { ATTACKS } from "./attacks/index.js";
import type { Corpus } from "./corpus.js";
import { AttackerHttp } from "./exchange.js";
import { randomAdminKey, startFence, type EvalBackend } from "./instance.js";
import { describeFinding, LeakDetector, needlesOf, type Finding } from "./leak-detector.js";
import type { Mode } from "./modes.js";
import { dataVersionOf, purgeTenants, seedTenant, truthOf, type SeededTenant } from "./seed.js";
import { seedUsageCanary, usageNeedles, usageTruthOf } from "./usage-canary.js";

/**
 * One instance under attack: start Fence with the mode's mutations, seed A and B, run every
 * attack of the chat variant, and judge each from what its parties received.
 */
export type Verdict = "blocked" | "blocked (assertion)" | "leak" | "violation" | "error" | "control ok" | "control failed";

export interface AttackResult {
  backend: EvalBackend["name"];
  mode: Mode;
  variant: ChatVariant;
  attack: Attack;
  verdict: Verdict;
  detail: string;
  exchanges: number;
  findings: Finding[];
}

export interface SuiteRun {
  results: AttackResult[];
  assertionEvents: number;
  smuggledEvents: number;
  seconds: number;
}

export interface SuiteOptions {
  backend: EvalBackend;
  mode: Mode;
  variant: ChatVariant;
  embeddings: EmbeddingProvider;
  runId: string;
  corpora: { a: Corpus; b: Corpus };
  llmBaseUrl: string | undefined;
  /** Runs a subset of the attacks (the fast integration test does). */
  only?: (attack: Attack) => boolean;
}

/**
 * Attacks the worker backend skips, and why: Workers have no Prometheus registry, so /metrics
 * holds no figures to leak and the attack's control (the admin scrape sees A's figures) cannot pass.
 * The Worker's /metrics still refuses tenant keys with 401 (test/integration/platform/worker-contract.test.ts).
 */
export const NOT_ON_WORKERS: ReadonlySet<string> = new Set(["tenant keys and outsiders scrape /metrics"]);

export async function runSuite(options: SuiteOptions): Promise<SuiteRun> {
  const started = performance.now();
  const { mode, variant } = options;
  const running = await startFence(
    { backend: options.backend, mutations: mode.mutations, embeddings: options.embeddings, llmBaseUrl: variant === "llm" ? options.llmBaseUrl : undefined, fakeOpenAIUrl: options.llmBaseUrl },
    randomAdminKey(),
  );
  const tag = `m${mode.id}-${variant}`;
  const seeded: SeededTenant[] = [];
  try {
    const a = await seedTenant(running.url, running.adminKey, "A", options.corpora.a, options.runId, tag);
    seeded.push(a);
    const b = await seedTenant(running.url, running.adminKey, "B", options.corpora.b, options.runId, tag);
    seeded.push(b);
    for (const t of [a, b]) t.usageCanary = await seedUsageCanary(running.url, running.adminKey, running.fence, t, options.runId, tag);
    const corpusText = (c: Corpus) => c.documents.map((d) => d.text).join("\n");
    const detector = new LeakDetector([
      ...needlesOf(await truthOf(running.fence, a), corpusText(b.corpus)),
      ...needlesOf(await truthOf(running.fence, b), corpusText(a.corpus)),
      ...usageNeedles(a.usageCanary!),
      ...usageNeedles(b.usageCanary!),
    ]);
    const parties: Parties = {
      a: { label: "A", tenant: "A", key: a.key },
      b: { label: "B", tenant: "B", key: b.key },
      anon: { label: "anonymous", tenant: null, key: undefined },
      aRevoked: { label: "A's revoked key", tenant: null, key: a.revokedKey!.key },
      admin: { label: "admin key", tenant: null, key: running.adminKey },
    };
    const results: AttackResult[] = [];
    const runs = (x: Attack) => x.variants.includes(variant) && (options.only?.(x) ?? true) && !(options.backend.name === "worker" && NOT_ON_WORKERS.has(x.name));
    for (const attack of ATTACKS.filter(runs)) {
      const http = new AttackerHttp(running.url);
      const failures: string[] = [];
      const ctx: AttackContext = {
        variant,
        http,
        a,
        b,
        parties,
        dataVersion: (owner) => dataVersionOf(running.fence, owner === "A" ? a.id : b.id),
        usageTruth: (owner, from, to) => usageTruthOf(running.fence, owner === "A" ? a.id : b.id, from, to),
        runJobs: () => running.runJobs([a.id, b.id]),
        plant: (needles) => detector.add(needles),
        expect: (ok, message) => void (ok || failures.push(message)),
        expectHealthy: (ok, message) => void (ok || mode.expectLeak || failures.push(message)),
      };
      let error: unknown;
      try {
        await attack.run(ctx);
      } catch (e) {
        error = e;
      }
      const findings = http.exchanges.flatMap((x) => detector.scan(x));
      // Only the attackers' requests: in mode 4 the assertion also stops A's own searches.
      const assertionHit = http.exchanges.some((x) => x.party.tenant !== "A" && isAssertionBlock(x));
      results.push({
        backend: options.backend.name,
        mode,
        variant,
        attack,
        exchanges: http.exchanges.length,
        findings,
        ...judge(attack, findings, failures, error, assertionHit),
      });
    }
    return {
      results,
      assertionEvents: running.securityEventCount("assembly_assertion_failed"),
      smuggledEvents: running.securityEventCount("smuggled_tenant_id"),
      seconds: (performance.now() - started) / 1000,
    };
  } finally {
    await purgeTenants(running.url, running.adminKey, seeded);
    await running.close();
  }
}

function judge(
  attack: Attack,
  findings: Finding[],
  failures: string[],
  error: unknown,
  assertionHit: boolean,
): { verdict: Verdict; detail: string } {
  const more = (n: number) => (n > 1 ? ` (+${n - 1} more)` : "");
  if (findings.length > 0) {
    const distinct = [...new Map(findings.map((f) => [`${f.needle.kind}:${f.needle.value}`, f])).values()];
    return { verdict: "leak", detail: `${describeFinding(distinct[0]!)}${more(distinct.length)}` };
  }
  if (error !== undefined) return { verdict: "error", detail: error instanceof Error ? error.message : String(error) };
  if (failures.length > 0) {
    return { verdict: attack.kind === "control" ? "control failed" : "violation", detail: `${failures[0]}${more(failures.length)}` };
  }
  if (attack.kind === "control") return { verdict: "control ok", detail: "" };
  return assertionHit ? { verdict: "blocked (assertion)", detail: "tenant_isolation_violation" } : { verdict: "blocked", detail: "" };
}
