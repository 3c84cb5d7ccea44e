import { readdirSync, readFileSync } from "node:fs";
import { afterEach, describe, expect, it } from "vitest";
import { LocalUseEmbeddings } from "../../../src/embeddings/local-use.js";

/**
 * The local model's threads (embeddings/local-use.ts), with the real model: a tenant with a
 * backlog never occupies the reserved thread, a light tenant is served on it at once, and the
 * shared threads run at lowered OS priority so that the light work gets the cores first.
 */
const CHUNK = "Fence keeps every tenant's documents apart in one shared index. ".repeat(12);
const onLinux = process.platform === "linux";

/** Nice values of this process's threads, read from the kernel (Linux). */
function threadNiceValues(): number[] {
  return readdirSync("/proc/self/task").map((tid) => {
    const stat = readFileSync(`/proc/self/task/${tid}/stat`, "utf8");
    // Fields after the command name (which may hold spaces): state is field 3, nice field 19.
    return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[16]);
  });
}

/** `count` distinct document chunks. */
const chunks = (count: number) => Array.from({ length: count }, (_, i) => `${i} ${CHUNK}`);

/** One reserved thread and one shared: the smallest pool where the two roles can be told apart. */
const loadOneOfEach = () => LocalUseEmbeddings.load({ threads: 1, reservedThreads: 1 });

/** [reserved?, batches done] per thread, reserved threads first. */
const batchesByRole = (model: LocalUseEmbeddings) => model.describeThreads().map((t) => [t.reserved, t.batches]);

describe("local model threads", () => {
  let model: LocalUseEmbeddings | undefined;
  afterEach(async () => {
    await model?.close();
    model = undefined;
  });

  it("a tenant with a backlog is served on the shared thread only, alone on the machine too", async () => {
    model = await loadOneOfEach();
    const vectors = await model.embed(chunks(8), { id: "bulk-tenant", priority: "bulk" });
    expect(vectors).toHaveLength(8);
    expect(batchesByRole(model)).toEqual([
      [true, 0],
      [false, 8],
    ]);
  });

  it("a light tenant's query starts at once on the reserved thread while another tenant's backlog holds the shared one", async () => {
    model = await loadOneOfEach();
    const flood = model.embed(chunks(10), { id: "flood", priority: "bulk" });
    // How many passes the shared thread had finished when the victim's query came back.
    const sharedPassesBeforeVictim = await model
      .embed(["how are tenants kept apart?"], { id: "victim", priority: "interactive" })
      .then(() => model!.describeThreads().find((t) => !t.reserved)!.batches);
    await flood;
    // Queued behind the flood it would have come back after the flood's first pass at best.
    expect(sharedPassesBeforeVictim).toBeLessThanOrEqual(1);
    expect(batchesByRole(model)).toEqual([
      [true, 1],
      [false, 10],
    ]);
  });

  it("a small upload alone uses every idle thread, the reserved one included", async () => {
    model = await loadOneOfEach();
    await model.embed(chunks(2), { id: "small", priority: "bulk" });
    expect(model.describeThreads().map((t) => t.batches)).toEqual([1, 1]);
  });

  it.runIf(onLinux)("shared threads run at lowered OS priority, the reserved thread at normal priority", async () => {
    const before = threadNiceValues().filter((nice) => nice === 10).length;
    model = await LocalUseEmbeddings.load({ threads: 2, reservedThreads: 1 });
    expect(model.describeThreads().map((t) => [t.reserved, t.nice])).toEqual([
      [true, 0],
      [false, 10],
      [false, 10],
    ]);
    // The kernel agrees: two more threads of this process now run at nice 10.
    expect(threadNiceValues().filter((nice) => nice === 10).length).toBe(before + 2);
  });

  it.runIf(onLinux)("the FIFO baseline keeps no thread in reserve and lowers no priority", async () => {
    model = await LocalUseEmbeddings.load({ threads: 2, reservedThreads: 1, discipline: "fifo" });
    expect(model.describeThreads().map((t) => [t.reserved, t.nice])).toEqual([
      [false, 0],
      [false, 0],
    ]);
  });
});
