import type { ChildProcess } from "node:child_process";
import { forkEntry, stopChild } from "./children.js";
import type { GeneratorReply, GeneratorResult, RunCommand, StopCommand } from "./generator-protocol.js";

/** The orchestrator's handle on the load generator process (load-generator.ts), started once per run. */
export class LoadGenerator {
  private nextId = 1;

  private constructor(private readonly child: ChildProcess) {}

  static async start(): Promise<LoadGenerator> {
    const child = forkEntry(new URL("./load-generator.ts", import.meta.url));
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("load generator: not ready within 30 s")), 30_000);
      child.once("exit", (code) => reject(new Error(`load generator exited at start (code ${code})`)));
      child.once("message", (message: GeneratorReply) => {
        clearTimeout(timer);
        if (message.type === "ready") resolve();
        else reject(new Error(`load generator: unexpected first message ${message.type}`));
      });
    });
    return new LoadGenerator(child);
  }

  /**
   * One closed-loop flood from now on; `result` resolves with what was counted inside the window
   * once the flood has stopped (at `stop()` or at stopAt).
   */
  start(command: Omit<RunCommand, "type" | "id">): { result: Promise<GeneratorResult>; stop(): void } {
    const id = this.nextId++;
    // The generator cuts its connections at stopAt; a minute more is for a wedged process only.
    const limitMs = command.stopAt - Date.now() + 60_000;
    const result = new Promise<GeneratorResult>((resolve, reject) => {
      const timer = setTimeout(() => finish(new Error(`load generator: no result ${limitMs / 1000} s after the flood started`)), limitMs);
      const onExit = (code: number | null) => finish(new Error(`load generator exited (code ${code})`));
      const onMessage = (message: GeneratorReply) => {
        if (message.type === "result" && message.id === id) finish(undefined, message.result);
        else if (message.type === "error" && message.id === id) finish(new Error(`load generator: ${message.message}`));
      };
      const finish = (error: Error | undefined, value?: GeneratorResult) => {
        clearTimeout(timer);
        this.child.off("message", onMessage);
        this.child.off("exit", onExit);
        if (error) reject(error);
        else resolve(value!);
      };
      this.child.on("message", onMessage);
      this.child.once("exit", onExit);
      this.child.send({ type: "run", id, ...command } satisfies RunCommand);
    });
    return { result, stop: () => this.child.connected && this.child.send({ type: "stop", id } satisfies StopCommand) };
  }

  close(): Promise<void> {
    return stopChild(this.child);
  }
}
