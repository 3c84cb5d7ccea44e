import { randomBytes } from "node:crypto";
import { Hono, type Context } from "hono";
import type { Child } from "hono/jsx";
import { deleteCookie, getCookie, getSignedCookie, setSignedCookie, setCookie } from "hono/cookie";
import { traitsOf } from "../core/error-catalogue.js";
import { FenceError, UnauthorizedError } from "../core/errors.js";
import { grants } from "../core/scopes.js";
import type { TenantContext } from "../core/tenant-context.js";
import type { FenceServices } from "../http/services.js";
import type { AppEnv } from "../http/types.js";
import { hashApiKey, secretsEqual } from "../tenancy/api-keys.js";
import { authenticateKeyHash, authenticateTenantRequest } from "../tenancy/authenticate.js";
import { STYLESHEET } from "./assets.js";
import { DocumentsPage, MessagePage, SignInPage, type Chrome } from "./pages.js";
import { newCsrfToken, parseSession, SESSION_COOKIE, SESSION_TTL_MS, SIGN_IN_COOKIE, tokensEqual, type ConsoleSession } from "./session.js";

/**
 * What a console page may load: its own stylesheet, nothing inline, nothing from another origin,
 * no framing; forms post only to Fence.
 */
/** A page as HTML with its doctype (JSX cannot write one); `status` as the route decides. */
function page(c: Context<AppEnv>, node: Child, status: 200 | 400 | 401 | 403 | 404 | 500 = 200) {
  return c.html(`<!doctype html>${String(node)}`, status);
}

/** A text field of a posted form; a file or a missing field is undefined. */
function field(form: Record<string, unknown>, name: string): string | undefined {
  const value = form[name];
  return typeof value === "string" ? value : undefined;
}

const CONTENT_SECURITY_POLICY =
  "default-src 'none'; style-src 'self'; img-src 'self' data:; script-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

export interface ConsoleOptions {
  /** Signs session cookies (FENCE_CONSOLE_SECRET); a random one per process when absent. */
  secret?: string | undefined;
}

/**
 * The console (issue 19), first slice: sign in with a key, sign out, the tenant's documents, the
 * platform's tenants. Server-rendered on Fence's own app, calling the same services as the API
 * with the same TenantContext: a page is one more way to call a service, never a second data path.
 *
 * A key is exchanged for a session cookie (HttpOnly, SameSite=Strict, Secure behind https, 8 h)
 * holding the key's hash, never the key; each request verifies that hash as the API verifies a
 * key, so revoking the key ends its sessions at their next request. Every form carries a CSRF
 * token — the sign-in form's own (a cookie it must echo, against login CSRF), then the session's.
 */
export function consoleRoutes(services: Pick<FenceServices, "db" | "adminKey" | "tenantAuthGuards" | "documents" | "tenantAdmin" | "logger">, options: ConsoleOptions = {}) {
  const secret = options.secret ?? randomBytes(32).toString("hex");
  const app = new Hono<AppEnv>();

  app.use("*", async (c, next) => {
    await next();
    c.header("content-security-policy", CONTENT_SECURITY_POLICY);
    c.header("x-content-type-options", "nosniff");
    c.header("x-frame-options", "DENY");
    c.header("referrer-policy", "no-referrer");
    if (!c.res.headers.has("cache-control")) c.header("cache-control", "no-store");
  });

  app.get("/assets/:name", (c) => {
    if (c.req.path !== STYLESHEET.path) return c.text("Not found.", 404);
    c.header("cache-control", "public, max-age=31536000, immutable");
    return c.body(STYLESHEET.body, 200, { "content-type": "text/css; charset=utf-8" });
  });

  const secure = (c: Context<AppEnv>) => new URL(c.req.url).protocol === "https:" || c.req.header("x-forwarded-proto") === "https";
  const cookieOptions = (c: Context<AppEnv>, maxAgeSeconds: number) => ({
    httpOnly: true,
    sameSite: "Strict" as const,
    secure: secure(c),
    path: "/console",
    maxAge: maxAgeSeconds,
  });

  const signInPage = (c: Context<AppEnv>, status: 200 | 401 | 403, error?: string) => {
    const csrf = newCsrfToken();
    setCookie(c, SIGN_IN_COOKIE, csrf, cookieOptions(c, 15 * 60));
    return page(c, <SignInPage csrf={csrf} error={error} />, status);
  };

  const sessionOf = async (c: Context<AppEnv>): Promise<ConsoleSession | undefined> => parseSession(await getSignedCookie(c, secret, SESSION_COOKIE));

  /** The signed-in tenant's context, verified again from the session's key hash; undefined ends the session. */
  const tenantOf = async (c: Context<AppEnv>, session: ConsoleSession): Promise<TenantContext | undefined> => {
    try {
      return (await authenticateKeyHash(services.db, session.keyHash, c.get("requestId"), undefined, services.tenantAuthGuards)).ctx;
    } catch (error) {
      if (error instanceof FenceError && traitsOf(error).status === 401) return undefined;
      throw error;
    }
  };
  const adminStillValid = (session: ConsoleSession) => services.adminKey !== undefined && secretsEqual(session.keyHash, hashApiKey(services.adminKey));

  const tenantChrome = (ctx: TenantContext, session: ConsoleSession): Chrome => ({
    who: `tenant ${ctx.tenantId.slice(0, 8)} · key ${ctx.keyId.slice(0, 8)} (${ctx.scopes.join(", ")})`,
    csrf: session.csrf,
    nav: [{ href: "/console/documents", label: "Documents" }],
  });
  const adminChrome = (session: ConsoleSession): Chrome => ({ who: "platform admin", csrf: session.csrf, nav: [{ href: "/console/tenants", label: "Tenants" }] });
  const signedOut = (c: Context<AppEnv>) => {
    deleteCookie(c, SESSION_COOKIE, { path: "/console" });
    return c.redirect("/console/sign-in", 303);
  };

  app.get("/", async (c) => {
    const session = await sessionOf(c);
    if (!session) return c.redirect("/console/sign-in", 303);
    return c.redirect(session.kind === "admin" ? "/console/tenants" : "/console/documents", 303);
  });

  app.get("/sign-in", (c) => signInPage(c, 200));

  app.post("/sign-in", async (c) => {
    const form = await c.req.parseBody();
    if (!tokensEqual(field(form, "csrf"), getCookie(c, SIGN_IN_COOKIE) ?? "\u0000")) {
      return signInPage(c, 403, "The sign-in form expired or came from another site. Try again.");
    }
    const key = field(form, "key")?.trim() ?? "";
    let session: ConsoleSession;
    if (services.adminKey !== undefined && key.length > 0 && secretsEqual(key, services.adminKey)) {
      session = { kind: "admin", keyHash: hashApiKey(key), csrf: newCsrfToken(), expiresAt: Date.now() + SESSION_TTL_MS };
    } else {
      try {
        await authenticateTenantRequest(services.db, key, c.get("requestId"), undefined, services.tenantAuthGuards);
      } catch (error) {
        if (error instanceof FenceError && traitsOf(error).status === 401) return signInPage(c, 401, error.message);
        throw error;
      }
      session = { kind: "tenant", keyHash: hashApiKey(key), csrf: newCsrfToken(), expiresAt: Date.now() + SESSION_TTL_MS };
    }
    deleteCookie(c, SIGN_IN_COOKIE, { path: "/console" });
    // A new cookie at every sign-in: a session id planted before it (fixation) is never the one used.
    await setSignedCookie(c, SESSION_COOKIE, JSON.stringify(session), secret, cookieOptions(c, SESSION_TTL_MS / 1000));
    return c.redirect("/console", 303);
  });

  app.post("/sign-out", async (c) => {
    const session = await sessionOf(c);
    const form = await c.req.parseBody();
    if (session && !tokensEqual(field(form, "csrf"), session.csrf)) {
      return page(c, <MessagePage title="Not signed out" message="The form came from another page or session; nothing was done." />, 403);
    }
    return signedOut(c);
  });

  app.get("/documents", async (c) => {
    const session = await sessionOf(c);
    if (!session || session.kind !== "tenant") return signedOut(c);
    const ctx = await tenantOf(c, session);
    if (!ctx) return signedOut(c);
    const chrome = tenantChrome(ctx, session);
    if (!grants(ctx.scopes, "read")) {
      return page(c, <MessagePage title="Documents" message="This key lacks the 'read' scope: it cannot list documents." chrome={chrome} />, 403);
    }
    const cursor = c.req.query("cursor");
    try {
      const listed = await services.documents.list(ctx, { limit: 50, cursor });
      const documents = listed.documents.map((doc) => ({ id: doc.id, title: doc.title, createdAt: doc.createdAt.toISOString() }));
      return page(c, <DocumentsPage chrome={chrome} documents={documents} nextCursor={listed.nextCursor} />);
    } catch (error) {
      if (error instanceof FenceError && traitsOf(error).status === 400) return page(c, <MessagePage title="Documents" message={error.message} chrome={chrome} />, 400);
      throw error;
    }
  });

  app.get("/tenants", async (c) => {
    const session = await sessionOf(c);
    if (!session || session.kind !== "admin" || !adminStillValid(session)) return signedOut(c);
    const tenants = await services.tenantAdmin.listTenants();
    return page(c, <MessagePage title="Tenants" message={`${tenants.length} tenants: ${tenants.map((t) => `${t.name} (${t.plan})`).join(", ") || "none yet"}.`} chrome={adminChrome(session)} />);
  });

  app.notFound((c) => page(c, <MessagePage title="Not found" message="There is no such page." />, 404));
  app.onError((error, c) => {
    if (error instanceof UnauthorizedError) return signedOut(c);
    services.logger.error({ err: error, request_id: c.get("requestId") }, "console page failed");
    return page(c, <MessagePage title="Something went wrong" message={`The page could not be shown (request ${c.get("requestId")}).`} />, 500);
  });
  return app;
}
