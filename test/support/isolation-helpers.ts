import type { SQL } from "drizzle-orm";
import { PgDialect } from "drizzle-orm/pg-core";
import { TenantScope, type Tx } from "../../src/db/database.js";
import { hybridSearch, type HybridQuery } from "../../src/retrieval/hybrid-search.js";
import { authenticateTenantKey } from "../../src/tenancy/authenticate.js";
import type { TenantContext } from "../../src/core/tenant-context.js";
import type { TestFence, TestTenant } from "./harness.js";

/**
 * Small helpers shared by the isolation-invariant suites. They use only public entry points:
 * a real TenantContext comes from authenticating the tenant's real key, exactly as a request does.
 */
export function contextFor(fence: TestFence, tenant: TestTenant, requestId = "test-request-0001"): Promise<TenantContext> {
  return authenticateTenantKey(fence.fence.db, tenant.key, requestId);
}

/** Renders a drizzle SQL object to the text and parameters Postgres would receive. */
export function renderSql(query: SQL): { sql: string; params: unknown[] } {
  return new PgDialect().sqlToQuery(query);
}

/**
 * The exact SQL `hybridSearch` sends, captured by a transaction stand-in that records the query
 * instead of running it. Lets a test assert on, or EXPLAIN, the real query text.
 */
export async function captureHybridSearchSql(ctx: TenantContext, query: HybridQuery): Promise<SQL> {
  let captured: SQL | undefined;
  const recordingTx = {
    execute: async (q: SQL) => {
      captured = q;
      return { rows: [] };
    },
  } as unknown as Tx;
  await hybridSearch(new TenantScope(recordingTx, ctx, {}), query);
  if (!captured) throw new Error("hybridSearch sent no query");
  return captured;
}

/**
 * The Postgres error under drizzle's wrapper (DrizzleQueryError keeps the driver error as
 * `cause`): code and message of the innermost error that has a SQLSTATE.
 */
export async function postgresErrorOf(work: Promise<unknown>): Promise<{ code: string; message: string }> {
  try {
    await work;
  } catch (error) {
    for (let e: unknown = error; e; e = (e as { cause?: unknown }).cause) {
      const code = (e as { code?: unknown }).code;
      if (typeof code === "string" && /^[0-9A-Z]{5}$/.test(code)) return { code, message: (e as Error).message };
    }
    throw error;
  }
  throw new Error("expected the statement to fail, but it succeeded");
}

/** Status, raw text and parsed JSON body of a response (the raw text lets tests search for leaks). */
export async function readJson<T>(response: Response | Promise<Response>): Promise<{ status: number; text: string; body: T }> {
  const res = await response;
  const text = await res.text();
  return { status: res.status, text, body: (text ? JSON.parse(text) : undefined) as T };
}
