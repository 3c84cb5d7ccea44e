import { and, asc, desc, eq, ilike, lt, or } from "drizzle-orm";
import type { Database, TenantScope } from "../db/database.js";
import { chunks, documents, type DocumentRow } from "../db/schema.js";
import { isStorableInstant } from "../db/storable-instant.js";
import { NotFoundError, ValidationError } from "../core/errors.js";
import type { TenantCaches } from "../cache/tenant-caches.js";
import { forgetCachedContent } from "../tenancy/data-version.js";
import { isUuid, type TenantContext } from "../core/tenant-context.js";

/** Reads and deletes of a tenant's documents. Every query runs in `withTenant` and filters by owner. */
export class DocumentStore {
  constructor(
    private readonly db: Database,
    /** Emptied of the tenant's entries after a delete, so a deleted text does not sit in Redis until its TTL. */
    private readonly caches?: TenantCaches,
  ) {}

  async get(ctx: TenantContext, documentId: string): Promise<DocumentRow> {
    // A malformed id answers exactly like another tenant's id and a missing one (invariant I6).
    if (!isUuid(documentId)) throw new NotFoundError("Document");
    const row = await this.db.withTenant(ctx, (scope) => findDocument(scope, documentId));
    if (!row) throw new NotFoundError("Document");
    return row;
  }

  /** `titleContains`: only documents whose title holds the text, case-insensitively (taken literally: `%` and `_` match themselves). */
  async list(ctx: TenantContext, options: { limit: number; cursor?: string | undefined; titleContains?: string | undefined }): Promise<{
    documents: DocumentRow[];
    nextCursor: string | null;
  }> {
    const after = options.cursor ? decodeCursor(options.cursor) : undefined;
    const rows = await this.db.withTenant(ctx, (scope) =>
      scope.tx
        .select()
        .from(documents)
        .where(
          and(
            scope.owns(documents.tenantId),
            options.titleContains ? ilike(documents.title, `%${escapeLike(options.titleContains)}%`) : undefined,
            after
              ? or(
                  lt(documents.createdAt, after.createdAt),
                  and(eq(documents.createdAt, after.createdAt), lt(documents.id, after.id)),
                )
              : undefined,
          ),
        )
        .orderBy(desc(documents.createdAt), desc(documents.id))
        .limit(options.limit + 1),
    );
    const page = rows.slice(0, options.limit);
    const last = page[page.length - 1];
    return { documents: page, nextCursor: rows.length > options.limit && last ? encodeCursor(last) : null };
  }

  /** The document's first `limit` chunks in reading order (the console's document page). */
  async chunks(ctx: TenantContext, documentId: string, limit: number): Promise<{ position: number; heading: string | null; text: string }[]> {
    if (!isUuid(documentId)) throw new NotFoundError("Document");
    return this.db.withTenant(ctx, (scope) =>
      scope.tx
        .select({ position: chunks.position, heading: chunks.heading, text: chunks.text })
        .from(chunks)
        .where(and(scope.owns(chunks.tenantId), eq(chunks.documentId, documentId)))
        .orderBy(asc(chunks.position))
        .limit(limit),
    );
  }

  /**
   * Removes the document and its chunks. Everything cached for the tenant becomes unreachable when
   * this commits (the cache secret rotates with it), then is deleted here and in Redis.
   */
  async delete(ctx: TenantContext, documentId: string): Promise<void> {
    if (!isUuid(documentId)) throw new NotFoundError("Document");
    const deleted = await this.db.withTenant(ctx, async (scope) => {
      const removed = await scope.tx
        .delete(documents)
        .where(and(scope.owns(documents.tenantId), eq(documents.id, documentId)))
        .returning({ id: documents.id });
      if (removed.length > 0) await forgetCachedContent(scope);
      return removed.length;
    });
    if (deleted === 0) throw new NotFoundError("Document");
    await this.caches?.purgeTenant(ctx.tenantId);
  }
}

export async function findDocument(scope: TenantScope, documentId: string): Promise<DocumentRow | undefined> {
  const [row] = await scope.tx
    .select()
    .from(documents)
    .where(and(scope.owns(documents.tenantId), eq(documents.id, documentId)));
  return row;
}

/** A LIKE pattern's wildcards and escape character, taken literally. */
function escapeLike(text: string): string {
  return text.replace(/[\\%_]/g, (c) => `\\${c}`);
}

/** Opaque pagination cursor: the (created_at, id) of the last row of the previous page. */
function encodeCursor(row: DocumentRow): string {
  return Buffer.from(JSON.stringify([row.createdAt.toISOString(), row.id])).toString("base64url");
}

function decodeCursor(cursor: string): { createdAt: Date; id: string } {
  try {
    const [createdAt, id] = JSON.parse(Buffer.from(cursor, "base64url").toString("utf8")) as [string, string];
    const date = new Date(createdAt);
    // The HTTP schema checks the same; this keeps a year 0 or 275760 date from reaching the query.
    if (typeof id !== "string" || !isUuid(id) || !isStorableInstant(date)) throw new Error("bad cursor");
    return { createdAt: date, id };
  } catch {
    throw new ValidationError("Invalid pagination cursor.");
  }
}
