import { PGlite } from "@electric-sql/pglite";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BlindIndex, type Lexeme } from "../../../src/crypto/blind-index.js";
import { newDataKey } from "../../../src/crypto/key-provider.js";

/**
 * The blind index (issue 20, groundwork) against Postgres's own full-text search, in PGlite: for a
 * small corpus and a set of web-search questions, the blinded tsvector matches exactly the
 * questions the plain one matches, ranks them with the same ts_rank_cd and ts_rank (ranking never
 * reads a lexeme's letters), stores none of the corpus's words, and gives another tenant's key
 * tokens that match nothing. Prefix queries are the stated loss: they match whole lexemes only.
 */

const DOCS = [
  "Refunds are issued within 30 days of purchase. The refund window closes after the thirtieth day.",
  "Acme's roadmap: launch the orbital widget in Q3, then the lunar gadget. Confidential.",
  "Shipping to Canada takes five business days; express shipping takes two.",
  "The warranty covers manufacturing defects, not accidental damage or water damage.",
];
const QUESTIONS = [
  "refund window",
  "how long do refunds take",
  '"express shipping"',
  "warranty -water",
  "orbital OR lunar",
  "damage",
  "nothing here matches",
  "it's the customer's refund",
];

describe("blind index over Postgres full-text search (PGlite)", () => {
  let db: PGlite;
  let tenant: BlindIndex;
  let stranger: BlindIndex;

  const lexemesOf = async (text: string) =>
    (await db.query<Lexeme>("SELECT lexeme, positions, weights FROM unnest(to_tsvector('english', $1))", [text])).rows;

  beforeAll(async () => {
    db = new PGlite();
    tenant = await BlindIndex.fromDataKey(newDataKey());
    stranger = await BlindIndex.fromDataKey(newDataKey());
  });
  afterAll(async () => {
    await db?.close();
  });

  it("matches and ranks every question as the plain index does, storing no word of the corpus", async () => {
    let matches = 0;
    for (const doc of DOCS) {
      const blindVector = await tenant.tsvector(await lexemesOf(doc));
      for (const word of doc.toLowerCase().match(/[a-z]{4,}/g)!) expect(blindVector).not.toContain(word);
      for (const question of QUESTIONS) {
        const [{ text: plainQuery }] = (await db.query<{ text: string }>("SELECT websearch_to_tsquery('english', $1)::text AS text", [question])).rows as [
          { text: string },
        ];
        const blindQuery = await tenant.tsquery(plainQuery);
        const { rows } = await db.query<{ plain: boolean; blind: boolean; plain_rank: number; blind_rank: number; plain_cd: number; blind_cd: number }>(
          `SELECT to_tsvector('english', $1) @@ websearch_to_tsquery('english', $2) AS plain,
                  $3::tsvector @@ $4::tsquery AS blind,
                  ts_rank(to_tsvector('english', $1), websearch_to_tsquery('english', $2)) AS plain_rank,
                  ts_rank($3::tsvector, $4::tsquery) AS blind_rank,
                  ts_rank_cd(to_tsvector('english', $1), websearch_to_tsquery('english', $2)) AS plain_cd,
                  ts_rank_cd($3::tsvector, $4::tsquery) AS blind_cd`,
          [doc, question, blindVector, blindQuery],
        );
        const r = rows[0]!;
        expect({ doc, question, matched: r.blind }).toEqual({ doc, question, matched: r.plain });
        expect(r.blind_rank).toBeCloseTo(r.plain_rank, 6);
        expect(r.blind_cd).toBeCloseTo(r.plain_cd, 6);
        if (r.plain) matches++;
        // Another tenant's key makes other tokens: its query matches nothing of this tenant's.
        const foreign = await stranger.tsquery(plainQuery);
        const { rows: crossed } = await db.query<{ hit: boolean }>("SELECT $1::tsvector @@ $2::tsquery AS hit", [blindVector, foreign]);
        if (plainQuery !== "") expect(crossed[0]!.hit).toBe(false);
      }
    }
    // Not vacuous: "refund window", "express shipping", "orbital OR lunar" and "damage" find their
    // documents ("warranty -water" is kept out by its negation, the others need a missing word).
    expect(matches).toBe(4);
  });

  it("keeps weights, phrase distances and negation, and drops the prefix mark", async () => {
    expect(await tenant.tsquery("'refund' & !'water'")).toMatch(/^'[0-9a-f]{24}' & !'[0-9a-f]{24}'$/);
    expect(await tenant.tsquery("'express' <-> 'ship'")).toMatch(/^'[0-9a-f]{24}' <-> '[0-9a-f]{24}'$/);
    expect(await tenant.tsquery("'refund':*AB")).toMatch(/^'[0-9a-f]{24}':AB$/);
    expect(await tenant.tsquery("'refund':*")).toBe(`'${await tenant.token("refund")}'`);
    expect(await tenant.tsquery("'it''s'")).toBe(`'${await tenant.token("it's")}'`);
    const weighted = await tenant.tsvector([{ lexeme: "title", positions: [1, 4], weights: ["A", "D"] }]);
    expect(weighted).toBe(`'${await tenant.token("title")}':1A,4`);
  });
});
