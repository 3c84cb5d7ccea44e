/**
 * A multipart request body, parsed where the runtime chooses (a parse thread on Node, inline on
 * Workers): undici's parser takes ~45-200 ms of a busy two-core machine to read a 10 MB file out
 * of a form, and on the event loop that is every other tenant's wait (issue 16). What crosses a
 * thread is plain data: field strings, and files as their name, type and bytes.
 */
export type FormEntry = { name: string; value: string } | { name: string; file: { name: string; type: string; bytes: Uint8Array } };

export type FormBodyOutcome = { kind: "parsed"; entries: FormEntry[] } | { kind: "malformed"; message: string };

export async function parseFormBody(bytes: Uint8Array, contentType: string): Promise<FormBodyOutcome> {
  let form: FormData;
  try {
    // As Hono's form validator reads a body: the media type lower-cased, its parameters as sent.
    const headers = { "content-type": contentType.replace(/^[^;]+/, (mediaType) => mediaType.toLowerCase()) };
    form = await new Response(bytes, { headers }).formData();
  } catch (error) {
    return { kind: "malformed", message: error instanceof Error ? error.message : String(error) };
  }
  const entries: FormEntry[] = [];
  for (const [name, value] of form) {
    if (typeof value === "string") entries.push({ name, value });
    else entries.push({ name, file: { name: value.name, type: value.type, bytes: new Uint8Array(await value.arrayBuffer()) } });
  }
  return { kind: "parsed", entries };
}

/** The entries as a FormData again (on the receiving side of a thread). */
export function toFormData(entries: readonly FormEntry[]): FormData {
  const form = new FormData();
  for (const entry of entries) {
    if ("value" in entry) form.append(entry.name, entry.value);
    else form.append(entry.name, new File([entry.file.bytes as Uint8Array<ArrayBuffer>], entry.file.name, { type: entry.file.type }));
  }
  return form;
}
