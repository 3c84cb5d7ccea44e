/** What sends a request: a TestFence (in process, or over HTTP to a Worker), or a bench's app. */
export interface RequestSender {
  request(method: string, path: string, init: { headers: Record<string, string>; body: string | FormData | undefined }): Response | Promise<Response>;
}

/**
 * A browser of one: keeps the cookies the console sets for /console, posts forms as a browser
 * does (urlencoded, or multipart with a file), and reads a page's CSRF token from its hidden field.
 * The tests drive it through TestFence, the console bench through the in-process app.
 */
export class ConsoleBrowser {
  cookies = new Map<string, string>();

  constructor(private readonly sender: RequestSender) {}

  async fetch(method: string, path: string, form?: Record<string, string> | FormData, headers: Record<string, string> = {}): Promise<Response> {
    const sent: Record<string, string> = { ...headers };
    if (this.cookies.size > 0) sent.cookie = [...this.cookies].map(([k, v]) => `${k}=${v}`).join("; ");
    let body: string | FormData | undefined;
    if (form instanceof FormData) body = form;
    else if (form) {
      sent["content-type"] = "application/x-www-form-urlencoded";
      body = new URLSearchParams(form).toString();
    }
    const res = await this.sender.request(method, path, { headers: sent, body });
    for (const line of res.headers.getSetCookie()) {
      const [pair] = line.split(";");
      const [name, ...value] = pair!.split("=");
      const v = value.join("=");
      if (v === "" || /max-age=0/i.test(line)) this.cookies.delete(name!.trim());
      else this.cookies.set(name!.trim(), v);
    }
    return res;
  }

  async signIn(key: string): Promise<Response> {
    const page = await (await this.fetch("GET", "/console/sign-in")).text();
    return this.fetch("POST", "/console/sign-in", { csrf: csrfOf(page), key });
  }

  /** The session's CSRF token, read from a signed-in page (every one has the sign-out form). */
  async csrf(path = "/console/overview"): Promise<string> {
    return csrfOf(await (await this.fetch("GET", path)).text());
  }
}

export function csrfOf(html: string): string {
  const token = /name="csrf" value="([^"]+)"/.exec(html)?.[1];
  if (!token) throw new Error("no CSRF field on the page");
  return token;
}
