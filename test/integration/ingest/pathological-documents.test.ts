import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { backends, TestFence, type TestTenant } from "../../support/harness.js";
import { CheapEmbeddings } from "../../support/cheap-embeddings.js";
import { waitForJob } from "../../support/job-helpers.js";
import { makeCompressionBombPdf } from "../../support/make-pdf.js";
import type { ErrorBody, JobJson, JobListJson } from "../../support/api-types.js";

/** Generous: each input took seconds to hours on the old code; none may take this long now. */
const BUDGET_MS = 5_000;
const MAX_TEXT_CHARS = 300_000;

interface Pathological {
  label: string;
  body: () => { json: unknown } | { form: FormData };
  path?: string;
}

const file = (content: string | Uint8Array, name: string, type: string) => {
  const form = new FormData();
  form.append("file", new File([content], name, { type }));
  return { form };
};

/** Generated hostile documents (issue 14, "fuzz suite gains generated pathological documents"). */
function pathologicalDocuments(): Pathological[] {
  const spaces = (n: number) => " ".repeat(n);
  return [
    { label: "heading `# a` + 20,000 spaces + `x`", body: () => ({ json: { text: `# a${spaces(20_000)}x\n\nA body.` } }) },
    { label: "200,000 spaces not followed by a line end", body: () => ({ json: { text: `a${spaces(200_000)}x` } }) },
    { label: "a run of 200,000 #", body: () => ({ json: { text: "#".repeat(200_000) } }) },
    { label: "`# ` + a run of #s and spaces", body: () => ({ json: { text: `# ${"# ".repeat(50_000)}x\n\nbody` } }) },
    { label: "a 100 KB heading over one short paragraph", body: () => ({ json: { text: `# ${"Heading ".repeat(12_500)}\n\nShort.` } }) },
    { label: "a huge single line over the text limit", body: () => ({ json: { text: "w".repeat(MAX_TEXT_CHARS + 50_000) } }) },
    { label: "a huge single line of words within the limit", body: () => ({ json: { text: "word ".repeat(50_000) } }) },
    { label: "50,000 headings without paragraphs", body: () => ({ json: { text: "# x\n".repeat(50_000) } }) },
    { label: "100,000 tiny paragraphs", body: () => ({ json: { text: "a\n\n".repeat(100_000) } }) },
    { label: "2,000 nested <div>s", body: () => file(`${"<div>".repeat(2_000)}deep${"</div>".repeat(2_000)}`, "deep.html", "text/html") },
    { label: "100,000 nested <span>s", body: () => file(`${"<span>".repeat(100_000)}x`, "deeper.html", "text/html") },
    { label: "a FlateDecode bomb inflating to 20 MB", body: () => file(makeCompressionBombPdf(), "bomb.pdf", "application/pdf") },
    {
      label: "2,000 one-byte parts",
      path: "/v1/documents/batch",
      body: () => {
        const form = new FormData();
        for (let i = 0; i < 2_000; i++) form.append("file", new File(["x"], `f${i}.txt`, { type: "text/plain" }));
        return { form };
      },
    },
  ];
}

describe.each(backends)("pathological documents on $name", (backend) => {
  let fence: TestFence;
  let tenant: TestTenant;

  beforeAll(async () => {
    fence = await TestFence.start(backend, { embeddings: new CheapEmbeddings(), env: { FENCE_MAX_TEXT_CHARS: String(MAX_TEXT_CHARS) } });
    tenant = await fence.createTenant("hostile", "enterprise");
  });
  afterAll(async () => {
    await fence?.close();
  });

  const jobCount = async () => ((await (await fence.request("GET", "/v1/jobs", { key: tenant.key })).json()) as JobListJson).jobs.length;

  async function send(doc: Pathological, headers: Record<string, string> = {}): Promise<Response> {
    const body = doc.body();
    return "json" in body
      ? fence.request("POST", doc.path ?? "/v1/documents", { key: tenant.key, json: body.json, headers })
      : fence.request("POST", doc.path ?? "/v1/documents", { key: tenant.key, body: body.form, headers });
  }

  it.each(pathologicalDocuments())("answers $label with 2xx/4xx within the budget, and keeps serving", async (doc) => {
    const started = performance.now();
    const res = await send(doc);
    const text = await res.text();
    const elapsed = performance.now() - started;
    expect(res.status, text.slice(0, 300)).toBeLessThan(500);
    expect(elapsed).toBeLessThan(BUDGET_MS);
    const normal = await fence.request("POST", "/v1/documents", { key: tenant.key, json: { text: `A normal note after ${doc.label}.` } });
    expect(normal.status).toBe(201);
  });

  it("refuses the specific bombs with the specific codes", async () => {
    const [deep, bomb] = ["2,000 nested <div>s", "a FlateDecode bomb inflating to 20 MB"].map((label) => pathologicalDocuments().find((d) => d.label === label)!);
    const deepRes = await send(deep!);
    expect(deepRes.status).toBe(422);
    expect(((await deepRes.json()) as ErrorBody).error.code).toBe("unprocessable_document");
    expect((await send(bomb!)).status).toBe(413);
  });

  it("refuses a JSON text over the text limit at the door (413), queued or not, and queues nothing", async () => {
    const jobsBefore = await jobCount();
    for (const headers of [{}, { prefer: "respond-async" }] as Record<string, string>[]) {
      const res = await fence.request("POST", "/v1/documents", { key: tenant.key, json: { text: "w ".repeat(MAX_TEXT_CHARS) }, headers });
      expect(res.status).toBe(413);
      const body = (await res.json()) as ErrorBody;
      expect(body.error).toMatchObject({ code: "payload_too_large" });
      expect(body.error.message).toContain(`${MAX_TEXT_CHARS} characters`);
    }
    // In a batch, beside a short document; and any other field that long is refused the same way, by name.
    const batch = await fence.request("POST", "/v1/documents/batch", { key: tenant.key, json: { documents: [{ text: "Short." }, { text: "w ".repeat(MAX_TEXT_CHARS) }] } });
    expect(batch.status).toBe(413);
    expect(((await batch.json()) as ErrorBody).error.message).toContain(`text exceeds the limit of ${MAX_TEXT_CHARS} characters`);
    const title = await fence.request("POST", "/v1/documents", { key: tenant.key, json: { text: "Short.", title: "t".repeat(MAX_TEXT_CHARS + 1) } });
    expect(title.status).toBe(413);
    expect(((await title.json()) as ErrorBody).error.message).toBe(`The field title exceeds the limit of ${MAX_TEXT_CHARS} characters.`);
    const jobsAfter = await jobCount();
    expect(jobsAfter).toBe(jobsBefore);
  });

  it("refuses a text file over the text limit at the door (413), alone or in a batch, queued or not, and queues nothing", async () => {
    const jobsBefore = await jobCount();
    // Two bytes per character: 1.2 MB holds 600,000 characters, twice the limit, under three bytes each.
    const tooLong = "é".repeat(2 * MAX_TEXT_CHARS);
    for (const [path, headers] of [
      ["/v1/documents", {}],
      ["/v1/documents", { prefer: "respond-async" }],
      ["/v1/documents/batch", {}],
    ] as [string, Record<string, string>][]) {
      const form = new FormData();
      if (path.endsWith("/batch")) form.append("file", new File(["A short note."], "short.txt", { type: "text/plain" }));
      form.append("file", new File([tooLong], "long.md", { type: "text/markdown" }));
      const res = await fence.request("POST", path, { key: tenant.key, body: form, headers });
      expect(res.status, path).toBe(413);
      expect(((await res.json()) as ErrorBody).error.message).toContain(`${MAX_TEXT_CHARS} characters`);
    }
    const jobsAfter = await jobCount();
    expect(jobsAfter).toBe(jobsBefore);
    // At the limit, in two-byte characters, a file is taken.
    const atLimit = new FormData();
    atLimit.append("file", new File([`${"é".repeat(MAX_TEXT_CHARS / 2 - 1)} ${"é".repeat(MAX_TEXT_CHARS / 2)}`], "full.txt", { type: "text/plain" }));
    const res = await fence.request("POST", "/v1/documents", { key: tenant.key, body: atLimit, headers: { prefer: "respond-async" } });
    expect(res.status).toBe(202);
  });

  it("fails a queued deep-HTML upload as unprocessable_document after exactly one attempt", async () => {
    const deep = pathologicalDocuments().find((d) => d.label === "2,000 nested <div>s")!;
    const res = await send(deep, { prefer: "respond-async" });
    expect(res.status).toBe(202);
    const { id } = (await res.json()) as JobJson;
    const job = await waitForJob(async (path) => fence.request("GET", path, { key: tenant.key }), id);
    expect(job).toMatchObject({ status: "failed", attempts: 1, error: { code: "unprocessable_document" } });
  });
});
