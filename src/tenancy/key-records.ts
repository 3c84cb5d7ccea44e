import { and, eq, inArray, isNull, sql, type SQL } from "drizzle-orm";
import { recordAuditEvent, recordAuditEvents, type AuditEventInput } from "../audit/audit-log.js";
import { announceKeyChange } from "../db/key-changes.js";
import type { Scope } from "../core/scopes.js";
import type { KeyEnvironment } from "../core/tenant-context.js";
import type { Tx } from "../db/database.js";
import { apiKeys, type ApiKeyRow } from "../db/schema.js";
import { generateApiKey } from "./api-keys.js";

/** What is asked of a new key, by the platform admin or by a tenant's owner key. */
export interface KeyRequest {
  name: string;
  project: string;
  environment: KeyEnvironment;
  requests_per_minute?: number | undefined;
  tokens_per_month?: number | undefined;
  spend_per_month_micros?: number | undefined;
  scopes?: readonly Scope[] | undefined;
  expires_at?: string | undefined;
  description?: string | undefined;
}

/**
 * A key as the API shows it and the audit trail records it: everything but its secret. The same
 * shape for the admin, the owner (GET /v1/keys) and the trail, so what one sees the others see.
 */
// A type, not an interface: an audit event holds it as a plain record.
export type KeyView = {
  id: string;
  prefix: string;
  name: string;
  project: string;
  environment: KeyEnvironment;
  requests_per_minute: number | null;
  tokens_per_month: number | null;
  spend_per_month_micros: number | null;
  scopes: Scope[];
  expires_at: string | null;
  description: string | null;
  /** The key that made this one (POST /v1/keys); null when the platform admin did. */
  created_by_key_id: string | null;
  /** Until then the secret the last rotation replaced still authenticates; null if none does. */
  prior_secret_expires_at: string | null;
  /** When the key last authenticated a request, to within a minute (tenancy/key-use.ts). */
  last_used_at: string | null;
  created_at: string;
  revoked_at: string | null;
};

/** A new key: its view and, shown once, its plaintext. */
export type IssuedKey = KeyView & { key: string };

export function viewOfKey(row: ApiKeyRow): KeyView {
  return {
    id: row.id,
    prefix: row.prefix,
    name: row.name,
    project: row.project,
    environment: row.environment as KeyEnvironment,
    requests_per_minute: row.requestsPerMinute,
    tokens_per_month: row.tokensPerMonth,
    spend_per_month_micros: row.spendPerMonthMicros,
    scopes: row.scopes as Scope[],
    expires_at: row.expiresAt?.toISOString() ?? null,
    description: row.description,
    created_by_key_id: row.createdByKeyId,
    prior_secret_expires_at: row.priorKeyHash && row.priorKeyExpiresAt ? row.priorKeyExpiresAt.toISOString() : null,
    last_used_at: row.lastUsedAt?.toISOString() ?? null,
    created_at: row.createdAt.toISOString(),
    revoked_at: row.revokedAt?.toISOString() ?? null,
  };
}

/** Who changes a key: the platform admin, or a tenant key (recorded in the audit trail). */
export type KeyActor = "admin" | { keyId: string; requestId: string };

const actorFields = (actor: KeyActor) => (actor === "admin" ? {} : { actorKeyId: actor.keyId, requestId: actor.requestId });

/**
 * Inserts a key of `tenantId` (the caller's transaction decides the role: the platform's, or the
 * tenant's own under RLS), records it in the audit trail and announces it to every instance, and
 * returns it with its plaintext, which is never stored. A key made by a tenant key records that
 * key as its maker.
 */
export async function insertKey(tx: Tx, tenantId: string, request: KeyRequest, actor: KeyActor): Promise<{ issued: IssuedKey; hash: string }> {
  const generated = generateApiKey(request.environment);
  const [row] = await tx
    .insert(apiKeys)
    .values({
      tenantId,
      name: request.name,
      prefix: generated.prefix,
      keyHash: generated.hash,
      project: request.project,
      environment: request.environment,
      requestsPerMinute: request.requests_per_minute ?? null,
      tokensPerMonth: request.tokens_per_month ?? null,
      spendPerMonthMicros: request.spend_per_month_micros ?? null,
      scopes: [...(request.scopes ?? ["owner"])],
      expiresAt: request.expires_at ? new Date(request.expires_at) : null,
      description: request.description ?? null,
      createdByKeyId: actor === "admin" ? null : actor.keyId,
    })
    .returning();
  const view = viewOfKey(row!);
  await recordAuditEvent(tx, { tenantId, ...actorFields(actor), action: "key.created", targetId: view.id, after: view });
  await announceKeyChange(tx, `tenant:${tenantId}`);
  return { issued: { ...view, key: generated.key }, hash: generated.hash };
}

/**
 * Revokes the key and every key it made, and every key those made, … (a key made by a key that
 * was revoked must not outlive it: whoever held the revoked key could have made them), records
 * each in the audit trail and announces the change. `owns` is the tenant predicate of the
 * caller's transaction. Returns the keys revoked, the asked-for one first; none if it does not
 * exist or was already revoked. Level by level rather than one recursive query: a tenant has few
 * keys, and every statement stays on the tenant's shard (Citus).
 */
export async function revokeKeyAndItsKeys(tx: Tx, owns: SQL, tenantId: string, keyId: string, actor: KeyActor): Promise<ApiKeyRow[]> {
  const revoked = await tx
    .update(apiKeys)
    .set({ revokedAt: sql`now()` })
    .where(and(owns, eq(apiKeys.id, keyId), isNull(apiKeys.revokedAt)))
    .returning();
  for (let frontier = revoked.map((row) => row.id); frontier.length > 0; ) {
    const made = await tx
      .update(apiKeys)
      .set({ revokedAt: sql`now()` })
      .where(and(owns, inArray(apiKeys.createdByKeyId, frontier), isNull(apiKeys.revokedAt)))
      .returning();
    revoked.push(...made);
    frontier = made.map((row) => row.id);
  }
  if (revoked.length === 0) return revoked;
  await recordAuditEvents(tx, revocationEvents(revoked, tenantId, actor));
  await announceKeyChange(tx, `tenant:${tenantId}`);
  return revoked;
}

/** The audit events of a revocation: the key asked for, then the keys revoked with it. */
function revocationEvents(revoked: readonly ApiKeyRow[], tenantId: string, actor: KeyActor): AuditEventInput[] {
  return revoked.map((row, index) => {
    const after = viewOfKey(row);
    return {
      tenantId,
      ...actorFields(actor),
      action: index === 0 ? "key.revoked" : "key.revoked_with_its_creator",
      targetId: row.id,
      before: { ...after, revoked_at: null },
      after: { ...after },
    };
  });
}
