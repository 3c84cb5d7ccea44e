import { expect } from "vitest";
import type { ConsoleFixture } from "./console-fixture.js";

/** What A's console must never show: B's data, B's ids (whole or as the console shortens them), and any seeded key's secret. */
export function forbiddenInA(fx: ConsoleFixture): string[] {
  const { a, b, keys } = fx;
  return [
    ...b.canaries,
    b.id,
    b.id.slice(0, 8),
    ...b.documents.flatMap((doc) => [doc.id, doc.id.slice(0, 8)]),
    b.key,
    a.key,
    keys.read.key,
    keys.owner.key,
    keys.withoutRead.key,
  ];
}

export function expectNoneOf(haystack: string, needles: string[], where: string) {
  const found = needles.filter((needle) => haystack.includes(needle));
  expect(found, `${where} shows what it must not`).toEqual([]);
}
