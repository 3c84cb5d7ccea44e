import { BOTH_VARIANTS, chat, documentIdsIn, EXTRACTIVE_ONLY, expectVictimDocumentIntact, search, type Attack } from "../attack.js";

/**
 * Controls: the rightful owners still get their data. Without them, "0 leaks" could just mean
 * "search is broken" — a lock that blocks everyone blocks attackers too. Their replies are
 * scanned like any other (A must not receive B's needles either).
 */
export const openingControls: Attack[] = [
  {
    name: "owners find their own documents",
    path: "POST /v1/search",
    kind: "control",
    variants: EXTRACTIVE_ONLY,
    async run(ctx) {
      for (const [party, tenant] of [[ctx.parties.a, ctx.a], [ctx.parties.b, ctx.b]] as const) {
        for (const doc of tenant.documents) {
          const reply = await search(ctx, party, doc.canary);
          ctx.expectHealthy(documentIdsIn(reply)[0] === doc.id, `${party.label}'s search for ${doc.canary} does not rank ${doc.sourceId} first (status ${reply.status})`);
        }
      }
    },
  },
  {
    name: "owners get grounded answers",
    path: "POST /v1/chat (+SSE)",
    kind: "control",
    variants: BOTH_VARIANTS,
    async run(ctx) {
      const asks = [
        [ctx.parties.a, ctx.a, "What is the CFO's base salary?"],
        [ctx.parties.b, ctx.b, "How do we roll back a deploy?"],
      ] as const;
      for (const [party, tenant, question] of asks) {
        for (const stream of [false, true]) {
          const reply = await chat(ctx, party, question, stream);
          const cites = tenant.documents.some((d) => reply.body.includes(d.id));
          ctx.expectHealthy(reply.status === 200 && cites, `${party.label}'s answer (stream=${stream}) cites none of its documents (status ${reply.status})`);
        }
      }
    },
  },
];

export const closingControls: Attack[] = [
  {
    name: "A's corpus intact after all attacks",
    path: "GET /v1/documents, POST /v1/search",
    kind: "control",
    variants: EXTRACTIVE_ONLY,
    async run(ctx) {
      const list = await ctx.http.send(ctx.parties.a, "GET", "/v1/documents?limit=100");
      const listed = documentIdsIn(list);
      for (const doc of ctx.a.documents) ctx.expectHealthy(listed.includes(doc.id), `A's ${doc.sourceId} is missing from A's list`);
      for (let i = 0; i < ctx.a.documents.length; i++) await expectVictimDocumentIntact(ctx, i);
    },
  },
];
