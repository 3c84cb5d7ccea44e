import { sql } from "drizzle-orm";
import { queryRows, type TenantScope } from "../db/database.js";
import { chunks, documents } from "../db/schema.js";
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

  // Each leg carries the columns the answer needs, so the fused top-k never joins back to chunks:
  // under RLS that re-join was planned as a scan of the tenant's every chunk (1.5x slower on a
  // tenant with 10 % of the rows). Only k primary-key lookups into documents remain.
  const columns = sql`${chunks.id} AS id, ${chunks.tenantId} AS tenant_id, ${chunks.documentId} AS document_id,
    ${chunks.position} AS position, ${chunks.heading} AS heading, ${chunks.text} AS text`;
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
      SELECT nearest.*, row_number() OVER (ORDER BY distance) AS rank FROM (
        SELECT ${columns}, ${distance} AS distance
        FROM ${chunks}
        WHERE ${owned} AND ${chunks.embeddingModel} = ${model}
        ORDER BY ${distance}
        LIMIT ${candidates}
      ) AS nearest
    ),
    text_hits AS (
      SELECT id, tenant_id, document_id, position, heading, text,
             (embedding::vector(${dims})) <=> ${queryVector} AS distance,
             row_number() OVER (ORDER BY score DESC, id) AS rank
      FROM (
        SELECT ${columns}, ${chunks.embedding} AS embedding, ts_rank_cd(${chunks.tsv}, query) AS score
        FROM ${chunks}, websearch_to_tsquery('english', ${query.text}) AS query
        WHERE ${owned} AND ${chunks.embeddingModel} = ${model} AND ${chunks.tsv} @@ query
        ORDER BY score DESC
        LIMIT ${candidates}
      ) AS matched
    ),
    fused AS (
      SELECT coalesce(v.id, t.id) AS id, coalesce(v.tenant_id, t.tenant_id) AS tenant_id,
             coalesce(v.document_id, t.document_id) AS document_id, coalesce(v.position, t.position) AS position,
             coalesce(v.heading, t.heading) AS heading, coalesce(v.text, t.text) AS text,
             1 - coalesce(v.distance, t.distance) AS similarity,
             coalesce(1.0 / (${RRF_K} + v.rank), 0) + coalesce(1.0 / (${RRF_K} + t.rank), 0) AS score,
             t.rank IS NOT NULL AS text_match
      FROM vector_hits v FULL OUTER JOIN text_hits t ON v.id = t.id
      ORDER BY score DESC, similarity DESC
      LIMIT ${query.k}
    )
    SELECT fused.*, ${documents.title} AS title
    FROM fused
    JOIN ${documents} ON ${documents.tenantId} = fused.tenant_id AND ${documents.id} = fused.document_id
    WHERE ${scope.owns(documents.tenantId)}
    ORDER BY fused.score DESC, fused.similarity DESC`,
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
