import type { Child } from "hono/jsx";
import { ASSETS } from "./assets.js";

/**
 * The console's frame, server-rendered with hono/jsx. JSX escapes every value it renders, so a
 * document title, a file name, a question or anything else a tenant wrote is text on the page,
 * never markup (stored XSS is what the console's suites attack). No page has an inline script or
 * style: scripts and styles are the hashed files of assets.ts.
 */

export interface NavItem {
  href: string;
  label: string;
}

export interface Chrome {
  /** Who is signed in: a tenant key's description, or the platform admin. */
  who: string;
  /** The session's CSRF token: every form's hidden field, and htmx's and fetch's header. */
  csrf: string;
  nav: NavItem[];
  /** The page's own path, marked in the navigation. */
  current?: string | undefined;
}

/** htmx without what a strict CSP forbids or this console does not use (eval, inline styles, script tags in fragments). */
const HTMX_CONFIG = JSON.stringify({ includeIndicatorStyles: false, allowEval: false, allowScriptTags: false, selfRequestsOnly: true });

export function Layout(props: { title: string; chrome?: Chrome | undefined; children?: Child }) {
  const { chrome } = props;
  return (
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <meta name="referrer" content="no-referrer" />
        <meta name="htmx-config" content={HTMX_CONFIG} />
        {chrome && <meta name="csrf-token" content={chrome.csrf} />}
        <title>{`${props.title} · Fence console`}</title>
        {/* No icon to fetch: without this the browser asks for /favicon.ico and logs its 404. */}
        <link rel="icon" href="data:," />
        <link rel="stylesheet" href={ASSETS["console.css"].path} />
        <link rel="stylesheet" href={ASSETS["uPlot.min.css"].path} />
        <script src={ASSETS["htmx.min.js"].path} defer></script>
        <script src={ASSETS["uPlot.min.js"].path} defer></script>
        <script src={ASSETS["console.js"].path} defer></script>
      </head>
      <body hx-headers={chrome ? JSON.stringify({ "x-csrf-token": chrome.csrf }) : undefined}>
        <header>
          <strong>Fence</strong>
          {chrome && (
            <>
              <nav aria-label="Console">
                {chrome.nav.map((item) => (
                  <a href={item.href} aria-current={item.href === chrome.current ? "page" : undefined}>
                    {item.label}
                  </a>
                ))}
              </nav>
              <span class="muted">{chrome.who}</span>
              <form method="post" action="/console/sign-out">
                <input type="hidden" name="csrf" value={chrome.csrf} />
                <button type="submit">Sign out</button>
              </form>
            </>
          )}
        </header>
        <main>
          <h1>{props.title}</h1>
          {props.children}
        </main>
      </body>
    </html>
  );
}

/** A hidden CSRF field, for every form a signed-in page posts. */
export function Csrf(props: { chrome: Chrome }) {
  return <input type="hidden" name="csrf" value={props.chrome.csrf} />;
}

export function ErrorNote(props: { message?: string | undefined }) {
  return props.message ? (
    <p class="error" role="alert">
      {props.message}
    </p>
  ) : null;
}

export function Notice(props: { message?: string | undefined }) {
  return props.message ? (
    <p class="notice" role="status">
      {props.message}
    </p>
  ) : null;
}

export function SignInPage(props: { csrf: string; error?: string | undefined }) {
  return (
    <Layout title="Sign in">
      <p>Paste an API key: a tenant key opens what its scopes allow, the admin key opens the platform view.</p>
      <ErrorNote message={props.error} />
      <form method="post" action="/console/sign-in">
        <input type="hidden" name="csrf" value={props.csrf} />
        <label for="key">API key</label>
        <input id="key" name="key" type="password" autocomplete="off" required autofocus />
        <p>
          <button type="submit">Sign in</button>
        </p>
      </form>
      <p class="muted">The key is exchanged for a session cookie and is not kept by the browser.</p>
    </Layout>
  );
}

export function MessagePage(props: { title: string; message: string; chrome?: Chrome | undefined }) {
  return (
    <Layout title={props.title} chrome={props.chrome}>
      <p>{props.message}</p>
      <p>
        <a href="/console">Back to the console</a>
      </p>
    </Layout>
  );
}

/** A time as the API writes it, shown to the minute in UTC, with the exact value for machines. */
export function Time(props: { at: Date | string | null | undefined }) {
  if (!props.at) return <span class="muted">—</span>;
  const iso = typeof props.at === "string" ? props.at : props.at.toISOString();
  return <time datetime={iso}>{`${iso.slice(0, 16).replace("T", " ")} UTC`}</time>;
}

/** A count as people read it (thousands separated). */
export const count = (n: number) => n.toLocaleString("en-US");

/** Micro-units of a dollar as dollars: cents, or four places below a cent so small spend is not $0.00. */
export const dollars = (micros: number) => `$${(micros / 1_000_000).toFixed(micros < 10_000 ? 4 : 2)}`;
