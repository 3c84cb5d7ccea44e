import { spawn } from "node:child_process";
import { migrateForDeploy } from "../../src/platform/migrate-for-deploy.js";
import { freePort, REPO_ROOT, superviseChild, waitUntilReady, type FenceProcess } from "./fence-process.js";
import { ADMIN_KEY } from "./harness.js";
import { scratchDatabase } from "./scratch-database.js";

/**
 * Fence as a Cloudflare Worker, locally: `wrangler dev` (workerd) on a free loopback port, with its
 * Hyperdrive binding pointed at a scratch Postgres database (migrated first by the same code as
 * `npm run migrate`) and vars/secrets passed with `--var`. Like a Fence process, it is killed when
 * the test process exits, even if a suite forgets to stop it.
 */
export interface WorkerProcess extends FenceProcess {
  /** The scratch database the Worker serves (a Node instance may open it too, for owner-level checks). */
  databaseUrl: string;
}

export interface WorkerOptions {
  /** The Postgres server; a scratch database is made on it and dropped on stop. */
  databaseUrl: string;
  /** Vars and secrets (FENCE_ADMIN_KEY defaults to the test admin key). */
  vars: Record<string, string>;
  /** Embedding model and dimensions for the vector index `npm run migrate` creates. */
  embeddings?: { model: string; dimensions: number };
  /** Leave the database unmigrated (to see the Worker refuse to serve). */
  skipMigrations?: boolean;
  timeoutMs?: number;
}

/** Hyperdrive's local connection string needs a password even where the server trusts the client. */
function withPassword(url: string): string {
  const parsed = new URL(url);
  if (!parsed.password) parsed.password = "x";
  return parsed.toString();
}

export async function spawnWorker(options: WorkerOptions): Promise<WorkerProcess> {
  const scratch = await scratchDatabase(options.databaseUrl, "fence_worker");
  try {
    if (!options.skipMigrations) await migrateForDeploy({ databaseUrl: scratch.url, embeddings: options.embeddings });
    const [port, inspectorPort] = [await freePort(), await freePort()];
    const vars = { FENCE_ADMIN_KEY: ADMIN_KEY, LOG_LEVEL: "warn", ...options.vars };
    const args = ["wrangler", "dev", "--ip", "127.0.0.1", "--port", String(port), "--inspector-port", String(inspectorPort), "--show-interactive-dev-session=false"];
    for (const [name, value] of Object.entries(vars)) args.push("--var", `${name}:${value}`);
    const child = spawn("npx", args, {
      cwd: REPO_ROOT,
      env: {
        ...process.env,
        CLOUDFLARE_HYPERDRIVE_LOCAL_CONNECTION_STRING_HYPERDRIVE: withPassword(scratch.url),
        WRANGLER_SEND_METRICS: "false",
        CI: "true",
      },
      stdio: ["ignore", "pipe", "pipe"],
      detached: true,
    });
    // npx → wrangler → workerd: signal the whole process group, so no workerd outlives the test.
    const supervised = superviseChild(child, (signal) => {
      try {
        process.kill(-child.pid!, signal);
      } catch {
        // already gone
      }
    });
    return {
      url: `http://127.0.0.1:${port}`,
      pid: child.pid!,
      databaseUrl: scratch.url,
      ...supervised,
      async stop() {
        await supervised.stop();
        await scratch.drop();
      },
    };
  } catch (error) {
    await scratch.drop();
    throw error;
  }
}

/**
 * Starts the Worker and waits until /readyz answers 200 (the first request builds Fence in the isolate).
 * A free port is only free when it is picked: another suite's workerd (wrangler also picks ports of
 * its own) can take it before this one binds, so a start that lost its port is tried again on new ones.
 */
export async function startWorker(options: WorkerOptions): Promise<WorkerProcess> {
  for (let attempt = 1; ; attempt++) {
    const worker = await spawnWorker(options);
    try {
      await waitUntilReady(worker, options.timeoutMs ?? 90_000);
      return worker;
    } catch (error) {
      await worker.stop();
      if (attempt < 3 && error instanceof Error && error.message.includes("Address already in use")) continue;
      throw error;
    }
  }
}
