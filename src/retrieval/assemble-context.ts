import type { SecurityEvents } from "../observability/security-events.js";
import type { TenantContext } from "../core/tenant-context.js";
import { assertChunksBelongTo } from "./assert-chunks-belong-to.js";
import type { SearchHit } from "./hybrid-search.js";

/** A retrieved chunk as it enters a prompt, labelled with the citation number the model sees. */
export interface ContextPassage {
  citation: number;
  chunkId: string;
  documentId: string;
  tenantId: string;
  title: string;
  heading: string | null;
  text: string;
  similarity: number;
}

export interface AssemblyOptions {
  /** Chunks below this cosine similarity that also missed the full-text query are not evidence. */
  minRelevance: number;
  maxPassages: number;
  maxChars: number;
  /** Only the isolation eval's mutation runs turn this off. */
  skipAssertion?: boolean;
}

/**
 * Chooses the passages a grounded answer may use. Runs the tenant assertion (I4) on everything it
 * is given before looking at any text, then keeps relevant hits within the character budget.
 * An empty result means "no answer in your documents", never a prompt without evidence.
 */
export function assembleContext(
  ctx: TenantContext,
  hits: readonly SearchHit[],
  securityEvents: SecurityEvents,
  options: AssemblyOptions,
): ContextPassage[] {
  if (!options.skipAssertion) assertChunksBelongTo(ctx, hits, securityEvents);
  const passages: ContextPassage[] = [];
  let used = 0;
  for (const hit of hits) {
    if (passages.length >= options.maxPassages) break;
    if (hit.similarity < options.minRelevance && !hit.textMatch) continue;
    if (used + hit.text.length > options.maxChars && passages.length > 0) break;
    used += hit.text.length;
    passages.push({
      citation: passages.length + 1,
      chunkId: hit.chunkId,
      documentId: hit.documentId,
      tenantId: hit.tenantId,
      title: hit.title,
      heading: hit.heading,
      text: hit.text,
      similarity: hit.similarity,
    });
  }
  return passages;
}
