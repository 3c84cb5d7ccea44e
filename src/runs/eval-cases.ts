import { and, desc, eq, inArray, sql, type SQL } from "drizzle-orm";
import type { Database } from "../db/database.js";
import { documents, evalCases, type EvalCaseRow } from "../db/schema.js";
import { NotFoundError, ValidationError } from "../core/errors.js";
import { maskPii } from "../observability/pii-mask.js";
import { isUuid, type TenantContext } from "../core/tenant-context.js";
import type { RunStore } from "./run-store.js";

export interface NewEvalCase {
  /** The run it is made from: by run id or by request id (the newest run with it). */
  runId?: string | undefined;
  requestId?: string | undefined;
  expectedDocumentIds?: string[] | undefined;
  mustContain?: string[] | undefined;
  mustNotContain?: string[] | undefined;
}

/**
 * A tenant's fixed quality cases. A case is made from one of the tenant's own chat runs — its
 * (masked) question, the answer that was reported, the prompt version — plus what a right answer
 * must cite and must or must not say. Everything happens in the tenant's transaction: another
 * tenant's run, or another tenant's document named as expected, is exactly like a missing one.
 */
export class EvalCases {
  constructor(
    private readonly db: Database,
    private readonly runStore: RunStore,
  ) {}

  async create(ctx: TenantContext, input: NewEvalCase): Promise<EvalCaseRow> {
    return this.db.withTenant(ctx, async (scope) => {
      const run = await this.runStore.find(scope, { runId: input.runId, requestId: input.requestId });
      if (!run) throw new NotFoundError("Run");
      if (run.kind !== "chat" || !run.question) {
        throw new ValidationError("Invalid request: only a chat run (one with a question) can become an eval case");
      }
      const expected = [...new Set(input.expectedDocumentIds ?? [])];
      if (expected.length > 0) {
        const found = expected.every(isUuid)
          ? await scope.tx
              .select({ id: documents.id })
              .from(documents)
              .where(and(scope.owns(documents.tenantId), inArray(documents.id, expected)))
          : [];
        const known = new Set(found.map((d) => d.id));
        const unknown = expected.filter((id) => !known.has(id));
        if (unknown.length > 0) {
          throw new ValidationError(`Invalid request: expected_document_ids: no such document: ${unknown.slice(0, 5).join(", ")}`);
        }
      }
      const [row] = await scope.tx
        .insert(evalCases)
        .values({
          tenantId: scope.tenantId,
          // Already masked when the run was stored; masked again in case the run predates a rule.
          question: maskPii(run.question),
          expectedDocumentIds: expected,
          mustContain: input.mustContain ?? [],
          mustNotContain: input.mustNotContain ?? [],
          sourceRunId: run.id,
          sourceRequestId: run.requestId,
          reportedAnswer: run.answer === null ? null : maskPii(run.answer),
          promptVersion: run.promptVersion,
        })
        .returning();
      return row!;
    });
  }

  /** Newest first; `cursor` is the last case id of the previous page. */
  async list(ctx: TenantContext, filter: { limit: number; cursor?: string | undefined }): Promise<{ cases: EvalCaseRow[]; nextCursor: string | null }> {
    return this.db.withTenant(ctx, async (scope) => {
      const conditions: SQL[] = [scope.owns(evalCases.tenantId)];
      if (filter.cursor) {
        const [after] = isUuid(filter.cursor)
          ? await scope.tx
              .select({ id: evalCases.id })
              .from(evalCases)
              .where(and(scope.owns(evalCases.tenantId), eq(evalCases.id, filter.cursor)))
          : [];
        if (!after) throw new ValidationError("Invalid pagination cursor.");
        conditions.push(
          sql`(${evalCases.createdAt}, ${evalCases.id}) <
              ((SELECT c.created_at FROM eval_cases c WHERE c.tenant_id = ${scope.tenantId} AND c.id = ${after.id}), ${after.id}::uuid)`,
        );
      }
      const rows = await scope.tx
        .select()
        .from(evalCases)
        .where(and(...conditions))
        .orderBy(desc(evalCases.createdAt), desc(evalCases.id))
        .limit(filter.limit + 1);
      const page = rows.slice(0, filter.limit);
      return { cases: page, nextCursor: rows.length > filter.limit ? page.at(-1)!.id : null };
    });
  }
}
