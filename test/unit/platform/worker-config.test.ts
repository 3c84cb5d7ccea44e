import { describe, expect, it } from "vitest";
import { StartupRefusal, workerConfig } from "../../../src/platform/worker-config.js";

/** Workers bindings → FenceConfig, through the same loadConfig as Node; and the refusals. */
const HYPERDRIVE = { connectionString: "postgres://user:secret@hyperdrive.local:5432/fence" };
const EMBEDDINGS = { EMBEDDINGS_BASE_URL: "http://127.0.0.1:9/v1", EMBEDDINGS_MODEL: "bge-small" };

describe("workerConfig", () => {
  it("takes the database from Hyperdrive and the OpenAI-compatible provider from vars", () => {
    const config = workerConfig({ HYPERDRIVE, ...EMBEDDINGS, FENCE_ADMIN_KEY: "a".repeat(20), FENCE_SEARCH_MAX_K: "7", LLM_BASE_URL: "", LLM_MODEL: "" });
    expect(config.databaseUrl).toBe(HYPERDRIVE.connectionString);
    expect(config.embeddings).toMatchObject({ provider: "openai", baseUrl: EMBEDDINGS.EMBEDDINGS_BASE_URL, model: "bge-small" });
    expect(config.limits.searchMaxK).toBe(7);
    expect(config.adminKey).toBe("a".repeat(20));
    expect(config.llm).toBeUndefined();
  });

  it("ignores bindings that are not strings (other than Hyperdrive)", () => {
    const config = workerConfig({ HYPERDRIVE, ...EMBEDDINGS, SOME_KV: { get: () => null } });
    expect(config.embeddings.provider).toBe("openai");
  });

  it("refuses without an embeddings endpoint, or with a local provider, naming what to set", () => {
    for (const env of [{ HYPERDRIVE }, { HYPERDRIVE, EMBEDDINGS_BASE_URL: "" }, { HYPERDRIVE, ...EMBEDDINGS, FENCE_EMBEDDINGS: "local" }]) {
      expect(() => workerConfig(env)).toThrow(StartupRefusal);
      expect(() => workerConfig(env)).toThrow(/No OpenAI-compatible embeddings endpoint configured.*EMBEDDINGS_BASE_URL/);
    }
  });

  it("refuses without a Hyperdrive binding", () => {
    expect(() => workerConfig({ ...EMBEDDINGS })).toThrow(/bind Hyperdrive as HYPERDRIVE/);
  });

  it("turns an invalid variable into a refusal that names it, without echoing secrets", () => {
    let error: unknown;
    try {
      workerConfig({ HYPERDRIVE, ...EMBEDDINGS, FENCE_ADMIN_KEY: "short-secret" });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(StartupRefusal);
    expect(String(error)).toMatch(/FENCE_ADMIN_KEY: must be at least 16 characters/);
    expect(String(error)).not.toContain("short-secret");
  });
});
