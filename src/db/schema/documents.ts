import { sql } from "drizzle-orm";
import { customType, foreignKey, index, integer, jsonb, pgTable, primaryKey, text, timestamp, uniqueIndex, uuid } from "drizzle-orm/pg-core";
import { platformAll, RowLevelSecurity, tenantIsolation } from "./rls.js";
import { tenants } from "./tenancy.js";

/** Documents: a tenant's documents and the embedded chunks retrieval searches. */

/** A pgvector column without a fixed dimension: each embedding model gets its own partial index. */
const vector = customType<{ data: number[]; driverData: string }>({
  dataType: () => "vector",
  toDriver: (value) => `[${value.join(",")}]`,
  fromDriver: (value) => JSON.parse(value) as number[],
});

const tsvector = customType<{ data: string }>({ dataType: () => "tsvector" });

export const documents = pgTable(
  "documents",
  {
    tenantId: uuid("tenant_id")
      .notNull()
      .references(() => tenants.id, { onDelete: "cascade" }),
    id: uuid("id").notNull().defaultRandom(),
    sourceId: text("source_id"),
    title: text("title").notNull(),
    mediaType: text("media_type").notNull(),
    contentHash: text("content_hash").notNull(),
    byteSize: integer("byte_size").notNull(),
    chunkCount: integer("chunk_count").notNull(),
    embeddingModel: text("embedding_model").notNull(),
    metadata: jsonb("metadata").$type<Record<string, unknown>>().notNull().default({}),
    version: integer("version").notNull().default(1),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
    updatedAt: timestamp("updated_at", { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    primaryKey({ columns: [t.tenantId, t.id] }),
    uniqueIndex("documents_tenant_source_idx")
      .on(t.tenantId, t.sourceId)
      .where(sql`${t.sourceId} IS NOT NULL`),
    index("documents_tenant_created_idx").on(t.tenantId, t.createdAt, t.id),
  ],
);

/** RLS (drizzle/0001): tenant-owned. */
export const documentsRls = RowLevelSecurity.forced(documents, [tenantIsolation(), platformAll()]);

export const chunks = pgTable(
  "chunks",
  {
    tenantId: uuid("tenant_id").notNull(),
    id: uuid("id").notNull().defaultRandom(),
    documentId: uuid("document_id").notNull(),
    position: integer("position").notNull(),
    heading: text("heading"),
    text: text("text").notNull(),
    embeddingModel: text("embedding_model").notNull(),
    embedding: vector("embedding").notNull(),
    tsv: tsvector("tsv")
      .notNull()
      .generatedAlwaysAs(sql`to_tsvector('english', coalesce(heading, '') || ' ' || text)`),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    primaryKey({ columns: [t.tenantId, t.id] }),
    // The composite key makes a chunk belong to a document *of the same tenant*: a chunk can
    // never point at another tenant's document, whatever the application does.
    foreignKey({
      columns: [t.tenantId, t.documentId],
      foreignColumns: [documents.tenantId, documents.id],
    }).onDelete("cascade"),
    index("chunks_tenant_document_idx").on(t.tenantId, t.documentId, t.position),
    index("chunks_tenant_model_idx").on(t.tenantId, t.embeddingModel),
    index("chunks_tsv_idx").using("gin", t.tsv),
  ],
);

/** RLS (drizzle/0001): tenant-owned. */
export const chunksRls = RowLevelSecurity.forced(chunks, [tenantIsolation(), platformAll()]);

export type DocumentRow = typeof documents.$inferSelect;
export type ChunkRow = typeof chunks.$inferSelect;
