/**
 * What a tenant key may do (issue 18), fixed when the key is made:
 * - `query`: search and chat;
 * - `ingest`: upload documents and batches, and follow or cancel the tenant's jobs;
 * - `read`: documents (list, get), runs, usage, limits and eval cases;
 * - `owner`: everything of the tenant, including what the others do not grant (deleting
 *   documents, writing eval cases) and, later, its keys and settings.
 * Keys made before scopes existed are `owner` (migration 0014), so nothing they did breaks.
 */
export const SCOPES = ["query", "ingest", "read", "owner"] as const;
export type Scope = (typeof SCOPES)[number];

export function isScope(value: string): value is Scope {
  return (SCOPES as readonly string[]).includes(value);
}

/** Whether a key holding `held` may use a route that needs `needed`. */
export function grants(held: readonly Scope[], needed: Scope): boolean {
  return held.includes("owner") || held.includes(needed);
}

/** Whether a key holding `held` may make a key holding `wanted`: never more than itself. */
export function covers(held: readonly Scope[], wanted: readonly Scope[]): boolean {
  return wanted.every((scope) => grants(held, scope));
}
