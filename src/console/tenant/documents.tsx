import { randomUUID } from "node:crypto";
import { Hono } from "hono";
import { grants } from "../../core/scopes.js";
import { jobJson } from "../../http/routes/jobs.js";
import { documentJson } from "../../http/routes/documents.js";
import type { FenceServices } from "../../http/services.js";
import { fileUpload } from "../../http/upload-fields.js";
import { queueUploads } from "../../ingest/ingest-job.js";
import { page, type ConsoleContext, type ConsoleEnv } from "../console-env.js";
import { Csrf, Layout, Notice, Time, type Chrome } from "../layout.js";
import { needsScope } from "./scope-page.js";

const PAGE_SIZE = 50;
/** How much of a document its page shows: the first chunks, in reading order. */
const CHUNKS_SHOWN = 20;
type Job = ReturnType<typeof jobJson>;
const FINISHED = new Set(["succeeded", "failed", "cancelled"]);

/**
 * One upload's job as a table row. While it is queued or running, htmx asks for the row again
 * every second and swaps it in place; a finished row asks no more (and links its document).
 */
export function JobRow(props: { job: Job }) {
  const { job } = props;
  const live = !FINISHED.has(job.status);
  return (
    <tr id={`job-${job.id}`} hx-get={live ? `/console/documents/jobs/${job.id}` : undefined} hx-trigger={live ? "every 1s" : undefined} hx-swap={live ? "outerHTML" : undefined}>
      <td>{job.title ?? "(untitled)"}</td>
      <td>
        <span class={`badge ${job.status}`}>{job.status}</span>
        {job.error && <div class="error">{job.error.message}</div>}
      </td>
      <td>{job.steps.map((s) => (s as { name?: string }).name).filter(Boolean).join(" → ") || <span class="muted">waiting</span>}</td>
      <td>{job.result ? <a href={`/console/documents/${job.result.document_id}`}>Open</a> : <span class="muted">—</span>}</td>
    </tr>
  );
}

function JobsTable(props: { jobs: Job[] }) {
  return (
    <table>
      <thead>
        <tr>
          <th scope="col">Upload</th>
          <th scope="col">Status</th>
          <th scope="col">Steps</th>
          <th scope="col">Document</th>
        </tr>
      </thead>
      <tbody id="jobs">
        {props.jobs.map((job) => (
          <JobRow job={job} />
        ))}
      </tbody>
    </table>
  );
}

function UploadForm(props: { chrome: Chrome }) {
  return (
    <form class="panel" method="post" action="/console/documents/upload" enctype="multipart/form-data" hx-post="/console/documents/upload" hx-encoding="multipart/form-data" hx-target="#jobs" hx-swap="afterbegin">
      <Csrf chrome={props.chrome} />
      <label for="file">Upload a file (text, Markdown, HTML, PDF)</label>
      <div class="row">
        <input id="file" name="file" type="file" required />
        <input name="title" type="text" placeholder="Title (optional: the file's name)" aria-label="Title" />
        <button type="submit">Upload</button>
      </div>
      <progress id="upload-progress" max="100" value="0" hidden></progress>
      <p id="upload-error" class="error" role="alert" hidden></p>
      <p class="muted">Each upload is queued and ingested in the background; its progress shows below.</p>
    </form>
  );
}

interface ListView {
  documents: ReturnType<typeof documentJson>[];
  nextCursor: string | null;
  query: string;
  jobs: Job[];
  mayUpload: boolean;
  notice?: string | undefined;
}

function DocumentsPage(props: { chrome: Chrome; view: ListView }) {
  const { view } = props;
  return (
    <Layout title="Documents" chrome={props.chrome}>
      <Notice message={view.notice} />
      {view.mayUpload && <UploadForm chrome={props.chrome} />}
      {view.mayUpload && <JobsTable jobs={view.jobs} />}
      <form method="get" action="/console/documents" class="row" role="search">
        <div>
          <label for="q">Find by title</label>
          <input id="q" name="q" type="search" value={view.query} />
        </div>
        <button type="submit">Find</button>
        {view.query && <a href="/console/documents">Show all</a>}
      </form>
      {view.documents.length === 0 ? (
        <p>
          {view.query
            ? "No document's title holds that text."
            : view.mayUpload
              ? "No documents yet. Upload one above; once its job succeeds it appears here."
              : "No documents yet. A key with the 'ingest' scope can upload them, here or with POST /v1/documents."}
        </p>
      ) : (
        <table>
          <thead>
            <tr>
              <th scope="col">Title</th>
              <th scope="col">Added</th>
              <th scope="col" class="num">Chunks</th>
              <th scope="col" class="num">Bytes</th>
            </tr>
          </thead>
          <tbody>
            {view.documents.map((doc) => (
              <tr>
                <td>
                  <a href={`/console/documents/${doc.id}`}>{doc.title}</a>
                </td>
                <td>
                  <Time at={doc.created_at} />
                </td>
                <td class="num">{doc.chunk_count}</td>
                <td class="num">{doc.byte_size}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {view.nextCursor && (
        <p>
          <a href={`/console/documents?${new URLSearchParams({ ...(view.query ? { q: view.query } : {}), cursor: view.nextCursor }).toString()}`}>Older documents</a>
        </p>
      )}
    </Layout>
  );
}

/**
 * A tenant's documents: find by title, page through, open one (its metadata and first chunks),
 * delete it (owner scope), and upload files (ingest scope) as queued jobs whose progress the page
 * follows live. Every read and write is the API's own service call under the session's TenantContext.
 */
export function documentPages(services: Pick<FenceServices, "documents" | "jobs" | "ingestor" | "limits">) {
  const app = new Hono<ConsoleEnv>();

  const listView = async (c: ConsoleContext): Promise<ListView> => {
    const ctx = c.get("tenant");
    const query = (c.req.query("q") ?? "").trim().slice(0, 200);
    const mayUpload = grants(ctx.scopes, "ingest");
    const [listed, recent] = await Promise.all([
      services.documents.list(ctx, { limit: PAGE_SIZE, cursor: c.req.query("cursor"), titleContains: query || undefined }),
      mayUpload ? services.jobs.list(ctx, { limit: 10 }) : Promise.resolve({ jobs: [] }),
    ]);
    return { documents: listed.documents.map(documentJson), nextCursor: listed.nextCursor, query, jobs: recent.jobs.map(jobJson), mayUpload, notice: c.req.query("deleted") !== undefined ? "The document was deleted." : undefined };
  };

  app.get("/", needsScope("read", "Documents"), async (c) => page(c, <DocumentsPage chrome={c.get("chrome")} view={await listView(c)} />));

  // An upload is always queued (202 in the API's terms): the page shows its job until it is done.
  app.post("/upload", needsScope("ingest", "Upload"), async (c) => {
    const ctx = c.get("tenant");
    const form = await c.req.parseBody();
    // The form always sends its title field; left blank it means "the file's name", as when the API gets none.
    if (typeof form.title === "string" && form.title.trim() === "") delete form.title;
    const upload = await fileUpload(form, services.limits.maxTextChars);
    const { jobs } = await queueUploads(services.jobs, ctx, [upload], { priority: "interactive", embeddingModel: services.ingestor.embeddingModel, batchId: randomUUID() });
    const job = jobJson(jobs[0]!);
    if (c.req.header("hx-request") === "true") return c.html(String(<JobRow job={job} />), 202);
    return c.redirect("/console/documents", 303);
  });

  app.get("/jobs/:id", needsScope("ingest", "Upload"), async (c) => {
    const job = jobJson(await services.jobs.get(c.get("tenant"), c.req.param("id")));
    return c.html(String(<JobRow job={job} />));
  });

  app.get("/:id", needsScope("read", "Documents"), async (c) => {
    const ctx = c.get("tenant");
    const id = c.req.param("id");
    const doc = documentJson(await services.documents.get(ctx, id));
    const chunks = await services.documents.chunks(ctx, id, CHUNKS_SHOWN);
    const chrome = c.get("chrome");
    return page(
      c,
      <Layout title={doc.title} chrome={chrome}>
        <table>
          <tbody>
            <tr><th scope="row">Id</th><td><code>{doc.id}</code></td></tr>
            <tr><th scope="row">Source id</th><td>{doc.source_id ?? <span class="muted">—</span>}</td></tr>
            <tr><th scope="row">Media type</th><td>{doc.media_type}</td></tr>
            <tr><th scope="row">Size</th><td>{`${doc.byte_size} bytes in ${doc.chunk_count} chunks (version ${doc.version})`}</td></tr>
            <tr><th scope="row">Embedding model</th><td>{doc.embedding_model}</td></tr>
            <tr><th scope="row">Added</th><td><Time at={doc.created_at} /></td></tr>
            <tr><th scope="row">Metadata</th><td><code>{JSON.stringify(doc.metadata)}</code></td></tr>
          </tbody>
        </table>
        <h2>Text</h2>
        {chunks.map((chunk) => (
          <section>
            {chunk.heading && <h3>{chunk.heading}</h3>}
            <pre class="text">{chunk.text}</pre>
          </section>
        ))}
        {doc.chunk_count > chunks.length && <p class="muted">{`The first ${chunks.length} of ${doc.chunk_count} chunks.`}</p>}
        {grants(ctx.scopes, "owner") && (
          <form method="post" action={`/console/documents/${doc.id}/delete`} data-confirm="Delete this document and its chunks? This cannot be undone.">
            <Csrf chrome={chrome} />
            <button type="submit" class="danger">Delete document</button>
          </form>
        )}
        <p><a href="/console/documents">All documents</a></p>
      </Layout>,
    );
  });

  app.post("/:id/delete", needsScope("owner", "Delete"), async (c) => {
    const ctx = c.get("tenant");
    await services.documents.delete(ctx, c.req.param("id"));
    return c.redirect("/console/documents?deleted", 303);
  });

  return app;
}

