import { randomUUID } from "node:crypto";
import { sql } from "drizzle-orm";
import { queryRows } from "../src/db/database.js";
import { ensureVectorIndex, modelLiteral, vectorIndexName } from "../src/db/vector-index.js";
import { authenticateTenantKey } from "../src/tenancy/authenticate.js";
import { TenantAdmin } from "../src/tenancy/tenant-admin.js";
import type { TenantContext } from "../src/core/tenant-context.js";
import type { BenchBackend } from "./backends.js";
import type { BenchOptions } from "./options.js";
import { since } from "./stats.js";
import { WORDS } from "./text-corpus.js";

export interface BenchTenant {
  label: string;
  id: string;
  ctx: TenantContext;
  bulkChunks: number;
}

export interface Corpus {
  small: BenchTenant;
  large: BenchTenant;
  /** Receives the store-only ingest run, so it does not add duplicates to the measured tenants. */
  scratch: BenchTenant;
  tenants: number;
  bulkChunks: number;
  otherTenantChunks: { min: number; median: number; max: number };
  loadMs: number;
  indexMs: number;
  analyzeMs: number;
}

/** Bulk chunks per document, like a mid-sized help article. */
const CHUNKS_PER_DOCUMENT = 8;

/**
 * Creates the tenants through TenantAdmin (the real platform path), issues keys for the tenants we
 * measure and authenticates them (so the contexts are real verified ones), then bulk-loads the
 * corpus with set-based SQL as the owner: random unit vectors under the default model's id, and
 * word-run texts from the shared vocabulary for the full-text leg. The HNSW index is dropped for
 * the load and rebuilt once afterwards with the service's own DDL (ensureVectorIndex), which is
 * far faster than maintaining it row by row.
 */
export async function buildCorpus(backend: BenchBackend, options: BenchOptions): Promise<Corpus> {
  const { db, embeddings, caches } = backend.fence;
  const admin = new TenantAdmin(db, caches);
  const allocation = allocateChunks(options);
  const ids: string[] = [];
  for (let i = 0; i < options.tenants; i++) {
    const tenant = await admin.createTenant({ name: `bench-tenant-${i}`, plan: "free" });
    ids.push(tenant.id);
  }
  const measured = async (index: number, label: string): Promise<BenchTenant> => {
    const issued = await admin.issueKey(ids[index]!, { name: "bench", project: "bench", environment: "test" });
    const ctx = await authenticateTenantKey(db, issued.key, `bench-${randomUUID()}`);
    return { label, id: ids[index]!, ctx, bulkChunks: allocation[index]! };
  };
  const large = await measured(0, "large");
  const small = await measured(1, "small");
  const scratch = await measured(options.tenants - 1, "scratch");

  const model = embeddings.model;
  const dims = embeddings.dimensions;
  const words = WORDS.join(" ");
  let start = performance.now();
  await db.asOwner(async (tx) => {
    await tx.execute(sql.raw(`DROP INDEX IF EXISTS ${vectorIndexName(model)}`));
    // Same seed, same corpus, on every run and both backends.
    await tx.execute(sql`SELECT setseed(${(options.seed % 1000) / 1000})`);
    for (let i = 0; i < ids.length; i++) {
      const rows = allocation[i]!;
      if (rows === 0) continue;
      await tx.execute(sql`
        INSERT INTO documents (tenant_id, title, media_type, content_hash, byte_size, chunk_count, embedding_model)
        SELECT ${ids[i]!}::uuid, 'Bulk article ' || g, 'text/plain', md5(${ids[i]!} || g), 4000, ${CHUNKS_PER_DOCUMENT}, ${model}
        FROM generate_series(1, ${Math.ceil(rows / CHUNKS_PER_DOCUMENT)}) AS g`);
      // The lateral subqueries reference the outer row, so they run once per chunk (new vector, new text).
      await tx.execute(sql`
        INSERT INTO chunks (tenant_id, document_id, position, text, embedding_model, embedding)
        SELECT d.tenant_id, d.id, p.pos, t.body, ${model}, v.embedding
        FROM documents d
        CROSS JOIN generate_series(0, ${CHUNKS_PER_DOCUMENT - 1}) AS p(pos)
        CROSS JOIN LATERAL (
          SELECT l2_normalize(array_agg(random() - 0.5)::vector) AS embedding
          FROM generate_series(1, ${dims}) WHERE p.pos >= 0 AND d.id IS NOT NULL
        ) AS v
        CROSS JOIN LATERAL (
          SELECT array_to_string(array_agg((string_to_array(${words}, ' '))[1 + floor(random() * ${WORDS.length})::int]), ' ') AS body
          FROM generate_series(1, 30 + floor(random() * 30)::int) WHERE p.pos >= 0 AND d.id IS NOT NULL
        ) AS t
        WHERE d.tenant_id = ${ids[i]!}::uuid
        LIMIT ${rows}`);
    }
  });
  const loadMs = since(start);

  start = performance.now();
  await ensureVectorIndex(db, model, dims);
  const indexMs = since(start);

  start = performance.now();
  if (backend.runOutsideTransaction) {
    // Postgres: VACUUM sets the visibility map and keeps autovacuum from waking up mid-measurement.
    await backend.runOutsideTransaction("VACUUM ANALYZE tenants, documents, chunks");
  } else {
    await db.asOwner((tx) => tx.execute(sql`ANALYZE tenants, documents, chunks`));
  }
  const analyzeMs = since(start);

  const [check] = await db.asOwner((tx) =>
    queryRows<{ n: number | string }>(tx, sql.raw(`SELECT count(*) AS n FROM chunks WHERE embedding_model = ${modelLiteral(model)}`)),
  );
  const total = allocation.reduce((s, v) => s + v, 0);
  if (Number(check!.n) !== total) throw new Error(`bulk load wrote ${check!.n} chunks, expected ${total}`);

  const others = allocation.slice(2).sort((a, b) => a - b);
  return {
    small,
    large,
    scratch,
    tenants: ids.length,
    bulkChunks: total,
    otherTenantChunks: { min: others[0]!, median: others[Math.floor(others.length / 2)]!, max: others[others.length - 1]! },
    loadMs,
    indexMs,
    analyzeMs,
  };
}

/**
 * Chunks per tenant: index 0 is the large tenant (largeShare of all), index 1 the small one, and the
 * rest share the remainder with a mild Zipf skew (a few big customers, a long tail), as in real
 * multi-tenant services.
 */
export function allocateChunks(options: BenchOptions): number[] {
  const large = Math.round(options.chunks * options.largeShare);
  const small = Math.min(options.smallChunks, options.chunks - large);
  const rest = options.chunks - large - small;
  const others = options.tenants - 2;
  const weights = Array.from({ length: others }, (_, i) => 1 / Math.sqrt(i + 1));
  const totalWeight = weights.reduce((s, w) => s + w, 0);
  const shares = weights.map((w) => Math.floor((rest * w) / totalWeight));
  let leftover = rest - shares.reduce((s, v) => s + v, 0);
  for (let i = 0; leftover > 0; i = (i + 1) % others, leftover--) shares[i]!++;
  return [large, small, ...shares];
}
