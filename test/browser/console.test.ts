import { randomUUID } from "node:crypto";
import type { Page } from "playwright-core";
import { describe, expect, it } from "vitest";
import { EXFIL_TITLE, useConsoleFixture, XSS_TITLE, type ConsoleFixture } from "./support/console-fixture.js";
import { expectNoneOf, forbiddenInA as forbiddenInLeaks } from "./support/leaks.js";
import { walkConsole, type VisitedPage } from "./support/walk.js";

/**
 * The console in a real browser (Chromium through playwright-core), against Fence over loopback
 * HTTP: what the HTTP-level suite (test/integration/console) cannot see — that the browser keeps
 * no key, honours HttpOnly and SameSite, enforces the Content-Security-Policy, never runs what a
 * tenant wrote, and that every page a session reaches by its links shows its tenant's data only.
 * Every test ends with no dialog, no request to another origin and no console error on any page
 * it opened (afterEach).
 */

const SIGN_IN = "/console/sign-in";
/** A tenant's documents: the page where tenant A's titles, and B's if ever leaked, show. */
const DOCUMENTS = "/console/documents";
const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/gi;

let fx: ConsoleFixture;
useConsoleFixture((started) => (fx = started));

const forbiddenInA = () => forbiddenInLeaks(fx);

const sessionCookie = async (page: Page) => (await page.context().cookies()).find((cookie) => cookie.name === "fence_console");
const shortPath = (url: URL) => `${url.pathname}${url.search}`.replace(/^\/console\/?/, "") || "console";

/** Sets a form's hidden CSRF field, as a forged or replayed form would carry it. */
async function setCsrfField(page: Page, action: string, value: string) {
  await page.locator(`form[action="${action}"] input[name="csrf"]`).evaluate((input, token) => {
    (input as unknown as { value: string }).value = token;
  }, value);
}

/** Submits a page's form with its button and returns the POST's own status (before any redirect). */
async function submit(page: Page, action: string, button: string): Promise<number> {
  const [response] = await Promise.all([
    page.waitForResponse((res) => res.request().method() === "POST" && new URL(res.url()).pathname === action),
    page.getByRole("button", { name: button }).click(),
  ]);
  await page.waitForLoadState("load");
  return response.status();
}

describe("the console in Chromium", () => {
  it("the watch on every page catches what it is for: a dialog, a request to another origin, and an inline script the CSP refuses", async () => {
    // The afterEach assertion is only worth something if the watch sees these; prove it does.
    const consolePage = await fx.newPage();
    await consolePage.goto(SIGN_IN);
    // The console's CSP holds in the browser: an inline script the page gains is refused, not run.
    await consolePage.evaluate(`(() => { const s = document.createElement("script"); s.textContent = "alert('inline ran')"; document.body.append(s); })()`);
    await expect.poll(() => fx.peekIncidents().consoleErrors.length, { timeout: 5_000 }).toBeGreaterThan(0);
    // A page without Fence's CSP runs what it is given: the watch must see that too.
    const bare = await fx.newPage();
    await bare.setContent(`<img src="https://attacker.invalid/probe.png"><img src=x onerror="alert('watched')">`);
    await expect.poll(() => fx.peekIncidents().dialogs.length, { timeout: 5_000 }).toBeGreaterThan(0);

    const incidents = fx.takeIncidents();
    expect(incidents.dialogs).toEqual([expect.stringContaining("watched")]); // not "inline ran": the CSP stopped it
    expect(incidents.foreignRequests).toEqual([expect.stringContaining("https://attacker.invalid/probe.png")]);
    expect(incidents.consoleErrors.some((line) => /Content Security Policy/i.test(line) && /script-src/.test(line))).toBe(true);
  });

  const signIns = [
    { label: "a read key", kind: "tenant", key: () => fx.keys.read, seesDocuments: true },
    { label: "an owner key", kind: "tenant", key: () => fx.keys.owner, seesDocuments: true },
    { label: "a key without the read scope", kind: "tenant", key: () => fx.keys.withoutRead, seesDocuments: false },
    { label: "the admin key", kind: "admin", key: () => ({ key: fx.adminKey, id: "", scopes: [] as string[] }), seesDocuments: false },
  ] as const;

  it.each(signIns)("signs in with $label through the form: lands on its page, and the browser keeps no key, only an HttpOnly, SameSite=Strict session cookie", async ({ label, kind, key, seesDocuments }) => {
    const { key: secret, id, scopes } = key();
    const page = await fx.newPage();
    await page.goto(SIGN_IN);
    await fx.screenshot(page, "sign-in");
    const outcome = await fx.signIn(page, secret);
    expect(outcome.status).toBe(303);
    // The landing is recognised by what it shows, not by its path (the console's pages are still
    // growing): signed in, this session's own view, and the console's home for this session.
    const landing = outcome.url.pathname;
    expect(landing).toMatch(/^\/console\/./);
    expect(landing).not.toBe(SIGN_IN);
    await fx.screenshot(page, `landing-${label}`);
    const header = await page.locator("header").innerText();
    expect(await page.getByRole("button", { name: "Sign out" }).isVisible()).toBe(true);
    if (kind === "admin") {
      expect(header).toContain("platform admin");
      // The platform view lists every tenant (B's name included: the admin is no tenant).
      const main = await page.locator("main").innerText();
      expect(main).toContain(fx.a.name);
      expect(main).toContain(fx.b.name);
    } else {
      expect(header).toContain(`tenant ${fx.a.id.slice(0, 8)}`);
      expect(header).toContain(`key ${id.slice(0, 8)} (${scopes.join(", ")})`);
      expectNoneOf(await page.content(), forbiddenInA(), `${label}'s landing page`);
      // What the key's scopes allow, and no more: the documents list needs 'read'.
      const documents = await page.goto(DOCUMENTS);
      const main = await page.locator("main").innerText();
      if (seesDocuments) {
        expect(documents!.status()).toBe(200);
        expect(main).toContain("Tenant A handbook");
      } else {
        expect(documents!.status()).toBe(403);
        expect(main).toContain("lacks the 'read' scope");
        expect(main).not.toContain("Tenant A handbook");
      }
    }
    await page.goto("/console");
    expect(new URL(page.url()).pathname, "the console's home for this session").toBe(landing);

    // The key is gone from the browser: not in a cookie, not in web storage, not in the URL or the page.
    const cookies = await page.context().cookies();
    const jar = cookies.map((cookie) => `${cookie.name}=${decodeURIComponent(cookie.value)}`).join("\n");
    expect(jar).not.toContain(secret);
    expect(jar).not.toContain(secret.slice(-24));
    const storage = await page.evaluate<string>("JSON.stringify([Object.entries(localStorage), Object.entries(sessionStorage)])");
    expect(storage).not.toContain(secret.slice(-24));
    expect(page.url()).not.toContain(secret.slice(-24));
    expect(await page.content()).not.toContain(secret.slice(-24));

    const session = await sessionCookie(page);
    expect(session).toBeDefined();
    expect(session!.httpOnly).toBe(true);
    expect(session!.sameSite).toBe("Strict");
    expect(session!.path).toBe("/console");
    // HttpOnly as the browser enforces it: the page's own script cannot read the session.
    expect(await page.evaluate<string>("document.cookie")).not.toContain("fence_console=");
    // The sign-in form's token cookie is spent.
    expect(cookies.map((cookie) => cookie.name)).not.toContain("fence_console_signin");
  });

  it("refuses a wrong key with the form again and an error, and no session", async () => {
    const page = await fx.newPage();
    const outcome = await fx.signIn(page, `fence_prod_${"x".repeat(40)}`);
    expect(outcome.status).toBe(401);
    expect(outcome.url.pathname).toBe(SIGN_IN);
    expect(await page.getByRole("alert").innerText()).toContain("Missing or invalid API key.");
    expect(await page.locator('input[name="key"]').inputValue()).toBe(""); // the key is not echoed back
    expect(await sessionCookie(page)).toBeUndefined();
    await fx.screenshot(page, "sign-in-refused");
  });

  const walkers = [
    { label: "owner", key: () => fx.keys.owner.key, allowed: [200] },
    { label: "read", key: () => fx.keys.read.key, allowed: [200, 403] },
    { label: "without-read", key: () => fx.keys.withoutRead.key, allowed: [200, 403] },
  ];

  it.each(walkers)("signed in as A with the $label key, every page its links reach shows none of B's data, no key, and carries the strict CSP", async ({ label, key, allowed }) => {
    const page = await fx.newPage();
    await fx.signIn(page, key());
    const visited: VisitedPage[] = await walkConsole(page, fx.origin, {
      visit: async (visit) => {
        if (visit.download === undefined) await fx.screenshot(page, `walk-${label}-${shortPath(visit.url)}`);
      },
    });
    if (label === "without-read") {
      // No page this key reaches lists A's documents: that takes 'read'.
      for (const visit of visited) expect(visit.text, visit.requested).not.toContain("Tenant A handbook");
    } else {
      // The walk reached the documents list and showed A's own titles: the pages where B's
      // would appear, were the list ever not the tenant's, are among those checked.
      expect(visited.map((visit) => visit.url.pathname)).toContain(DOCUMENTS);
      expect(visited.some((visit) => visit.text.includes("Tenant A handbook"))).toBe(true);
    }
    for (const visit of visited) {
      const where = `${visit.requested} (as ${label})`;
      expect(visit.url.pathname, `${where} signed the session out`).not.toBe(SIGN_IN);
      expect(allowed, `${where} answered ${visit.status}`).toContain(visit.status);
      expectNoneOf(visit.html, forbiddenInA(), where);
      if (visit.download === undefined) {
        expect(visit.contentSecurityPolicy, where).toMatch(/default-src 'none'/);
        expect(visit.contentSecurityPolicy, where).toMatch(/script-src 'self'(;|$)/);
        expect(visit.contentSecurityPolicy, where).not.toMatch(/unsafe-inline|unsafe-eval/);
      }
    }
  });

  it("answers B's document id exactly as a made-up one: the same 404 page", async () => {
    const page = await fx.newPage();
    await fx.signIn(page, fx.keys.owner.key);
    const open = async (id: string) => {
      const response = await page.goto(`/console/documents/${id}`);
      // The requested id may be echoed, and a request id differs per request; all else must match.
      const text = (await page.locator("body").innerText()).replaceAll(id, "<id>").replace(UUID, "<uuid>");
      return { status: response!.status(), text, html: await page.content() };
    };
    const bDocument = fx.b.documents[0]!;
    const foreign = await open(bDocument.id);
    await fx.screenshot(page, "document-of-another-tenant");
    const missing = await open(randomUUID());
    expect(foreign.status).toBe(404);
    expect(missing.status).toBe(404);
    expect(foreign.text).toBe(missing.text);
    // The id asked for may be echoed back (it came from the URL); nothing else of B's may show.
    expectNoneOf(foreign.html.replaceAll(bDocument.id, "<id>"), forbiddenInA(), "B's document id's page");

    // Whether or not the console has a page per document yet, A's own id answers A's document or
    // that same not-found page; never another page.
    const own = await open(fx.a.documents[2]!.id);
    if (own.status === 200) expect(own.text).toContain("Tenant A handbook");
    else expect(own).toMatchObject({ status: 404, text: missing.text });
  });

  it("shows a tenant's markup titles as literal text: no script runs, no element is made, nothing is fetched", async () => {
    const page = await fx.newPage();
    await fx.signIn(page, fx.keys.read.key);
    await page.goto(DOCUMENTS);
    // Give an onerror handler or an image fetch every chance to happen before looking.
    await page.waitForLoadState("networkidle");
    const text = (await page.locator("main").textContent()) ?? "";
    expect(text).toContain("<img src=x");
    expect(text).toContain(XSS_TITLE);
    expect(text).toContain(EXFIL_TITLE);
    expect(await page.locator('img[src="x"], img[src*="attacker.invalid"], script:not([src])').count()).toBe(0);
    await fx.screenshot(page, "documents-with-markup-titles");

    // Rendered as markup, the titles would have fetched /console/x (same origin: the watch's
    // foreign-request check would not see it) and attacker.invalid, and opened a dialog.
    expect(fx.requests.filter((url) => /\/x$|attacker\.invalid/.test(url))).toEqual([]);
    expect(fx.peekIncidents()).toEqual({ dialogs: [], foreignRequests: [], consoleErrors: [] });
  });

  it("ends a session once its key is revoked: the next navigation in another tab lands on the sign-in page", async () => {
    const key = await fx.issueKey(fx.a, ["read"], "browser-revoked");
    const context = await fx.newContext();
    const first = await context.newPage();
    expect((await fx.signIn(first, key.key)).url.pathname).not.toBe(SIGN_IN);
    // A second tab of the same profile shares the session.
    const second = await context.newPage();
    await second.goto(DOCUMENTS);
    expect(new URL(second.url()).pathname).toBe(DOCUMENTS);
    expect(await second.locator("main").innerText()).toContain("Tenant A handbook");

    const revoked = await fx.fence.admin("DELETE", `/tenants/${fx.a.id}/keys/${key.id}`);
    expect(revoked.status).toBe(204);

    await second.goto(DOCUMENTS);
    expect(new URL(second.url()).pathname).toBe(SIGN_IN);
    expect(await second.locator("main").innerText()).not.toContain("Tenant A handbook");
    expect(await sessionCookie(second)).toBeUndefined();
    await fx.screenshot(second, "signed-out-after-revocation");
  });

  it("refuses a sign-out form carrying another session's token or a forged one (403), and the session survives; its own token signs out", async () => {
    const victim = await fx.newPage();
    await fx.signIn(victim, fx.keys.owner.key);
    const other = await fx.newPage();
    await fx.signIn(other, fx.keys.read.key);
    const tokenOf = (page: Page) => page.locator('form[action="/console/sign-out"] input[name="csrf"]').inputValue();
    const victimToken = await tokenOf(victim);
    const otherToken = await tokenOf(other);
    expect(otherToken).not.toBe(victimToken);

    for (const forged of [otherToken, "forged-token"]) {
      await victim.goto(DOCUMENTS);
      await setCsrfField(victim, "/console/sign-out", forged);
      expect(await submit(victim, "/console/sign-out", "Sign out")).toBe(403);
      expect(await victim.locator("h1").innerText()).toBe("Not signed out");
      await victim.goto(DOCUMENTS);
      expect(new URL(victim.url()).pathname).toBe(DOCUMENTS);
      expect(await victim.locator("main").innerText()).toContain("Tenant A handbook");
    }
    // The other session was not touched by its token's replay either.
    await other.goto(DOCUMENTS);
    expect(new URL(other.url()).pathname).toBe(DOCUMENTS);

    // Control: the form as the page serves it signs out.
    expect(await submit(victim, "/console/sign-out", "Sign out")).toBe(303);
    expect(new URL(victim.url()).pathname).toBe(SIGN_IN);
    await victim.goto(DOCUMENTS);
    expect(new URL(victim.url()).pathname).toBe(SIGN_IN);
  });

  it("refuses a sign-in posted without the form's token, or with another form's (403), and makes no session", async () => {
    const page = await fx.newPage();
    await page.goto(SIGN_IN);
    await page.locator('form[action="/console/sign-in"] input[name="csrf"]').evaluate((input) => (input as unknown as { remove(): void }).remove());
    await page.locator('input[name="key"]').fill(fx.keys.owner.key);
    expect(await submit(page, SIGN_IN, "Sign in")).toBe(403);
    expect(await page.getByRole("alert").innerText()).toContain("came from another site");
    expect(await sessionCookie(page)).toBeUndefined();

    // A token from another browser's form does not match this browser's sign-in cookie.
    const elsewhere = await fx.newPage();
    await elsewhere.goto(SIGN_IN);
    const foreignToken = await elsewhere.locator('input[name="csrf"]').inputValue();
    await page.goto(SIGN_IN);
    await setCsrfField(page, SIGN_IN, foreignToken);
    await page.locator('input[name="key"]').fill(fx.keys.owner.key);
    expect(await submit(page, SIGN_IN, "Sign in")).toBe(403);
    expect(await sessionCookie(page)).toBeUndefined();

    // Control: the same browser signs in with the form as served.
    expect((await fx.signIn(page, fx.keys.owner.key)).status).toBe(303);
    expect(await sessionCookie(page)).toBeDefined();
  });

  it("never keeps a session cookie planted before sign-in (fixation), whether made up or an attacker's own valid session", async () => {
    const attacker = await fx.newPage();
    await fx.signIn(attacker, fx.keys.read.key);
    const attackersSession = (await sessionCookie(attacker))!.value;
    const host = new URL(fx.origin).hostname;

    const plants = [
      { label: "a made-up value at /console", value: "planted-session-id", path: "/console" },
      { label: "the attacker's session at /console", value: attackersSession, path: "/console" },
      // Cookies are not scoped by port: any other service on this host can set one for "/".
      { label: "the attacker's session at /", value: attackersSession, path: "/" },
    ];
    for (const plant of plants) {
      const victim = await fx.newPage();
      await victim.context().addCookies([{ name: "fence_console", value: plant.value, domain: host, path: plant.path, httpOnly: true, sameSite: "Strict" }]);
      await fx.signIn(victim, fx.keys.owner.key);
      const own = (await victim.context().cookies()).filter((cookie) => cookie.name === "fence_console" && cookie.path === "/console");
      expect(own.map((cookie) => cookie.value), plant.label).not.toContain(plant.value);
      // The session in use is the victim's own: its owner key, on this page and the next.
      for (const path of [DOCUMENTS, "/console"]) {
        await victim.goto(path);
        expect(await victim.locator("header").innerText(), `${plant.label}, ${path}`).toContain(`key ${fx.keys.owner.id.slice(0, 8)} (owner)`);
      }
    }
  });
});
