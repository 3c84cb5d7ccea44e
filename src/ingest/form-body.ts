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

/**
 * A file part received from a parse thread, holding its bytes as they came. A plain `File` would
 * copy them into a Blob and, read back, copy them out again in small pieces: profiled under a
 * flood of 10 MB uploads, ~150 ms of the event loop per file (issue 16). `fileBytes` takes the
 * bytes without a copy; the Blob methods still answer as a File's would.
 */
export class ReceivedFile extends File {
  readonly #content: Uint8Array;

  constructor(content: Uint8Array, name: string, type: string) {
    super([], name, { type });
    this.#content = content;
    // An own property over Blob's getter (which would answer 0, the size of the empty parts).
    Object.defineProperty(this, "size", { value: content.byteLength, enumerable: true });
  }

  /** The file's bytes, not copied: the caller must not change them. */
  get content(): Uint8Array {
    return this.#content;
  }

  override arrayBuffer(): Promise<ArrayBuffer> {
    return Promise.resolve(this.#content.slice().buffer);
  }

  override text(): Promise<string> {
    return Promise.resolve(new TextDecoder().decode(this.#content));
  }

  override stream(): ReadableStream<Uint8Array<ArrayBuffer>> {
    return new Blob([this.#content.slice()]).stream();
  }

  override slice(start?: number, end?: number, contentType?: string): Blob {
    return new Blob([this.#content.slice(start, end)], { type: contentType ?? "" });
  }
}

/** A form file's bytes: without a copy when it was received from a parse thread. */
export async function fileBytes(file: File): Promise<Uint8Array> {
  return file instanceof ReceivedFile ? file.content : new Uint8Array(await file.arrayBuffer());
}

/** The entries as a FormData again (on the receiving side of a thread). */
export function toFormData(entries: readonly FormEntry[]): FormData {
  const form = new FormData();
  for (const entry of entries) {
    // No file name passed to `append`: FormData would wrap the file in a new one (a copy).
    if ("value" in entry) form.append(entry.name, entry.value);
    else form.append(entry.name, new ReceivedFile(entry.file.bytes, entry.file.name, entry.file.type));
  }
  return form;
}
