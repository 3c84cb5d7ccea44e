import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../../../src/platform/config.js";

describe("loadConfig", () => {
  it("runs with no configuration at all: embedded database, local model, no LLM", () => {
    const config = loadConfig({});
    expect(config).toMatchObject({
      port: 8787,
      dataDir: "./.fence-data",
      databaseUrl: undefined,
      adminKey: undefined,
      embeddings: { provider: "local", threads: expect.any(Number), reservedThreads: 2 },
      llm: undefined,
    });
  });

  it("treats empty strings as unset", () => {
    expect(loadConfig({ FENCE_ADMIN_KEY: "", DATABASE_URL: " " })).toMatchObject({ adminKey: undefined, databaseUrl: undefined });
  });

  it.each([
    [{ PORT: "eighty" }, "PORT"],
    [{ PORT: "70000" }, "PORT"],
    [{ FENCE_ADMIN_KEY: "short" }, "FENCE_ADMIN_KEY"],
    [{ DATABASE_URL: "mysql://x" }, "DATABASE_URL"],
    [{ FENCE_EMBEDDINGS: "magic" }, "FENCE_EMBEDDINGS"],
    [{ FENCE_EMBEDDINGS: "openai" }, "EMBEDDINGS_BASE_URL"],
    [{ LLM_BASE_URL: "http://127.0.0.1:1/v1" }, "LLM_MODEL"],
    [{ FENCE_MIN_RELEVANCE: "2" }, "FENCE_MIN_RELEVANCE"],
  ])("names the variable in the error for %j", (env, variable) => {
    expect(() => loadConfig(env)).toThrow(ConfigError);
    expect(() => loadConfig(env)).toThrow(new RegExp(variable));
  });

  it("builds the LLM and embedding settings when given", () => {
    const config = loadConfig({
      LLM_BASE_URL: "http://127.0.0.1:9/v1",
      LLM_MODEL: "m",
      FENCE_EMBEDDINGS: "openai",
      EMBEDDINGS_BASE_URL: "http://127.0.0.1:9/v1",
      EMBEDDINGS_DIMENSIONS: "256",
    });
    expect(config.llm).toMatchObject({ baseUrl: "http://127.0.0.1:9/v1", model: "m" });
    expect(config.embeddings).toMatchObject({ provider: "openai", dimensions: 256, model: "text-embedding-3-small" });
  });
});
