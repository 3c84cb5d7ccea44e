import { eq, inArray } from "drizzle-orm";
import { chunks, tenants } from "../../src/db/schema.js";
import type { FenceInstance } from "../../src/platform/fence.js";
import { jobNeedles, seedJobs, type SeededJobs } from "./attacks/jobs.js";
import type { Corpus } from "./corpus.js";
import type { Owner } from "./exchange.js";
import type { TenantTruth } from "./leak-detector.js";
import type { UsageCanary } from "./usage-canary.js";
import type { IngestedDocumentJson, IssuedKeyJson, TenantJson } from "../../test/support/api-types.js";

/**
 * Seeds the two tenants of one instance the way a customer would: the platform admin creates
 * them and issues keys over HTTP, then each tenant uploads its corpus over HTTP — Markdown as
 * JSON, .txt/.html as multipart file uploads — so both upload paths carry secrets. Tenant A also
 * gets a second key that is revoked at once: the eval attacks with it.
 */
export interface SeededDocument {
  id: string;
  sourceId: string;
  title: string;
  version: number;
  chunkCount: number;
  createdAt: string;
  upload: "json" | "multipart";
  /** The canary in the document text. */
  canary: string;
  /** A second canary in the document's metadata: it surfaces in document JSON, not in chunks. */
  metadataCanary: string;
}

export interface SeededTenant {
  owner: Owner;
  id: string;
  name: string;
  key: string;
  keyId: string;
  corpus: Corpus;
  documents: SeededDocument[];
  /** Only A has one: issued, then revoked before any attack. */
  revokedKey?: { key: string; id: string };
  /** The tenant's distinctive usage event (usage-canary.ts), seeded after its documents. */
  usageCanary?: UsageCanary;
  /** Ingestion jobs, queued after its documents and left queued (attacks/jobs.ts). */
  jobs?: SeededJobs;
}

export async function seedTenant(
  url: string,
  adminKey: string,
  owner: Owner,
  corpus: Corpus,
  runId: string,
  modeTag: string,
): Promise<SeededTenant> {
  const admin = (method: string, path: string, json?: unknown) => platformCall(url, adminKey, method, `/v1/admin${path}`, json);
  const name = `${corpus.tenant}-${runId}-${modeTag}`;
  const tenant = (await admin("POST", "/tenants", { name })) as TenantJson;
  const issued = (await admin("POST", `/tenants/${tenant.id}/keys`, { name: "eval" })) as IssuedKeyJson;
  const seeded: SeededTenant = { owner, id: tenant.id, name, key: issued.key, keyId: issued.id, corpus, documents: [] };

  for (const doc of corpus.documents) {
    const metadataCanary = `CANARY-${corpus.tenant.toUpperCase()}-${runId}-META-${doc.fileName.replace(/\W+/g, "-").toUpperCase()}`;
    const metadata = { classification: "confidential", reference: metadataCanary };
    let body: unknown;
    if (doc.upload === "json") {
      body = await platformCall(url, issued.key, "POST", "/v1/documents", { text: doc.text, source_id: doc.sourceId, metadata });
    } else {
      const form = new FormData();
      form.append("file", new Blob([doc.text]), doc.fileName);
      form.append("source_id", doc.sourceId);
      form.append("metadata", JSON.stringify(metadata));
      // An explicit title: the route's default (the file name) is part of the guessable source_id.
      form.append("title", titleOf(doc.text));
      body = await platformCall(url, issued.key, "POST", "/v1/documents", form);
    }
    const stored = body as IngestedDocumentJson;
    if (stored.outcome !== "created") throw new Error(`seed ${doc.sourceId}: outcome ${stored.outcome}`);
    seeded.documents.push({
      id: stored.id,
      sourceId: doc.sourceId,
      title: stored.title,
      version: stored.version,
      chunkCount: stored.chunk_count,
      createdAt: stored.created_at,
      upload: doc.upload,
      canary: doc.canary,
      metadataCanary,
    });
  }

  seeded.jobs = await seedJobs((method, path, body, headers) => platformCall(url, issued.key, method, path, body, headers), seeded, runId, modeTag);

  if (owner === "A") {
    const spare = (await admin("POST", `/tenants/${tenant.id}/keys`, { name: "to-revoke", environment: "test" })) as IssuedKeyJson;
    await admin("DELETE", `/tenants/${tenant.id}/keys/${spare.id}`);
    seeded.revokedKey = { key: spare.key, id: spare.id };
  }
  return seeded;
}

/**
 * Ground truth for the detector: every needle of a tenant, with its chunk ids and texts read from
 * the database as the platform (the only reader that sees every row in every mutation mode).
 */
export async function truthOf(fence: FenceInstance, tenant: SeededTenant): Promise<TenantTruth> {
  const rows = await fence.db.asPlatformAdmin("isolation-eval-ground-truth", (tx) =>
    tx.select({ id: chunks.id, text: chunks.text }).from(chunks).where(inArray(chunks.tenantId, [tenant.id])),
  );
  return {
    owner: tenant.owner,
    tenantId: tenant.id,
    tenantName: tenant.name,
    apiKeys: [tenant.key, ...(tenant.revokedKey ? [tenant.revokedKey.key] : [])],
    keyIds: [tenant.keyId, ...(tenant.revokedKey ? [tenant.revokedKey.id] : [])],
    documents: tenant.documents.map((d) => ({ id: d.id, title: d.title, canaries: [d.canary, d.metadataCanary] })),
    jobs: jobNeedles(tenant.jobs),
    chunks: rows,
    secrets: tenant.corpus.secrets,
  };
}

/** A tenant's data version (part of every answer-cache key), read as the platform. */
export async function dataVersionOf(fence: FenceInstance, tenantId: string): Promise<number> {
  const [row] = await fence.db.asPlatformAdmin("isolation-eval-ground-truth", (tx) =>
    tx.select({ version: tenants.dataVersion }).from(tenants).where(eq(tenants.id, tenantId)),
  );
  return row?.version ?? -1;
}

/** Removes the tenants again, so repeated runs do not grow a shared Postgres database. */
export async function purgeTenants(url: string, adminKey: string, tenants: SeededTenant[]): Promise<void> {
  for (const t of tenants) await platformCall(url, adminKey, "DELETE", `/v1/admin/tenants/${t.id}`).catch(() => undefined);
}

/** A setup call (not an attack): not recorded, and any failure aborts the mode. */
async function platformCall(url: string, key: string, method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<unknown> {
  const init: RequestInit = { method, headers: { authorization: `Bearer ${key}`, ...headers } };
  if (body instanceof FormData) init.body = body;
  else if (body !== undefined) {
    init.body = JSON.stringify(body);
    (init.headers as Record<string, string>)["content-type"] = "application/json";
  }
  const res = await fetch(url + path, init);
  const text = await res.text();
  if (!res.ok) throw new Error(`setup ${method} ${path}: ${res.status} ${text}`);
  return text ? (JSON.parse(text) as unknown) : undefined;
}

/** The HTML <title>, else the first line of the text. */
function titleOf(text: string): string {
  return (/<title>([^<]+)<\/title>/i.exec(text)?.[1] ?? text.split("\n")[0]!).trim();
}
