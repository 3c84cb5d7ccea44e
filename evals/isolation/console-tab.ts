import type { AttackContext } from "./attack.js";
import { AttackerHttp, type Party, type Reply } from "./exchange.js";

/**
 * The console as a browser tab drives it, for the console attacks (attacks/console.ts): sign in
 * through the form (its CSRF token echoed from its cookie), keep the session cookie, read the
 * session's CSRF token from a page, and post forms as a browser does — urlencoded, multipart, or
 * from script with the `x-csrf-token` header. Every request goes through the attack's recorded
 * client with no Authorization header, so what opens a page is the session alone and the detector
 * scans every page the tab receives.
 */

export const FORM = { "content-type": "application/x-www-form-urlencoded" } as const;
export const formBody = (fields: Record<string, string>) => new URLSearchParams(fields).toString();

export function cookieOf(reply: Reply, name: string): string | undefined {
  const header = reply.headers["set-cookie"] ?? "";
  // fetch joins several Set-Cookie headers with ", "; each cookie starts with its name.
  const match = new RegExp(`(?:^|, )${name}=([^;]*)`).exec(header);
  return match?.[1];
}

/** The CSRF token of a page's hidden form field. */
export function csrfIn(html: string): string | undefined {
  return /name="csrf" value="([^"]+)"/.exec(html)?.[1];
}

/** Signs `party` into the console; the session cookie, or undefined with the reason recorded as a failure. */
export async function signIn(ctx: AttackContext, party: Party): Promise<string | undefined> {
  const form = await ctx.http.send(party, "GET", "/console/sign-in", { auth: false });
  const csrf = csrfIn(form.body);
  const csrfCookie = cookieOf(form, "fence_console_signin");
  ctx.expectHealthy(form.status === 200 && csrf !== undefined && csrfCookie !== undefined, `${party.label}: the sign-in form did not load (status ${form.status})`);
  if (!csrf || !csrfCookie) return undefined;
  const reply = await ctx.http.send(party, "POST", "/console/sign-in", {
    auth: false,
    body: formBody({ csrf, key: party.key ?? "" }),
    headers: { ...FORM, cookie: `fence_console_signin=${csrfCookie}` },
  });
  const session = cookieOf(reply, "fence_console");
  ctx.expectHealthy(reply.status === 303 && session !== undefined, `${party.label}: console sign-in answered ${reply.status}`);
  return session;
}

export interface PostOptions {
  /** The token sent in the form's `csrf` field: the session's own unless given; null sends none. */
  csrf?: string | null;
  /** Sent as well; an `x-csrf-token` here is the token the server checks (it wins over the field). */
  headers?: Record<string, string>;
  /** multipart/form-data instead of urlencoded (the upload form's encoding). */
  multipart?: boolean;
}

/** One signed-in console session of one party. */
export class ConsoleTab {
  constructor(
    private readonly ctx: AttackContext,
    readonly party: Party,
    readonly cookie: string,
    /** The session's CSRF token, as its pages carry it. */
    readonly csrf: string,
  ) {}

  get(path: string, headers: Record<string, string> = {}): Promise<Reply> {
    return this.ctx.http.send(this.party, "GET", path, { auth: false, headers: { ...headers, cookie: `fence_console=${this.cookie}` } });
  }

  post(path: string, fields: Record<string, string>, options: PostOptions = {}): Promise<Reply> {
    const token = options.csrf === undefined ? this.csrf : options.csrf;
    const all = token === null ? fields : { csrf: token, ...fields };
    const headers = { ...options.headers, cookie: `fence_console=${this.cookie}` };
    if (options.multipart) {
      const form = new FormData();
      for (const [name, value] of Object.entries(all)) form.append(name, value);
      return this.ctx.http.send(this.party, "POST", path, { auth: false, form, headers });
    }
    return this.ctx.http.send(this.party, "POST", path, { auth: false, body: formBody(all), headers: { ...FORM, ...headers } });
  }

  /** A raw body of any type (a cross-site form's text/plain, a script's JSON), with the session's cookie. */
  postRaw(path: string, body: string, contentType: string): Promise<Reply> {
    return this.ctx.http.send(this.party, "POST", path, { auth: false, body, headers: { "content-type": contentType, cookie: `fence_console=${this.cookie}` } });
  }
}

/**
 * Signs `party` in and reads the session's CSRF token from `tokenPage`. The default, Ask, is a page
 * that shows no tenant data before a question is asked, so reading the token can leak nothing
 * even with every lock off: an attack that must stay blocked in every mode stays blocked.
 */
export async function openConsole(ctx: AttackContext, party: Party, tokenPage = "/console/ask"): Promise<ConsoleTab | undefined> {
  const session = await signIn(ctx, party);
  if (!session) return undefined;
  const page = await ctx.http.send(party, "GET", tokenPage, { auth: false, headers: { cookie: `fence_console=${session}` } });
  const csrf = csrfIn(page.body);
  ctx.expectHealthy(page.status === 200 && csrf !== undefined, `${party.label}: GET ${tokenPage} after sign-in answered ${page.status} without the session's token`);
  return csrf ? new ConsoleTab(ctx, party, session, csrf) : undefined;
}

/** The page a form without the session's own token gets: 403, nothing done. */
export function isRefusedForm(reply: Reply): boolean {
  return reply.status === 403 && reply.body.includes("nothing was done");
}

/** The page the console shows when the assembly assertion (I4) aborted a question. */
export function isAssertionPage(reply: Reply): boolean {
  return reply.status === 500 && reply.body.includes("failed the tenant ownership check");
}

/** The secret a keys page shows once after issuing or rotating a key. */
export function issuedSecretIn(html: string): string | undefined {
  return /<code>(fence_[a-z]+_[A-Za-z0-9_-]+)<\/code>/.exec(html)?.[1];
}

/** The id of the key a keys page lists under `name` (from its row's rotate form). */
export function keyIdListedAs(html: string, name: string): string | undefined {
  const row = html.split("<tr>").find((r) => r.includes(`<td>${name} `));
  return row ? /action="\/console\/keys\/([0-9a-f-]{36})\/rotate"/.exec(row)?.[1] : undefined;
}

/** An HTTP client whose exchanges the detector never sees: setup, clean-up and ground truth, not attack. */
export function unrecorded(ctx: AttackContext): AttackerHttp {
  const first = ctx.http.exchanges[0];
  if (!first) throw new Error("setup: an unrecorded call needs the instance's address, known from a recorded request first");
  return new AttackerHttp(new URL(first.request.url).origin);
}
