import { fork, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";

/**
 * The bench's child processes (the Fence builds, the bare Hono app, the load generator). Each
 * runs the TypeScript entry with the orchestrator's own loader (tsx's flags are in
 * process.execArgv), with an IPC channel so that a child notices when the orchestrator is gone
 * and exits. Every child is tracked here and stopped at the end, on error and on Ctrl-C.
 */
const live = new Set<ChildProcess>();

export function forkEntry(entry: URL, args: string[] = [], env: Record<string, string> = {}): ChildProcess {
  const child = fork(fileURLToPath(entry), args, {
    execArgv: process.execArgv,
    env: { ...process.env, ...env },
    // stdout: the child's one JSON line; stderr: shown, so a child's crash explains itself.
    stdio: ["ignore", "pipe", "inherit", "ipc"],
  });
  live.add(child);
  child.once("exit", () => live.delete(child));
  return child;
}

/** The first line the child prints on stdout, parsed as JSON; fails if it exits or takes too long first. */
export function firstJsonLine<T>(child: ChildProcess, what: string, timeoutMs: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let buffer = "";
    const timer = setTimeout(() => done(new Error(`${what}: no start-up line within ${timeoutMs / 1000} s`)), timeoutMs);
    const onData = (chunk: Buffer) => {
      buffer += chunk.toString("utf8");
      const end = buffer.indexOf("\n");
      if (end < 0) return;
      try {
        done(undefined, JSON.parse(buffer.slice(0, end)) as T);
      } catch {
        done(new Error(`${what}: start-up line is not JSON: ${buffer.slice(0, end)}`));
      }
    };
    const onExit = (code: number | null, signal: string | null) => done(new Error(`${what} exited before it was ready (code ${code}, signal ${signal})`));
    function done(error: Error | undefined, value?: T) {
      clearTimeout(timer);
      child.stdout?.off("data", onData);
      child.off("exit", onExit);
      // Later output is not read; resume so a chatty child never blocks on a full pipe.
      child.stdout?.resume();
      if (error) reject(error);
      else resolve(value!);
    }
    child.stdout?.on("data", onData);
    child.once("exit", onExit);
  });
}

/** SIGTERM, then SIGKILL if the child has not exited within `graceMs`. */
export async function stopChild(child: ChildProcess, graceMs = 10_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
  await exited;
  clearTimeout(timer);
}

export async function stopAllChildren(): Promise<void> {
  await Promise.all([...live].map((child) => stopChild(child)));
}

/**
 * Ctrl-C or a kill: stop the children, run the cleanup (drop scratch databases), then exit 130.
 * Without this, an interrupted run would leave Fence processes and databases behind.
 */
export function cleanUpOnSignal(cleanup: () => Promise<void>): void {
  let stopping = false;
  const handler = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    process.stderr.write(`\n[bench] ${signal}: stopping the child processes\n`);
    stopAllChildren()
      .then(cleanup)
      .catch(() => undefined)
      .finally(() => process.exit(130));
  };
  // `on`, not `once`: a second signal (tsx relays Ctrl-C to its child again, npm may too) must find
  // a listener still there, or the process exits at once, mid clean-up.
  process.on("SIGINT", handler);
  process.on("SIGTERM", handler);
}
