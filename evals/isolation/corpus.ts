import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

/**
 * The per-tenant fixture corpora (fixtures/tenants/<name>/), with `{{RUN}}` replaced by this run's
 * id. The canaries and secrets become the detector's needles; because they embed the run id, a
 * leak can only match data seeded by this run, never leftovers from earlier runs on a shared
 * Postgres database.
 */
export interface CorpusDocument {
  /** `<tenant>/<file name>`; also the document's source_id. */
  sourceId: string;
  fileName: string;
  /** How it is uploaded: Markdown as JSON text, everything else as a multipart file. */
  upload: "json" | "multipart";
  text: string;
  canary: string;
}

export interface Corpus {
  tenant: string;
  documents: CorpusDocument[];
  secrets: string[];
}

const FIXTURES = fileURLToPath(new URL("../../fixtures/tenants/", import.meta.url));
const CANARY = /CANARY-[A-Z]+-[A-Za-z0-9]+-[A-Z]+/g;
const DOCUMENT_FILE = /\.(md|txt|html)$/;

export async function loadCorpus(tenant: string, runId: string): Promise<Corpus> {
  const dir = join(FIXTURES, tenant);
  const fill = (text: string) => text.replaceAll("{{RUN}}", runId);
  const files = (await readdir(dir)).filter((f) => DOCUMENT_FILE.test(f)).sort();
  const documents: CorpusDocument[] = [];
  for (const fileName of files) {
    const text = fill(await readFile(join(dir, fileName), "utf8"));
    const canaries = text.match(CANARY) ?? [];
    // One canary per document keeps "which document leaked" unambiguous in the report.
    if (canaries.length !== 1) throw new Error(`fixture ${tenant}/${fileName}: expected exactly one canary, found ${canaries.length}`);
    documents.push({
      sourceId: `${tenant}/${fileName}`,
      fileName,
      upload: fileName.endsWith(".md") ? "json" : "multipart",
      text,
      canary: canaries[0]!,
    });
  }
  const secrets = fill(await readFile(join(dir, "secrets.list"), "utf8"))
    .split("\n")
    .map((line) => line.trim())
    .filter((line) => line && !line.startsWith("#"));
  for (const secret of secrets) {
    // A secret that is not in the corpus would be a needle that can never match: a blind spot.
    if (!documents.some((d) => d.text.includes(secret))) throw new Error(`fixture ${tenant}/secrets.list: "${secret}" occurs in no document`);
  }
  if (!documents.some((d) => d.upload === "multipart")) throw new Error(`fixture ${tenant}: needs at least one .txt or .html file`);
  return { tenant, documents, secrets };
}
