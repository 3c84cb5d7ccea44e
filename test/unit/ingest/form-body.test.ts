import { describe, expect, it } from "vitest";
import { fileBytes, parseFormBody, ReceivedFile, toFormData } from "../../../src/ingest/form-body.js";

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

  it("keeps a received file's bytes as they are, and still answers every Blob method as a File would", async () => {
    const bytes = new TextEncoder().encode("héllo, world");
    const file = toFormData([{ name: "file", file: { name: "greeting.txt", type: "text/plain", bytes } }]).get("file") as File;
    // FormData kept the file it was given: no copy into a Blob of its own.
    expect(file).toBeInstanceOf(ReceivedFile);
    expect(await fileBytes(file)).toBe(bytes);
    expect([file.name, file.type, file.size]).toEqual(["greeting.txt", "text/plain", bytes.byteLength]);
    expect(await file.text()).toBe("héllo, world");
    expect(new Uint8Array(await file.arrayBuffer())).toEqual(bytes);
    expect(await new Response(file.stream()).text()).toBe("héllo, world");
    expect(await file.slice(0, 3).text()).toBe("hé");
    // A copy, not the bytes: changing it leaves the file as it was.
    new Uint8Array(await file.arrayBuffer()).fill(0);
    expect(await file.text()).toBe("héllo, world");
    // Any other File is read through its Blob.
    expect(await fileBytes(new File(["plain"], "p.txt"))).toEqual(new TextEncoder().encode("plain"));
  });

  it("reports a body that is not a form of its boundary as malformed", async () => {
    const outcome = await parseFormBody(new TextEncoder().encode("just text"), "multipart/form-data; boundary=XyZ");
    expect(outcome.kind).toBe("malformed");
  });
});
