/**
 * Full-text search without plain words at rest (issue 20, groundwork): a blind index. Postgres still
 * does the linguistics — `to_tsvector` stems and drops stop words, `websearch_to_tsquery` parses
 * the question — but each lexeme is replaced by a keyed hash (HMAC-SHA256 under a key derived from
 * the tenant's data key) before anything is stored, so the stored tsvector matches and ranks as
 * before (ranking reads positions, weights and counts, never the lexeme's letters) while revealing
 * nothing to whoever lacks the tenant's key. What it gives up: prefix queries (`refund:*`), since
 * a hash has no prefix; such a term matches only the whole lexeme. What it does not hide: how often
 * a hashed term occurs and where (frequency analysis within one tenant's corpus), as any
 * deterministic index cannot.
 */

const encoder = new TextEncoder();
/** 12 bytes (96 bits) of the HMAC: collisions among a corpus's distinct lexemes stay negligible. */
const TOKEN_BYTES = 12;

type WebCryptoKey = Awaited<ReturnType<typeof crypto.subtle.importKey>>;

/** A subkey for one purpose from a tenant's data key (HKDF-SHA256): the cipher key itself never hashes terms. */
export async function deriveSubkey(dataKey: Uint8Array, purpose: string): Promise<Uint8Array> {
  const base = await crypto.subtle.importKey("raw", dataKey as Uint8Array<ArrayBuffer>, "HKDF", false, ["deriveBits"]);
  const bits = await crypto.subtle.deriveBits(
    { name: "HKDF", hash: "SHA-256", salt: new Uint8Array(32), info: encoder.encode(`fence/${purpose}/v1`) },
    base,
    256,
  );
  return new Uint8Array(bits);
}

/** One lexeme of a tsvector as Postgres gives it (`unnest(tsvector)`): positions 1-based, weights A-D. */
export interface Lexeme {
  lexeme: string;
  positions: readonly number[] | null;
  weights: readonly string[] | null;
}

export class BlindIndex {
  private constructor(private readonly key: WebCryptoKey) {}

  /** From a tenant's data key; the index key is derived, never the data key itself. */
  static async fromDataKey(dataKey: Uint8Array): Promise<BlindIndex> {
    const indexKey = await deriveSubkey(dataKey, "blind-index");
    return new BlindIndex(await crypto.subtle.importKey("raw", indexKey as Uint8Array<ArrayBuffer>, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]));
  }

  /** A lexeme's token: lowercase hex, so it needs no quoting rules of its own inside a tsvector. */
  async token(lexeme: string): Promise<string> {
    const mac = new Uint8Array(await crypto.subtle.sign("HMAC", this.key, encoder.encode(lexeme)));
    return [...mac.subarray(0, TOKEN_BYTES)].map((b) => b.toString(16).padStart(2, "0")).join("");
  }

  /** A tsvector literal with every lexeme blinded and its positions and weights kept (for `$1::tsvector`). */
  async tsvector(lexemes: readonly Lexeme[]): Promise<string> {
    const parts = await Promise.all(
      lexemes.map(async ({ lexeme, positions, weights }) => {
        const token = await this.token(lexeme);
        if (!positions || positions.length === 0) return `'${token}'`;
        const at = positions.map((p, i) => `${p}${weights?.[i] && weights[i] !== "D" ? weights[i] : ""}`);
        return `'${token}':${at.join(",")}`;
      }),
    );
    return parts.join(" ");
  }

  /**
   * A tsquery's text form (what `websearch_to_tsquery(…)::text` gives) with each quoted lexeme
   * blinded; operators, grouping, phrase distances and weight filters are kept, a prefix mark
   * (`:*`) is dropped (see above).
   */
  async tsquery(text: string): Promise<string> {
    let out = "";
    let i = 0;
    while (i < text.length) {
      const c = text[i]!;
      if (c !== "'") {
        out += c;
        i++;
        continue;
      }
      let lexeme = "";
      i++;
      while (i < text.length) {
        if (text[i] === "'" && text[i + 1] === "'") {
          lexeme += "'";
          i += 2;
        } else if (text[i] === "'") {
          i++;
          break;
        } else if (text[i] === "\\" && i + 1 < text.length) {
          lexeme += text[i + 1];
          i += 2;
        } else {
          lexeme += text[i];
          i++;
        }
      }
      out += `'${await this.token(lexeme)}'`;
      // The lexeme's flags: weights stay, the prefix mark goes.
      const flags = /^:([*A-Da-d]+)/.exec(text.slice(i));
      if (flags) {
        const weights = flags[1]!.replaceAll("*", "");
        if (weights) out += `:${weights}`;
        i += flags[0].length;
      }
    }
    return out;
  }
}
