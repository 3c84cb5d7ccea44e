import { createHash } from "node:crypto";
import { sql } from "drizzle-orm";
import type { Database } from "./database.js";

/**
 * One HNSW index per embedding model: chunks store vectors of any dimension, and each model gets
 * a partial expression index `(embedding::vector(d)) WHERE embedding_model = '<model>'`. Search
 * uses the same expression and predicate (see retrieval/hybrid-search.ts), so vectors of
 * different models are never compared and switching models is an explicit re-embed.
 */
export function vectorIndexName(model: string): string {
  return `chunks_embedding_hnsw_${createHash("sha256").update(model).digest("hex").slice(0, 16)}`;
}

const SAFE_MODEL = /^[A-Za-z0-9._:/@-]{1,200}$/;

/** The model id is inlined in SQL (partial-index predicates need a literal), so it is checked. */
export function modelLiteral(model: string): string {
  if (!SAFE_MODEL.test(model)) throw new TypeError(`Unsupported embedding model id: ${model}`);
  return `'${model}'`;
}

export async function ensureVectorIndex(db: Database, model: string, dimensions: number): Promise<void> {
  if (!Number.isInteger(dimensions) || dimensions < 1 || dimensions > 4000) {
    throw new TypeError(`HNSW supports 1–4000 dimensions, got ${dimensions}`);
  }
  await db.asOwner(async (tx) => {
    await tx.execute(sql`SELECT pg_advisory_xact_lock(hashtext('fence:vector-index'))`);
    await tx.execute(
      sql.raw(
        `CREATE INDEX IF NOT EXISTS ${vectorIndexName(model)} ON chunks USING hnsw ` +
          `((embedding::vector(${dimensions})) vector_cosine_ops) WHERE embedding_model = ${modelLiteral(model)}`,
      ),
    );
  });
}
