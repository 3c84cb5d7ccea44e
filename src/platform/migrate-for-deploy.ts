import { connectPostgres } from "../db/connect-postgres.js";
import { runMigrations } from "../db/migrate.js";
import { ensureVectorIndex } from "../db/vector-index.js";

export interface MigrateResult {
  applied: number;
  /** The HNSW index made for this embedding model, when the endpoint was given. */
  vectorIndex: { model: string; dimensions: number } | undefined;
}

/**
 * `npm run migrate`: what a Node instance does at start-up, for runtimes that must not (Workers) —
 * the same migrations (db/migrate.ts), and the embedding model's vector index, whose dimensions
 * the Worker would otherwise never create. Run before every deploy, with the Worker's EMBEDDINGS_*.
 */
export async function migrateForDeploy(options: {
  databaseUrl: string;
  embeddings?: { model: string; dimensions: number } | undefined;
}): Promise<MigrateResult> {
  const db = await connectPostgres({ databaseUrl: options.databaseUrl, poolSize: 1 });
  try {
    const applied = await runMigrations(db);
    if (options.embeddings) await ensureVectorIndex(db, options.embeddings.model, options.embeddings.dimensions);
    return { applied, vectorIndex: options.embeddings };
  } finally {
    await db.close();
  }
}
