import { createHash } from "node:crypto";
import { CLIENT_FILES } from "./client/assets.generated.js";

/**
 * The console's client files — htmx, uPlot, Fence's console.js and console.css — shipped in the
 * package (client/assets.generated.ts, written by `npm run build:console`) and served by Fence
 * under names that carry their hash, so a browser caches each for a year and fetches a new
 * release at once. Nothing comes from another origin, and no page has an inline script or style.
 */
export type ClientFileName = keyof typeof CLIENT_FILES;

export interface ClientAsset {
  path: string;
  body: string;
  contentType: string;
}

function asset(name: ClientFileName): ClientAsset {
  const body = CLIENT_FILES[name];
  const hash = createHash("sha256").update(body).digest("hex").slice(0, 12);
  const dot = name.indexOf(".");
  return {
    path: `/console/assets/${name.slice(0, dot)}.${hash}${name.slice(dot)}`,
    body,
    contentType: name.endsWith(".css") ? "text/css; charset=utf-8" : "text/javascript; charset=utf-8",
  };
}

export const ASSETS: Record<ClientFileName, ClientAsset> = Object.fromEntries(
  (Object.keys(CLIENT_FILES) as ClientFileName[]).map((name) => [name, asset(name)]),
) as Record<ClientFileName, ClientAsset>;

const BY_PATH = new Map(Object.values(ASSETS).map((a) => [a.path, a]));

/** The asset a request path names, exactly (a stale hash is a miss: the page that asked is stale too). */
export function assetAt(path: string): ClientAsset | undefined {
  return BY_PATH.get(path);
}
