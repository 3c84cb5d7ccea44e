import { describe, expect, it } from "vitest";
import { gzipSync } from "node:zlib";
import { readFileSync } from "node:fs";
import { generatedAssetsModule, GENERATED_PATH } from "../../../scripts/vendor-console-assets.js";
import { ASSETS, assetAt } from "../../../src/console/assets.js";

describe("console client files", () => {
  it("are generated from their sources: run `npm run build:console` after editing console.js or upgrading htmx or uPlot", () => {
    expect(readFileSync(GENERATED_PATH, "utf8") === generatedAssetsModule(), "src/console/client/assets.generated.ts is stale").toBe(true);
  });

  it("weigh at most 100 KB of script, gzipped (issue 19's budget)", () => {
    const scripts = Object.values(ASSETS).filter((a) => a.contentType.startsWith("text/javascript"));
    const gzipped = scripts.reduce((sum, a) => sum + gzipSync(a.body, { level: 9 }).length, 0);
    expect(scripts.length).toBe(3);
    expect(gzipped).toBeLessThan(100 * 1024);
  });

  it("are found only by their exact hashed path", () => {
    const css = ASSETS["console.css"];
    expect(css.path).toMatch(/^\/console\/assets\/console\.[0-9a-f]{12}\.css$/);
    expect(assetAt(css.path)).toBe(css);
    expect(assetAt(css.path.replace(/\.[0-9a-f]{12}\./, ".000000000000."))).toBeUndefined();
    expect(assetAt("/console/assets/../../v1/documents")).toBeUndefined();
  });
});
