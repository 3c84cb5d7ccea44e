import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ADMIN_KEY, backends, TestFence, type TestTenant } from "../../support/harness.js";
import type { IssuedKeyJson } from "../../support/api-types.js";
import { ConsoleBrowser } from "../../support/console-browser.js";

/**
 * Issue 19, the console's first slice over HTTP (the browser suite comes with the pages that need
 * script): sign-in exchanges a key for a signed session cookie that holds no key, every form is
 * CSRF-checked (the sign-in form too), a revoked key ends its session at the next request, pages
 * carry a strict Content-Security-Policy, and what a tenant wrote is escaped — and never another
 * tenant's.
 */
const XSS_TITLE = `<script>alert("t")</script><img src=x onerror=alert(1)> "quoted" & 'single'`;

describe.each(backends)("console on $name", (backend) => {
  let fence: TestFence;
  let a: TestTenant;
  let b: TestTenant;

  class Browser extends ConsoleBrowser {
    constructor() {
      super(fence);
    }
  }

  beforeAll(async () => {
    fence = await TestFence.start(backend, { env: { FENCE_JOB_WORKERS: "0" } });
    a = await fence.createTenant("console-a", "enterprise");
    b = await fence.createTenant("console-b", "enterprise");
    await fence.upload(a, { title: XSS_TITLE, text: "The console escapes every title it shows." });
    await fence.upload(b, { title: "CANARY-CONSOLE-B board minutes", text: "Tenant B's secret minutes." });
  });
  afterAll(async () => {
    await fence?.close();
  });

  it("signs a tenant key in: a signed, HttpOnly, SameSite=Strict session cookie that holds no key, and a page of its own documents only", async () => {
    const browser = new Browser();
    const start = await browser.fetch("GET", "/console");
    expect(start.status).toBe(303);
    expect(start.headers.get("location")).toBe("/console/sign-in");

    const signedIn = await browser.signIn(a.key);
    expect(signedIn.status).toBe(303);
    const sessionCookie = signedIn.headers.getSetCookie().find((line) => line.startsWith("fence_console="))!;
    expect(sessionCookie).toMatch(/HttpOnly/i);
    expect(sessionCookie).toMatch(/SameSite=Strict/i);
    expect(sessionCookie).toMatch(/Path=\/console/i);
    expect(decodeURIComponent(sessionCookie)).not.toContain(a.key);
    expect(decodeURIComponent(sessionCookie)).not.toContain(a.key.slice(-40));

    const landing = await browser.fetch("GET", "/console");
    expect(landing.headers.get("location")).toBe("/console/overview");
    const page = await browser.fetch("GET", "/console/documents");
    expect(page.status).toBe(200);
    const html = await page.text();
    expect(html.startsWith("<!doctype html><html lang=\"en\">")).toBe(true);
    // Escaped: the title is text, never markup.
    expect(html).not.toContain("<script>alert");
    expect(html).not.toContain("<img src=x");
    expect(html).toContain("&lt;script&gt;alert(&quot;t&quot;)&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;");
    // Never another tenant's.
    expect(html).not.toContain("CANARY-CONSOLE-B");
    expect(html).not.toContain(b.id);
    // Strict headers on every page.
    expect(page.headers.get("content-security-policy")).toMatch(/default-src 'none'.*script-src 'self'.*frame-ancestors 'none'/);
    expect(page.headers.get("cache-control")).toBe("no-store");
    expect(html).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/); // no inline script
    expect(html).not.toMatch(/ style=/);
  });

  it("refuses a sign-in without its form's CSRF token, a wrong key, and a tampered or missing session", async () => {
    const browser = new Browser();
    await browser.fetch("GET", "/console/sign-in");
    const forged = await browser.fetch("POST", "/console/sign-in", { csrf: "not-the-token", key: a.key });
    expect(forged.status).toBe(403);
    expect(browser.cookies.has("fence_console")).toBe(false);

    const wrong = await browser.signIn("fence_prod_" + "x".repeat(40));
    expect(wrong.status).toBe(401);
    expect(await wrong.text()).toContain("Missing or invalid API key.");
    expect(browser.cookies.has("fence_console")).toBe(false);

    await browser.signIn(a.key);
    const value = browser.cookies.get("fence_console")!;
    browser.cookies.set("fence_console", value.replace(/^./, (ch) => (ch === "A" ? "B" : "A")));
    const tampered = await browser.fetch("GET", "/console/documents");
    expect(tampered.status).toBe(303);
    expect(tampered.headers.get("location")).toBe("/console/sign-in");
  });

  it("ends a session at its next request once its key is revoked, and signs out only with the session's CSRF token", async () => {
    const issued = (await (await fence.admin("POST", `/tenants/${a.id}/keys`, { name: "console", scopes: ["read"] })).json()) as IssuedKeyJson;
    const browser = new Browser();
    expect((await browser.signIn(issued.key)).status).toBe(303);
    expect((await browser.fetch("GET", "/console/documents")).status).toBe(200);

    const csrf = /name="csrf" value="([^"]+)"/.exec(await (await browser.fetch("GET", "/console/documents")).text())![1]!;
    expect((await browser.fetch("POST", "/console/sign-out", { csrf: "forged" })).status).toBe(403);
    expect((await browser.fetch("GET", "/console/documents")).status).toBe(200);

    expect((await fence.admin("DELETE", `/tenants/${a.id}/keys/${issued.id}`)).status).toBe(204);
    const after = await browser.fetch("GET", "/console/documents");
    expect(after.status).toBe(303);
    expect(after.headers.get("location")).toBe("/console/sign-in");
    expect(browser.cookies.has("fence_console")).toBe(false);

    const again = new Browser();
    await again.signIn(a.key);
    const token = /name="csrf" value="([^"]+)"/.exec(await (await again.fetch("GET", "/console/documents")).text())![1]!;
    expect(token).not.toBe(csrf);
    expect((await again.fetch("POST", "/console/sign-out", { csrf: token })).status).toBe(303);
    expect((await again.fetch("GET", "/console/documents")).status).toBe(303);
  });

  it("ends a session everywhere at sign-out: a copy of its cookie taken before is refused after, on tenant and admin sessions alike", async () => {
    for (const key of [a.key, ADMIN_KEY]) {
      const browser = new Browser();
      await browser.signIn(key);
      const home = key === ADMIN_KEY ? "/console/platform/tenants" : "/console/overview";
      const copy = new Browser();
      copy.cookies = new Map(browser.cookies);
      expect((await copy.fetch("GET", home)).status).toBe(200);
      expect((await browser.fetch("POST", "/console/sign-out", { csrf: await browser.csrf(home) })).status).toBe(303);
      const after = await copy.fetch("GET", home);
      expect(after.status).toBe(303);
      expect(after.headers.get("location")).toBe("/console/sign-in");
      // Signing in again is a new session, unaffected by the old one's end.
      const again = new Browser();
      await again.signIn(key);
      expect((await again.fetch("GET", home)).status).toBe(200);
    }
  });

  it("shows a key without the read scope what it lacks, and the admin key the platform view", async () => {
    const queryOnly = (await (await fence.admin("POST", `/tenants/${a.id}/keys`, { name: "query", scopes: ["query"] })).json()) as IssuedKeyJson;
    const browser = new Browser();
    await browser.signIn(queryOnly.key);
    const refused = await browser.fetch("GET", "/console/documents");
    expect(refused.status).toBe(403);
    expect(await refused.text()).toContain("lacks the &#39;read&#39; scope");

    const admin = new Browser();
    expect((await admin.signIn(ADMIN_KEY)).status).toBe(303);
    expect((await admin.fetch("GET", "/console")).headers.get("location")).toBe("/console/platform/tenants");
    const tenants = await (await admin.fetch("GET", "/console/platform/tenants")).text();
    expect(tenants).toContain("console-a");
    // The admin session opens no tenant page, and a tenant session no platform page.
    const adminOnTenantPage = await admin.fetch("GET", "/console/documents");
    expect(adminOnTenantPage.status).toBe(403);
    expect(adminOnTenantPage.headers.getSetCookie()).toEqual([]);
    expect((await admin.fetch("GET", "/console/platform/tenants")).status).toBe(200);
    const tenant = new Browser();
    await tenant.signIn(a.key);
    expect((await tenant.fetch("GET", "/console/platform/tenants")).status).toBe(403);
    expect((await tenant.fetch("GET", "/console/overview")).status).toBe(200);
    // A link from another site comes without the SameSite=Strict cookie: it is sent to sign in, and
    // nothing it receives deletes the session it could not see.
    const crossSite = await fence.request("GET", "/console/overview");
    expect(crossSite.status).toBe(303);
    expect(crossSite.headers.getSetCookie()).toEqual([]);
  });

  it("serves its stylesheet and scripts under hashed names with a year's cache, and nothing else from that folder", async () => {
    const html = await (await new Browser().fetch("GET", "/console/sign-in")).text();
    const scripts = [...html.matchAll(/<script src="([^"]+)"/g)].map((m) => m[1]!);
    expect(scripts).toHaveLength(3);
    for (const src of scripts) {
      const res = await fence.request("GET", src);
      expect(res.status, src).toBe(200);
      expect(res.headers.get("content-type")).toMatch(/^text\/javascript/);
      expect(res.headers.get("cache-control")).toBe("public, max-age=31536000, immutable");
    }
    const href = /<link rel="stylesheet" href="([^"]+)"/.exec(html)![1]!;
    expect(href).toMatch(/^\/console\/assets\/console\.[0-9a-f]{12}\.css$/);
    const css = await fence.request("GET", href);
    expect(css.status).toBe(200);
    expect(css.headers.get("cache-control")).toBe("public, max-age=31536000, immutable");
    expect((await fence.request("GET", "/console/assets/other.css")).status).toBe(404);
  });
});
