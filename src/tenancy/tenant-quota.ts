/** The admission numbers of the tenant's plan, read with the key so admission costs no extra query. */
export interface TenantQuota {
  plan: string;
  requestsPerMinute: number | null;
  tokensPerMinute: number | null;
  maxConcurrency: number | null;
  /** The presenting key's own requests/min, if it has one (counted besides the tenant's). */
  keyRequestsPerMinute: number | null;
  /** The plan's scheduling weight: its share of a contended instance. */
  weight: number;
}
