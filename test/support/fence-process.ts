import { spawn, type ChildProcess } from "node:child_process";
import { createServer } from "node:net";
import { fileURLToPath } from "node:url";
import { ADMIN_KEY } from "./harness.js";

/**
 * Real Fence processes (`node --import tsx src/main.ts`) for tests that need several instances or
 * the start-up path itself. Every child is loopback-only, on a port picked by the OS, and is killed
 * when the test process exits even if a suite forgets to stop it.
 */
export const REPO_ROOT = fileURLToPath(new URL("../..", import.meta.url));
/** How to kill each child still running; all of them are killed when the test process exits. */
const children = new Set<(signal: NodeJS.Signals) => void>();
process.once("exit", () => {
  for (const kill of children) kill("SIGKILL");
});

/**
 * Watches a spawned child: gathers its output, resolves `exited` with its exit code, and stops it
 * with SIGTERM (SIGKILL after 5 s). `kill` sends a signal (to the child, or its process group).
 */
export function superviseChild(
  child: ChildProcess,
  kill: (signal: NodeJS.Signals) => void = (signal) => child.kill(signal),
): Pick<FenceProcess, "output" | "exited" | "stop"> {
  children.add(kill);
  let output = "";
  child.stdout!.on("data", (chunk: Buffer) => (output += chunk.toString("utf8")));
  child.stderr!.on("data", (chunk: Buffer) => (output += chunk.toString("utf8")));
  const exited = new Promise<number | null>((resolve) =>
    child.once("exit", (code) => {
      children.delete(kill);
      resolve(code);
    }),
  );
  return {
    output: () => output,
    exited,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      kill("SIGTERM");
      const timer = setTimeout(() => kill("SIGKILL"), 5000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** A port nothing listens on right now: the OS picks one for a throwaway listener, which then closes. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

export interface FenceProcess {
  url: string;
  pid: number;
  /** Everything the child wrote to stdout and stderr so far (for failure messages). */
  output(): string;
  /** Resolves with the exit code once the child has exited. */
  exited: Promise<number | null>;
  stop(): Promise<void>;
}

/** Settings from the test runner's own environment that must not leak into a child's configuration. */
const INHERITED_CONFIG = /^(FENCE_|LLM_|EMBEDDINGS_|DATABASE_|REDIS_URL$|PORT$|HOST$|LOG_LEVEL$)/;

/**
 * One model thread and none reserved: tests start several processes at once on a 2-core machine.
 * Not for a process whose latency is measured (`modelThreads: "default"`): the reserved threads
 * are what keep a tenant's query embedding from waiting behind another tenant's ingestion.
 */
const TEST_MODEL_THREADS = { FENCE_EMBEDDING_THREADS: "1", FENCE_EMBEDDING_RESERVED_THREADS: "0" };

/** Spawns `src/main.ts` with `env` on a free loopback port; does not wait for it to be ready. */
export async function spawnFence(env: Record<string, string>, options: { modelThreads?: "test" | "default" } = {}): Promise<FenceProcess> {
  const port = await freePort();
  const base = Object.fromEntries(Object.entries(process.env).filter(([name]) => !INHERITED_CONFIG.test(name)));
  const child = spawn(process.execPath, ["--import", "tsx", "src/main.ts"], {
    cwd: REPO_ROOT,
    env: {
      ...base,
      FENCE_ADMIN_KEY: ADMIN_KEY,
      LOG_LEVEL: "warn",
      ...(options.modelThreads === "default" ? {} : TEST_MODEL_THREADS),
      ...env,
      HOST: "127.0.0.1",
      PORT: String(port),
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  return { url: `http://127.0.0.1:${port}`, pid: child.pid!, ...superviseChild(child) };
}

/** Polls `/readyz` until it answers 200; fails early with the child's output if the child exits. */
export async function waitUntilReady(fence: FenceProcess, timeoutMs = 60_000): Promise<void> {
  let exitCode: number | null | undefined;
  void fence.exited.then((code) => (exitCode = code));
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (exitCode !== undefined) throw new Error(`Fence exited (${exitCode}) before it was ready:\n${fence.output()}`);
    const ready = await fetch(`${fence.url}/readyz`).then(
      (res) => res.status === 200,
      () => false,
    );
    if (ready) return;
    if (Date.now() > deadline) throw new Error(`Fence not ready after ${timeoutMs} ms:\n${fence.output()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Starts a Fence process and waits until it is ready. */
export async function startFenceProcess(env: Record<string, string>, timeoutMs?: number): Promise<FenceProcess> {
  const fence = await spawnFence(env);
  try {
    await waitUntilReady(fence, timeoutMs);
    return fence;
  } catch (error) {
    await fence.stop();
    throw error;
  }
}
