import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TransformersEmbeddings } from "../../../src/embeddings/transformers.js";
import { writeTinyTransformersModel } from "../../support/tiny-transformers-model.js";

const norm = (v: number[]) => Math.sqrt(v.reduce((s, x) => s + x * x, 0));
const cosine = (a: number[], b: number[]) => a.reduce((s, x, i) => s + x * b[i]!, 0) / (norm(a) * norm(b));

describe("TransformersEmbeddings (tiny offline model)", () => {
  let rootDir: string;
  let tiny: Awaited<ReturnType<typeof writeTinyTransformersModel>>;
  let provider: TransformersEmbeddings;

  beforeAll(async () => {
    rootDir = await mkdtemp(path.join(os.tmpdir(), "fence-transformers-"));
    tiny = await writeTinyTransformersModel(rootDir);
    provider = await TransformersEmbeddings.load({ model: tiny.model, modelsDir: tiny.modelsDir, allowRemote: false, batchSize: 2 });
  });

  afterAll(async () => {
    await provider?.close();
    if (rootDir) await rm(rootDir, { recursive: true, force: true });
  });

  it("reports the model id and the dimensions learned from the model", () => {
    expect(provider.model).toBe("transformers:fence-test/tiny-bert");
    expect(provider.dimensions).toBe(tiny.hidden);
  });

  it("returns one deterministic unit vector per input, distinct for distinct texts", async () => {
    // batchSize 2 means these three texts span two batches.
    const vectors = await provider.embed(["cat dog", "invoice payment", "cat dog"]);
    expect(vectors).toHaveLength(3);
    for (const v of vectors) {
      expect(v).toHaveLength(tiny.hidden);
      expect(Math.abs(norm(v) - 1)).toBeLessThan(1e-5);
    }
    const [a, b, c] = vectors as [number[], number[], number[]];
    expect(a).toEqual(c);
    expect(cosine(a, b)).toBeLessThan(0.99);
  });

  it("gives the same vector for a text whether it is embedded alone or padded in a batch", async () => {
    const texts = ["cat", "invoice payment refund for the customer", "Dog"];
    const batched = await provider.embed(texts);
    for (const [i, text] of texts.entries()) {
      const [single] = await provider.embed([text]);
      expect(single!.length).toBe(tiny.hidden);
      single!.forEach((x, j) => expect(x).toBeCloseTo(batched[i]![j]!, 6));
    }
  });

  it("returns nothing for no input", async () => {
    expect(await provider.embed([])).toEqual([]);
  });

  it("rejects a model that is not in the folder, naming the model and folder", async () => {
    const load = TransformersEmbeddings.load({ model: "fence-test/no-such-model", modelsDir: rootDir, allowRemote: false });
    await expect(load).rejects.toThrow(/fence-test\/no-such-model/);
    await expect(load).rejects.toThrow(rootDir);
    await expect(load).rejects.toThrow(/allowRemote=false/);
  });
});
