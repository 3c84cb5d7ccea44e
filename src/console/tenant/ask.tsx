import { Hono } from "hono";
import { streamSSE } from "hono/streaming";
import { FenceError, ValidationError } from "../../core/errors.js";
import type { Citation } from "../../chat/chat-answer.js";
import type { ConversationTurn } from "../../chat/prompt.js";
import { operationIdOf } from "../../http/operation-id.js";
import { chatStreamEventJson } from "../../http/routes/retrieval.js";
import type { FenceServices } from "../../http/services.js";
import { field, page, type ConsoleContext, type ConsoleEnv } from "../console-env.js";
import { Csrf, Layout, type Chrome } from "../layout.js";
import { needsScope } from "./scope-page.js";

/** The API's own bound on a question (schemas.ts: ChatBody). */
const QUESTION_MAX = 4000;

function AskPage(props: { chrome: Chrome; question?: string; answer?: { text: string; citations: Citation[]; noAnswer: boolean; requestId: string } }) {
  return (
    <Layout title="Ask" chrome={props.chrome}>
      <p class="muted">Ask a question of your documents: the answer is grounded in their passages, with citations you can open.</p>
      <form id="ask-form" method="post" action="/console/ask" data-stream="/console/ask/stream">
        <Csrf chrome={props.chrome} />
        <label for="question">Question</label>
        <textarea id="question" name="question" required maxlength={QUESTION_MAX}>
          {props.question ?? ""}
        </textarea>
        <p>
          <button type="submit">Ask</button>
        </p>
      </form>
      <h2>Answer</h2>
      <p id="ask-status" class="muted" role="status" aria-live="polite">
        {props.answer?.noAnswer ? "No passage of your documents answers this." : ""}
      </p>
      <div id="ask-answer" class="answer" aria-live="polite">
        {props.answer?.text ?? ""}
      </div>
      <ul id="ask-citations" class="citations">
        {(props.answer?.citations ?? []).map((c) => (
          <li>
            <a href={`/console/documents/${c.document_id}`}>{`[${c.citation}] ${c.title}`}</a>
            <div class="muted">{c.snippet}</div>
          </li>
        ))}
      </ul>
      {props.answer && (
        <p>
          <a href={`/console/runs/${encodeURIComponent(props.answer.requestId)}`}>See this run's steps</a>
        </p>
      )}
    </Layout>
  );
}

async function questionOf(c: ConsoleContext): Promise<ConversationTurn[]> {
  const question = field(await c.req.parseBody(), "question")?.trim() ?? "";
  if (question.length === 0 || question.length > QUESTION_MAX) {
    throw new ValidationError(`Invalid request: question: between 1 and ${QUESTION_MAX} characters`, { fields: [{ field: "question", message: `between 1 and ${QUESTION_MAX} characters` }] });
  }
  return [{ role: "user", content: question }];
}

/**
 * The playground: the same ChatService the API's POST /v1/chat calls, under the session's
 * TenantContext, so the answer is metered, budgeted and recorded as a run like any other. With
 * script, console.js posts to /stream and shows the tokens as they come; without, the form posts
 * and the page comes back with the whole answer.
 */
export function askPages(services: Pick<FenceServices, "chat">) {
  const app = new Hono<ConsoleEnv>();
  app.get("/", needsScope("query", "Ask"), (c) => page(c, <AskPage chrome={c.get("chrome")} />));

  app.post("/", needsScope("query", "Ask"), async (c) => {
    const turns = await questionOf(c);
    const answer = await services.chat.answer(c.get("tenant"), turns, { operationId: operationIdOf(c) });
    return page(c, <AskPage chrome={c.get("chrome")} question={turns[0]!.content} answer={{ text: answer.answer, citations: answer.citations, noAnswer: answer.no_answer, requestId: c.get("tenant").requestId }} />);
  });

  app.post("/stream", needsScope("query", "Ask"), async (c) => {
    const turns = await questionOf(c);
    const abort = new AbortController();
    const ctx = c.get("tenant");
    const events = await services.chat.openStream(ctx, turns, { operationId: operationIdOf(c), signal: abort.signal });
    return streamSSE(c, async (sse) => {
      sse.onAbort(() => abort.abort());
      try {
        for await (const event of events) {
          await sse.writeSSE({ event: event.type, data: JSON.stringify(chatStreamEventJson(event, ctx.requestId)) });
        }
      } catch (error) {
        const message = error instanceof FenceError ? error.message : "The answer failed.";
        await sse.writeSSE({ event: "error", data: JSON.stringify({ error: { message, request_id: ctx.requestId } }) });
      }
    });
  });
  return app;
}
