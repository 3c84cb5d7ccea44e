import { Worker } from "node:worker_threads";
import { isUuid } from "../core/tenant-context.js";
import type { PayloadFiles, PayloadKey } from "./payload-files.js";
import { PLATFORM_ROLE, TENANT_ROLE } from "./schema/rls.js";
import { ThreadCalls } from "./thread-calls.js";

/**
 * How long a kept payload is left alone by the sweep: another instance may have written it and
 * still be committing its job (Fence's transactions end within seconds; the server ends one idle
 * for 15 s).
 */
const SWEEP_MIN_AGE_MS = 10 * 60_000;

/**
 * Queued uploads' bytes in Postgres (`job_payloads`), moved by a thread of their own with its own
 * two connections. Profiled under a flood of 24 × 10 MB uploads, sending each payload to the server
 * and reading it back cost the event loop's thread 0.1–0.2 s each way (socket writes, decoding the
 * reply): the victim's searches waited behind them. Here the loop only hands the bytes over.
 * The thread sets role and tenant as `Database.withTenant` does, so row-level security applies;
 * the job row's `payload_bytes` remains the record of what is kept (see jobs/job-payloads.ts).
 */
export class PostgresPayloadThread implements PayloadFiles {
  private constructor(private readonly thread: ThreadCalls) {}

  static async open(databaseUrl: string, idleInTransactionMs: number): Promise<PostgresPayloadThread> {
    const worker = new Worker(new URL("./postgres-payloads.worker.mjs", import.meta.url), {
      workerData: { databaseUrl, tenantRole: TENANT_ROLE, platformRole: PLATFORM_ROLE, idleInTransactionMs },
    });
    return new PostgresPayloadThread(await ThreadCalls.start(worker));
  }

  async write(key: PayloadKey, bytes: Uint8Array): Promise<void> {
    await this.thread.call("write", { ...checked(key), bytes });
  }

  async read(key: PayloadKey): Promise<Uint8Array | null> {
    return (await this.thread.call("read", { ...checked(key) })) as Uint8Array | null;
  }

  async remove(keys: readonly PayloadKey[]): Promise<void> {
    if (keys.length > 0) await this.thread.call("remove", { keys: keys.map(checked) });
  }

  async removeTenant(tenantId: string): Promise<void> {
    await this.thread.call("removeTenant", { tenantId: checked({ tenantId, jobId: tenantId }).tenantId });
  }

  list(): Promise<PayloadKey[]> {
    return this.thread.call("list", { minAgeMs: SWEEP_MIN_AGE_MS }) as Promise<PayloadKey[]>;
  }

  close(): Promise<void> {
    return this.thread.close();
  }
}

/** Ids go to the database as uuid parameters; anything else is a caller's bug, refused here. */
function checked(key: PayloadKey): PayloadKey {
  if (!isUuid(key.tenantId) || !isUuid(key.jobId)) throw new TypeError("a payload is named by a tenant id and a job id (UUIDs)");
  return { tenantId: key.tenantId, jobId: key.jobId };
}
