import type { TenantScope } from "../db/database.js";
import { FeatureDisabledError } from "../core/errors.js";
import { featureEnabled, readTenantSettings, type FeatureFlag } from "../plans/tenant-settings.js";
import type { SupportedMediaType } from "./parse-document.js";

/**
 * The feature flags that govern uploads, by media type (plans/tenant-settings.ts). Checked before
 * an upload is parsed, has budget reserved or is queued, so a refused upload costs the tenant
 * nothing and leaves nothing behind: no reservation, no ledger row, no job.
 */
const FLAG_OF_MEDIA_TYPE: Partial<Record<SupportedMediaType, FeatureFlag>> = { "application/pdf": "ingest.pdf" };

/** The flags these uploads need: none for text, Markdown or HTML, so those never read settings for it. */
export function featuresNeeded(mediaTypes: Iterable<SupportedMediaType>): FeatureFlag[] {
  const flags = new Set<FeatureFlag>();
  for (const mediaType of mediaTypes) {
    const flag = FLAG_OF_MEDIA_TYPE[mediaType];
    if (flag) flags.add(flag);
  }
  return [...flags];
}

/** Refuses (403 `feature_disabled`) when the tenant's settings turn one of `flags` off. */
export async function refuseDisabledFeatures(scope: TenantScope, flags: readonly FeatureFlag[]): Promise<void> {
  if (flags.length === 0) return;
  const settings = await readTenantSettings(scope);
  for (const flag of flags) if (!featureEnabled(settings, flag)) throw new FeatureDisabledError(flag);
}
