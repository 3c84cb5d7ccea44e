import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ADMIN_KEY, backends, TestFence, type TestTenant } from "../../support/harness.js";
import type { IssuedKeyJson } from "../../support/api-types.js";
import { ConsoleBrowser } from "../../support/console-browser.js";
import { startFakeOpenAI, type FakeOpenAI } from "../../support/fake-openai.js";
import { putTenantOnPlan } from "../../support/metering-helpers.js";
import { uniquePlanName } from "../../support/admission-helpers.js";

/**
 * The console's pages over HTTP (issue 19): overview, documents (find, open, delete, upload as a
 * job), Ask (whole and streamed), keys (issue, rotate, revoke) and the platform's tenants. Each is
 * the API's service under the session's TenantContext, so the checks are the API's: another
 * tenant's ids answer the same 404 as made-up ones, every POST needs the session's CSRF token, a
 * page is admitted like a request (a tenant at its rate limit gets 429 here too).
 */
const UUID_NOBODY = "00000000-0000-4000-8000-00000000abcd";

describe.each(backends.filter((b) => b.name !== "worker"))("console pages on $name", (backend) => {
  let fence: TestFence;
  let llm: FakeOpenAI;
  let a: TestTenant;
  let b: TestTenant;
  let aDoc: string;
  let bDoc: string;
  const browserOf = async (key: string) => {
    const browser = new ConsoleBrowser(fence);
    expect((await browser.signIn(key)).status).toBe(303);
    return browser;
  };

  beforeAll(async () => {
    llm = await startFakeOpenAI();
    llm.setAnswer(() => "Orchard pruning happens in late winter [1].");
    fence = await TestFence.start(backend, { env: { FENCE_JOB_WORKERS: "0", LLM_BASE_URL: llm.url, LLM_MODEL: "fake-model" } });
    a = await fence.createTenant("pages-a", "enterprise");
    b = await fence.createTenant("pages-b", "enterprise");
    aDoc = (await fence.upload(a, { title: "Orchard handbook 100%_ripe", text: "Orchard pruning happens in late winter, before the buds open." })).id;
    await fence.upload(a, { title: "Cider pressing", text: "Apples are pressed in October." });
    bDoc = (await fence.upload(b, { title: "CANARY-PAGES-B payroll", text: "CANARY-PAGES-B text of tenant B." })).id;
  });
  afterAll(async () => {
    await fence?.close();
    await llm?.close();
  });

  it("finds documents by title (taken literally), opens one with its text, and answers B's id exactly as a made-up one", async () => {
    const browser = await browserOf(a.key);
    const found = await (await browser.fetch("GET", "/console/documents?q=orchard")).text();
    expect(found).toContain("Orchard handbook");
    expect(found).not.toContain("Cider pressing");
    // % and _ are text, not wildcards: "0%_r" is in one title only, "%" alone matches no other.
    expect(await (await browser.fetch("GET", `/console/documents?q=${encodeURIComponent("0%_r")}`)).text()).toContain("Orchard handbook");
    expect(await (await browser.fetch("GET", `/console/documents?q=${encodeURIComponent("%")}`)).text()).not.toContain("Cider pressing");

    const opened = await browser.fetch("GET", `/console/documents/${aDoc}`);
    expect(opened.status).toBe(200);
    expect(await opened.text()).toContain("Orchard pruning happens in late winter");

    const foreign = await browser.fetch("GET", `/console/documents/${bDoc}`);
    const missing = await browser.fetch("GET", `/console/documents/${UUID_NOBODY}`);
    const malformed = await browser.fetch("GET", "/console/documents/not-a-uuid");
    const bodies = await Promise.all([foreign, missing, malformed].map(async (r) => (await r.text()).replace(/csrf" value="[^"]+"|content="[^"]+"/g, "")));
    expect([foreign.status, missing.status, malformed.status]).toEqual([404, 404, 404]);
    expect(bodies[0]).toBe(bodies[1]);
    expect(bodies[0]).toBe(bodies[2]);
    expect(bodies[0]).not.toContain("CANARY-PAGES-B");
  });

  it("deletes a document only with the owner scope and the session's token", async () => {
    const doc = (await fence.upload(a, { title: "To be deleted", text: "A short-lived document." })).id;
    const reader = await browserOf(((await (await fence.admin("POST", `/tenants/${a.id}/keys`, { name: "reader", scopes: ["read"] })).json()) as IssuedKeyJson).key);
    const refused = await reader.fetch("POST", `/console/documents/${doc}/delete`, { csrf: await reader.csrf("/console/documents") });
    expect(refused.status).toBe(403);

    const owner = await browserOf(a.key);
    expect((await owner.fetch("POST", `/console/documents/${doc}/delete`, { csrf: "forged" })).status).toBe(403);
    expect((await owner.fetch("POST", `/console/documents/${doc}/delete`, {})).status).toBe(403);
    expect((await fence.request("GET", `/v1/documents/${doc}`, { key: a.key })).status).toBe(200);

    const deleted = await owner.fetch("POST", `/console/documents/${doc}/delete`, { csrf: await owner.csrf() });
    expect(deleted.status).toBe(303);
    expect((await fence.request("GET", `/v1/documents/${doc}`, { key: a.key })).status).toBe(404);
    // B's document by id: the same 404, and B's document is still there.
    expect((await owner.fetch("POST", `/console/documents/${bDoc}/delete`, { csrf: await owner.csrf() })).status).toBe(404);
    expect((await fence.request("GET", `/v1/documents/${bDoc}`, { key: b.key })).status).toBe(200);
  });

  it("queues an upload as a job and shows its row, refreshed by htmx while it is not finished; B's job id is a 404", async () => {
    const browser = await browserOf(a.key);
    const form = new FormData();
    form.set("csrf", await browser.csrf());
    form.set("file", new File(["Greenhouse vents open above 24 degrees."], "greenhouse.txt", { type: "text/plain" }));
    const queued = await browser.fetch("POST", "/console/documents/upload", form, { "hx-request": "true" });
    expect(queued.status).toBe(202);
    const row = await queued.text();
    const jobId = /id="job-([0-9a-f-]{36})"/.exec(row)![1]!;
    expect(row).toContain("greenhouse.txt");
    expect(row).toContain(`hx-get="/console/documents/jobs/${jobId}"`);
    expect((await fence.request("GET", `/v1/jobs/${jobId}`, { key: a.key })).status).toBe(200);
    expect((await browser.fetch("GET", `/console/documents/jobs/${jobId}`)).status).toBe(200);

    // Without a file: the API's message, nothing queued.
    const empty = new FormData();
    empty.set("csrf", await browser.csrf());
    const refused = await browser.fetch("POST", "/console/documents/upload", empty, { "hx-request": "true" });
    expect(refused.status).toBe(400);
    expect(await refused.text()).toContain("file: exactly one file upload is required");

    const bJob = ((await (await fence.request("POST", "/v1/documents", { key: b.key, json: { title: "CANARY-PAGES-B job", text: "queued" }, headers: { prefer: "respond-async" } })).json()) as { id: string }).id;
    const foreign = await browser.fetch("GET", `/console/documents/jobs/${bJob}`);
    expect(foreign.status).toBe(404);
    expect(await foreign.text()).not.toContain("CANARY-PAGES-B");
  });

  it("answers in Ask with citations, whole or streamed, metered like the API's chat", async () => {
    const browser = await browserOf(a.key);
    const csrf = await browser.csrf();
    const whole = await browser.fetch("POST", "/console/ask", { csrf, question: "When does orchard pruning happen?" });
    expect(whole.status).toBe(200);
    const html = await whole.text();
    expect(html).toContain("Orchard pruning happens in late winter [1].");
    expect(html).toContain(`href="/console/documents/${aDoc}"`);

    // Another question: the same one would be the answer cache's, with no model call to meter.
    const streamed = await browser.fetch("POST", "/console/ask/stream", { question: "Is the orchard pruned before the buds open?" }, { "x-csrf-token": csrf });
    expect(streamed.headers.get("content-type")).toMatch(/^text\/event-stream/);
    const events = await streamed.text();
    expect(events).toContain("event: token");
    expect(events).toContain("event: citations");
    expect(events).toContain(aDoc);
    expect(events).not.toContain("CANARY-PAGES-B");

    expect((await browser.fetch("POST", "/console/ask/stream", { question: "x" }, { "x-csrf-token": "forged" })).status).toBe(403);
    const usage = (await (await fence.request("GET", "/v1/usage?group_by=feature", { key: a.key })).json()) as { rows: { key: string; events: number }[] };
    expect(usage.rows.find((r) => r.key === "chat")?.events ?? 0).toBeGreaterThanOrEqual(2);
  });

  it("lists the tenant's runs with filters and draws one run's steps as a timeline; B's run is the same 404 as none", async () => {
    const browser = await browserOf(a.key);
    const asked = await (await browser.fetch("POST", "/console/ask", { csrf: await browser.csrf(), question: "What is pressed in October?" })).text();
    const runPath = /href="(\/console\/runs\/[^"]+)"/.exec(asked)![1]!;
    const list = await (await browser.fetch("GET", "/console/runs?kind=chat")).text();
    expect(list).toContain("What is pressed in October?");
    expect(await (await browser.fetch("GET", "/console/runs?kind=ingest&status=failed")).text()).not.toContain("What is pressed in October?");

    const run = await browser.fetch("GET", runPath);
    expect(run.status).toBe(200);
    const html = await run.text();
    expect(html).toContain('<svg class="timeline"');
    expect(html).toMatch(/<rect x="[\d.]+" y="[\d.]+" width="[\d.]+"/);
    expect(html).toContain(">retrieval</text>");
    expect(html).toContain(">model_call</text>");

    const bAnswer = await fence.request("POST", "/v1/chat", { key: b.key, json: { question: "CANARY-PAGES-B what is in the payroll?" } });
    const bRun = ((await bAnswer.json()) as { request_id: string }).request_id;
    const foreign = await browser.fetch("GET", `/console/runs/${bRun}`);
    const missing = await browser.fetch("GET", "/console/runs/no-such-request");
    expect([foreign.status, missing.status]).toEqual([404, 404]);
    expect(await foreign.text()).not.toContain("CANARY-PAGES-B");
  });

  it("saves the owner's settings within the plan, refuses the platform's, and records both keys and settings in the audit page", async () => {
    const browser = await browserOf(a.key);
    const saved = await browser.fetch("POST", "/console/settings", { csrf: await browser.csrf(), persona: "You are the orchard's helper.", answer_style: "concise", retrieval_k: "5", features: "chat.llm" });
    expect(saved.status).toBe(303);
    const settings = (await (await fence.request("GET", "/v1/settings", { key: a.key })).json()) as { persona: string; answer_style: string; retrieval_k: number; features: Record<string, { enabled: boolean }> };
    expect(settings).toMatchObject({ persona: "You are the orchard's helper.", answer_style: "concise", retrieval_k: 5 });
    // Unticked checkboxes are flags switched off.
    expect(settings.features["chat.streaming"]!.enabled).toBe(false);
    expect(settings.features["chat.llm"]!.enabled).toBe(true);
    const page = await (await browser.fetch("GET", "/console/settings")).text();
    expect(page).toContain("You are the orchard&#39;s helper.");

    const bad = await browser.fetch("POST", "/console/settings", { csrf: await browser.csrf(), retrieval_k: "500" });
    expect(bad.status).toBe(400);
    expect(await bad.text()).toContain("retrieval_k");
    await browser.fetch("POST", "/console/settings", { csrf: await browser.csrf(), features: "chat.llm" });
    await browser.fetch("POST", "/console/settings", { csrf: await browser.csrf(), features: "chat.llm,chat.streaming" });

    const audit = await (await browser.fetch("GET", "/console/audit")).text();
    expect(audit).toContain("settings.patched");
    expect(audit).not.toContain(b.id);
  });

  it("issues a key shown once, within the owner's own scopes, and revokes it", async () => {
    const browser = await browserOf(a.key);
    const issued = await browser.fetch("POST", "/console/keys", { csrf: await browser.csrf(), name: "from the console", scopes: "read" });
    expect(issued.status).toBe(200);
    const html = await issued.text();
    const key = /<code>(fence_[a-z]+_[A-Za-z0-9_-]+)<\/code>/.exec(html)![1]!;
    expect((await fence.request("GET", "/v1/documents", { key })).status).toBe(200);
    expect((await fence.request("POST", "/v1/search", { key, json: { query: "orchard" } })).status).toBe(403);
    const keyId = ((await (await fence.request("GET", "/v1/keys", { key: a.key })).json()) as { keys: { id: string; name: string }[] }).keys.find((k) => k.name === "from the console")!.id;
    expect(await (await browser.fetch("GET", "/console/keys")).text()).not.toContain(key);

    // A read key issues nothing: the page is the owner's.
    const reader = await browserOf(key);
    expect((await reader.fetch("GET", "/console/keys")).status).toBe(403);
    // Bad fields get the API's message.
    const bad = await browser.fetch("POST", "/console/keys", { csrf: await browser.csrf(), name: "", scopes: "read" });
    expect(bad.status).toBe(400);
    expect(await bad.text()).toContain("name");

    expect((await browser.fetch("POST", `/console/keys/${keyId}/revoke`, { csrf: await browser.csrf() })).status).toBe(303);
    expect((await fence.request("GET", "/v1/documents", { key })).status).toBe(401);
    expect((await reader.fetch("GET", "/console/documents")).status).toBe(303);
  });

  it("shows the tenant's usage and budgets on the overview, and none of B's", async () => {
    const browser = await browserOf(a.key);
    const res = await browser.fetch("GET", "/console/overview");
    expect(res.status).toBe(200);
    const html = await res.text();
    expect(html).toContain("Plan <strong>enterprise</strong>");
    expect(html).toMatch(/<meter [^>]*max="20000000"/);
    expect(html).toContain('class="chart panel" data-chart=');
    // Earlier tests asked questions and were refused by a forged token: the chats' latency shows.
    expect(html).toMatch(/<td>chat<\/td><td class="num">\d+<\/td><td class="num">\d+ ms<\/td><td class="num">\d+ ms<\/td>/);
    expect(html).not.toContain(b.id);
    expect(html).not.toContain(b.keyId);
  });

  it("admits a page like a request: a tenant past its rate limit gets a 429 page, and its overview counts the refusal", async () => {
    const tenant = await fence.createTenant("pages-limited");
    const browser = await browserOf(tenant.key);
    await putTenantOnPlan(fence, tenant, uniquePlanName("console-rpm"), { requestsPerMinute: 2 });
    const statuses: number[] = [];
    let refused: Response | undefined;
    for (let i = 0; i < 4; i++) {
      const res = await browser.fetch("GET", "/console/documents");
      statuses.push(res.status);
      if (res.status === 429) refused = res;
    }
    expect(statuses).toContain(429);
    expect(Number(refused!.headers.get("retry-after"))).toBeGreaterThan(0);
    expect(await refused!.text()).toMatch(/rate limit is reached.*Try again in \d+ s\./);
    expect(statuses.slice(0, 2)).toEqual([200, 200]);
    // A refused chat is a run: a question past the limit through the API shows by its reason.
    expect((await fence.request("POST", "/v1/chat", { key: tenant.key, json: { question: "anything?" } })).status).toBe(429);
    await putTenantOnPlan(fence, tenant, uniquePlanName("console-rpm-wide"), { requestsPerMinute: 1000 });
    const overview = await (await browser.fetch("GET", "/console/overview")).text();
    expect(overview).toMatch(/<td>chat refused<\/td><td><code>rate_limit[a-z_]*<\/code><\/td><td class="num">1<\/td>/);
  });

  it("answers an unknown console path with its own 404 page, not the API's JSON", async () => {
    const res = await (await browserOf(a.key)).fetch("GET", "/console/no-such-page");
    expect(res.status).toBe(404);
    expect(res.headers.get("content-type")).toMatch(/^text\/html/);
    expect(await res.text()).toContain("There is no such page.");
  });

  it("lets the admin edit a plan whole, keeping what was typed beside a refusal", async () => {
    const admin = await browserOf(ADMIN_KEY);
    const name = uniquePlanName("console-edit");
    expect((await fence.admin("PUT", `/plans/${name}`, { tokens_per_day: 1000, tokens_per_month: null, spend_per_month_micros: null })).status).toBe(201);
    expect(await (await admin.fetch("GET", "/console/platform/plans")).text()).toContain(`>${name}</a>`);
    const csrf = await admin.csrf("/console/platform/plans");

    const typo = await admin.fetch("POST", `/console/platform/plans/${name}`, { csrf, settings: '{"tokens_per_dya": 5}' });
    expect(typo.status).toBe(400);
    const typoPage = await typo.text();
    expect(typoPage).toContain("tokens_per_dya");
    expect(typoPage).toContain("{&quot;tokens_per_dya&quot;: 5}");
    expect((await admin.fetch("POST", `/console/platform/plans/${name}`, { csrf, settings: "{not json" })).status).toBe(400);

    const saved = await admin.fetch("POST", `/console/platform/plans/${name}`, { csrf, settings: JSON.stringify({ tokens_per_day: 2000, tokens_per_month: 50000, spend_per_month_micros: null }) });
    expect(saved.status).toBe(303);
    const plan = (await (await fence.admin("GET", `/plans/${name}`)).json()) as { tokens_per_day: number; tokens_per_month: number };
    expect(plan).toMatchObject({ tokens_per_day: 2000, tokens_per_month: 50000 });
  });

  it("shows usage across tenants with a CSV of the same report, and the queue and provider lanes", async () => {
    const admin = await browserOf(ADMIN_KEY);
    const usage = await (await admin.fetch("GET", "/console/platform/usage?group_by=tenant")).text();
    expect(usage).toContain("pages-a");
    expect(usage).toContain("Reconciliation");
    const csv = await admin.fetch("GET", "/console/platform/usage/csv?group_by=tenant");
    expect(csv.headers.get("content-type")).toMatch(/^text\/csv/);
    expect(csv.headers.get("content-disposition")).toMatch(/^attachment; filename="fence-usage-tenant-/);
    const text = await csv.text();
    expect(text.split(/\r?\n/)[0]).toBe("tenant,tenant_name,events,input_tokens,output_tokens,cached_tokens,total_tokens,cost_micros");
    expect(text).toContain(a.id);
    expect((await admin.fetch("GET", "/console/platform/usage?group_by=nonsense")).status).toBe(400);

    const operations = await (await admin.fetch("GET", "/console/platform/operations")).text();
    expect(operations).toContain("Ingestion queue");
    expect(operations).toContain("<td>llm</td>");
    // A tenant session opens none of it.
    expect((await (await browserOf(a.key)).fetch("GET", "/console/platform/usage")).status).toBe(403);
  });

  it("moves a tenant to another plan, and purges one only when its name is typed", async () => {
    const admin = await browserOf(ADMIN_KEY);
    const doomed = await fence.createTenant("console-doomed");
    const csrf = await admin.csrf("/console/platform/tenants");
    expect((await admin.fetch("POST", `/console/platform/tenants/${doomed.id}/plan`, { csrf, plan: "pro" })).status).toBe(303);
    expect(((await (await fence.admin("GET", `/tenants/${doomed.id}/config`)).json()) as { plan: string }).plan).toBe("pro");
    expect((await admin.fetch("POST", `/console/platform/tenants/${doomed.id}/plan`, { csrf, plan: "no-such-plan" })).status).toBe(400);

    expect(await (await admin.fetch("GET", `/console/platform/tenants/${doomed.id}/purge`)).text()).toContain("Type the tenant&#39;s name");
    expect((await admin.fetch("POST", `/console/platform/tenants/${doomed.id}/purge`, { csrf, confirm_name: "console-doome" })).status).toBe(400);
    expect((await fence.request("GET", "/v1/documents", { key: doomed.key })).status).toBe(200);
    expect((await admin.fetch("POST", `/console/platform/tenants/${doomed.id}/purge`, { csrf, confirm_name: "console-doomed" })).status).toBe(303);
    expect((await fence.request("GET", "/v1/documents", { key: doomed.key })).status).toBe(401);
    expect((await admin.fetch("GET", `/console/platform/tenants/${UUID_NOBODY}/purge`)).status).toBe(404);
  });

  it("lets the admin make a tenant from the platform page, with the API's validation", async () => {
    const admin = await browserOf(ADMIN_KEY);
    const csrf = await admin.csrf("/console/platform/tenants");
    expect((await admin.fetch("POST", "/console/platform/tenants", { csrf, name: "made-in-console", plan: "pro" })).status).toBe(303);
    expect(await (await admin.fetch("GET", "/console/platform/tenants")).text()).toContain("made-in-console");
    expect((await admin.fetch("POST", "/console/platform/tenants", { csrf: "forged", name: "nope" })).status).toBe(403);
    const tenant = await browserOf(a.key);
    expect((await tenant.fetch("POST", "/console/platform/tenants", { csrf: await tenant.csrf(), name: "by-a-tenant" })).status).toBe(403);
    const all = (await (await fence.admin("GET", "/tenants")).json()) as { tenants: { name: string }[] };
    expect(all.tenants.map((t) => t.name)).not.toContain("nope");
    expect(all.tenants.map((t) => t.name)).not.toContain("by-a-tenant");
  });
});
