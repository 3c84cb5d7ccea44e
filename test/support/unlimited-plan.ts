/** A plan's limits with nothing limited (PUT /v1/admin/plans/…): benchmarks and tests that measure work, not refusals. */
export const UNLIMITED_PLAN = {
  tokens_per_day: null,
  tokens_per_month: null,
  spend_per_month_micros: null,
  requests_per_minute: null,
  tokens_per_minute: null,
  max_concurrency: null,
} as const;
