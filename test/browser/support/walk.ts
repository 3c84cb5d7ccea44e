import type { Page } from "playwright-core";

/**
 * Visits every console page a session can reach by following links, breadth first from a start
 * page: each same-origin `<a href>` under /console, once per URL (query included, fragment not).
 * New pages join the walk by being linked from the nav or from a page it reaches, with no change
 * here. Only links are followed, never forms: sign-out, uploads and deletes are POSTs.
 */
export interface VisitedPage {
  /** The URL the walk asked for. */
  requested: string;
  /** Where the browser ended up after redirects. */
  url: URL;
  status: number;
  contentSecurityPolicy: string | null;
  /** The page's markup as Chromium holds it (page.content()). */
  html: string;
  /** What a person sees (innerText of the body). */
  text: string;
  /** Set when the link answered with a download instead of a page: its body, as text. */
  download?: string;
}

/** Links under /console the walk never follows, even if a page links them. */
const NOT_WALKED = new Set(["/console/sign-out", "/console/sign-in"]);

export async function walkConsole(
  page: Page,
  origin: string,
  options: { start?: string; maxPages?: number; visit?: (visited: VisitedPage) => Promise<void> } = {},
): Promise<VisitedPage[]> {
  const start = options.start ?? "/console";
  const maxPages = options.maxPages ?? 100;
  const queue = [new URL(start, origin).href];
  const seen = new Set(queue);
  const visited: VisitedPage[] = [];
  while (queue.length > 0) {
    if (visited.length >= maxPages) throw new Error(`the console walk reached ${maxPages} pages: a link that makes new URLs forever? Last: ${visited.at(-1)?.url.href}`);
    const requested = queue.shift()!;
    let visit: VisitedPage;
    try {
      const response = await page.goto(requested);
      if (!response) throw new Error(`no response for ${requested}`);
      visit = {
        requested,
        url: new URL(page.url()),
        status: response.status(),
        contentSecurityPolicy: await response.headerValue("content-security-policy"),
        html: await page.content(),
        text: await page.locator("body").innerText(),
      };
    } catch (error) {
      // A link to a file (a document's download) starts a download instead of a page: read what
      // it serves over the same session, so its body is checked like a page's.
      if (!/Download is starting/.test(String(error))) throw error;
      const response = await page.context().request.get(requested);
      const body = await response.text();
      visit = { requested, url: new URL(requested), status: response.status(), contentSecurityPolicy: response.headers()["content-security-policy"] ?? null, html: body, text: body, download: body };
    }
    visited.push(visit);
    seen.add(visit.url.href);
    await options.visit?.(visit);
    if (visit.download !== undefined) continue;
    const hrefs = await page.locator("a[href]").evaluateAll((links) => links.map((link) => (link as unknown as { href: string }).href));
    for (const href of hrefs) {
      const url = new URL(href);
      url.hash = "";
      if (url.origin !== origin || !(url.pathname === "/console" || url.pathname.startsWith("/console/")) || NOT_WALKED.has(url.pathname)) continue;
      if (seen.has(url.href)) continue;
      seen.add(url.href);
      queue.push(url.href);
    }
  }
  return visited;
}
