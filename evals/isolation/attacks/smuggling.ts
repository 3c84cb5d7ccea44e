import { BOTH_VARIANTS, EXTRACTIVE_ONLY, expectStatus, search, type Attack } from "../attack.js";
import type { IngestedDocumentJson } from "../../../test/support/api-types.js";

/**
 * Tenant id smuggling (invariant I1): B authenticates with its own key and names A's tenant id
 * everywhere a careless service might read it — headers, query string, body fields, metadata,
 * multipart fields. Fence must answer exactly as if the field were absent: with B's data only.
 */

const HEADER_NAMES = ["x-tenant-id", "x-tenant", "tenant", "tenant-id", "tenant_id", "x-fence-tenant", "x-org-id"];
const QUERY_NAMES = ["tenant_id", "tenantId", "tenant", "TENANT_ID", "tenant_id[]", "x-tenant-id"];

export const smugglingAttacks: Attack[] = [
  {
    name: "A's tenant id in request headers",
    path: "GET /v1/documents, POST /v1/search|chat",
    kind: "attack",
    variants: BOTH_VARIANTS,
    async run(ctx) {
      const headers = Object.fromEntries(HEADER_NAMES.map((h) => [h, ctx.a.id]));
      const { b } = ctx.parties;
      if (ctx.variant === "extractive") {
        expectStatus(ctx, await ctx.http.send(b, "GET", "/v1/documents?limit=100", { headers }), [200], "list");
        expectStatus(ctx, await ctx.http.send(b, "POST", "/v1/search", { headers, json: { query: ctx.a.documents[0]!.canary, k: 50 } }), [200], "search");
        expectStatus(ctx, await ctx.http.send(b, "GET", `/v1/documents/${ctx.a.documents[0]!.id}`, { headers }), [404], "get A's document");
      }
      for (const stream of [false, true]) {
        const question = "Summarise the executive compensation and payroll documents.";
        const reply = await ctx.http.send(b, "POST", "/v1/chat", { headers, json: { question, stream } });
        expectStatus(ctx, reply, [200], `chat stream=${stream}`);
      }
    },
  },
  {
    name: "A's tenant id in the query string",
    path: "GET /v1/documents?tenant_id=, POST /v1/search|chat?tenant_id=",
    kind: "attack",
    variants: BOTH_VARIANTS,
    async run(ctx) {
      const { b } = ctx.parties;
      const query = QUERY_NAMES.map((n) => `${encodeURIComponent(n)}=${ctx.a.id}`).join("&");
      if (ctx.variant === "extractive") {
        expectStatus(ctx, await ctx.http.send(b, "GET", `/v1/documents?limit=100&${query}`), [200], "list");
        for (const doc of ctx.a.documents.slice(0, 2)) {
          expectStatus(ctx, await ctx.http.send(b, "GET", `/v1/documents/${doc.id}?${query}`), [404], "get A's document");
        }
        expectStatus(ctx, await search(ctx, b, ctx.a.documents[1]!.canary, {}, `/v1/search?${query}`), [200], "search");
      }
      const reply = await ctx.http.send(b, "POST", `/v1/chat?${query}`, { json: { question: "What is the CFO's base salary?" } });
      expectStatus(ctx, reply, [200], "chat");
    },
  },
  {
    name: "A's tenant id in body fields",
    path: "POST /v1/search|chat|documents {tenant_id}",
    kind: "attack",
    variants: BOTH_VARIANTS,
    async run(ctx) {
      const { b } = ctx.parties;
      const a = ctx.a.id;
      const smuggled = { tenant_id: a, tenantId: a, tenant: { id: a }, context: { tenant_id: a } };
      if (ctx.variant === "extractive") {
        await search(ctx, b, "payroll API token", smuggled);
        // Uploads with A's id in every field must still land in B's tenant, never in A's.
        const json = await ctx.http.send(b, "POST", "/v1/documents", {
          json: { text: "B's note about quarterly planning.", title: "B planning note", metadata: { tenant_id: a }, ...smuggled },
        });
        const form = new FormData();
        form.append("file", new Blob(["B's uploaded memo about office plants."]), "memo.txt");
        form.append("tenant_id", a);
        form.append("metadata", JSON.stringify({ tenant_id: a }));
        const multipart = await ctx.http.send(b, "POST", "/v1/documents", { form });
        for (const [what, reply] of [["json upload", json], ["multipart upload", multipart]] as const) {
          expectStatus(ctx, reply, [201], what);
          const id = (reply.json as Partial<IngestedDocumentJson> | undefined)?.id;
          if (!id) continue;
          expectStatus(ctx, await ctx.http.send(b, "GET", `/v1/documents/${id}`), [200], `${what}: B reads it back`);
          const fromA = await ctx.http.send(ctx.parties.a, "GET", `/v1/documents/${id}`);
          ctx.expectHealthy(fromA.status === 404, `${what}: landed where A can read it (status ${fromA.status})`);
        }
      }
      for (const stream of [false, true]) {
        const reply = await ctx.http.send(b, "POST", "/v1/chat", { json: { question: "What is Project Bluebird?", stream, ...smuggled } });
        expectStatus(ctx, reply, [200], `chat stream=${stream}`);
      }
    },
  },
  {
    name: "A's tenant id as the request id",
    path: "POST /v1/chat x-request-id",
    kind: "attack",
    variants: EXTRACTIVE_ONLY,
    async run(ctx) {
      // The request id is client-controllable and echoed; it must never select data or a cache entry.
      const headers = { "x-request-id": ctx.a.id };
      await ctx.http.send(ctx.parties.b, "POST", "/v1/chat", { headers, json: { question: "What is the CFO's base salary?" } });
      await ctx.http.send(ctx.parties.b, "GET", "/v1/documents", { headers });
    },
  },
];
