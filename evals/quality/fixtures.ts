import { readdir, readFile } from "node:fs/promises";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { z } from "zod";
import { normalize } from "./score.js";

/**
 * The quality eval's fixtures: `fixtures/quality/<tenant>/` holds a tenant's documents (Markdown
 * or plain text) and its `questions.json`. Everything is validated on load, and the cross-checks a
 * schema cannot express are made here too, so a fixture mistake fails the run at start-up with the
 * file and field named, instead of quietly turning into a lower score:
 *
 * - every expected document exists in the tenant's folder;
 * - every `must_contain` phrase occurs in one of the question's expected documents (a typo in a
 *   phrase would otherwise read as a wrong answer forever);
 * - every cross-tenant question names the other tenant's document that answers it, and that
 *   document exists — so the question really is answerable, just not by this tenant.
 */

export const DEFAULT_FIXTURES_DIR = fileURLToPath(new URL("../../fixtures/quality/", import.meta.url));

/** Paths in messages are relative to where the eval was started: short, and no machine layout. */
const shown = (path: string) => relative(process.cwd(), path) || ".";

const DOCUMENT_EXTENSIONS = [".md", ".txt"];
const TENANT_DIR = /^[a-z0-9][a-z0-9-]{0,40}$/;

const Phrase = z.string().trim().min(1, "a phrase must not be empty").max(200);
const Phrases = z.array(Phrase).default([]);
const QuestionId = z.string().regex(/^[a-z0-9][a-z0-9-]{0,60}$/, "use lower-case letters, digits and '-'");
const QuestionText = z.string().trim().min(3).max(2000);

const AnswerableQuestion = z.strictObject({
  id: QuestionId,
  expect: z.literal("answer"),
  question: QuestionText,
  /** Fixture file names; the answer must cite at least one of them. */
  expected_documents: z.array(z.string().min(1)).min(1, "an answerable question needs at least one expected document"),
  must_contain: Phrases,
  must_not_contain: Phrases,
});

const DontKnowQuestion = z
  .strictObject({
    id: QuestionId,
    expect: z.literal("dont_know"),
    question: QuestionText,
    /** `cross_tenant`: another tenant's documents answer it, so this tenant must not. */
    why: z.enum(["not_in_documents", "cross_tenant"]),
    /** For cross-tenant questions: `<other tenant>/<file>` that does answer it. */
    answered_by: z.string().regex(/^[a-z0-9-]+\/[^/]+$/, "write it as <tenant>/<file>").optional(),
    must_not_contain: Phrases,
  })
  .refine((q) => (q.why === "cross_tenant") === (q.answered_by !== undefined), {
    message: "`answered_by` is required for cross_tenant questions and only for them",
    path: ["answered_by"],
  });

export const QuestionsFile = z.strictObject({
  /** A human description of the tenant; not used by the eval. */
  tenant: z.string().optional(),
  questions: z
    .array(z.discriminatedUnion("expect", [AnswerableQuestion, DontKnowQuestion]))
    .min(1)
    .refine((qs) => new Set(qs.map((q) => q.id)).size === qs.length, { message: "question ids must be unique" }),
});

export type FixtureQuestion = z.infer<typeof QuestionsFile>["questions"][number];

export interface FixtureDocument {
  /** The file name inside the tenant's folder; also the upload's `source_id` suffix. */
  fileName: string;
  title: string;
  text: string;
}

export interface TenantFixture {
  /** The folder name, e.g. `northwind-hr`: the tenant's name in reports and in the baseline. */
  name: string;
  documents: FixtureDocument[];
  questions: FixtureQuestion[];
}

export class FixtureError extends Error {
  override name = "FixtureError";
}

/** Loads and validates every tenant folder under `root` (sorted by name, so runs are comparable). */
export async function loadQualityFixtures(root: string = DEFAULT_FIXTURES_DIR): Promise<TenantFixture[]> {
  const entries = await readdir(root, { withFileTypes: true }).catch((error: unknown) => {
    throw new FixtureError(`cannot read the fixtures folder ${shown(root)}: ${(error as Error).message}`);
  });
  const folders = entries.filter((e) => e.isDirectory()).map((e) => e.name).sort();
  if (folders.length === 0) throw new FixtureError(`no tenant folders in ${shown(root)}`);
  const tenants: TenantFixture[] = [];
  for (const folder of folders) {
    if (!TENANT_DIR.test(folder)) throw new FixtureError(`${shown(join(root, folder))}: tenant folder names are lower-case letters, digits and '-'`);
    tenants.push(await loadTenant(root, folder));
  }
  const fileSets = new Map(tenants.map((t) => [t.name, new Set(t.documents.map((d) => d.fileName))]));
  for (const tenant of tenants) {
    for (const q of tenant.questions) {
      if (q.expect !== "dont_know" || !q.answered_by) continue;
      const [other, file] = q.answered_by.split("/") as [string, string];
      const where = `${shown(join(root, tenant.name, "questions.json"))}: question "${q.id}": answered_by`;
      if (other === tenant.name) throw new FixtureError(`${where} names this tenant's own document; a cross-tenant question must be answered by another tenant`);
      if (!fileSets.get(other)?.has(file)) throw new FixtureError(`${where} "${q.answered_by}" is not a fixture document`);
    }
  }
  return tenants;
}

async function loadTenant(root: string, folder: string): Promise<TenantFixture> {
  const dir = join(root, folder);
  const questionsPath = join(dir, "questions.json");
  const files = (await readdir(dir)).sort();
  const documents: FixtureDocument[] = [];
  for (const fileName of files) {
    if (fileName === "questions.json") continue;
    if (!DOCUMENT_EXTENSIONS.some((ext) => fileName.endsWith(ext))) {
      throw new FixtureError(`${shown(join(dir, fileName))}: unsupported fixture file (documents are ${DOCUMENT_EXTENSIONS.join(", ")})`);
    }
    const text = await readFile(join(dir, fileName), "utf8");
    if (text.trim() === "") throw new FixtureError(`${shown(join(dir, fileName))}: empty document`);
    documents.push({ fileName, title: titleOf(text, fileName), text });
  }
  if (documents.length === 0) throw new FixtureError(`${shown(dir)}: no documents`);

  const raw = await readFile(questionsPath, "utf8").catch(() => {
    throw new FixtureError(`${shown(questionsPath)}: missing (every tenant folder needs a questions.json)`);
  });
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch (error) {
    throw new FixtureError(`${shown(questionsPath)}: not valid JSON (${(error as Error).message})`);
  }
  const parsed = QuestionsFile.safeParse(json);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `  ${i.path.join(".") || "(file)"}: ${i.message}`);
    throw new FixtureError(`${shown(questionsPath)} is malformed:\n${problems.join("\n")}`);
  }

  const byName = new Map(documents.map((d) => [d.fileName, d]));
  for (const q of parsed.data.questions) {
    if (q.expect !== "answer") continue;
    const where = `${shown(questionsPath)}: question "${q.id}"`;
    const expected = q.expected_documents.map((name) => {
      const doc = byName.get(name);
      if (!doc) throw new FixtureError(`${where}: expected document "${name}" is not in ${shown(dir)}`);
      return doc;
    });
    for (const phrase of q.must_contain) {
      if (!expected.some((doc) => normalize(doc.text).includes(normalize(phrase)))) {
        throw new FixtureError(`${where}: must_contain "${phrase}" occurs in none of its expected documents`);
      }
    }
  }
  return { name: folder, documents, questions: parsed.data.questions };
}

/** The first Markdown heading, else the file name without its extension. */
function titleOf(text: string, fileName: string): string {
  const heading = /^#\s+(.+?)\s*$/m.exec(text);
  return heading?.[1] ?? fileName.replace(/\.[^.]+$/, "");
}
