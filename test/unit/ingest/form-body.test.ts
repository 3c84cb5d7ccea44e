import { describe, expect, it } from "vitest";
import { parseFormBody, toFormData } from "../../../src/ingest/form-body.js";

describe("form bodies across a thread", () => {
  it("turns a form into plain entries and back into a FormData of strings and Files", async () => {
    const form = new FormData();
    form.append("file", new File(["# Notes\n\nLunch at noon."], "notes.md", { type: "text/markdown" }));
    form.append("file", new File(["second"], "b.txt", { type: "text/plain" }));
    form.append("title", "Team notes");
    const request = new Request("http://fence.test/", { method: "POST", body: form });
    // The media type's case does not matter, as to Hono's own form parser.
    const contentType = request.headers.get("content-type")!.replace("multipart/form-data", "Multipart/Form-Data");
    const outcome = await parseFormBody(new Uint8Array(await request.arrayBuffer()), contentType);
    if (outcome.kind !== "parsed") throw new Error(outcome.message);

    const rebuilt = toFormData(outcome.entries);
    expect(rebuilt.get("title")).toBe("Team notes");
    const files = rebuilt.getAll("file");
    expect(files.every((file) => file instanceof File)).toBe(true);
    expect(await Promise.all(files.map(async (file) => [(file as File).name, (file as File).type, await (file as File).text()]))).toEqual([
      ["notes.md", "text/markdown", "# Notes\n\nLunch at noon."],
      ["b.txt", "text/plain", "second"],
    ]);
  });

  it("reports a body that is not a form of its boundary as malformed", async () => {
    const outcome = await parseFormBody(new TextEncoder().encode("just text"), "multipart/form-data; boundary=XyZ");
    expect(outcome.kind).toBe("malformed");
  });
});
