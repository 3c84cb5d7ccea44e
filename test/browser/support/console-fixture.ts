import { mkdir, rm } from "node:fs/promises";
import { afterAll, afterEach, beforeAll, expect } from "vitest";
import { fileURLToPath } from "node:url";
import { chromium, type Browser, type BrowserContext, type BrowserContextOptions, type ConsoleMessage, type Dialog, type Page, type Response } from "playwright-core";
import type { IngestedDocumentJson, IssuedKeyJson } from "../../support/api-types.js";
import { CheapEmbeddings } from "../../support/cheap-embeddings.js";
import { startFakeOpenAI, type FakeOpenAI } from "../../support/fake-openai.js";
import { ADMIN_KEY, serveOnLoopback, TestFence, type TestTenant } from "../../support/harness.js";

/**
 * The console's browser fixture: one Fence served over loopback HTTP (in-memory PGlite, the fake
 * LLM for pages that ask), two seeded tenants, one Chromium, and a watch on every page it opens.
 *
 * Every page a context of this fixture opens (tabs and pop-ups alike) records what a console page
 * must never cause: a dialog (the XSS payloads here call alert(), so any dialog is script that an
 * attacker wrote, running — except a confirm the test announced with `expectDialog`), a request to an origin other than Fence's (an exfiltration, or an
 * asset the Content-Security-Policy would refuse in production), and a console error or uncaught
 * exception (a CSP violation is reported as a console error). Tests assert `takeIncidents()` is
 * empty.
 */

/** Where Chromium is: Debian's package by default (scripts/setup-chromium.sh), never Playwright's download. */
export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";

/** Screenshots of the pages the suite visits, for a person to look at (CI keeps artifacts/). */
export const SCREENSHOT_DIR = fileURLToPath(new URL("../../../artifacts/screenshots/", import.meta.url));

/** Markup a tenant could write as a title; each calls alert() if the console ever renders it as HTML. */
export const XSS_TITLE = "<img src=x onerror=alert(1)><script>alert(2)</script>";
/** Would load an image from another origin if rendered (a foreign request, or a CSP violation). */
export const EXFIL_TITLE = `"><img src="https://attacker.invalid/steal.png?from=console">`;

export interface SeededDocument {
  id: string;
  title: string;
}

export interface SeededTenant extends TestTenant {
  documents: SeededDocument[];
  /** Strings only this tenant's data holds: no page of another tenant may contain one. */
  canaries: string[];
}

/** A dialog a test is about to cause on purpose, e.g. the console's confirm before a revoke. */
export interface ExpectedDialog {
  type: ReturnType<Dialog["type"]>;
  /** The dialog's whole text, or a pattern it must match. */
  message: string | RegExp;
  /** Accept it (OK) or dismiss it (Cancel). */
  accept: boolean;
}

export interface Incidents {
  dialogs: string[];
  foreignRequests: string[];
  consoleErrors: string[];
}

export interface ConsoleFixture {
  /** Fence's origin, e.g. http://127.0.0.1:41234 — the only origin a console page may reach. */
  origin: string;
  fence: TestFence;
  llm: FakeOpenAI;
  browser: Browser;
  /** Tenant A, whose console the tests use; its documents include the XSS titles. */
  a: SeededTenant;
  /** Tenant B, whose data must never show in A's console. */
  b: SeededTenant;
  /** A's keys, one per kind of session the console must tell apart. */
  keys: { read: IssuedKeyJson; owner: IssuedKeyJson; withoutRead: IssuedKeyJson };
  adminKey: string;
  /** A fresh key of tenant A with these scopes (e.g. one a test revokes). */
  issueKey(tenant: TestTenant, scopes: string[], name?: string): Promise<IssuedKeyJson>;
  /** A fresh browser profile (its own cookies and storage), watched; closed by `closeContexts()`. Options as Playwright's (e.g. a phone's viewport). */
  newContext(options?: BrowserContextOptions): Promise<BrowserContext>;
  /** A watched tab, in a new context unless one is given. */
  newPage(context?: BrowserContext): Promise<Page>;
  /** Signs in through the form as a person would; resolves once the page it leads to has loaded. */
  signIn(page: Page, key: string): Promise<SignInOutcome>;
  /**
   * Announces the next dialog on `page`: one of this type and text is handled as told (and listed
   * in `expectedDialogs`) instead of being an incident. Expectations are met in order, each once;
   * any other dialog is still an incident, and one never met is reported as one by `takeIncidents()`.
   */
  expectDialog(page: Page, expected: ExpectedDialog): void;
  /** The announced dialogs that opened, as `type "message"` (reset by `takeIncidents()`). */
  expectedDialogs: string[];
  /** A full-page PNG under artifacts/screenshots/; returns its path. */
  screenshot(page: Page, name: string): Promise<string>;
  /** Every request URL the watched pages made, same origin included (reset by `takeIncidents()`). */
  requests: string[];
  /** What the watched pages recorded since the last `takeIncidents()`, left in place. */
  peekIncidents(): Incidents;
  /** What the watched pages recorded since the last call, and starts afresh; an announced dialog that never opened is one of its dialogs. */
  takeIncidents(): Incidents;
  closeContexts(): Promise<void>;
  close(): Promise<void>;
}

export interface SignInOutcome {
  /** The POST's own answer: 303 on success, the form again with 401/403 on refusal. */
  status: number;
  /** Where the browser ended up (after the redirects). */
  url: URL;
}

/**
 * Starts the fixture. Throws when Chromium cannot start, so the suite's beforeAll fails and every
 * test with it: a missing browser must fail CI, not pass it with no tests run.
 */
export async function startConsoleFixture(): Promise<ConsoleFixture> {
  const browser = await chromium.launch({ executablePath: CHROMIUM_PATH, args: ["--no-sandbox"] }).catch((error: unknown) => {
    throw new Error(`Chromium did not start from ${CHROMIUM_PATH} (run scripts/setup-chromium.sh, or set CHROMIUM_PATH): ${String(error)}`);
  });
  const closers: (() => Promise<unknown>)[] = [() => browser.close()];
  const closeAll = async () => {
    for (const close of closers.splice(0).reverse()) await close().catch(() => undefined);
  };
  try {
    const llm = await startFakeOpenAI();
    closers.push(() => llm.close());
    // Cheap embeddings: this suite tests pages, not retrieval quality, and the real model's load
    // would be most of its run time. Job workers run (FENCE_JOB_WORKERS' default): the Documents
    // page queues every upload and follows its job; the seeding below is synchronous (small JSON
    // uploads are ingested in the request).
    const fence = await TestFence.start(
      { name: "pglite", databaseUrl: undefined },
      { embeddings: new CheapEmbeddings(), env: { LLM_BASE_URL: llm.url, LLM_MODEL: "fake-model" } },
    );
    closers.push(() => fence.close());
    const server = await serveOnLoopback(fence.fence);
    closers.push(() => server.close());
    const origin = new URL(server.url).origin;

    const issueKey = async (tenant: TestTenant, scopes: string[], name = `browser-${scopes.join("-")}`) => {
      const res = await fence.admin("POST", `/tenants/${tenant.id}/keys`, { name, scopes });
      if (res.status !== 201) throw new Error(`issue key: ${res.status} ${await res.text()}`);
      return (await res.json()) as IssuedKeyJson;
    };
    const upload = async (tenant: TestTenant, title: string, text: string): Promise<SeededDocument> => {
      const doc: IngestedDocumentJson = await fence.upload(tenant, { title, text });
      return { id: doc.id, title };
    };

    const a = await fence.createTenant("browser-tenant-a", "enterprise");
    const b = await fence.createTenant("browser-tenant-b-CANARY-BROWSER-B-NAME", "enterprise");
    const aDocuments = [
      await upload(a, XSS_TITLE, "The console shows this title as text; if it ran, alert() would open a dialog."),
      await upload(a, EXFIL_TITLE, "If this title were markup the page would fetch an image from another origin."),
      await upload(a, "Tenant A handbook", "Onboarding notes for tenant A: the console lists this document."),
    ];
    const bCanaries = ["CANARY-BROWSER-B-TITLE-1", "CANARY-BROWSER-B-TEXT-1", "CANARY-BROWSER-B-TITLE-2", "CANARY-BROWSER-B-TEXT-2", "CANARY-BROWSER-B-NAME"];
    const bDocuments = [
      await upload(b, "CANARY-BROWSER-B-TITLE-1 board minutes", "CANARY-BROWSER-B-TEXT-1 The board approved the acquisition."),
      await upload(b, "CANARY-BROWSER-B-TITLE-2 salaries", "CANARY-BROWSER-B-TEXT-2 Salary bands for next year."),
    ];
    const keys = {
      read: await issueKey(a, ["read"]),
      owner: await issueKey(a, ["owner"]),
      withoutRead: await issueKey(a, ["query", "ingest"]),
    };

    const incidents: Incidents = { dialogs: [], foreignRequests: [], consoleErrors: [] };
    const requests: string[] = [];
    const expectations = new Map<Page, ExpectedDialog[]>();
    const expectedDialogs: string[] = [];
    const describeDialog = (expected: ExpectedDialog) => `${expected.type} ${typeof expected.message === "string" ? `"${expected.message}"` : String(expected.message)}`;
    const contexts = new Set<BrowserContext>();

    const watch = (page: Page) => {
      // Documents the tab navigated to: the test asserts their status, so Chromium's console line
      // for a 403/404 document ("Failed to load resource") is expected. Any other resource that
      // fails to load (a stylesheet, a script) is still an error.
      const documents = new Set<string>();
      page.on("dialog", (dialog) => {
        const pending = expectations.get(page) ?? [];
        const next = pending[0];
        const message = dialog.message();
        if (next && dialog.type() === next.type && (typeof next.message === "string" ? message === next.message : next.message.test(message))) {
          pending.shift();
          expectedDialogs.push(`${dialog.type()} "${message}"`);
          void (next.accept ? dialog.accept() : dialog.dismiss()).catch(() => undefined);
          return;
        }
        incidents.dialogs.push(`${dialog.type()} "${message}" on ${page.url()}${next ? ` (expected ${describeDialog(next)})` : ""}`);
        void dialog.dismiss().catch(() => undefined);
      });
      page.on("request", (request) => {
        const url = request.url();
        requests.push(url);
        if (request.isNavigationRequest() && request.frame() === page.mainFrame()) documents.add(url);
        // data: URLs reach no server (the CSP allows them for images); everything else must be Fence's.
        if (!url.startsWith("data:") && new URL(url).origin !== origin) incidents.foreignRequests.push(`${request.method()} ${url} from ${page.url()}`);
      });
      page.on("websocket", (socket) => {
        if (new URL(socket.url()).host !== new URL(origin).host) incidents.foreignRequests.push(`websocket ${socket.url()} from ${page.url()}`);
      });
      page.on("console", (message: ConsoleMessage) => {
        if (message.type() !== "error") return;
        const at = message.location().url;
        if (/^Failed to load resource: the server responded with a status of 4\d\d/.test(message.text()) && documents.has(at)) return;
        incidents.consoleErrors.push(`${message.text()} at ${at || page.url()}`);
      });
      page.on("pageerror", (error) => incidents.consoleErrors.push(`uncaught ${error.name}: ${error.message} on ${page.url()}`));
    };

    const newContext = async (options: BrowserContextOptions = {}) => {
      const context = await browser.newContext({ ...options, baseURL: origin });
      contexts.add(context);
      context.on("page", watch);
      return context;
    };

    // Each run's screenshots only: a page that went away must not leave last run's picture behind.
    await rm(SCREENSHOT_DIR, { recursive: true, force: true });
    await mkdir(SCREENSHOT_DIR, { recursive: true });

    return {
      origin,
      fence,
      llm,
      browser,
      a: { ...a, documents: aDocuments, canaries: [] },
      b: { ...b, documents: bDocuments, canaries: bCanaries },
      keys,
      adminKey: ADMIN_KEY,
      issueKey,
      newContext,
      newPage: async (context) => (context ?? (await newContext())).newPage(),
      signIn: async (page, key) => {
        await page.goto("/console/sign-in");
        await page.locator('input[name="key"]').fill(key);
        const [posted] = await Promise.all([
          page.waitForResponse((res: Response) => res.request().method() === "POST" && new URL(res.url()).pathname === "/console/sign-in"),
          page.getByRole("button", { name: "Sign in" }).click(),
        ]);
        await page.waitForLoadState("load");
        return { status: posted.status(), url: new URL(page.url()) };
      },
      expectDialog: (page, expected) => {
        const pending = expectations.get(page) ?? [];
        pending.push(expected);
        expectations.set(page, pending);
      },
      expectedDialogs,
      screenshot: async (page, name) => {
        const path = `${SCREENSHOT_DIR}${name.replace(/[^a-z0-9-]+/gi, "-")}.png`;
        await page.screenshot({ path, fullPage: true });
        return path;
      },
      requests,
      peekIncidents: () => ({ dialogs: [...incidents.dialogs], foreignRequests: [...incidents.foreignRequests], consoleErrors: [...incidents.consoleErrors] }),
      takeIncidents: () => {
        for (const [page, pending] of expectations) {
          for (const expected of pending) incidents.dialogs.push(`expected ${describeDialog(expected)} never opened on ${page.url()}`);
        }
        expectations.clear();
        expectedDialogs.splice(0);
        const taken = { dialogs: incidents.dialogs.splice(0), foreignRequests: incidents.foreignRequests.splice(0), consoleErrors: incidents.consoleErrors.splice(0) };
        requests.splice(0);
        return taken;
      },
      closeContexts: async () => {
        for (const context of contexts) await context.close().catch(() => undefined);
        contexts.clear();
      },
      close: closeAll,
    };
  } catch (error) {
    await closeAll();
    throw error;
  }
}

/**
 * One fixture per test file, handed to `use` once started, closed after the file; after each test,
 * its pages must have had no incident (an unannounced dialog, a request to another origin, a
 * console error or CSP violation), and its contexts are closed.
 */
export function useConsoleFixture(use: (fixture: ConsoleFixture) => void): void {
  let fixture: ConsoleFixture | undefined;
  beforeAll(async () => {
    fixture = await startConsoleFixture();
    use(fixture);
  });
  afterAll(async () => {
    await fixture?.close();
  });
  afterEach(async () => {
    if (!fixture) return; // the fixture failed to start: beforeAll's error already fails every test
    const incidents = fixture.takeIncidents();
    await fixture.closeContexts();
    expect(incidents, "a page of this test ran an unannounced dialog, reached another origin or logged an error").toEqual({ dialogs: [], foreignRequests: [], consoleErrors: [] });
  });
}
