import { seededRandom } from "../../bench/stats.js";

/**
 * A deterministic generator of malformed requests against every tenant and admin route, for the
 * bad-input fuzz suite. The same seed always yields the same requests, so a failure reproduces.
 *
 * Each case says how its credential is chosen and, when the input is certainly invalid, which
 * status it must get; random mutations that may happen to be valid carry no expectation beyond
 * "never 5xx" (the suite tracks what they create).
 */
export interface MalformedRequest {
  label: string;
  method: string;
  /** May contain `{tenant}` (the fuzz tenant's id), replaced by the runner. */
  path: string;
  auth: "tenant" | "admin" | "none" | { header: string };
  body?: string | Uint8Array | FormData;
  contentType?: string;
  /** The exact status the case must get, when the input is certainly invalid. */
  expect?: number;
}

const deepArray = (depth: number) => `${"[".repeat(depth)}${"]".repeat(depth)}`;
const deepObject = (depth: number): unknown => {
  let value: unknown = 1;
  for (let i = 0; i < depth; i++) value = { n: value };
  return value;
};

/** Values that break assumptions: wrong types, edge numbers, hostile and odd strings. */
export const GARBAGE_VALUES: unknown[] = [
  null, true, false, 0, -1, 1.5, -0.0001, 1e308, Number.MAX_SAFE_INTEGER + 2, [], {}, [1, "2", null], [[[[]]]],
  { $gt: "" }, JSON.parse('{"__proto__":{"admin":true}}') as unknown, { constructor: { prototype: { polluted: 1 } } }, deepObject(50),
  "", " ", "\t\n", "\u0000", "a\u0000b", "\u0000".repeat(20), "\ud800", "\udfff\ud800", "\u202e\u2066rtl",
  "😀🚀".repeat(300), "é".repeat(2000), "x".repeat(5000), "../../etc/passwd", "..%2F..%2Fadmin", "%00%ff",
  "' OR 1=1 --", "'); DROP TABLE documents; --", "<script>alert(1)</script>", "${jndi:ldap://x/a}", "NaN", "-1", "1e999",
  "\r\nSet-Cookie: x=1", "\\u0000", "tenant_id", "00000000-0000-4000-8000-000000000000",
];

const HOSTILE_STRINGS = ["a\u0000b", "\ud800", "\u202e\u2066", "'); DROP TABLE chunks; --", "😀".repeat(40), "\u0007\u001b[31m"];

/** Path segments where an id belongs: none of them names a resource the fuzz tenant may touch. */
export const BAD_IDS: string[] = [
  "not-a-uuid", "123", "-1", "null", "undefined", "00000000-0000-0000-0000-000000000000",
  "00000000-0000-4000-8000-00000000000z", "{id}", "%7Bid%7D", "..%2F..%2Fadmin%2Ftenants", "%2e%2e%2f%2e%2e%2f",
  "..", "%00", "abc%00def", "%E2%80%AE%E2%81%A6", "%F0%9F%98%80", "%C3%BC%C3%B1%C3%AF", "%ff%fe", "%",
  "a".repeat(2000), "%27%20OR%20%271%27%3D%271", "%3Cscript%3E", "tenant_id=1", "*",
];

const VALID_BODIES = {
  document: { title: "Fuzz doc", text: "Fuzzing keeps the parsers honest.", metadata: { source: "fuzz" }, source_id: "fuzz-source" },
  search: { query: "parsers honest", k: 5 },
  chat: { question: "What keeps the parsers honest?" },
  tenant: { name: "fuzz-created", plan: "free" },
  key: { name: "fuzz-key", project: "fuzz", environment: "test" },
  batch: { documents: [{ title: "Fuzz batch doc", text: "Queued fuzz keeps the workers honest.", metadata: { source: "fuzz" }, source_id: "fuzz-batch" }] },
  evalCase: { request_id: "fuzz-request-0001", expected_document_ids: ["00000000-0000-4000-8000-000000000000"], must_contain: ["honest"], must_not_contain: ["dishonest"] },
} as const;

type JsonRoute = { name: keyof typeof VALID_BODIES; method: string; path: string; auth: "tenant" | "admin" };
const JSON_ROUTES: JsonRoute[] = [
  { name: "document", method: "POST", path: "/v1/documents", auth: "tenant" },
  { name: "search", method: "POST", path: "/v1/search", auth: "tenant" },
  { name: "chat", method: "POST", path: "/v1/chat", auth: "tenant" },
  { name: "tenant", method: "POST", path: "/v1/admin/tenants", auth: "admin" },
  { name: "key", method: "POST", path: "/v1/admin/tenants/{tenant}/keys", auth: "admin" },
  { name: "batch", method: "POST", path: "/v1/documents/batch", auth: "tenant" },
  { name: "evalCase", method: "POST", path: "/v1/evals/cases", auth: "tenant" },
];

/** Bodies that are certainly invalid for each JSON route (400 whatever else is wrong). */
const INVALID_BODIES: Record<JsonRoute["name"], unknown[]> = {
  document: [
    {}, { text: "" }, { text: null }, { text: 1 }, { text: ["a"] }, { text: { $gt: "" } }, { text: true },
    { text: "   \n\t " }, { text: "\u0000\u0000" }, { title: "t" }, { text: "ok", title: "" }, { text: "ok", title: "   " },
    { text: "ok", title: 7 }, { text: "ok", title: "t".repeat(501) }, { text: "ok", metadata: "str" }, { text: "ok", metadata: [] },
    { text: "ok", metadata: [1, 2] }, { text: "ok", metadata: 3 }, { text: "ok", metadata: null }, { text: "ok", metadata: { big: "m".repeat(17_000) } },
    { text: "ok", source_id: "" }, { text: "ok", source_id: 9 }, { text: "ok", source_id: "s".repeat(501) }, { text: "ok", source_id: {} },
  ],
  search: [
    {}, { query: "" }, { query: "   " }, { query: 1 }, { query: null }, { query: [] }, { query: { a: 1 } }, { query: "q".repeat(2001) },
    { query: "a", k: 0 }, { query: "a", k: -1 }, { query: "a", k: -100 }, { query: "a", k: 51 }, { query: "a", k: 1e9 },
    { query: "a", k: "5" }, { query: "a", k: "abc" }, { query: "a", k: 2.5 }, { query: "a", k: null }, { query: "a", k: true },
    { query: "a", k: [5] }, { query: "a", k: {} }, { k: 5 },
  ],
  chat: [
    {}, { question: "" }, { question: "   " }, { question: 1 }, { question: null }, { question: "q".repeat(4001) },
    { question: "a", messages: [{ role: "user", content: "b" }] }, { messages: [] }, { messages: "hi" },
    { messages: [{ role: "system", content: "x" }] }, { messages: [{ role: "user", content: "x" }, { role: "assistant", content: "y" }] },
    { messages: [{ role: "user" }] }, { messages: [{ role: "user", content: "" }] }, { messages: [{ content: "x" }] },
    { messages: Array.from({ length: 51 }, () => ({ role: "user", content: "x" })) }, { question: "a", stream: "yes" },
    { question: "a", stream: 1 }, { messages: [null] }, { messages: [{ role: "user", content: "c".repeat(8001) }] },
  ],
  tenant: [{}, { name: "" }, { name: "  " }, { name: 1 }, { name: null }, { name: "n".repeat(201) }, { name: "ok", plan: "" }, { name: "ok", plan: 5 }, { plan: "free" }],
  batch: [
    {}, { documents: [] }, { documents: null }, { documents: "x" }, { documents: {} }, { documents: [null] }, { documents: [{}] },
    { documents: [{ text: "" }] }, { documents: [{ text: "ok" }, { text: 1 }] }, { documents: [{ text: "ok", source_id: "" }] },
    { documents: [{ text: "ok", metadata: [] }] }, { documents: [{ text: "ok", title: "t".repeat(501) }] },
    { documents: Array.from({ length: 101 }, () => ({ text: "ok" })) },
  ],
  evalCase: [
    {}, { request_id: "" }, { request_id: 1 }, { request_id: null }, { run_id: "not-a-uuid" }, { run_id: 7 },
    { run_id: "00000000-0000-4000-8000-000000000000", request_id: "fuzz-request-0001" }, { must_contain: ["x"] },
    { request_id: "fuzz-request-0001", must_contain: "x" }, { request_id: "fuzz-request-0001", must_contain: [""] },
    { request_id: "fuzz-request-0001", must_contain: [1] }, { request_id: "fuzz-request-0001", must_not_contain: ["m".repeat(501)] },
    { request_id: "fuzz-request-0001", must_contain: ["a\u0000b"] }, { request_id: "fuzz-request-0001", must_contain: Array.from({ length: 21 }, () => "p") },
    { request_id: "fuzz-request-0001", expected_document_ids: ["nope"] }, { request_id: "fuzz-request-0001", expected_document_ids: "x" },
    { request_id: "r".repeat(201) },
  ],
  key: [
    {}, { name: "" }, { name: ["k"] }, { name: "k", environment: "staging" }, { name: "k", environment: "" }, { name: "k", environment: 1 },
    { name: "k", project: "" }, { name: "k", project: "p".repeat(101) }, { name: "n".repeat(201) },
  ],
};

const MALFORMED_JSON = [
  "{", "}", "{\"text\":}", "{'text':'x'}", "{\"text\":\"x\",}", "{\"text\" \"x\"}", "[", "nul", "tru", "\"unterminated",
  "{\"a\":1}{\"b\":2}", "{\"text\":\"\\x41\"}", "{\"text\":\"bad \\u12\"}", "{\"k\":01}", "{\"k\":+1}", "{\"k\":NaN}", "\u0000",
];

/** JSON that parses but is not an object: the schema must still refuse it. */
const NON_OBJECT_JSON = ["null", "[]", "42", "\"text\"", "true", "[{\"text\":\"x\"}]", deepArray(5000)];

export function generateMalformedRequests(seed: number, options: { maxBodyBytes: number }): MalformedRequest[] {
  const random = seededRandom(seed);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
  const cases: MalformedRequest[] = [];
  const json = (route: JsonRoute, label: string, body: string, expect?: number, contentType = "application/json"): MalformedRequest => ({
    label: `${route.method} ${route.path} ${label}`, method: route.method, path: route.path, auth: route.auth, body, contentType, expect,
  });

  for (const route of JSON_ROUTES) {
    // Certainly invalid bodies, malformed JSON and non-objects.
    for (const body of INVALID_BODIES[route.name]) cases.push(json(route, `invalid ${JSON.stringify(body).slice(0, 60)}`, JSON.stringify(body), 400));
    for (const raw of MALFORMED_JSON) cases.push(json(route, `malformed ${JSON.stringify(raw)}`, raw, 400));
    for (const raw of NON_OBJECT_JSON) cases.push(json(route, `non-object ${raw.slice(0, 20)}`, raw, 400));
    const valid = JSON.stringify(VALID_BODIES[route.name]);
    for (let i = 0; i < 4; i++) {
      const cut = 1 + Math.floor(random() * (valid.length - 1));
      cases.push(json(route, `truncated at ${cut}`, valid.slice(0, cut), 400));
    }
    // Wrong or missing content types carrying a valid JSON body.
    for (const contentType of ["text/plain", "application/xml", "text/html; charset=utf-8", "application/octet-stream", "application/jsonx", "image/png"]) {
      cases.push(json(route, `content-type ${contentType}`, valid, 415, contentType));
    }
    cases.push({ label: `${route.method} ${route.path} no content-type`, method: route.method, path: route.path, auth: route.auth, body: valid });
    cases.push(json(route, "empty body", "", 400));
    cases.push(json(route, "urlencoded", "text=hello&query=x&name=y", undefined, "application/x-www-form-urlencoded"));
    cases.push(json(route, "multipart without boundary", "--x\r\n\r\n", undefined, "multipart/form-data"));
    // Oversized bodies: one byte over the limit, and far over it.
    for (const size of [options.maxBodyBytes + 1, options.maxBodyBytes * 3]) {
      const body = JSON.stringify({ ...VALID_BODIES[route.name], filler: "f".repeat(size) });
      cases.push(json(route, `oversized ${body.length} bytes`, body, 413));
    }
    // Hostile strings in every string field (metadata values included): NUL bytes, lone
    // surrogates, bidi overrides, SQL. Some are acceptable input, so only "never 5xx" applies.
    for (const field of Object.keys(VALID_BODIES[route.name])) {
      for (const hostile of HOSTILE_STRINGS) {
        const base: Record<string, unknown> = { ...VALID_BODIES[route.name] };
        base[field] = field === "metadata" ? { note: hostile, [hostile]: 1 } : field === "k" ? hostile : `ok ${hostile} ok`;
        // One string rule for every field (issue 14, row 7): NUL and unpaired surrogates are 400s,
        // except NUL in document text, which is documented to be stripped.
        const unstorable = hostile === "\ud800" || (hostile.includes("\u0000") && !(route.name === "document" && field === "text"));
        cases.push(json(route, `hostile ${field}=${JSON.stringify(hostile).slice(0, 24)}`, JSON.stringify(base), unstorable ? 400 : undefined));
      }
    }
    // Random mutations of a valid body: any field set to garbage, dropped, or joined by unknown fields.
    for (let i = 0; i < 12; i++) {
      const body: Record<string, unknown> = { ...VALID_BODIES[route.name] };
      const field = pick(Object.keys(body));
      const op = pick(["garbage", "garbage", "drop", "unknown", "nested"] as const);
      if (op === "garbage") body[field] = pick(GARBAGE_VALUES);
      else if (op === "drop") delete body[field];
      else if (op === "unknown") {
        // defineProperty, so that `__proto__` becomes an own (serialised) key rather than a prototype.
        const key = pick(["tenant_id", "id", "__proto__", "admin", "version", "role"]);
        Object.defineProperty(body, key, { value: pick(GARBAGE_VALUES), enumerable: true, writable: true, configurable: true });
      }
      else body[field] = { [field]: [pick(GARBAGE_VALUES), { deeper: pick(GARBAGE_VALUES) }] };
      cases.push(json(route, `mutation ${op} ${field} #${i}`, JSON.stringify(body)));
    }
  }

  // Ids in paths: malformed, traversal, encoded, enormous.
  for (const id of BAD_IDS) {
    cases.push({ label: `GET document ${id.slice(0, 40)}`, method: "GET", path: `/v1/documents/${id}`, auth: "tenant" });
    cases.push({ label: `DELETE document ${id.slice(0, 40)}`, method: "DELETE", path: `/v1/documents/${id}`, auth: "tenant" });
    cases.push({ label: `DELETE tenant ${id.slice(0, 40)}`, method: "DELETE", path: `/v1/admin/tenants/${id}`, auth: "admin" });
    cases.push({ label: `POST keys of ${id.slice(0, 40)}`, method: "POST", path: `/v1/admin/tenants/${id}/keys`, auth: "admin", body: JSON.stringify(VALID_BODIES.key), contentType: "application/json" });
    cases.push({ label: `DELETE key ${id.slice(0, 40)}`, method: "DELETE", path: `/v1/admin/tenants/{tenant}/keys/${id}`, auth: "admin" });
    cases.push({ label: `GET job ${id.slice(0, 40)}`, method: "GET", path: `/v1/jobs/${id}`, auth: "tenant" });
    cases.push({ label: `cancel job ${id.slice(0, 40)}`, method: "POST", path: `/v1/jobs/${id}/cancel`, auth: "tenant" });
    cases.push({ label: `GET run ${id.slice(0, 40)}`, method: "GET", path: `/v1/runs/${id}`, auth: "tenant" });
    cases.push({ label: `GET runs of tenant ${id.slice(0, 40)}`, method: "GET", path: `/v1/admin/tenants/${id}/runs`, auth: "admin" });
    cases.push({ label: `GET run ${id.slice(0, 40)} of a tenant`, method: "GET", path: `/v1/admin/tenants/{tenant}/runs/${id}`, auth: "admin" });
  }

  // List query strings.
  const queries = ["limit=0", "limit=-1", "limit=101", "limit=abc", "limit=1.5", "limit=1e3", "limit=", "limit=%00", "cursor=", "cursor=%00",
    "cursor=..%2F..%2F", `cursor=${"c".repeat(501)}`, `cursor=${Buffer.from("[1,2]").toString("base64url")}`,
    `cursor=${Buffer.from("{}").toString("base64url")}`, `cursor=${Buffer.from("null").toString("base64url")}`,
    `cursor=${Buffer.from("[\"2024-01-01T00:00:00Z\",\"x\"]").toString("base64url")}`, "limit=2&limit=3", "cursor=a&cursor=b"];
  for (const q of queries) cases.push({ label: `list ?${q.slice(0, 40)}`, method: "GET", path: `/v1/documents?${q}`, auth: "tenant" });
  const jobQueries = [...queries, "status=done", "status=", "status=%00", "batch_id=", "batch_id=%00", `batch_id=${"b".repeat(101)}`, "batch_id=not-a-uuid"];
  for (const q of jobQueries) cases.push({ label: `jobs ?${q.slice(0, 40)}`, method: "GET", path: `/v1/jobs?${q}`, auth: "tenant" });
  const runQueries = [...queries, "kind=query", "kind=", "status=done", "status=%00", "prompt_version=", `prompt_version=${"p".repeat(101)}`,
    "since=yesterday", "since=", "since=2024-13-45T00:00:00Z", "since=%00", `request_id=${"r".repeat(201)}`, "request_id="];
  for (const q of runQueries) {
    cases.push({ label: `runs ?${q.slice(0, 40)}`, method: "GET", path: `/v1/runs?${q}`, auth: "tenant" });
    cases.push({ label: `admin runs ?${q.slice(0, 40)}`, method: "GET", path: `/v1/admin/tenants/{tenant}/runs?${q}`, auth: "admin" });
  }
  for (const q of queries) cases.push({ label: `eval cases ?${q.slice(0, 40)}`, method: "GET", path: `/v1/evals/cases?${q}`, auth: "tenant" });

  // Dates Postgres or JavaScript cannot round-trip (issue 14, row 6): one date type, 400 on the field.
  const cursorOf = (date: string) => Buffer.from(JSON.stringify([date, "00000000-0000-4000-8000-000000000000"])).toString("base64url");
  const badDates: [string, MalformedRequest["auth"]][] = [
    ["/v1/runs?since=0000-01-01T00:00:00Z", "tenant"], ["/v1/runs?since=9999-12-31T23:59:59-05:00", "tenant"],
    ["/v1/admin/tenants/{tenant}/runs?since=0000-01-01T00:00:00Z", "admin"],
    ["/v1/usage?from=9999-12-01&to=9999-12-31T23:00:00-05:00", "tenant"], ["/v1/usage?from=0000-01-01&to=0000-02-01", "tenant"],
    ["/v1/admin/usage?from=9999-12-01&to=9999-12-31T23:00:00-05:00", "admin"], ["/v1/admin/usage/reconciliation?from=0000-01-01&to=0000-02-01", "admin"],
    [`/v1/documents?cursor=${cursorOf("0000-01-01T00:00:00.000Z")}`, "tenant"], [`/v1/documents?cursor=${cursorOf("+275760-09-13T00:00:00.000Z")}`, "tenant"],
    [`/v1/documents?cursor=${cursorOf("-271821-04-20T00:00:00.000Z")}`, "tenant"],
  ];
  for (const [path, auth] of badDates) cases.push({ label: `unstorable date ${path.slice(0, 60)}`, method: "GET", path, auth, expect: 400 });

  // Credentials that must never authenticate, on a tenant and an admin route.
  const headers = ["Bearer", "Bearer ", "bearer fence_test_x", "Basic Zm9vOmJhcg==", "Bearer fence_prod_" + "A".repeat(40), "Bearer " + "k".repeat(8000),
    "Bearer fence_test_\u00e9", "Token abc", "Bearer a b"];
  for (const header of headers) {
    cases.push({ label: `tenant auth ${header.slice(0, 30)}`, method: "GET", path: "/v1/documents", auth: { header }, expect: 401 });
    cases.push({ label: `admin auth ${header.slice(0, 30)}`, method: "GET", path: "/v1/admin/tenants", auth: { header }, expect: 401 });
  }
  for (const route of JSON_ROUTES) {
    cases.push({ label: `${route.path} without credentials`, method: route.method, path: route.path, auth: "none", body: "{", contentType: "application/json", expect: 401 });
  }

  // Multipart uploads: odd names, types, contents and fields.
  const fileNames = ["a.txt", "", ".md", "no-extension", "a.pdf.exe", "..%2F..%2Fetc%2Fpasswd.txt", "nul\u0000.txt", "😀.md", `${"n".repeat(300)}.txt`, "a.HTML"];
  const fileTypes = ["text/plain", "", "application/octet-stream", "text/markdown; charset=utf-8", "application/pdf", "image/png", "text/html", "x/y"];
  const contents = ["hello fuzz", "", "\u0000\u0000", "%PDF-1.7\n%%EOF", "<html><script>x()</script></html>", "# Title\n\nbody", "\ud800 text"];
  for (let i = 0; i < 30; i++) {
    const form = new FormData();
    const name = pick(fileNames);
    const type = pick(fileTypes);
    const content = pick(contents);
    const fileField = pick(["file", "file", "file", "files", "FILE"]);
    if (random() < 0.9) form.append(fileField, new File([content], name, { type }));
    if (random() < 0.3) form.append("metadata", String(pick(GARBAGE_VALUES)));
    if (random() < 0.3) form.append("title", String(pick(GARBAGE_VALUES)));
    if (random() < 0.3) form.append("source_id", String(pick(GARBAGE_VALUES)));
    if (random() < 0.15) form.append("file", new File(["second"], "second.txt", { type: "text/plain" }));
    cases.push({ label: `multipart #${i} ${fileField}=${JSON.stringify(name).slice(0, 30)} (${type}) ${JSON.stringify(content).slice(0, 20)}`, method: "POST", path: "/v1/documents", auth: "tenant", body: form });
  }
  const oversizedForm = new FormData();
  oversizedForm.append("file", new File(["o".repeat(options.maxBodyBytes + 1024)], "big.txt", { type: "text/plain" }));
  cases.push({ label: "multipart oversized file", method: "POST", path: "/v1/documents", auth: "tenant", body: oversizedForm, expect: 413 });
  cases.push({ label: "multipart garbage body", method: "POST", path: "/v1/documents", auth: "tenant", body: "this is not multipart", contentType: "multipart/form-data; boundary=XyZ" });
  cases.push({ label: "multipart truncated", method: "POST", path: "/v1/documents", auth: "tenant", body: "--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.txt\"\r\nContent-Type: text/plain\r\n\r\nhel", contentType: "multipart/form-data; boundary=XyZ" });
  // Text Postgres cannot store (NUL, unpaired surrogates in jsonb) through every multipart field,
  // a title derived from text that starts with NUL, and nesting deep enough to trouble recursion.
  const nulForms: [string, Record<string, string>, string][] = [
    ["title", { title: "t\u0000t" }, "a.txt"],
    ["source_id", { source_id: "s\u0000s" }, "a.txt"],
    ["metadata NUL", { metadata: "{\"k\":\"\\u0000\"}" }, "a.txt"],
    ["metadata surrogate", { metadata: "{\"k\":\"\\ud800\"}" }, "a.txt"],
    ["file name", {}, "x\u0000y.txt"],
  ];
  for (const [label, fields, fileName] of nulForms) {
    const form = new FormData();
    form.append("file", new File(["storable body text"], fileName, { type: "text/plain" }));
    for (const [k, v] of Object.entries(fields)) form.append(k, v);
    cases.push({ label: `multipart unstorable ${label}`, method: "POST", path: "/v1/documents", auth: "tenant", body: form });
  }
  // A file name far past the title limit is cut, not refused (row 11); many tiny parts are counted
  // and refused before the form is parsed (row 5).
  const longName = new FormData();
  longName.append("file", new File(["A note with a long name."], `${"n".repeat(30_000)}.txt`, { type: "text/plain" }));
  cases.push({ label: "multipart file name of 30,000 characters", method: "POST", path: "/v1/documents", auth: "tenant", body: longName, expect: 201 });
  const tinyParts = (name: string, count: number) =>
    `${`--XyZ\r\nContent-Disposition: form-data; name="${name}"; filename="a.txt"\r\n\r\na\r\n`.repeat(count)}--XyZ--\r\n`;
  for (const path of ["/v1/documents", "/v1/documents/batch"]) {
    cases.push({ label: `multipart of 500 one-byte parts to ${path}`, method: "POST", path, auth: "tenant", body: tinyParts("file", 500), contentType: "multipart/form-data; boundary=XyZ", expect: 400 });
  }
  cases.push({ label: "title derived from NUL-led text", method: "POST", path: "/v1/documents", auth: "tenant", contentType: "application/json", body: JSON.stringify({ text: "\u0000Heading\nbody" }) });
  const nested = (depth: number) => `{"text":"deep ${depth}","metadata":${"{\"a\":".repeat(depth)}1${"}".repeat(depth)}}`;
  // Deeper than the 16 KiB metadata limit allows (must be refused), and as deep as it allows (jsonb must cope).
  const overDepth = Math.floor((options.maxBodyBytes - 100) / 6);
  cases.push({ label: `metadata nested ${overDepth} deep`, method: "POST", path: "/v1/documents", auth: "tenant", contentType: "application/json", body: nested(overDepth), expect: 400 });
  const maxDepth = Math.floor((16_384 - 10) / 6);
  cases.push({ label: `metadata nested ${maxDepth} deep`, method: "POST", path: "/v1/documents", auth: "tenant", contentType: "application/json", body: nested(maxDepth) });
  cases.push({ label: "binary noise as json", method: "POST", path: "/v1/documents", auth: "tenant", body: new Uint8Array(Array.from({ length: 512 }, () => Math.floor(random() * 256))), contentType: "application/json", expect: 400 });
  return cases;
}
