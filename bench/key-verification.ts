import { sql } from "drizzle-orm";
import { queryRows } from "../src/db/database.js";
import { hashApiKey } from "../src/tenancy/api-keys.js";
import { authenticateTenantRequest } from "../src/tenancy/authenticate.js";
import type { BenchBackend } from "./backends.js";
import type { Scope } from "../src/core/scopes.js";
import type { BenchOptions } from "./options.js";
import { interleavedPairs, summarize, type LatencySummary } from "./stats.js";

export interface KeyVerificationResult {
  tenant: string;
  pairs: number;
  /** A whole request (GET /v1/documents?limit=1) with an `owner` key: what every key was before scopes. */
  ownerRequest: LatencySummary;
  /** The same request with a key holding only `read`: the scope check is the one difference. */
  scopedRequest: LatencySummary;
  /** The key's row read from the database (no cache): by its current secret. */
  lookupCurrent: LatencySummary;
  /** The same, by the secret a rotation replaced (still within its grace period). */
  lookupPrior: LatencySummary;
  /** The scans of the lookup's plan, as planned and with sequential scans off. */
  lookupPlan: string;
}

/**
 * Section 5. What scoped keys and rotation cost a request. Issue 18 asks that authentication stay
 * one indexed lookup, so that scopes add no measurable latency: (a) a whole request through the
 * app with an `owner` key against the same request with a `read` key, interleaved, and (b) the
 * uncached key lookup by a current secret against one by a rotated-out secret, interleaved, with
 * the lookup's plan.
 */
export async function benchKeyVerification(backend: BenchBackend, options: BenchOptions): Promise<KeyVerificationResult> {
  const { fence } = backend;
  // A tenant of its own on a plan whose 3,000 requests a minute this section stays under.
  const tenant = await fence.tenantAdmin.createTenant({ name: "bench-keys", plan: "enterprise" });
  const issue = (scopes: Scope[]) => fence.tenantAdmin.issueKey(tenant.id, { name: `bench-${scopes.join("-")}`, project: "bench", environment: "test", scopes });
  const owner = await issue(["owner"]);
  const reader = await issue(["read"]);
  const rotating = await issue(["read"]);
  const { ctx } = await authenticateTenantRequest(fence.db, owner.key, "bench-rotate");
  const current = (await fence.tenantKeys.rotate(ctx, rotating.id, 86_400)).key;

  const request = (key: string) => async () => {
    const res = await fence.app.request("/v1/documents?limit=1", { headers: { authorization: `Bearer ${key}` } });
    if (res.status !== 200) throw new Error(`GET /v1/documents: ${res.status} ${await res.text()}`);
    await res.arrayBuffer();
  };
  const lookup = (key: string) => async () => {
    await authenticateTenantRequest(fence.db, key, "bench-key-lookup");
  };
  for (let i = 0; i < 20; i++) {
    await request(owner.key)();
    await request(reader.key)();
    await lookup(current)();
    await lookup(rotating.key)();
  }
  const requests = await interleavedPairs(options.pairs, request(owner.key), request(reader.key));
  const lookups = await interleavedPairs(options.pairs, lookup(current), lookup(rotating.key));

  // As planned for this table's size, and with sequential scans off: what serves it once keys are many.
  const explain = (seqscan: "on" | "off") =>
    fence.db.asOwner(async (tx) => {
      // On Citus the setting must reach the worker whose shard plan EXPLAIN shows.
      if (fence.db.distribution === "citus") await tx.execute(sql`SET LOCAL citus.propagate_set_commands = 'local'`);
      await tx.execute(sql.raw(`SET LOCAL enable_seqscan = ${seqscan}`));
      const hash = hashApiKey(rotating.key);
      const rows = await queryRows<{ "QUERY PLAN": string }>(tx, sql`EXPLAIN SELECT id FROM api_keys WHERE key_hash = ${hash} OR prior_key_hash = ${hash}`);
      const scans = rows.map((row) => row["QUERY PLAN"]).filter((line) => /Scan/.test(line)).map((line) => line.trim().replace(/^->\s*/, "").replace(/\s+\(cost.*$/, ""));
      return scans.join(", ") || "(no plan lines with a scan)";
    });
  const lookupPlan = `${await explain("on")} | seqscan off: ${await explain("off")}`;
  return {
    tenant: "bench-keys (enterprise)",
    pairs: options.pairs,
    ownerRequest: summarize(requests.a),
    scopedRequest: summarize(requests.b),
    lookupCurrent: summarize(lookups.a),
    lookupPrior: summarize(lookups.b),
    lookupPlan,
  };
}
