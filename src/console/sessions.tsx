import { createHmac, randomBytes } from "node:crypto";
import type { Context, MiddlewareHandler } from "hono";
import { deleteCookie, getCookie, getSignedCookie, setCookie, setSignedCookie } from "hono/cookie";
import { traitsOf } from "../core/error-catalogue.js";
import { FenceError, TenantSuspendedError, UnauthorizedError } from "../core/errors.js";
import { grants } from "../core/scopes.js";
import { admission } from "../http/middleware/admission.js";
import type { RequestCost } from "../limits/admission.js";
import type { FenceServices } from "../http/services.js";
import { clientAddress } from "../http/middleware/request-context.js";
import { hashApiKey, secretsEqual } from "../tenancy/api-keys.js";
import { authenticateKeyHash, authenticateTenantRequest } from "../tenancy/authenticate.js";
import { field, page, PLATFORM_NAV, TENANT_NAV, type ConsoleContext, type ConsoleEnv } from "./console-env.js";
import { MessagePage, SignInPage } from "./layout.js";
import { EndedSessions } from "./ended-sessions.js";
import { newCsrfToken, newSessionId, parseSession, SESSION_COOKIE, SESSION_TTL_MS, SIGN_IN_COOKIE, tokensEqual, type ConsoleSession } from "./session.js";

/**
 * Without FENCE_CONSOLE_SECRET, sessions are signed with a key derived from the admin key: the same
 * on every instance and in every Worker isolate (so a load balancer or a new isolate ends no
 * session), never the admin key itself, and changed with it. With neither, a random one per process.
 */
function derivedSecret(adminKey: string | undefined): string {
  if (adminKey === undefined) return randomBytes(32).toString("hex");
  return createHmac("sha256", adminKey).update("fence console session signing v1").digest("hex");
}

/**
 * A page's work for fair queuing, in searches (http/request-cost.ts): Ask is a chat; an upload is
 * always queued, so the job pays for its work; every other page is a read, the smallest cost.
 */
function pageCost(method: string, path: string): RequestCost {
  return method === "POST" && (path === "/console/ask" || path === "/console/ask/stream") ? 2 : 1;
}

export type SessionServices = Pick<FenceServices, "db" | "adminKey" | "tenantAuthGuards" | "admission" | "securityEvents">;

/**
 * Console sessions: a key pasted into the sign-in form is exchanged for a signed cookie
 * (HttpOnly, SameSite=Strict, Secure behind https, 8 h) holding the key's hash, never the key;
 * each request verifies that hash as the API verifies a key, so revoking the key ends its sessions
 * at their next request, and a sign-out is recorded (ended-sessions.ts), so it ends a copy of the
 * cookie too. Every form carries a CSRF token — the sign-in form's own (a cookie it
 * must echo, against login CSRF), then the session's (a form field, or a header from script).
 *
 * A tenant page then runs as an API request does: the same TenantContext, the same admission
 * (rate limits, the tenant's concurrency cap, fair queuing), so the console is no way around a limit.
 */
export class ConsoleSessions {
  private readonly secret: string;
  private readonly admit: MiddlewareHandler;
  private readonly ended: EndedSessions;

  constructor(
    private readonly services: SessionServices,
    secret: string | undefined,
  ) {
    this.secret = secret ?? derivedSecret(services.adminKey);
    this.admit = admission(services.admission, pageCost) as MiddlewareHandler;
    this.ended = new EndedSessions(services.db);
  }

  private cookieOptions(c: Context, maxAgeSeconds: number) {
    const secure = new URL(c.req.url).protocol === "https:" || c.req.header("x-forwarded-proto") === "https";
    return { httpOnly: true, sameSite: "Strict" as const, secure, path: "/console", maxAge: maxAgeSeconds };
  }

  /** The request's session: signed by this server, not expired, and not signed out (on any instance). */
  async current(c: Context): Promise<ConsoleSession | undefined> {
    const session = parseSession(await getSignedCookie(c, this.secret, SESSION_COOKIE));
    if (!session || (await this.ended.isEnded(session.id))) return undefined;
    return session;
  }

  /**
   * To the sign-in page, dropping the session cookie the request carried (expired, tampered with, or
   * its key revoked). A request that carried none — a link from another site, which a SameSite=Strict
   * cookie does not come with — deletes nothing, so no other site can sign a person out.
   */
  signedOut(c: Context) {
    if (getCookie(c, SESSION_COOKIE) !== undefined) deleteCookie(c, SESSION_COOKIE, { path: "/console" });
    return c.redirect("/console/sign-in", 303);
  }

  /** A live session of the other kind (a tenant's on a platform page, the admin's on a tenant page): refused, not signed out. */
  private otherKind(c: ConsoleContext, session: ConsoleSession) {
    const message = session.kind === "tenant" ? "This page is the platform admin's: sign in with the admin key to open it." : "This page is a tenant's: sign in with one of its keys to open it.";
    return page(c, <MessagePage title="Not for this session" message={message} />, 403);
  }

  signInPage(c: Context, status: 200 | 401 | 403 | 429, error?: string) {
    const csrf = newCsrfToken();
    setCookie(c, SIGN_IN_COOKIE, csrf, this.cookieOptions(c, 15 * 60));
    return page(c, <SignInPage csrf={csrf} error={error} />, status);
  }

  /**
   * POST /console/sign-in. Failed sign-ins count against the address as failed API keys do (the
   * same limiter): a form is no faster way to guess keys than the API.
   */
  async signIn(c: Context) {
    const form = await c.req.parseBody();
    if (!tokensEqual(field(form, "csrf"), getCookie(c, SIGN_IN_COOKIE) ?? "\u0000")) {
      return this.signInPage(c, 403, "The sign-in form expired or came from another site. Try again.");
    }
    const address = clientAddress(c, this.services.securityEvents.trustedProxyHops);
    const limiter = address !== undefined ? this.services.tenantAuthGuards.failedAuth : undefined;
    const blockedFor = limiter ? await limiter.blockedFor(address!) : undefined;
    if (blockedFor !== undefined) return this.signInPage(c, 429, `Too many failed sign-ins from this address; try again in ${Math.ceil(blockedFor)} s.`);
    const key = field(form, "key")?.trim() ?? "";
    let kind: ConsoleSession["kind"];
    if (this.services.adminKey !== undefined && key.length > 0 && secretsEqual(key, this.services.adminKey)) {
      kind = "admin";
    } else {
      try {
        await authenticateTenantRequest(this.services.db, key, c.get("requestId"), undefined, this.services.tenantAuthGuards);
      } catch (error) {
        if (error instanceof FenceError && traitsOf(error).status === 401) {
          await limiter?.noteFailure(address!);
          return this.signInPage(c, 401, error.message);
        }
        // A real key (so no failure counted against the address) whose tenant is suspended: no
        // session is made, and the person is told why rather than that the key is wrong.
        if (error instanceof TenantSuspendedError) return this.signInPage(c, 403, error.message);
        throw error;
      }
      kind = "tenant";
    }
    const session: ConsoleSession = { id: newSessionId(), kind, keyHash: hashApiKey(key), csrf: newCsrfToken(), expiresAt: Date.now() + SESSION_TTL_MS };
    deleteCookie(c, SIGN_IN_COOKIE, { path: "/console" });
    // A new cookie at every sign-in: a session planted before it (fixation) is never the one used.
    await setSignedCookie(c, SESSION_COOKIE, JSON.stringify(session), this.secret, this.cookieOptions(c, SESSION_TTL_MS / 1000));
    return c.redirect("/console", 303);
  }

  /**
   * POST /console/sign-out: only with the session's own token (a cross-site form cannot sign anyone
   * out). The session ends everywhere, not only in this browser: a copy of its cookie is refused too.
   */
  async signOut(c: Context) {
    const session = await this.current(c);
    const form = await c.req.parseBody();
    if (session && !tokensEqual(field(form, "csrf"), session.csrf)) {
      return page(c, <MessagePage title="Not signed out" message="The form came from another page or session; nothing was done." />, 403);
    }
    if (session) await this.ended.end(session);
    return this.signedOut(c);
  }

  /** A form's token: the `csrf` field, or the `x-csrf-token` header that htmx and console.js send. */
  private async csrfHolds(c: ConsoleContext, session: ConsoleSession): Promise<boolean> {
    if (c.req.method === "GET" || c.req.method === "HEAD") return true;
    const header = c.req.header("x-csrf-token");
    if (header !== undefined) return tokensEqual(header, session.csrf);
    const type = c.req.header("content-type") ?? "";
    if (!/^(application\/x-www-form-urlencoded|multipart\/form-data)/i.test(type)) return false;
    return tokensEqual(field(await c.req.parseBody(), "csrf"), session.csrf);
  }

  private refusedForm(c: ConsoleContext) {
    return page(c, <MessagePage title="Not done" message="The form came from another page or session, or its page is too old; nothing was done. Reload the page and try again." />, 403);
  }

  /** Guards every tenant page: a live session of a key that still verifies, the form's token, then admission. */
  readonly tenantPages: MiddlewareHandler<ConsoleEnv> = async (c, next) => {
    const session = await this.current(c);
    if (!session) return this.signedOut(c);
    if (session.kind !== "tenant") return this.otherKind(c, session);
    let verified: Awaited<ReturnType<typeof authenticateKeyHash>>;
    try {
      verified = await authenticateKeyHash(this.services.db, session.keyHash, c.get("requestId"), undefined, this.services.tenantAuthGuards);
    } catch (error) {
      if (error instanceof UnauthorizedError) return this.signedOut(c);
      // The tenant is suspended: the session is kept (resuming the tenant opens its pages again),
      // and every page says why it is closed, with the sign-out button but no navigation. The
      // chrome is what the console's error page draws (console-app.tsx).
      if (error instanceof TenantSuspendedError) c.set("chrome", { who: "suspended tenant", csrf: session.csrf, nav: [] });
      throw error;
    }
    const { ctx, quota } = verified;
    c.set("tenant", ctx);
    c.set("quota", quota);
    c.set("session", session);
    c.set("chrome", {
      who: `tenant ${ctx.tenantId.slice(0, 8)} · key ${ctx.keyId.slice(0, 8)} (${ctx.scopes.join(", ")})`,
      csrf: session.csrf,
      nav: TENANT_NAV.filter((item) => grants(ctx.scopes, item.scope)),
      current: c.req.path.split("/").slice(0, 3).join("/"),
    });
    if (!(await this.csrfHolds(c, session))) return this.refusedForm(c);
    await this.admit(c as unknown as Context, next);
  };

  /** Guards every platform page: an admin session whose key is still the admin key. */
  readonly platformPages: MiddlewareHandler<ConsoleEnv> = async (c, next) => {
    const session = await this.current(c);
    const adminKey = this.services.adminKey;
    if (!session) return this.signedOut(c);
    if (session.kind !== "admin") return this.otherKind(c, session);
    if (adminKey === undefined || !secretsEqual(session.keyHash, hashApiKey(adminKey))) return this.signedOut(c);
    c.set("session", session);
    c.set("chrome", { who: "platform admin", csrf: session.csrf, nav: [...PLATFORM_NAV], current: c.req.path.split("/").slice(0, 4).join("/") });
    if (!(await this.csrfHolds(c, session))) return this.refusedForm(c);
    await next();
  };
}
