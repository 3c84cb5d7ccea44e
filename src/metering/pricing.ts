import { and, desc, eq, lte, sql } from "drizzle-orm";
import type { Tx } from "../db/database.js";
import { prices } from "../db/schema.js";

export interface Price {
  version: number | null;
  inputMicrosPerMTok: number;
  outputMicrosPerMTok: number;
  cachedMicrosPerMTok: number;
}

/**
 * Prices are versioned rows (provider, model, version); the newest version in effect applies, and
 * its version is stored on every usage event so a bill can be recomputed. A model without a price
 * row is metered at the internal rate (FENCE_INTERNAL_MICROS_PER_MTOK, default 0): volume still
 * shows, and the reconciliation report lists those events.
 */
export async function priceFor(tx: Tx, provider: string, model: string, internalRate: number): Promise<Price> {
  const [row] = await tx
    .select()
    .from(prices)
    .where(and(eq(prices.provider, provider), eq(prices.model, model), lte(prices.effectiveFrom, sql`now()`)))
    .orderBy(desc(prices.version))
    .limit(1);
  if (!row) return { version: null, inputMicrosPerMTok: internalRate, outputMicrosPerMTok: internalRate, cachedMicrosPerMTok: 0 };
  return row;
}

/** Cost in micro-units, rounded up: Fence never under-bills by rounding. */
export function costMicros(price: Pick<Price, "inputMicrosPerMTok" | "outputMicrosPerMTok" | "cachedMicrosPerMTok">, usage: { inputTokens: number; outputTokens: number; cachedTokens?: number }): number {
  const billedInput = Math.max(0, usage.inputTokens - (usage.cachedTokens ?? 0));
  const total =
    billedInput * price.inputMicrosPerMTok +
    (usage.cachedTokens ?? 0) * price.cachedMicrosPerMTok +
    usage.outputTokens * price.outputMicrosPerMTok;
  return Math.ceil(total / 1_000_000);
}
