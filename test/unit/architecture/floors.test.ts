import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { cruise, type ICruiseResult } from "dependency-cruiser";
import { afterAll, describe, expect, it } from "vitest";
import config from "../../../.dependency-cruiser.mjs";

/**
 * The floors of ARCHITECTURE.md, as `npm run lint` checks them (.dependency-cruiser.mjs). The real
 * tree must pass, and each kind of drift — an upward import, a sideways one, a cycle, a folder
 * without a floor — planted in a scratch tree must fail, so the rule is known to bite.
 */
const scratchDirs: string[] = [];
afterAll(() => scratchDirs.forEach((dir) => rmSync(dir, { recursive: true, force: true })));

async function violations(baseDir: string): Promise<string[]> {
  const { output } = await cruise(["src"], { validate: true, ruleSet: { forbidden: config.forbidden }, ...config.options, baseDir });
  return (output as ICruiseResult).summary.violations.map((v) => `${v.rule.name}: ${v.from} → ${v.to}`);
}

/** A scratch tree of TypeScript files (path → imports of other files of the tree). */
function scratchTree(files: Record<string, string[]>): string {
  const dir = mkdtempSync(join(tmpdir(), "fence-floors-"));
  scratchDirs.push(dir);
  writeFileSync(join(dir, "tsconfig.json"), JSON.stringify({ compilerOptions: { module: "NodeNext", moduleResolution: "NodeNext", allowJs: true } }));
  for (const [path, imports] of Object.entries(files)) {
    mkdirSync(join(dir, dirname(path)), { recursive: true });
    const lines = imports.map((to, i) => `import { x as x${i} } from "${relativeSpecifier(path, to)}";`);
    writeFileSync(join(dir, path), `${lines.join("\n")}\nexport const x = ${imports.map((_, i) => `x${i}`).join(" + ") || "1"};\n`);
  }
  return dir;
}

function relativeSpecifier(from: string, to: string): string {
  const up = from.split("/").length - 2; // from src/<folder>/file.ts: "../" per folder below src
  return `${"../".repeat(up)}${to.replace(/^src\//, "").replace(/\.ts$/, ".js")}`.replace(/^(?!\.)/, "./");
}

describe("architecture floors (npm run lint)", () => {
  it("the source tree keeps to its floors", async () => {
    expect(await violations(process.cwd())).toEqual([]);
  });

  it("fails an upward import: db reaching into http", async () => {
    const dir = scratchTree({ "src/http/app.ts": [], "src/db/database.ts": ["src/http/app.ts"] });
    expect(await violations(dir)).toEqual(["db-imports-downward: src/db/database.ts → src/http/app.ts"]);
  });

  it("fails a sideways import between folders of one floor: ingest and chat", async () => {
    const dir = scratchTree({ "src/chat/answer.ts": [], "src/ingest/pipeline.ts": ["src/chat/answer.ts"] });
    expect(await violations(dir)).toEqual(["ingest-imports-downward: src/ingest/pipeline.ts → src/chat/answer.ts"]);
  });

  it("passes a downward import: http into core", async () => {
    const dir = scratchTree({ "src/core/errors.ts": [], "src/http/app.ts": ["src/core/errors.ts"] });
    expect(await violations(dir)).toEqual([]);
  });

  it("fails an import cycle, even within one folder", async () => {
    const dir = scratchTree({ "src/chat/a.ts": ["src/chat/b.ts"], "src/chat/b.ts": ["src/chat/a.ts"] });
    const found = await violations(dir);
    expect(found).toHaveLength(1); // reported once, from whichever end the cruise met first
    expect(found[0]).toMatch(/^no-circular: src\/chat\/(a\.ts → src\/chat\/b|b\.ts → src\/chat\/a)\.ts$/);
  });

  it("fails a folder that has no floor, and an import of an entry", async () => {
    const dir = scratchTree({ "src/main.ts": [], "src/utils/helpers.ts": ["src/main.ts"] });
    const found = await violations(dir);
    expect(found).toContain("folders-are-known: src/utils/helpers.ts → src/main.ts");
    expect(found).toContain("entries-are-not-imported: src/utils/helpers.ts → src/main.ts");
  });
});
