import { sql, type SQL } from "drizzle-orm";
import { queryRows, TenantScope, type IsolationMutations, type Tx } from "../src/db/database.js";
import { chunks } from "../src/db/schema.js";
import { modelLiteral } from "../src/db/vector-index.js";
import type { HybridQuery } from "../src/retrieval/hybrid-search.js";

/**
 * The vector leg of hybridSearch on its own: the same expression, predicate, candidate count and
 * tenant predicate (from the scope) as retrieval/hybrid-search.ts, without full text and fusion.
 */
export async function runVectorLeg(scope: TenantScope, query: HybridQuery): Promise<{ chunkId: string }[]> {
  const dims = sql.raw(String(Math.trunc(query.dimensions)));
  const model = sql.raw(modelLiteral(query.model));
  const queryVector = sql`${`[${query.vector.join(",")}]`}::vector(${dims})`;
  const distance = sql`(${chunks.embedding}::vector(${dims})) <=> ${queryVector}`;
  const candidates = Math.max(query.k * 4, 40);
  const rows = await queryRows<{ id: string }>(
    scope.tx,
    sql`SELECT ${chunks.id} AS id FROM ${chunks}
        WHERE ${scope.owns(chunks.tenantId)} AND ${chunks.embeddingModel} = ${model}
        ORDER BY ${distance} LIMIT ${candidates}`,
  );
  return rows.map((r) => ({ chunkId: r.id }));
}

/**
 * A scope whose transaction answers `execute(q)` with `EXPLAIN (FORMAT JSON) q` and hands the plan
 * to `sink` (returning no rows), so the plan of exactly the SQL a search function builds can be
 * read without copying that SQL here.
 */
export function withExplainingTx(scope: TenantScope, mutations: IsolationMutations, sink: (plan: unknown) => void): TenantScope {
  const tx = scope.tx;
  const explaining = new Proxy(tx, {
    get(target, property, receiver) {
      if (property !== "execute") return Reflect.get(target, property, receiver);
      return async (query: SQL) => {
        const [row] = await queryRows<{ "QUERY PLAN": unknown }>(target, sql`EXPLAIN (FORMAT JSON) ${query}`);
        const plan = row?.["QUERY PLAN"];
        sink(typeof plan === "string" ? JSON.parse(plan) : plan);
        return { rows: [] };
      };
    },
  }) as Tx;
  return new TenantScope(explaining, scope.ctx, mutations);
}

/** Names made by db/vector-index.ts `vectorIndexName`, shortened in the report. */
const HNSW_INDEX = /^chunks_embedding_hnsw_[0-9a-f]+$/;

interface PlanNode {
  "Node Type"?: string;
  "Relation Name"?: string;
  "Index Name"?: string;
  Plans?: PlanNode[];
  /** Citus: the distributed plan of a Custom Scan, each task with the plan its worker runs. */
  "Distributed Query"?: { Job?: { "Task Count"?: number; Tasks?: { "Remote Plan"?: { Plan?: PlanNode }[][]; Error?: string }[] } };
}

/**
 * The scans of a plan in order, e.g. "Index Scan(hnsw) + Bitmap Index Scan(chunks_tsv_idx) + …".
 * On Citus, each distributed step reads "citus N task(s): …" with the scans of its first task's
 * worker plan: N is the number of shards the step ran on.
 */
export function explainScans(plan: unknown): string {
  const root = (Array.isArray(plan) ? (plan[0] as { Plan?: PlanNode })?.Plan : undefined) ?? {};
  const scans: string[] = [];
  const walk = (node: PlanNode) => {
    const type = node["Node Type"] ?? "?";
    const job = node["Distributed Query"]?.Job;
    if (job) {
      const task = job.Tasks?.[0];
      const remote = task?.["Remote Plan"]?.[0]?.[0]?.Plan;
      // For some parameterised statements (the vector leg, with its vector bound as a parameter)
      // Citus reports "Could not get remote plan." while the statement itself runs: say so.
      const detail = remote ? explainScans([{ Plan: remote }]) : `(no remote plan: ${task?.Error ?? "not shown"})`;
      scans.push(`citus ${job["Task Count"] ?? "?"} task(s): ${detail}`);
    } else if (node["Index Name"] || node["Relation Name"]) {
      const index = node["Index Name"];
      const name = index && HNSW_INDEX.test(index) ? "hnsw" : index;
      scans.push(`${type}(${name ?? node["Relation Name"]})`);
    }
    for (const child of node.Plans ?? []) walk(child);
  };
  walk(root);
  return scans.join(" + ") || "?";
}
