import { sql } from "drizzle-orm";
import { queryRows, type TenantScope } from "../db/database.js";
import { chunks } from "../db/schema.js";
import { modelLiteral } from "../db/vector-index.js";

export interface SearchHit {
  chunkId: string;
  tenantId: string;
  documentId: string;
  position: number;
  heading: string | null;
  text: string;
  title: string;
  /** Reciprocal-rank-fusion score of the vector and full-text rankings. */
  score: number;
  /** Cosine similarity of the chunk to the query, in [-1, 1]. */
  similarity: number;
  /** Whether the chunk matched the full-text query (all its terms). */
  textMatch: boolean;
}

export interface HybridQuery {
  text: string;
  vector: readonly number[];
  model: string;
  dimensions: number;
  k: number;
}

/** RRF's damping constant; 60 is the value from the original paper and works without tuning. */
const RRF_K = 60;

/**
 * Fail-closed hybrid search (invariant I3): runs inside the caller's tenant transaction, and the
 * tenant predicate comes from the scope, never from an argument. Vector (HNSW, cosine) and
 * full-text (tsvector) rankings are fused by reciprocal rank.
 *
 * The vector leg uses exactly the expression and predicate of the model's partial HNSW index
 * (db/vector-index.ts). For a small tenant the planner prefers the b-tree on (tenant_id, model)
 * and answers exactly; for a large one it scans HNSW, where `hnsw.iterative_scan` (set by
 * withTenant) keeps scanning until the tenant filter has yielded the full candidate list.
 */
export async function hybridSearch(scope: TenantScope, query: HybridQuery): Promise<SearchHit[]> {
  const dims = sql.raw(String(Math.trunc(query.dimensions)));
  const model = sql.raw(modelLiteral(query.model));
  const queryVector = sql`${`[${query.vector.join(",")}]`}::vector(${dims})`;
  const distance = sql`(${chunks.embedding}::vector(${dims})) <=> ${queryVector}`;
  const candidates = Math.max(query.k * 4, 40);
  const owned = scope.owns(chunks.tenantId);

  const rows = await queryRows<{
    id: string;
    tenant_id: string;
    document_id: string;
    position: number;
    heading: string | null;
    text: string;
    title: string;
    score: string | number;
    similarity: string | number;
    text_match: boolean;
  }>(
    scope.tx,
    sql`
    WITH vector_hits AS (
      SELECT id, row_number() OVER (ORDER BY distance) AS rank FROM (
        SELECT ${chunks.id} AS id, ${distance} AS distance
        FROM ${chunks}
        WHERE ${owned} AND ${chunks.embeddingModel} = ${model}
        ORDER BY ${distance}
        LIMIT ${candidates}
      ) AS nearest
    ),
    text_hits AS (
      SELECT id, row_number() OVER (ORDER BY score DESC, id) AS rank FROM (
        SELECT ${chunks.id} AS id, ts_rank_cd(${chunks.tsv}, query) AS score
        FROM ${chunks}, websearch_to_tsquery('english', ${query.text}) AS query
        WHERE ${owned} AND ${chunks.embeddingModel} = ${model} AND ${chunks.tsv} @@ query
        ORDER BY score DESC
        LIMIT ${candidates}
      ) AS matched
    ),
    fused AS (
      SELECT coalesce(v.id, t.id) AS id,
             coalesce(1.0 / (${RRF_K} + v.rank), 0) + coalesce(1.0 / (${RRF_K} + t.rank), 0) AS score,
             t.rank IS NOT NULL AS text_match
      FROM vector_hits v FULL OUTER JOIN text_hits t ON v.id = t.id
    )
    SELECT c.id, c.tenant_id, c.document_id, c.position, c.heading, c.text, d.title,
           fused.score, fused.text_match,
           1 - ((c.embedding::vector(${dims})) <=> ${queryVector}) AS similarity
    FROM fused
    JOIN (SELECT * FROM ${chunks} WHERE ${owned}) AS c ON c.id = fused.id
    JOIN documents d ON d.tenant_id = c.tenant_id AND d.id = c.document_id
    ORDER BY fused.score DESC, similarity DESC
    LIMIT ${query.k}`,
  );

  return rows.map((r) => ({
    chunkId: r.id,
    tenantId: r.tenant_id,
    documentId: r.document_id,
    position: r.position,
    heading: r.heading,
    text: r.text,
    title: r.title,
    score: Number(r.score),
    similarity: Number(r.similarity),
    textMatch: r.text_match,
  }));
}
