import type { FenceInstance } from "../../src/platform/fence.js";
import { ConsoleBrowser } from "../../test/support/console-browser.js";

/**
 * One signed-in console user over the in-process app (the tests' ConsoleBrowser), timing each page
 * from `app.request` until its body is fully read.
 */
export class BenchBrowser {
  private readonly browser: ConsoleBrowser;

  constructor(app: FenceInstance["app"]) {
    this.browser = new ConsoleBrowser({ request: (method, path, init) => app.request(path, { method, ...init }) });
  }

  /** Signs in with `key` (a tenant's key or the admin key); throws unless the console accepts it. */
  async signIn(key: string): Promise<void> {
    const res = await this.browser.signIn(key);
    await res.body?.cancel();
    if (res.status !== 303) throw new Error(`sign-in answered ${res.status}, not 303`);
  }

  /** GET `path` as this user: the status, the whole body, and the server time (request until body read). */
  async page(path: string): Promise<{ status: number; html: string; ms: number }> {
    const started = performance.now();
    const res = await this.browser.fetch("GET", path);
    const html = await res.text();
    return { status: res.status, html, ms: performance.now() - started };
  }
}
