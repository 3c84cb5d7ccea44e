import { sql } from "drizzle-orm";
import { expect } from "vitest";
import { queryRows } from "../../src/db/database.js";
import type { ErrorBody, SearchBody, SearchResult } from "./api-types.js";
import type { TestFence } from "./harness.js";

/** Shared assertions and probes for the HTTP contract suites. */

/**
 * Asserts the documented error contract: the status, `{error:{code,message,request_id}}`, and a
 * request id that matches the `x-request-id` header. Returns the body for further checks.
 */
export async function expectError(res: Response, status: number, code?: string): Promise<ErrorBody> {
  const text = await res.text();
  expect(res.status, `status for body ${text.slice(0, 300)}`).toBe(status);
  expect(res.headers.get("content-type") ?? "").toMatch(/^application\/json/);
  const body = JSON.parse(text) as ErrorBody;
  expect(body.error).toMatchObject({ code: expect.any(String), message: expect.any(String), request_id: expect.any(String) });
  expect(body.error.message.length).toBeGreaterThan(0);
  expect(body.error.request_id).toBe(res.headers.get("x-request-id"));
  if (code) expect(body.error.code).toBe(code);
  return body;
}

export interface TenantRowCounts {
  documents: number;
  chunks: number;
  apiKeys: number;
}

/**
 * Counts a tenant's rows as the database owner, past row-level security, so the numbers are the
 * truth in storage rather than what the API chooses to show.
 */
export async function countTenantRows(fence: TestFence, tenantId: string): Promise<TenantRowCounts> {
  const [row] = await fence.fence.db.asOwner((tx) =>
    queryRows<{ documents: number | string; chunks: number | string; api_keys: number | string }>(
      tx,
      sql`select
        (select count(*) from documents where tenant_id = ${tenantId}::uuid) as documents,
        (select count(*) from chunks where tenant_id = ${tenantId}::uuid) as chunks,
        (select count(*) from api_keys where tenant_id = ${tenantId}::uuid) as api_keys`,
    ),
  );
  return { documents: Number(row!.documents), chunks: Number(row!.chunks), apiKeys: Number(row!.api_keys) };
}

/** Chunk rows stored for one document, counted as the owner. */
export async function countDocumentChunks(fence: TestFence, documentId: string): Promise<number> {
  const [row] = await fence.fence.db.asOwner((tx) =>
    queryRows<{ n: number | string }>(tx, sql`select count(*) as n from chunks where document_id = ${documentId}::uuid`),
  );
  return Number(row!.n);
}

/** A multipart upload of one file (plus optional form fields) through the whole stack. */
export async function uploadFile(
  fence: TestFence,
  key: string,
  file: { name: string; type: string; content: string | Uint8Array } | undefined,
  fields: Record<string, string> = {},
): Promise<Response> {
  const form = new FormData();
  if (file) form.append("file", new File([file.content], file.name, { type: file.type }));
  for (const [name, value] of Object.entries(fields)) form.append(name, value);
  return fence.request("POST", "/v1/documents", { key, body: form });
}

export async function search(fence: TestFence, key: string, query: string, k = 20): Promise<SearchResult[]> {
  const res = await fence.request("POST", "/v1/search", { key, json: { query, k } });
  expect(res.status).toBe(200);
  return ((await res.json()) as SearchBody).results;
}
