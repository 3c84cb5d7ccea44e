import { escapeXml } from "../chat/prompt.js";

interface OpenApiDoc {
  info: { title: string; version: string; description?: string };
  paths: Record<string, Record<string, { summary?: string; description?: string; operationId?: string; security?: unknown[] }>>;
}

/**
 * A human-readable API reference rendered on the server from the OpenAPI document. Self-contained
 * (no scripts or assets from a CDN), so it works on an air-gapped network.
 */
export function renderDocsPage(doc: OpenApiDoc): string {
  const rows = Object.entries(doc.paths)
    .flatMap(([path, ops]) =>
      Object.entries(ops).map(([method, op]) => {
        const auth = JSON.stringify(op.security ?? []).includes("adminKey")
          ? "admin key"
          : JSON.stringify(op.security ?? []).includes("tenantKey")
            ? "tenant key"
            : "none";
        return `<tr><td><code>${method.toUpperCase()}</code></td><td><code>${escapeXml(path)}</code></td>` +
          `<td>${auth}</td><td>${escapeXml(op.description ?? op.summary ?? op.operationId ?? "")}</td></tr>`;
      }),
    )
    .join("\n");
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${escapeXml(doc.info.title)}</title>
<style>body{font:15px/1.5 system-ui,sans-serif;max-width:1100px;margin:2rem auto;padding:0 1rem}
table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #ddd;padding:.4rem;text-align:left;vertical-align:top}
code{background:#f4f4f4;padding:0 .2rem}</style></head><body>
<h1>${escapeXml(doc.info.title)} <small>${escapeXml(doc.info.version)}</small></h1>
<p>${escapeXml(doc.info.description ?? "")}</p>
<p>Machine-readable spec: <a href="/openapi.json">/openapi.json</a>. Authenticate with
<code>Authorization: Bearer &lt;key&gt;</code>. Errors are <code>{"error":{"code","message","request_id"}}</code>.</p>
<table><thead><tr><th>Method</th><th>Path</th><th>Auth</th><th>Description</th></tr></thead><tbody>
${rows}
</tbody></table></body></html>`;
}
