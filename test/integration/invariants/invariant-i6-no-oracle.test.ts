import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { backends, TestFence, type TestTenant } from "../../support/harness.js";
import type { DocumentJson, ErrorBody } from "../../support/api-types.js";

/**
 * Invariant I6: another tenant's resource answers exactly like a missing one. B cannot tell A's
 * document id from a random UUID or from a malformed id by status, error code, message or headers.
 */
interface Observed {
  status: number;
  contentType: string | null;
  body: Omit<ErrorBody["error"], "request_id">;
  requestIdMatchesHeader: boolean;
}

describe.each(backends)("I6 no oracle on $name", (backend) => {
  let fence: TestFence;
  let a: TestTenant;
  let b: TestTenant;
  let aDocId: string;

  beforeAll(async () => {
    fence = await TestFence.start(backend);
    a = await fence.createTenant("i6-a");
    b = await fence.createTenant("i6-b");
    aDocId = (await fence.upload(a, { title: "A's plan", text: "A's confidential five-year plan." })).id;
    await fence.upload(b, { title: "B's notes", text: "B's own notes." });
  });
  afterAll(() => fence?.close());

  async function observe(method: "GET" | "DELETE", id: string): Promise<Observed> {
    const res = await fence.request(method, `/v1/documents/${id}`, { key: b.key });
    const { error } = (await res.json()) as ErrorBody;
    const { request_id, ...rest } = error;
    return {
      status: res.status,
      contentType: res.headers.get("content-type"),
      body: rest,
      requestIdMatchesHeader: request_id === res.headers.get("x-request-id"),
    };
  }

  for (const method of ["GET", "DELETE"] as const) {
    it(`${method} of A's document id is indistinguishable from a missing or malformed id`, async () => {
      const foreign = await observe(method, aDocId);
      const missing = await observe(method, randomUUID());
      const malformed = await observe(method, "not-a-uuid");
      const upperCased = await observe(method, aDocId.toUpperCase());

      expect(foreign.status).toBe(404);
      expect(foreign.body.code).toBe("not_found");
      expect(foreign.requestIdMatchesHeader).toBe(true);
      expect(missing).toEqual(foreign);
      expect(malformed).toEqual(foreign);
      expect(upperCased).toEqual(foreign);
    });
  }

  it("B's DELETE attempt left A's document in place, and A still reads it", async () => {
    const res = await fence.request("GET", `/v1/documents/${aDocId}`, { key: a.key });
    expect(res.status).toBe(200);
    expect(((await res.json()) as DocumentJson).id).toBe(aDocId);
  });

  it("a deleted document of one's own answers the same 404 as well", async () => {
    const own = await fence.upload(b, { title: "Temp", text: "Temporary note." });
    expect((await fence.request("DELETE", `/v1/documents/${own.id}`, { key: b.key })).status).toBe(204);
    expect(await observe("GET", own.id)).toEqual(await observe("GET", aDocId));
  });
});
