import { open, readFile, rm } from "node:fs/promises";
import { join } from "node:path";

/**
 * PGlite is a single-process database: two processes opening one data folder corrupt it. A lock
 * file holding the owner's pid makes the second `npm start` fail with a clear message instead.
 * A lock left by a process that no longer exists (a crash, kill -9) is taken over.
 */
export async function lockDataDir(dir: string): Promise<() => Promise<void>> {
  const path = join(dir, "fence.lock");
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const handle = await open(path, "wx");
      await handle.writeFile(String(process.pid));
      await handle.close();
      return () => rm(path, { force: true });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
      const owner = Number((await readFile(path, "utf8").catch(() => "")).trim());
      if (owner && owner !== process.pid && isAlive(owner)) {
        throw new Error(
          `The data folder ${dir} is in use by another Fence process (pid ${owner}). ` +
            "Stop it, or set FENCE_DATA_DIR to another folder, or DATABASE_URL to share a Postgres.",
          { cause: error },
        );
      }
      await rm(path, { force: true });
    }
  }
  throw new Error(`Could not lock the data folder ${dir}`);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}
