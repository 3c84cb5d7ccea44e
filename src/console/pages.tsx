import type { Child } from "hono/jsx";
import { STYLESHEET } from "./assets.js";

/**
 * The console's pages, server-rendered with hono/jsx. JSX escapes every value it renders, so a
 * document title, a file name or anything else a tenant wrote is text on the page, never markup
 * (stored XSS is what the console suite attacks). No page has an inline script or style.
 */

export interface Chrome {
  /** Who is signed in: a tenant key's description, or the platform admin. */
  who: string;
  /** The session's CSRF token, for the sign-out form. */
  csrf: string;
  nav: { href: string; label: string }[];
}

export function Layout(props: { title: string; chrome?: Chrome | undefined; children?: Child }) {
  return (
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <meta name="referrer" content="no-referrer" />
        <title>{`${props.title} · Fence console`}</title>
        <link rel="stylesheet" href={STYLESHEET.path} />
      </head>
      <body>
        <header>
          <strong>Fence</strong>
          {props.chrome && (
            <>
              <nav aria-label="Console">
                {props.chrome.nav.map((item) => (
                  <a href={item.href}>{item.label}</a>
                ))}
              </nav>
              <span class="muted">{props.chrome.who}</span>
              <form method="post" action="/console/sign-out">
                <input type="hidden" name="csrf" value={props.chrome.csrf} />
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

export function SignInPage(props: { csrf: string; error?: string | undefined }) {
  return (
    <Layout title="Sign in">
      <p>Paste an API key: a tenant key opens what its scopes allow, the admin key opens the platform view.</p>
      {props.error && (
        <p class="error" role="alert">
          {props.error}
        </p>
      )}
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

export interface DocumentRow {
  id: string;
  title: string;
  createdAt: string;
}

export function DocumentsPage(props: { chrome: Chrome; documents: DocumentRow[]; nextCursor: string | null }) {
  return (
    <Layout title="Documents" chrome={props.chrome}>
      {props.documents.length === 0 ? (
        <p>No documents yet. Upload one with <code>POST /v1/documents</code> or the CLI, and it appears here.</p>
      ) : (
        <table>
          <thead>
            <tr>
              <th scope="col">Title</th>
              <th scope="col">Added</th>
              <th scope="col">Id</th>
            </tr>
          </thead>
          <tbody>
            {props.documents.map((doc) => (
              <tr>
                <td>{doc.title}</td>
                <td>
                  <time datetime={doc.createdAt}>{doc.createdAt.slice(0, 16).replace("T", " ")}</time>
                </td>
                <td class="muted">
                  <code>{doc.id}</code>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {props.nextCursor && (
        <p>
          <a href={`/console/documents?cursor=${encodeURIComponent(props.nextCursor)}`}>Older documents</a>
        </p>
      )}
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
