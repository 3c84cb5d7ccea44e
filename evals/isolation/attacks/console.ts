import { randomBytes } from "node:crypto";
import { EXTRACTIVE_ONLY, type Attack, type AttackContext } from "../attack.js";
import { ConsoleTab, cookieOf, FORM, formBody, isAssertionPage, isRefusedForm, issuedSecretIn, keyIdListedAs, openConsole, signIn, unrecorded } from "../console-tab.js";
import { parseSse, type AttackerHttp, type Party, type Reply } from "../exchange.js";
import { expectLikeMissing, smuggled } from "./jobs.js";
import type { AdminAuditEventListJson, IngestedDocumentJson, IssuedKeyJson, JobListJson } from "../../../test/support/api-types.js";

/**
 * The console (issue 19): pages are one more way to call the same services with the same
 * TenantContext, so B signed into the console must see and change exactly what B's key may through
 * the API — never A's titles, text, ids, usage or keys. Every page B's session receives is
 * recorded, so the detector scans it for A's needles.
 *
 * The data attacks (B's documents list, A's documents and jobs by id, A's document and keys by id,
 * A's titles, canaries, usage and keys) go through the locks, so with every lock off (mode 4)
 * each must leak — the proof that the detector sees the console's pages at all. Ask goes through
 * the assembly assertion too, which stays on in mode 4: there a question that retrieves A's chunks
 * is aborted (the console's 500 page, or an `error` event in the stream), never answered from them.
 *
 * The forms' own checks need no lock and hold in every mode: a sign-in without its form's token, a
 * forged session cookie, and posts without the session's own CSRF token (none, A's, an older
 * session's of B's, one in the wrong place) open and change nothing.
 *
 * Setup and ground truth (A's spare document and key, B's throwaway ones, audit trails) go
 * through an unrecorded client, as in keys.ts: they are not what B's session received.
 */

const randomId = () => crypto.randomUUID();

/** Issues B a key of these scopes (unrecorded) and signs it into the console: a tab for GETs only (no token read). */
async function scopedTab(ctx: AttackContext, setup: AttackerHttp, scopes: string[], made: string[]): Promise<ConsoleTab | undefined> {
  const reply = await setup.send(ctx.parties.admin, "POST", `/v1/admin/tenants/${ctx.b.id}/keys`, { json: { name: `eval-console-${scopes.join("-")}`, scopes } });
  if (reply.status !== 201) throw new Error(`setup: issuing B a ${scopes.join(",")} key: ${reply.status} ${reply.body.slice(0, 200)}`);
  const issued = reply.json as IssuedKeyJson;
  made.push(issued.id);
  const party: Party = { label: `B's ${scopes.join("+")} key`, tenant: "B", key: issued.key };
  const cookie = await signIn(ctx, party);
  return cookie ? new ConsoleTab(ctx, party, cookie, "") : undefined;
}

async function revokeKeysOfB(ctx: AttackContext, setup: AttackerHttp, ids: readonly string[]): Promise<void> {
  for (const id of ids) await setup.send(ctx.parties.admin, "DELETE", `/v1/admin/tenants/${ctx.b.id}/keys/${id}`);
}

/** A document of `party`'s tenant, uploaded outside the recorded traffic. */
async function uploadAs(setup: AttackerHttp, party: Party, title: string, text: string): Promise<IngestedDocumentJson> {
  const reply = await setup.send(party, "POST", "/v1/documents", { json: { title, text, source_id: `console-eval/${randomId()}.md` } });
  if (reply.status !== 201 && reply.status !== 200) throw new Error(`setup: ${party.label} uploading "${title}": ${reply.status} ${reply.body.slice(0, 200)}`);
  return reply.json as IngestedDocumentJson;
}

/** The newest events of a tenant's audit trail, as the platform admin reads them (unrecorded). */
async function newestEventsOf(ctx: AttackContext, setup: AttackerHttp, tenantId: string): Promise<string> {
  const reply = await setup.send(ctx.parties.admin, "GET", `/v1/admin/audit?tenant_id=${tenantId}&limit=100`);
  if (reply.status !== 200) throw new Error(`setup: the admin's audit trail of ${tenantId}: ${reply.status} ${reply.body.slice(0, 200)}`);
  return (reply.json as AdminAuditEventListJson).events.map((e) => `${e.action}:${e.target_id ?? ""}:${e.id}`).join(",");
}

export const consoleAttacks: Attack[] = [
  {
    name: "B's console session reads only B's documents",
    path: "POST /console/sign-in, GET /console/documents",
    kind: "attack",
    variants: EXTRACTIVE_ONLY,
    async run(ctx) {
      const { b } = ctx.parties;
      const session = await signIn(ctx, b);
      if (!session) return;
      const cookie = { cookie: `fence_console=${session}` };
      const victim = ctx.a.documents[0]!;
      const cursors = [
        Buffer.from(JSON.stringify({ createdAt: new Date(Date.now() + 86_400_000).toISOString(), id: victim.id })).toString("base64url"),
        Buffer.from(`${new Date(Date.now() + 86_400_000).toISOString()}|${victim.id}`).toString("base64url"),
      ];
      for (const path of ["/console/documents", `/console/documents?tenant_id=${ctx.a.id}&tenant=${ctx.a.id}`, ...cursors.map((c) => `/console/documents?cursor=${c}`)]) {
        const page = await ctx.http.send(b, "GET", path, { auth: false, headers: { ...cookie, "x-tenant-id": ctx.a.id } });
        ctx.expect(page.status === 200 || page.status === 400, `B GET ${path}: status ${page.status}`);
      }
    },
  },
  {
    name: "console sign-in without its form's token, and a forged session",
    path: "POST /console/sign-in, GET /console/documents",
    kind: "attack",
    variants: EXTRACTIVE_ONLY,
    async run(ctx) {
      const { b } = ctx.parties;
      const noToken = await ctx.http.send(b, "POST", "/console/sign-in", { auth: false, body: formBody({ csrf: "guess", key: b.key ?? "" }), headers: FORM });
      ctx.expect(noToken.status === 403 && cookieOf(noToken, "fence_console") === undefined, `sign-in without the form's token: status ${noToken.status}`);
      const forgedSession = Buffer.from(JSON.stringify({ kind: "tenant", keyHash: "0".repeat(64), csrf: "x", expiresAt: Date.now() + 3_600_000 })).toString();
      for (const value of [encodeURIComponent(`${forgedSession}.forged-signature`), encodeURIComponent(forgedSession)]) {
        const page = await ctx.http.send(b, "GET", "/console/documents", { auth: false, headers: { cookie: `fence_console=${value}` } });
        ctx.expect(page.status === 303 && page.headers.location === "/console/sign-in", `a forged session cookie: status ${page.status}`);
      }
    },
  },
  {
    // Proves a document's and an upload job's page open only the session tenant's own (I6): B's
    // owner session, and sessions of B's `read` and `ingest` keys (each page's scope), open every
    // one of A's document ids, A's job ids and A's batch ids, plain and as htmx asks (which gets a
    // text reply instead of a page), and each answers exactly like a made-up id of the same session.
    // A's id in the path is a reflection the detector forgives; the page of a leaked document still
    // carries A's title, text and metadata canary, and a leaked job row A's job title and canary —
    // which is what mode 4 shows. B's own document and job open (so A's 404s are not "broken").
    name: "B's console opens A's documents and jobs by id",
    path: "GET /console/documents/:id, /console/documents/jobs/:id",
    kind: "attack",
    variants: EXTRACTIVE_ONLY,
    async run(ctx) {
      const owner = await openConsole(ctx, ctx.parties.b);
      if (!owner) return;
      const setup = unrecorded(ctx);
      const made: string[] = [];
      try {
        const reader = await scopedTab(ctx, setup, ["read"], made);
        const ingester = await scopedTab(ctx, setup, ["ingest"], made);
        const victimJobs = ctx.a.jobs;
        if (!victimJobs) throw new Error("setup: A was seeded without jobs");
        const documentIds = ctx.a.documents.map((d) => d.id);
        const jobIds = [...victimJobs.jobs.map((j) => j.id), victimJobs.keyedBatchId, victimJobs.randomBatchId];
        const aims: [ConsoleTab | undefined, string, string[]][] = [
          [owner, "/console/documents/", documentIds],
          [owner, "/console/documents/jobs/", jobIds],
          [reader, "/console/documents/", documentIds],
          [ingester, "/console/documents/jobs/", jobIds],
        ];
        for (const [tab, prefix, ids] of aims) {
          if (!tab) continue;
          for (const headers of [{}, { "hx-request": "true" }] as Record<string, string>[]) {
            const how = "hx-request" in headers ? " (htmx)" : "";
            const missing = await tab.get(`${prefix}${randomId()}`, headers);
            ctx.expect(missing.status === 404, `${tab.party.label} GET ${prefix}<made-up id>${how}: status ${missing.status}, expected 404`);
            for (const id of [...ids, ids[0]!.toUpperCase()]) {
              const reply = await tab.get(`${prefix}${id}`, headers);
              expectLikeMissing(ctx, reply, missing, `${tab.party.label} GET ${prefix}<A's ${id}>${how}`);
            }
          }
        }
        const ownDoc = ctx.b.documents[0]!;
        const opened = await owner.get(`/console/documents/${ownDoc.id}`);
        ctx.expectHealthy(opened.status === 200 && opened.body.includes(ownDoc.canary), `B's console opening B's own ${ownDoc.sourceId}: status ${opened.status}, its canary shown: ${opened.body.includes(ownDoc.canary)}`);
        const ownJob = ctx.b.jobs?.jobs[0];
        if (ownJob) {
          const row = await owner.get(`/console/documents/jobs/${ownJob.id}`, { "hx-request": "true" });
          ctx.expectHealthy(row.status === 200 && row.body.includes(`id="job-${ownJob.id}"`), `B's console opening B's own job: status ${row.status}`);
        }
      } finally {
        await revokeKeysOfB(ctx, setup, made);
      }
    },
  },
  {
    // Proves the console's destructive forms reach only the session tenant's own objects (I6),
    // with B's own valid CSRF token: deleting A's document, and rotating and revoking A's keys (a
    // spare owner key of A's, and A's already revoked key) by id each answer exactly like a made-up
    // id, and afterwards A still reads its document with its key, the spare key still works, and A's
    // data version is unchanged. A rotated secret the page showed B would be A's key: it is planted
    // as A's needle, so showing it is a detected leak. A's own key is not aimed at: with every lock
    // off the key attacks already rotated it, and a second rotation would end the secret every later
    // attack acts with. The same forms on B's own document and a key B issues in the console do
    // work (delete 303, issue and rotate shown once, revoke 303, the key then dead), so A's 404s are
    // not "broken". With every lock off the keys page B gets back lists A's keys: a leak.
    name: "B's console deletes A's documents and revokes A's keys by id",
    path: "POST /console/documents/:id/delete, /console/keys[/:id/rotate|revoke], /console/platform/tenants/:id/{suspend,resume,plan}",
    kind: "attack",
    variants: EXTRACTIVE_ONLY,
    async run(ctx) {
      const b = await openConsole(ctx, ctx.parties.b);
      if (!b) return;
      const setup = unrecorded(ctx);
      const tag = randomBytes(6).toString("hex").toUpperCase();
      const spareCanary = `CANARY-ACME-CONSOLE-${tag}-SPARE`;
      const spareTitle = `Acme console spare memo ${tag}`;
      const spareDoc = await uploadAs(setup, ctx.parties.a, spareTitle, `# ${spareTitle}\n\nA spare confidential memo of Acme, reference ${spareCanary}, for the console's delete form.`);
      const issued = await setup.send(ctx.parties.admin, "POST", `/v1/admin/tenants/${ctx.a.id}/keys`, { json: { name: "eval-console-spare" } });
      if (issued.status !== 201) throw new Error(`setup: issuing A a spare key: ${issued.status} ${issued.body.slice(0, 200)}`);
      const spareKey = issued.json as IssuedKeyJson;
      ctx.plant([
        { owner: "A", kind: "document-id", value: spareDoc.id },
        { owner: "A", kind: "title", value: spareTitle },
        { owner: "A", kind: "canary", value: spareCanary },
        { owner: "A", kind: "key-id", value: spareKey.id },
        { owner: "A", kind: "api-key", value: spareKey.key },
      ]);
      const spareParty: Party = { label: "A's spare key", tenant: "A", key: spareKey.key };
      const madeByB: string[] = [];
      try {
        const versionOfA = await ctx.dataVersion("A");
        const missingDelete = await b.post(`/console/documents/${randomId()}/delete`, {});
        ctx.expect(missingDelete.status === 404, `B deleting a made-up document id: status ${missingDelete.status}, expected 404`);
        for (const id of [spareDoc.id, spareDoc.id.toUpperCase()]) {
          expectLikeMissing(ctx, await b.post(`/console/documents/${id}/delete`, {}), missingDelete, `B deleting A's document ${id}`);
        }
        const missing = { rotate: await b.post(`/console/keys/${randomId()}/rotate`, {}), revoke: await b.post(`/console/keys/${randomId()}/revoke`, {}) };
        ctx.expect(missing.rotate.status === 404 && missing.revoke.status === 404, `B rotating/revoking a made-up key id: ${missing.rotate.status}/${missing.revoke.status}, expected 404`);
        for (const target of [{ label: "A's spare owner key", id: spareKey.id }, { label: "A's revoked key", id: ctx.a.revokedKey!.id }]) {
          const rotated = await b.post(`/console/keys/${target.id}/rotate`, {});
          const shown = issuedSecretIn(rotated.body);
          if (shown) ctx.plant([{ owner: "A", kind: "api-key", value: shown }]);
          expectLikeMissing(ctx, rotated, missing.rotate, `B rotating ${target.label}`);
          expectLikeMissing(ctx, await b.post(`/console/keys/${target.id}/revoke`, {}), missing.revoke, `B revoking ${target.label}`);
        }

        // The platform's forms on A (suspend, resume, plan) from B's tenant session: a tenant
        // session opens no platform page, whatever token it carries.
        for (const [action, fields] of [["suspend", {}], ["resume", {}], ["plan", { plan: "free" }]] as const) {
          const reply = await b.post(`/console/platform/tenants/${ctx.a.id}/${action}`, fields);
          ctx.expect(reply.status === 403, `B's tenant session posting the platform's ${action} of A: status ${reply.status}, expected 403`);
        }
        const notSuspended = await ctx.http.send(ctx.parties.a, "GET", "/v1/limits");
        ctx.expect(notSuspended.status === 200, `A's key after B's session posted A's suspension: status ${notSuspended.status}, expected 200`);

        const stillThere = await ctx.http.send(ctx.parties.a, "GET", `/v1/documents/${spareDoc.id}`);
        ctx.expect(stillThere.status === 200, `A GET its document after B's console deleted it by id: status ${stillThere.status}, expected 200`);
        const stillWorks = await ctx.http.send(spareParty, "GET", "/v1/limits");
        ctx.expect(stillWorks.status === 200, `A's spare key after B's console revoked it by id: status ${stillWorks.status}, expected 200`);
        const versionNow = await ctx.dataVersion("A");
        ctx.expect(versionNow === versionOfA, `A's data version went from ${versionOfA} to ${versionNow} while only B acted`);

        // The same forms on B's own objects work: the 404s above are the tenant check, not a broken form.
        const ownDoc = await uploadAs(setup, ctx.parties.b, `Globex console scratch ${tag}`, `A scratch note of Globex ${tag}, deleted through the console.`);
        const deleted = await b.post(`/console/documents/${ownDoc.id}/delete`, {});
        ctx.expectHealthy(deleted.status === 303, `B deleting B's own document in the console: status ${deleted.status}, expected 303`);
        const gone = await setup.send(ctx.parties.b, "GET", `/v1/documents/${ownDoc.id}`);
        ctx.expectHealthy(gone.status === 404, `B's own document after its console delete: status ${gone.status}, expected 404`);
        const name = `eval-console-own-${tag.toLowerCase()}`;
        const issuedPage = await b.post("/console/keys", { name, scopes: "read" });
        const first = issuedSecretIn(issuedPage.body);
        const ownId = keyIdListedAs(issuedPage.body, name);
        if (ownId) madeByB.push(ownId);
        ctx.expectHealthy(issuedPage.status === 200 && first !== undefined && ownId !== undefined, `B issuing a key in the console: status ${issuedPage.status}, secret shown: ${first !== undefined}, listed: ${ownId !== undefined}`);
        if (ownId && first) {
          const rotatedPage = await b.post(`/console/keys/${ownId}/rotate`, {});
          const second = issuedSecretIn(rotatedPage.body);
          ctx.expectHealthy(rotatedPage.status === 200 && second !== undefined && second !== first, `B rotating its own key in the console: status ${rotatedPage.status}, a new secret shown: ${second !== undefined && second !== first}`);
          const revoked = await b.post(`/console/keys/${ownId}/revoke`, {});
          ctx.expectHealthy(revoked.status === 303, `B revoking its own key in the console: status ${revoked.status}, expected 303`);
          const dead = await setup.send({ label: "B's console-made key", tenant: "B", key: second ?? first }, "GET", "/v1/limits");
          ctx.expectHealthy(dead.status === 401, `B's console-made key after its console revocation: status ${dead.status}, expected 401`);
        }
      } finally {
        await setup.send(ctx.parties.admin, "DELETE", `/v1/admin/tenants/${ctx.a.id}/keys/${spareKey.id}`);
        await setup.send(ctx.parties.a, "DELETE", `/v1/documents/${spareDoc.id}`);
        await revokeKeysOfB(ctx, setup, madeByB);
      }
    },
  },
  {
    // Proves B's console finds, answers and shows only B's data (I3, I4, I6): the title search for
    // A's titles (whole and in fragments), A's canaries, A's job titles and LIKE wildcards lists none
    // of A's documents, while B's own title finds B's document; Ask (whole page and streamed) on A's
    // canaries, title and secrets answers from B's documents only; the overview shows B's usage (B's
    // usage canary) and the keys page B's keys — never A's usage canary, A's key ids or A's ids,
    // also with A's tenant id smuggled in the query and headers. The questions carry A's canaries
    // and are forgiven as reflections in their own exchange only. With every lock off the search,
    // overview and keys pages leak; Ask stays behind the assembly assertion, which aborts it (the
    // 500 page, or the stream's `error` event), and an answer from A's chunks would be a leak (as
    // it is once the assertion is off too, mode 5). The documents page also lists the tenant's
    // recent upload jobs, so with every lock off A's job titles come with every search.
    name: "B's console finds A's documents by title and asks for A's canaries",
    path: "GET /console/documents?q, POST /console/ask[/stream], GET /console/overview, /console/keys",
    kind: "attack",
    variants: EXTRACTIVE_ONLY,
    async run(ctx) {
      const b = await openConsole(ctx, ctx.parties.b);
      if (!b) return;
      const words = (title: string) => title.split(/\s+/).filter((w) => w.length >= 4);
      const fragments = new Set<string>([
        ...ctx.a.documents.flatMap((d) => [d.title, d.title.slice(0, 12), ...words(d.title), d.canary, d.metadataCanary]),
        ...(ctx.a.jobs?.jobs ?? []).flatMap((j) => [j.title, j.canary]),
        "CANARY-ACME",
        "%",
        "_",
        "'",
      ]);
      for (const q of fragments) {
        const page = await b.get(`/console/documents?q=${encodeURIComponent(q)}`);
        ctx.expect(page.status === 200, `B's console finding "${q}": status ${page.status}, expected 200`);
      }
      const own = ctx.b.documents[0]!;
      const found = await b.get(`/console/documents?q=${encodeURIComponent(own.title)}`);
      ctx.expectHealthy(found.body.includes(own.id), `B's console finding B's own title "${own.title}" does not list it (status ${found.status})`);

      const questions = [
        ...ctx.a.documents.map((d) => `What is ${d.canary}?`),
        `Summarise the document "${ctx.a.documents[0]!.title}".`,
        ...ctx.a.corpus.secrets.map((s) => `Where is ${s} used?`),
        "What is the CFO's base salary?",
      ];
      // Multipart, not urlencoded: the detector forgives what a request sent only in the text it
      // recorded, and a urlencoded body records A's title as "Acme+board+…", so the page echoing
      // B's own question would count as a leak.
      for (const question of questions) {
        const reply = await b.post("/console/ask", { question }, { multipart: true });
        ctx.expect(reply.status === 200 || isAssertionPage(reply), `B's console asking "${question.slice(0, 50)}": status ${reply.status}, expected 200 (or the assertion's 500 page)`);
        ctx.expectHealthy(reply.status === 200, `B's console asking "${question.slice(0, 50)}": status ${reply.status}, expected 200`);
      }
      for (const question of [questions[0]!, questions.at(-1)!]) {
        const reply = await b.post("/console/ask/stream", { question }, { csrf: null, multipart: true, headers: { "x-csrf-token": b.csrf, accept: "text/event-stream" } });
        const events = reply.status === 200 ? parseSse(reply.body) : [];
        const error = events.find((e) => e.event === "error");
        const aborted = isAssertionPage(reply) || (error?.data.includes("failed the tenant ownership check") ?? false);
        ctx.expect((reply.status === 200 && (!error || aborted)) || aborted, `B's console streaming "${question.slice(0, 50)}": status ${reply.status}, error event ${error?.data.slice(0, 120) ?? "none"}`);
        ctx.expectHealthy(events.some((e) => e.event === "done") && !error, `B's console streaming "${question.slice(0, 50)}": status ${reply.status}, no done event or an error`);
      }

      const { headers, query } = smuggled(ctx);
      for (const path of ["/console/overview", `/console/overview?${query}`, "/console/keys", `/console/keys?${query}`]) {
        const page = await b.get(path, path.includes("?") ? headers : {});
        ctx.expect(page.status === 200, `B GET ${path.slice(0, 40)}: status ${page.status}, expected 200`);
        const shows = path.startsWith("/console/overview") ? ctx.b.usageCanary!.model : `/console/keys/${ctx.b.keyId}/rotate`;
        ctx.expectHealthy(page.body.includes(shows), `B GET ${path.slice(0, 40)} does not show B's own ${path.startsWith("/console/overview") ? "usage canary" : "key"}: the page proves nothing`);
      }
    },
  },
  {
    // Proves every console form needs the session's own CSRF token, in the form's own encoding or
    // in the header script sends (a lock no mutation removes, so blocked in every mode): with B's
    // session cookie, a post with no token, A's session's token, the token of an older session of
    // B's, a made-up token, an older token in the header, a wrong header beside B's right field
    // (the header is the one checked), and B's right token in a text/plain or JSON body (what a
    // cross-site form or a script of another origin can send) each get the 403 "nothing was done"
    // page — on deleting B's document, issuing a key, rotating and revoking a key of B's, asking
    // (whole and streamed) and uploading. Afterwards, by ground truth: B's data version, audit
    // trail and metered usage are unchanged, the document is there, no upload was queued. Then
    // B's own token deletes the document (303): the refusals were the token, not a broken form.
    name: "cross-site form posts to the console",
    path: "POST /console/documents/:id/delete|upload, /console/keys[/:id/…], /console/ask[/stream]",
    kind: "attack",
    variants: EXTRACTIVE_ONLY,
    async run(ctx) {
      const older = await openConsole(ctx, ctx.parties.b);
      const victimOfA = await openConsole(ctx, ctx.parties.a);
      const b = await openConsole(ctx, ctx.parties.b);
      if (!older || !victimOfA || !b) return;
      ctx.expectHealthy(older.csrf !== b.csrf, "two sign-ins of B got the same CSRF token");
      const setup = unrecorded(ctx);
      const tag = randomBytes(6).toString("hex");
      const target = await uploadAs(setup, ctx.parties.b, `Globex console target ${tag}`, `A note of Globex ${tag} that only B's own form may delete.`);
      const issued = await setup.send(ctx.parties.admin, "POST", `/v1/admin/tenants/${ctx.b.id}/keys`, { json: { name: `eval-console-csrf-${tag}`, scopes: ["read"] } });
      if (issued.status !== 201) throw new Error(`setup: issuing B a key: ${issued.status} ${issued.body.slice(0, 200)}`);
      const keyOfB = issued.json as IssuedKeyJson;
      const uploadTitle = `console csrf upload ${tag}`;
      try {
        const window = { from: new Date(Date.now() - 60_000).toISOString(), to: new Date(Date.now() + 3_600_000).toISOString() };
        const before = {
          version: await ctx.dataVersion("B"),
          trail: await newestEventsOf(ctx, setup, ctx.b.id),
          usage: (await ctx.usageTruth("B", window.from, window.to)).totals.events,
        };
        const forms: { path: string; fields: Record<string, string>; multipart?: boolean }[] = [
          { path: `/console/documents/${target.id}/delete`, fields: {} },
          { path: "/console/keys", fields: { name: `eval-console-forged-${tag}`, scopes: "owner" } },
          { path: `/console/keys/${keyOfB.id}/rotate`, fields: {} },
          { path: `/console/keys/${keyOfB.id}/revoke`, fields: {} },
          { path: "/console/ask", fields: { question: "How do we roll back a deploy?" } },
          { path: "/console/ask/stream", fields: { question: "How do we roll back a deploy?" } },
          { path: "/console/documents/upload", fields: { title: uploadTitle }, multipart: true },
        ];
        const madeUp = randomBytes(24).toString("base64url");
        const tries: { label: string; send: (path: string, fields: Record<string, string>, multipart: boolean) => Promise<Reply> }[] = [
          { label: "no token", send: (p, f, m) => b.post(p, f, { csrf: null, multipart: m }) },
          { label: "A's session's token", send: (p, f, m) => b.post(p, f, { csrf: victimOfA.csrf, multipart: m }) },
          { label: "B's older session's token", send: (p, f, m) => b.post(p, f, { csrf: older.csrf, multipart: m }) },
          { label: "a made-up token", send: (p, f, m) => b.post(p, f, { csrf: madeUp, multipart: m }) },
          { label: "B's older token in the header", send: (p, f, m) => b.post(p, f, { csrf: null, multipart: m, headers: { "x-csrf-token": older.csrf } }) },
          { label: "a made-up header beside B's own field", send: (p, f, m) => b.post(p, f, { multipart: m, headers: { "x-csrf-token": madeUp } }) },
          { label: "an empty header beside B's own field", send: (p, f, m) => b.post(p, f, { multipart: m, headers: { "x-csrf-token": "" } }) },
          { label: "B's own token in a text/plain body", send: (p, f) => b.postRaw(p, Object.entries({ csrf: b.csrf, ...f }).map(([k, v]) => `${k}=${v}`).join("\n"), "text/plain") },
          { label: "B's own token in a JSON body", send: (p, f) => b.postRaw(p, JSON.stringify({ csrf: b.csrf, ...f }), "application/json") },
        ];
        for (const form of forms) {
          for (const attempt of tries) {
            const reply = await attempt.send(form.path, form.fields, form.multipart ?? false);
            ctx.expect(isRefusedForm(reply), `POST ${form.path} with ${attempt.label}: status ${reply.status}, expected the 403 "nothing was done" page`);
          }
        }

        const after = {
          version: await ctx.dataVersion("B"),
          trail: await newestEventsOf(ctx, setup, ctx.b.id),
          usage: (await ctx.usageTruth("B", window.from, window.to)).totals.events,
        };
        ctx.expect(after.version === before.version, `B's data version went from ${before.version} to ${after.version}: a refused form changed B's documents`);
        ctx.expect(after.trail === before.trail, "B's audit trail changed: a refused form made, rotated or revoked a key");
        ctx.expect(after.usage === before.usage, `B's metered events went from ${before.usage} to ${after.usage}: a refused question was answered`);
        const doc = await setup.send(ctx.parties.b, "GET", `/v1/documents/${target.id}`);
        ctx.expect(doc.status === 200, `B's document after the refused deletes: status ${doc.status}, expected 200`);
        const key = await setup.send({ label: "B's csrf target key", tenant: "B", key: keyOfB.key }, "GET", "/v1/limits");
        ctx.expect(key.status === 200, `B's key after the refused revocations: status ${key.status}, expected 200`);
        const jobs = await setup.send(ctx.parties.b, "GET", "/v1/jobs?limit=100");
        const queued = ((jobs.json as Partial<JobListJson> | undefined)?.jobs ?? []).filter((j) => j.title === uploadTitle);
        ctx.expect(jobs.status === 200 && queued.length === 0, `B's jobs after the refused uploads: status ${jobs.status}, ${queued.length} queued`);

        const deleted = await b.post(`/console/documents/${target.id}/delete`, {});
        ctx.expect(deleted.status === 303, `B's own form with its own token: status ${deleted.status}, expected 303 (the refusals prove nothing if the form never works)`);
      } finally {
        await setup.send(ctx.parties.b, "DELETE", `/v1/documents/${target.id}`);
        await revokeKeysOfB(ctx, setup, [keyOfB.id]);
      }
    },
  },
  {
    // The console's Runs, Settings and Audit pages (the API's GET /v1/runs, /v1/settings and
    // /v1/audit under the session's context). A asks a question naming its canary (unrecorded), so
    // A has a fresh chat run; B's owner session lists its runs under every filter, opens each of A's
    // request ids (each must answer exactly like a made-up one, I6), and reads its settings and audit
    // trail, with A's tenant id smuggled in. A's runs carry A's question, key and document ids, so
    // with every lock off (mode 4) the run list shows them: the detector must see that.
    name: "B's console reads A's runs, settings and audit",
    path: "GET /console/runs, /console/runs/:request_id, /console/settings, /console/audit",
    kind: "attack",
    variants: EXTRACTIVE_ONLY,
    async run(ctx) {
      const owner = await openConsole(ctx, ctx.parties.b);
      if (!owner) return;
      const setup = unrecorded(ctx);
      const asked = await setup.send(ctx.parties.a, "POST", "/v1/chat", { json: { question: `What does the note ${ctx.a.documents[0]!.canary} say?` } });
      const chatRequest = asked.headers["x-request-id"];
      ctx.expectHealthy(asked.status === 200 && chatRequest !== undefined, `setup: A's chat failed (status ${asked.status})`);
      const listed = await setup.send(ctx.parties.a, "GET", "/v1/runs?limit=100");
      const requestIds = [...new Set([chatRequest, ...((listed.json as { runs?: { request_id: string }[] } | undefined)?.runs ?? []).map((r) => r.request_id)])].filter(
        (id): id is string => id !== undefined,
      );
      ctx.expectHealthy(requestIds.length > 1, "setup: A has no runs to aim at");
      // A request id is the client's to choose (x-request-id), so earlier attacks leave B runs of its
      // own under some of A's ids: B's own run is B's to open. Aim at the ids only A has.
      const onlyA: string[] = [];
      for (const id of requestIds) if ((await setup.send(ctx.parties.b, "GET", `/v1/runs/${encodeURIComponent(id)}`)).status === 404) onlyA.push(id);
      ctx.expectHealthy(onlyA.includes(chatRequest!), "setup: A's fresh chat run is also B's");

      const smuggle = `tenant_id=${ctx.a.id}`;
      for (const path of ["/console/runs", "/console/runs?kind=chat", "/console/runs?kind=ingest", "/console/runs?status=refused", `/console/runs?${smuggle}`, "/console/settings", `/console/settings?${smuggle}`, "/console/audit", `/console/audit?${smuggle}`]) {
        const page = await owner.get(path, { "x-tenant-id": ctx.a.id });
        ctx.expect(page.status === 200, `B GET ${path}: status ${page.status}`);
      }
      const missing = await owner.get(`/console/runs/${randomId()}`);
      ctx.expect(missing.status === 404, `B GET /console/runs/<made-up id>: status ${missing.status}, expected 404`);
      for (const id of onlyA) expectLikeMissing(ctx, await owner.get(`/console/runs/${encodeURIComponent(id)}`), missing, `B GET /console/runs/<A's ${id}>`);
    },
  },
];
