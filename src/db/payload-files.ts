import { randomUUID } from "node:crypto";
import { mkdir, open, readdir, readFile, rename, rm } from "node:fs/promises";
import { join } from "node:path";
import { isUuid } from "../core/tenant-context.js";

/** One kept payload: the job it belongs to, and that job's tenant. */
export interface PayloadKey {
  tenantId: string;
  jobId: string;
}

/**
 * Where the embedded database's queued uploads wait for their jobs: outside the database.
 *
 * PGlite runs every statement on one thread (the event loop's, by default). A 10 MB upload written
 * into the jobs row and read back took 0.2–1 s of that thread per upload (measured: write 130–760 ms,
 * read 60–195 ms), and a tenant's flood of them froze every other tenant for seconds. Here the
 * bytes go to a file (written and read by libuv's thread pool) and the row keeps only their size.
 * PGlite is one process per data folder (data-dir-lock.ts), so the files need no sharing; Postgres
 * keeps payloads in the row, where every instance reads them.
 *
 * Files are named `<tenant id>/<job id>`, both checked to be UUIDs, so no value can name a path
 * outside the folder. The jobs row is the record: a file whose job no longer keeps a payload is
 * an orphan (a crash between the write and the commit) and `list` + `remove` sweep it.
 */
export interface PayloadFiles {
  write(key: PayloadKey, bytes: Uint8Array): Promise<void>;
  /** The bytes, or null when no file is kept for the job. */
  read(key: PayloadKey): Promise<Uint8Array | null>;
  remove(keys: readonly PayloadKey[]): Promise<void>;
  removeTenant(tenantId: string): Promise<void>;
  /** Every kept payload. */
  list(): Promise<PayloadKey[]>;
}

function pathPart(value: string): string {
  if (!isUuid(value)) throw new TypeError("a payload is named by a tenant id and a job id (UUIDs)");
  return value.toLowerCase();
}

/** Payload files in a folder of their own inside the PGlite data folder (backed up with it). */
export class DirectoryPayloadFiles implements PayloadFiles {
  constructor(private readonly dir: string) {}

  /** Written to a temporary name, flushed, then renamed: a crash leaves the whole file or none. */
  async write(key: PayloadKey, bytes: Uint8Array): Promise<void> {
    const folder = join(this.dir, pathPart(key.tenantId));
    await mkdir(folder, { recursive: true });
    const temporary = join(folder, `.${randomUUID()}.tmp`);
    const handle = await open(temporary, "wx");
    try {
      await handle.writeFile(bytes);
      await handle.datasync();
    } finally {
      await handle.close();
    }
    await rename(temporary, join(folder, pathPart(key.jobId)));
  }

  async read(key: PayloadKey): Promise<Uint8Array | null> {
    try {
      return new Uint8Array(await readFile(join(this.dir, pathPart(key.tenantId), pathPart(key.jobId))));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return null;
      throw error;
    }
  }

  async remove(keys: readonly PayloadKey[]): Promise<void> {
    await Promise.all(keys.map((key) => rm(join(this.dir, pathPart(key.tenantId), pathPart(key.jobId)), { force: true })));
  }

  async removeTenant(tenantId: string): Promise<void> {
    await rm(join(this.dir, pathPart(tenantId)), { recursive: true, force: true });
  }

  /** Temporary files of interrupted writes are listed under no job, and removed here. */
  async list(): Promise<PayloadKey[]> {
    const tenants = await readdir(this.dir).catch((error: NodeJS.ErrnoException) => {
      if (error.code === "ENOENT") return [];
      throw error;
    });
    const keys: PayloadKey[] = [];
    for (const tenantId of tenants.filter(isUuid)) {
      for (const name of await readdir(join(this.dir, tenantId)).catch(() => [])) {
        if (isUuid(name)) keys.push({ tenantId, jobId: name });
        else if (name.endsWith(".tmp")) await rm(join(this.dir, tenantId, name), { force: true });
      }
    }
    return keys;
  }
}

/** For an in-memory database (`memory://`): the payloads live as long as the process. */
export class MemoryPayloadFiles implements PayloadFiles {
  private readonly files = new Map<string, Map<string, Uint8Array>>();

  async write(key: PayloadKey, bytes: Uint8Array): Promise<void> {
    const tenant = this.files.get(pathPart(key.tenantId)) ?? new Map<string, Uint8Array>();
    this.files.set(pathPart(key.tenantId), tenant);
    tenant.set(pathPart(key.jobId), bytes.slice());
  }

  async read(key: PayloadKey): Promise<Uint8Array | null> {
    return this.files.get(pathPart(key.tenantId))?.get(pathPart(key.jobId))?.slice() ?? null;
  }

  async remove(keys: readonly PayloadKey[]): Promise<void> {
    for (const key of keys) this.files.get(pathPart(key.tenantId))?.delete(pathPart(key.jobId));
  }

  async removeTenant(tenantId: string): Promise<void> {
    this.files.delete(pathPart(tenantId));
  }

  async list(): Promise<PayloadKey[]> {
    return [...this.files].flatMap(([tenantId, jobs]) => [...jobs.keys()].map((jobId) => ({ tenantId, jobId })));
  }
}
