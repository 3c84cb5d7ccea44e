import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { countTenantRows, expectError, search, uploadFile } from "../../support/api-contract.js";
import { backends, TestFence, type TestTenant } from "../../support/harness.js";
import { makePdf } from "../../support/make-pdf.js";
import type { IngestedDocumentJson } from "../../support/api-types.js";

describe.each(backends)("multipart uploads on $name", (backend) => {
  let fence: TestFence;
  let tenant: TestTenant;

  beforeAll(async () => {
    fence = await TestFence.start(backend);
    tenant = await fence.createTenant("uploads");
  });
  afterAll(() => fence?.close());

  async function uploadOk(file: { name: string; type: string; content: string | Uint8Array }, fields: Record<string, string> = {}) {
    const res = await uploadFile(fence, tenant.key, file, fields);
    const text = await res.text();
    expect(res.status, text).toBe(201);
    return JSON.parse(text) as IngestedDocumentJson;
  }

  it("stores a .txt file with its form fields and makes it searchable", async () => {
    const content = "Penguins huddle together to survive the Antarctic winter.";
    const doc = await uploadOk(
      { name: "penguins.txt", type: "text/plain", content },
      { title: "Penguin facts", source_id: "zoo/penguins", metadata: JSON.stringify({ shelf: 4 }) },
    );
    expect(doc).toMatchObject({
      title: "Penguin facts",
      media_type: "text/plain",
      byte_size: Buffer.byteLength(content),
      source_id: "zoo/penguins",
      metadata: { shelf: 4 },
      outcome: "created",
    });
    const results = await search(fence, tenant.key, "Antarctic penguins winter");
    expect(results[0]).toMatchObject({ document_id: doc.id, title: "Penguin facts" });
  });

  it("uses the file name as the title when the form has none", async () => {
    const doc = await uploadOk({ name: "notes-on-otters.txt", type: "text/plain", content: "Otters hold hands while sleeping." });
    expect(doc.title).toBe("notes-on-otters.txt");
  });

  it("turns Markdown headings into chunk headings", async () => {
    const md = "# Glaciers\n\nGlaciers carve U-shaped valleys over millennia.\n\n## Deserts\n\nThe Atacama desert receives almost no rainfall.";
    const doc = await uploadOk({ name: "geo.md", type: "text/markdown", content: md });
    expect(doc).toMatchObject({ media_type: "text/markdown", chunk_count: 2 });
    const results = (await search(fence, tenant.key, "Atacama desert rainfall")).filter((r) => r.document_id === doc.id);
    expect(results.find((r) => r.text.includes("Atacama"))?.heading).toBe("Deserts");
    expect(results.find((r) => r.text.includes("U-shaped"))?.heading).toBe("Glaciers");
  });

  it("accepts application/octet-stream when the extension says Markdown", async () => {
    const doc = await uploadOk({ name: "README.md", type: "application/octet-stream", content: "# Setup\n\nRun the installer twice." });
    expect(doc.media_type).toBe("text/markdown");
  });

  it("strips HTML tags and never indexes script or style content", async () => {
    const html = `<!doctype html><html><head><title>t</title>
      <style>.quokka-style { color: red }</style>
      <script>var secretTrackerToken = "xyzzy-plugh";</script></head>
      <body><h1>Quokkas</h1><p>Quokkas are <b>small marsupials</b> living on Rottnest Island.</p></body></html>`;
    const doc = await uploadOk({ name: "quokka.html", type: "text/html", content: html });
    expect(doc.media_type).toBe("text/html");
    const results = (await search(fence, tenant.key, "quokka marsupial island")).filter((r) => r.document_id === doc.id);
    expect(results.length).toBeGreaterThan(0);
    const stored = results.map((r) => r.text).join("\n");
    expect(stored).toContain("small marsupials living on Rottnest Island");
    expect(stored).not.toMatch(/<[a-z/!]/i);
    expect(stored).not.toContain("xyzzy");
    expect(stored).not.toContain("secretTrackerToken");
    expect(stored).not.toContain("color: red");
  });

  it("extracts the text of a PDF and makes it searchable", async () => {
    const pdf = makePdf([
      ["Hedgehog care guide", "Hedgehogs eat beetles, worms and caterpillars."],
      ["Page two: hedgehogs hibernate from November to March."],
    ]);
    const doc = await uploadOk({ name: "hedgehogs.pdf", type: "application/pdf", content: pdf });
    expect(doc).toMatchObject({ media_type: "application/pdf", byte_size: pdf.length });
    const results = (await search(fence, tenant.key, "when do hedgehogs hibernate")).filter((r) => r.document_id === doc.id);
    const stored = results.map((r) => r.text).join("\n");
    expect(stored).toContain("beetles, worms and caterpillars");
    expect(stored).toContain("hibernate from November to March");
  });

  describe("rejections store nothing", () => {
    const nonUtf8 = new Uint8Array([0x48, 0x69, 0x20, 0xff, 0xfe, 0xc3, 0x28, 0x0a]);
    const cases: { name: string; file?: { name: string; type: string; content: string | Uint8Array }; fields?: Record<string, string>; status: number; code: string }[] = [
      { name: "an image (image/png)", file: { name: "photo.png", type: "image/png", content: new Uint8Array([0x89, 0x50, 0x4e, 0x47]) }, status: 415, code: "unsupported_media_type" },
      { name: "an .exe sent as octet-stream", file: { name: "setup.exe", type: "application/octet-stream", content: "MZ\u0090" }, status: 415, code: "unsupported_media_type" },
      { name: "a .md file declared as image/gif", file: { name: "sneaky.md", type: "image/gif", content: "# hi" }, status: 415, code: "unsupported_media_type" },
      { name: "a corrupt PDF", file: { name: "broken.pdf", type: "application/pdf", content: "%PDF-1.4 garbage" }, status: 422, code: "unprocessable_document" },
      { name: "a PDF without the PDF header", file: { name: "fake.pdf", type: "application/pdf", content: "just text" }, status: 422, code: "unprocessable_document" },
      { name: "non-UTF-8 bytes as text/plain", file: { name: "latin.txt", type: "text/plain", content: nonUtf8 }, status: 422, code: "unprocessable_document" },
      { name: "non-UTF-8 bytes as HTML", file: { name: "latin.html", type: "text/html", content: nonUtf8 }, status: 422, code: "unprocessable_document" },
      { name: "an empty file", file: { name: "empty.txt", type: "text/plain", content: "" }, status: 400, code: "validation_error" },
      { name: "a file of only whitespace", file: { name: "blank.txt", type: "text/plain", content: " \n\t\n " }, status: 400, code: "validation_error" },
      { name: "a missing file field", fields: { title: "No file here" }, status: 400, code: "validation_error" },
      { name: "a file field sent as plain text", fields: { file: "I am not a file" }, status: 400, code: "validation_error" },
      { name: "metadata that is not JSON", file: { name: "m.txt", type: "text/plain", content: "meta" }, fields: { metadata: "{oops" }, status: 400, code: "validation_error" },
      { name: "metadata that is a JSON array", file: { name: "m.txt", type: "text/plain", content: "meta" }, fields: { metadata: "[1,2]" }, status: 400, code: "validation_error" },
      { name: "an empty title", file: { name: "t.txt", type: "text/plain", content: "title" }, fields: { title: "   " }, status: 400, code: "validation_error" },
      { name: "a NUL byte in the title", file: { name: "t.txt", type: "text/plain", content: "title" }, fields: { title: "a\u0000b" }, status: 400, code: "validation_error" },
      { name: "a NUL byte in the source_id", file: { name: "t.txt", type: "text/plain", content: "title" }, fields: { source_id: "s\u0000" }, status: 400, code: "validation_error" },
      { name: "metadata with an escaped NUL", file: { name: "m.txt", type: "text/plain", content: "meta" }, fields: { metadata: '{"k":"\\u0000"}' }, status: 400, code: "validation_error" },
    ];

    it.each(cases)("$name → $status $code", async ({ file, fields, status, code }) => {
      const before = await countTenantRows(fence, tenant.id);
      await expectError(await uploadFile(fence, tenant.key, file, fields), status, code);
      expect(await countTenantRows(fence, tenant.id)).toEqual(before);
    });
  });
});
