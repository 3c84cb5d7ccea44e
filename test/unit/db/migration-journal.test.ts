import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";

/**
 * The migrator applies every migration newer than the newest one a database has recorded
 * (db/migrate.ts compares the journal's `when`). A migration whose `when` is not later than every
 * one before it would be skipped on every database already past those: drizzle-kit stamps the
 * generating machine's clock, so a clock behind an earlier stamp would silently lose a migration.
 */
describe("the migration journal", () => {
  it("stamps every migration later than the one before it", () => {
    const journal = JSON.parse(readFileSync(new URL("../../../drizzle/meta/_journal.json", import.meta.url), "utf8")) as {
      entries: { idx: number; when: number; tag: string }[];
    };
    expect(journal.entries.length).toBeGreaterThan(10);
    for (const [index, entry] of journal.entries.entries()) {
      expect(entry.idx).toBe(index);
      if (index > 0) expect(entry.when, `${entry.tag} is stamped before ${journal.entries[index - 1]!.tag}`).toBeGreaterThan(journal.entries[index - 1]!.when);
    }
  });
});
