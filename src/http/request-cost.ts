import type { RequestCost } from "../limits/admission.js";

/**
 * Each route's estimated work, in searches (a search: embed one short query, one index read): the
 * cost fair queuing charges a tenant for a seat. Measured roughly on the default model and PGlite:
 * an extractive chat is a search plus reading and scoring its passages and a run record; a small
 * synchronous upload parses, embeds a few chunks and writes them; a batch is several uploads.
 * Reads (documents, runs, usage, limits, jobs) are cheaper than a search; they count as one, the
 * smallest cost there is.
 */
const COSTS: Record<string, RequestCost> = {
  "POST /v1/search": 1,
  "POST /v1/chat": 2,
  "POST /v1/documents": 4,
  "POST /v1/documents/batch": 8,
};

export function requestCost(method: string, path: string): RequestCost {
  return COSTS[`${method} ${path}`] ?? 1;
}
