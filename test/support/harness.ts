import type { FenceConfig } from "../../src/platform/config.js";
import type { IsolationMutations } from "../../src/db/database.js";
import type { EmbeddingProvider } from "../../src/embeddings/provider.js";
import type { FenceInstance } from "../../src/platform/fence.js";
import type { Logger } from "../../src/observability/logger.js";
import type { IngestedDocumentJson, IssuedKeyJson, TenantJson } from "./api-types.js";
import { startFence } from "./fence-harness.js";

export { serveOnLoopback } from "./fence-harness.js";

/**
 * One integration harness for every database backend (the drizzle habit: one suite, several drivers).
 * PGlite always runs, in memory; Postgres runs when DATABASE_URL is set (CI sets it after
 * scripts/setup-postgres.sh); a Citus cluster's coordinator when CITUS_DATABASE_URL is set (CI sets
 * it after the cluster's setup script), Fence distributing its tables there (db/citus.ts). Tests
 * create fresh tenants, so suites share one database per backend.
 */
export interface Backend {
  /** `worker`: Fence on workerd (`wrangler dev`) over Postgres — see test/integration/platform/worker-contract.test.ts. */
  name: "pglite" | "postgres" | "citus" | "worker";
  databaseUrl: string | undefined;
}

/** Set by platform/worker-contract.test.ts before it loads the shared suites: they then run against the Worker only. */
const workerTarget = process.env.FENCE_CONTRACT_TARGET === "worker" && process.env.DATABASE_URL;

export const backends: Backend[] = workerTarget
  ? [{ name: "worker", databaseUrl: process.env.DATABASE_URL }]
  : [
      { name: "pglite", databaseUrl: undefined },
      ...(process.env.DATABASE_URL ? [{ name: "postgres" as const, databaseUrl: process.env.DATABASE_URL }] : []),
      ...(process.env.CITUS_DATABASE_URL ? [{ name: "citus" as const, databaseUrl: process.env.CITUS_DATABASE_URL }] : []),
    ];

/** A server backend (Postgres or a Citus coordinator): one reached by URL, with other processes able to share it. */
export function isServerBackend(backend: Backend): boolean {
  return backend.name === "postgres" || backend.name === "citus";
}

export const ADMIN_KEY = "test-admin-key-0123456789abcdef";

let sharedModel: Promise<EmbeddingProvider> | undefined;

/** The real default model, loaded once per test worker and shared by every instance in it. */
export function defaultEmbeddings(): Promise<EmbeddingProvider> {
  sharedModel ??= import("../../src/embeddings/local-use.js").then((m) => m.LocalUseEmbeddings.load());
  return sharedModel;
}

export interface TestTenant {
  id: string;
  name: string;
  key: string;
  keyId: string;
}

export interface StartOptions {
  env?: Record<string, string>;
  embeddings?: EmbeddingProvider;
  mutations?: IsolationMutations;
  logger?: Logger;
  /** Build the provider from the configuration (FENCE_EMBEDDINGS=…) instead of the shared default model. */
  useConfiguredEmbeddings?: boolean;
}

export class TestFence {
  private constructor(
    readonly fence: FenceInstance,
    readonly config: FenceConfig,
    readonly backend: Backend,
    /** The Worker serving this fence's requests (backend `worker`); `fence` is a Node instance on its database. */
    readonly remote?: { url: string; stop(): Promise<void>; output(): string },
  ) {}

  static async start(backend: Backend, options: StartOptions = {}): Promise<TestFence> {
    if (backend.name === "worker") {
      const { startWorkerFence } = await import("./worker-harness.js");
      const { fence, config, worker } = await startWorkerFence(backend, options.env ?? {});
      return new TestFence(fence, config, backend, worker);
    }
    const { fence, config } = await startFence({
      databaseUrl: backend.databaseUrl,
      adminKey: ADMIN_KEY,
      env: options.env,
      build: {
        embeddings: options.useConfiguredEmbeddings ? undefined : (options.embeddings ?? (await defaultEmbeddings())),
        mutations: options.mutations,
        ...(options.logger ? { logger: options.logger } : {}),
      },
    });
    return new TestFence(fence, config, backend);
  }

  /** An in-process request through the whole Hono stack (middleware, validation, errors). */
  request(method: string, path: string, init: { key?: string; json?: unknown; body?: RequestInit["body"]; headers?: Record<string, string> } = {}) {
    const headers: Record<string, string> = { ...init.headers };
    if (init.key !== undefined) headers.authorization = `Bearer ${init.key}`;
    let body = init.body;
    if (init.json !== undefined) {
      headers["content-type"] ??= "application/json";
      body = JSON.stringify(init.json);
    }
    // Redirects are answers to check (the console's 303s), never followed, in process or over HTTP.
    if (this.remote) return fetch(`${this.remote.url}${path}`, { method, headers, body, redirect: "manual" });
    return this.fence.app.request(path, { method, headers, body });
  }

  admin(method: string, path: string, json?: unknown) {
    return this.request(method, `/v1/admin${path}`, { key: ADMIN_KEY, json });
  }

  /** A tenant with one key; `plan` defaults to the seeded `free` plan (60 requests a minute). */
  async createTenant(name = `tenant-${Math.random().toString(36).slice(2, 8)}`, plan?: string): Promise<TestTenant> {
    const tenantRes = await this.admin("POST", "/tenants", { name, ...(plan ? { plan } : {}) });
    if (tenantRes.status !== 201) throw new Error(`create tenant: ${tenantRes.status} ${await tenantRes.text()}`);
    const tenant = (await tenantRes.json()) as TenantJson;
    const keyRes = await this.admin("POST", `/tenants/${tenant.id}/keys`, { name: "test" });
    if (keyRes.status !== 201) throw new Error(`issue key: ${keyRes.status} ${await keyRes.text()}`);
    const key = (await keyRes.json()) as IssuedKeyJson;
    return { id: tenant.id, name, key: key.key, keyId: key.id };
  }

  async upload(tenant: TestTenant, doc: { title?: string; text: string; source_id?: string }) {
    const res = await this.request("POST", "/v1/documents", { key: tenant.key, json: doc });
    if (res.status !== 201 && res.status !== 200) throw new Error(`upload: ${res.status} ${await res.text()}`);
    return (await res.json()) as IngestedDocumentJson;
  }

  async close(): Promise<void> {
    await this.fence.close();
    await this.remote?.stop();
  }
}
