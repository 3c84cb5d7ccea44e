/** What every billable (or failed) provider call is recorded as. */
export type Feature = "chat" | "embed_documents" | "embed_query";

export interface UsageRecord {
  /** Stable id: a retried request, a replayed job or a resent Idempotency-Key maps to the same one. */
  eventId: string;
  feature: Feature;
  provider: string;
  model: string;
  inputTokens: number;
  outputTokens: number;
  cachedTokens?: number;
  /** `charged`: the provider did the work; `failed`: no provider charge (technical record only). */
  status: "charged" | "failed";
  /** True when the provider reported no usage and Fence counted it itself. */
  usageEstimated?: boolean;
  retryOf?: string | undefined;
  error?: string | undefined;
}

/** Conservative token estimate (~3 characters a token): budgets are checked against it. */
export function estimateTokens(text: string): number {
  return Math.ceil(text.length / 3);
}
