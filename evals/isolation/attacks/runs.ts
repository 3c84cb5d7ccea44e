import { EXTRACTIVE_ONLY, chat, expectStatus, type Attack, type AttackContext } from "../attack.js";
import type { Party, Reply } from "../exchange.js";
import { expectLikeMissing, smuggled } from "./jobs.js";
import type { ErrorBody, EvalCaseJson, EvalCaseListJson, RunJson, RunListJson } from "../../../test/support/api-types.js";

/**
 * Run records and eval cases (invariants I2, I6): B reads A's runs by request id (A's chats, A's
 * uploads, A's queued jobs as `job:<id>`), lists and pages every run list with every filter, uses
 * A's run ids as cursors and A's request ids as filters, reuses A's request ids as its own
 * x-request-id, and tries to turn A's runs into eval cases of its own. Another tenant's run must
 * answer exactly like a missing one, and lists must come back as if A's runs did not exist.
 *
 * A's runs carry needles the detector knows: A's questions name A's canaries, retrieval and
 * context steps name A's chunk and document ids, every run names A's key id, and a job's runs
 * its job id. So a run of A in any reply to B is a detected leak — which mode 4 must show.
 */

/** A's runs as A sees them, after A has asked about two of its canaries (fresh chat runs). */
interface VictimRuns {
  runs: RunJson[];
  chats: { requestId: string; question: string }[];
}

const FILTERS = ["", "kind=chat", "kind=ingest", "status=succeeded", "status=refused", "status=failed", "prompt_version=grounded-v1"];

function listOf(reply: Reply): RunListJson | undefined {
  const body = reply.json as Partial<RunListJson> | undefined;
  return Array.isArray(body?.runs) ? (body as RunListJson) : undefined;
}

/** Every run a party can list under `filter`, following every cursor. */
async function listEveryRun(ctx: AttackContext, party: Party, filter = "", headers: Record<string, string> = {}): Promise<RunJson[]> {
  const seen: RunJson[] = [];
  let cursor: string | null = null;
  for (let page = 0; page < 100; page++) {
    const params = ["limit=7", filter, cursor && `cursor=${cursor}`].filter(Boolean).join("&");
    const reply = await ctx.http.send(party, "GET", `/v1/runs?${params}`, { headers });
    expectStatus(ctx, reply, [200], `${party.label} GET /v1/runs?${params.slice(0, 60)}`);
    const list = listOf(reply);
    seen.push(...(list?.runs ?? []));
    cursor = list?.next_cursor ?? null;
    if (!cursor) break;
  }
  return seen;
}

/** A asks about two of its own documents, then lists its runs: the targets, read as their owner. */
async function victimRuns(ctx: AttackContext): Promise<VictimRuns> {
  const chats: VictimRuns["chats"] = [];
  for (const doc of ctx.a.documents.slice(0, 2)) {
    const question = `What does the note ${doc.canary} say?`;
    const reply = await chat(ctx, ctx.parties.a, question);
    const requestId = reply.headers["x-request-id"];
    ctx.expectHealthy(reply.status === 200 && requestId !== undefined, `A's chat about ${doc.canary} failed (status ${reply.status})`);
    if (requestId) chats.push({ requestId, question });
  }
  const runs = await listEveryRun(ctx, ctx.parties.a);
  for (const asked of chats) {
    ctx.expectHealthy(
      runs.some((r) => r.request_id === asked.requestId && r.question === asked.question),
      `A's own run ${asked.requestId} is missing from A's run list`,
    );
  }
  ctx.expectHealthy(runs.some((r) => r.kind === "ingest"), "A's uploads are missing from A's run list");
  return { runs, chats };
}

/** A's request ids worth guessing: its chats, its synchronous uploads, and its queued jobs. */
function victimRequestIds(ctx: AttackContext, victim: VictimRuns): string[] {
  const jobs = (ctx.a.jobs?.jobs ?? []).map((j) => `job:${j.id}`);
  return [...new Set([...victim.runs.map((r) => r.request_id), ...jobs])];
}

export const runAttacks: Attack[] = [
  {
    name: "read A's runs by request id",
    path: "GET /v1/runs/:request_id, GET /v1/admin/tenants/:id/runs",
    kind: "attack",
    variants: EXTRACTIVE_ONLY,
    async run(ctx) {
      const { a, b, anon } = ctx.parties;
      const victim = await victimRuns(ctx);
      const missing = await ctx.http.send(b, "GET", `/v1/runs/${crypto.randomUUID()}`);
      expectStatus(ctx, missing, [404], "a random request id");
      const { headers, query } = smuggled(ctx);
      for (const requestId of victimRequestIds(ctx, victim)) {
        for (const [path, extra] of [
          [`/v1/runs/${encodeURIComponent(requestId)}`, {}],
          [`/v1/runs/${requestId}`, {}],
          [`/v1/runs/${encodeURIComponent(requestId)}?${query}`, { headers }],
        ] as const) {
          const reply = await ctx.http.send(b, "GET", path, extra);
          expectStatus(ctx, reply, [404], `get A's run ${requestId}`);
          expectLikeMissing(ctx, reply, missing, `A's run ${requestId} (${path.slice(0, 50)})`);
        }
      }
      for (const suffix of ["%20", "/", "%00", "'%20OR%20'1'%3D'1", "?request_id=" + victim.chats[0]?.requestId, "/../" + victim.chats[0]?.requestId]) {
        const reply = await ctx.http.send(b, "GET", `/v1/runs/${crypto.randomUUID()}${suffix}`);
        ctx.expect(reply.status >= 400 && reply.status < 500, `/v1/runs/…${suffix}: status ${reply.status}, expected 4xx`);
      }
      // The admin's view of A's runs is not for tenant keys, nor for no key at all.
      for (const party of [b, anon]) {
        for (const path of [`/v1/admin/tenants/${ctx.a.id}/runs`, `/v1/admin/tenants/${ctx.a.id}/runs/${victim.chats[0]?.requestId}`]) {
          expectStatus(ctx, await ctx.http.send(party, "GET", path), [401], `${party.label} GET ${path.slice(0, 60)}`);
        }
      }
      // The ids are real: A reads each of its runs (so the 404s above are not "no such run").
      for (const asked of victim.chats) {
        const own = await ctx.http.send(a, "GET", `/v1/runs/${asked.requestId}`);
        ctx.expectHealthy(own.status === 200 && (own.json as RunJson | undefined)?.question === asked.question, `A cannot read its own run ${asked.requestId}`);
      }
    },
  },
  {
    name: "list and page every run list, with A's ids as cursors and filters",
    path: "GET /v1/runs?kind&status&prompt_version&request_id&since&cursor",
    kind: "attack",
    variants: EXTRACTIVE_ONLY,
    async run(ctx) {
      const { b } = ctx.parties;
      const victim = await victimRuns(ctx);
      const victimIds = new Set(victim.runs.map((r) => r.id));
      const victimRequests = new Set(victimRequestIds(ctx, victim));
      const { headers, query } = smuggled(ctx);
      const since = `since=${encodeURIComponent(new Date(Date.now() - 3600_000).toISOString())}`;
      const bSees: RunJson[] = [];
      for (const filter of [...FILTERS, since, query]) bSees.push(...(await listEveryRun(ctx, b, filter, filter === query ? headers : {})));
      const found = bSees.filter((r) => victimIds.has(r.id) || victimRequests.has(r.request_id));
      ctx.expect(found.length === 0, `B's run lists hold ${found.length} of A's runs (${found[0]?.request_id})`);
      // B's lists work: B has runs of its own (its uploads), so an empty list is not what "blocked" means.
      ctx.expect(bSees.some((r) => r.kind === "ingest"), "B's run lists hold none of B's own uploads");

      const randomCursor = await ctx.http.send(b, "GET", `/v1/runs?cursor=${crypto.randomUUID()}`);
      expectStatus(ctx, randomCursor, [400], "a random run id as cursor");
      for (const run of victim.runs.slice(0, 12)) {
        const reply = await ctx.http.send(b, "GET", `/v1/runs?cursor=${run.id}`);
        expectLikeMissing(ctx, reply, randomCursor, `A's run id ${run.id} as cursor`);
      }
      const randomRequest = await ctx.http.send(b, "GET", `/v1/runs?request_id=${crypto.randomUUID()}`);
      for (const requestId of [...victimRequests].slice(0, 12)) {
        const reply = await ctx.http.send(b, "GET", `/v1/runs?request_id=${encodeURIComponent(requestId)}`);
        expectStatus(ctx, reply, [200], `request_id=${requestId}`);
        const list = listOf(reply);
        ctx.expect(list?.runs.length === 0 && list.next_cursor === null, `request_id=${requestId}: ${list?.runs.length} runs listed, expected none`);
        ctx.expect(reply.body === randomRequest.body, `request_id=${requestId}: reply differs from a random request id's`);
      }
    },
  },
  {
    name: "turn A's runs into eval cases",
    path: "POST /v1/evals/cases, GET /v1/evals/cases",
    kind: "attack",
    variants: EXTRACTIVE_ONLY,
    async run(ctx) {
      const { a, b } = ctx.parties;
      const victim = await victimRuns(ctx);
      const aChat = victim.runs.find((r) => r.request_id === victim.chats[0]?.requestId);
      // A's own case (control), so there is one of A's for B to find.
      const aCase = await ctx.http.send(a, "POST", "/v1/evals/cases", {
        json: { request_id: victim.chats[0]?.requestId, expected_document_ids: [ctx.a.documents[0]!.id], must_contain: [ctx.a.documents[0]!.canary] },
      });
      ctx.expectHealthy(aCase.status === 201, `A cannot make an eval case from its own run (status ${aCase.status})`);
      const aCaseId = (aCase.json as EvalCaseJson | undefined)?.id;

      const missing = await ctx.http.send(b, "POST", "/v1/evals/cases", { json: { run_id: crypto.randomUUID() } });
      expectStatus(ctx, missing, [404], "an eval case from a random run id");
      // A request id B has used itself (x-request-id is the client's to choose) names B's own run.
      const bHasRun = async (requestId: string) =>
        (listOf(await ctx.http.send(b, "GET", `/v1/runs?request_id=${encodeURIComponent(requestId)}`))?.runs.length ?? 0) > 0;
      const requestIds = [...victim.runs.slice(0, 8).map((r) => r.request_id), ...(ctx.a.jobs?.jobs ?? []).slice(0, 3).map((j) => `job:${j.id}`)];
      const targets: Record<string, string>[] = aChat ? [{ run_id: aChat.id }] : [];
      for (const requestId of requestIds) if (!(await bHasRun(requestId))) targets.push({ request_id: requestId });
      const { headers, query } = smuggled(ctx);
      for (const target of targets) {
        for (const [path, extra] of [
          ["/v1/evals/cases", {}],
          [`/v1/evals/cases?${query}`, { headers }],
        ] as const) {
          const reply = await ctx.http.send(b, "POST", path, { json: { ...target, tenant_id: ctx.a.id }, ...extra });
          expectStatus(ctx, reply, [404], `eval case from A's run ${JSON.stringify(target)}`);
          expectLikeMissing(ctx, reply, missing, `eval case from A's run ${JSON.stringify(target)}`);
        }
      }
      // On B's own run, A's documents as the expected citations are refused like made-up ids.
      const own = await chat(ctx, b, "How do we roll back a deploy?");
      const ownRequest = own.headers["x-request-id"];
      const unknownDocs = await ctx.http.send(b, "POST", "/v1/evals/cases", {
        json: { request_id: ownRequest, expected_document_ids: [crypto.randomUUID()] },
      });
      expectStatus(ctx, unknownDocs, [400], "B's case naming a random document");
      for (const doc of ctx.a.documents.slice(0, 3)) {
        const reply = await ctx.http.send(b, "POST", "/v1/evals/cases", { json: { request_id: ownRequest, expected_document_ids: [doc.id] } });
        expectStatus(ctx, reply, [400], `B's case naming A's document ${doc.id}`);
        const code = (r: Reply) => (r.json as Partial<ErrorBody> | undefined)?.error?.code;
        ctx.expect(code(reply) === code(unknownDocs), `B's case naming A's document ${doc.id}: ${code(reply)}, unlike a made-up id's ${code(unknownDocs)}`);
      }
      // B's cases are B's alone: A's case is in no list of B's, and B's work on B's own run.
      const bCase = await ctx.http.send(b, "POST", "/v1/evals/cases", { json: { request_id: ownRequest, must_contain: ["roll back"] } });
      expectStatus(ctx, bCase, [201], "B's case from its own run");
      const bCases = await ctx.http.send(b, "GET", "/v1/evals/cases?limit=100");
      expectStatus(ctx, bCases, [200], "B lists its eval cases");
      const listed = ((bCases.json as Partial<EvalCaseListJson> | undefined)?.cases ?? []).map((c) => c.id);
      ctx.expect(aCaseId === undefined || !listed.includes(aCaseId), "B's eval cases include A's");
      ctx.expect(listed.includes((bCase.json as EvalCaseJson | undefined)?.id ?? "-"), "B's own eval case is missing from its list");
      if (aCaseId) {
        const cursor = await ctx.http.send(b, "GET", `/v1/evals/cases?cursor=${aCaseId}`);
        const random = await ctx.http.send(b, "GET", `/v1/evals/cases?cursor=${crypto.randomUUID()}`);
        expectLikeMissing(ctx, cursor, random, "A's eval case id as cursor");
      }
      const aCases = await ctx.http.send(a, "GET", "/v1/evals/cases?limit=100");
      const aListed = ((aCases.json as Partial<EvalCaseListJson> | undefined)?.cases ?? []).map((c) => c.source_run_id);
      ctx.expectHealthy(aListed.length === 1 && aListed[0] === aChat?.id, `A's eval cases changed: ${JSON.stringify(aListed)}`);
    },
  },
  {
    name: "B reuses A's request ids as its own x-request-id",
    path: "POST /v1/chat x-request-id, GET /v1/runs/:request_id",
    kind: "attack",
    variants: EXTRACTIVE_ONLY,
    async run(ctx) {
      const { a, b } = ctx.parties;
      const victim = await victimRuns(ctx);
      for (const asked of victim.chats) {
        const question = `Globex question under a borrowed request id ${crypto.randomUUID().slice(0, 8)}: how do we roll back a deploy?`;
        const sent = await ctx.http.send(b, "POST", "/v1/chat", { json: { question }, headers: { "x-request-id": asked.requestId } });
        expectStatus(ctx, sent, [200], "B's chat under A's request id");
        // B reads B's own run under that id — never A's.
        const mine = await ctx.http.send(b, "GET", `/v1/runs/${asked.requestId}`);
        expectStatus(ctx, mine, [200], "B reads its run under A's request id");
        ctx.expect((mine.json as RunJson | undefined)?.question === question, `B's run under A's request id ${asked.requestId} is not B's own`);
        const listed = listOf(await ctx.http.send(b, "GET", `/v1/runs?request_id=${asked.requestId}&limit=100`));
        ctx.expect(listed?.runs.length === 1 && listed.runs[0]!.question === question, `B's list under A's request id holds ${listed?.runs.length} runs`);
        // A's run under the same id is still A's, and A does not see B's.
        const theirs = await ctx.http.send(a, "GET", `/v1/runs/${asked.requestId}`);
        ctx.expectHealthy((theirs.json as RunJson | undefined)?.question === asked.question, `A's run ${asked.requestId} now reads as someone else's`);
        const aListed = listOf(await ctx.http.send(a, "GET", `/v1/runs?request_id=${asked.requestId}&limit=100`));
        ctx.expectHealthy(aListed?.runs.length === 1, `A's list under its request id holds ${aListed?.runs.length} runs (B's run among them?)`);
      }
    },
  },
];
