import { createRoute, OpenAPIHono } from "@hono/zod-openapi";
import { streamSSE } from "hono/streaming";
import type { ChatAnswer, ChatStreamEvent } from "../../chat/chat-answer.js";
import type { ChatRequestMeta } from "../../chat/chat-service.js";
import type { ConversationTurn } from "../../chat/prompt.js";
import { FenceError } from "../../core/errors.js";
import { promptLoggingActive, promptLogRecord } from "../../plans/tenant-settings.js";
import { ChatBody, ChatResponse, commonErrors, ErrorResponse, SearchResults, searchBody } from "../schemas.js";
import { operationIdOf } from "../operation-id.js";
import type { FenceServices } from "../services.js";
import type { AppEnv, RequestOutcome } from "../types.js";
import { validationHook } from "./validation-hook.js";

const security = [{ tenantKey: [] }];

/** Model, tokens and cache of a chat answer, for the access log and the metrics. */
function recordAnswerOutcome(outcome: RequestOutcome, answer: Omit<ChatAnswer, "answer" | "citations">): void {
  if (answer.model) outcome.model = answer.model;
  if (answer.model_downgraded) outcome.modelDowngraded = true;
  outcome.promptTokens = answer.usage.input_tokens;
  outcome.completionTokens = answer.usage.output_tokens;
  outcome.cache = answer.cached ? "hit" : "miss";
}

/** A streamed chat event's data, as POST /v1/chat and the console's Ask send it. */
export function chatStreamEventJson(event: ChatStreamEvent, requestId: string) {
  if (event.type === "done") return { ...event.answer, request_id: requestId };
  return event.type === "token" ? { text: event.text } : { citations: event.citations };
}

export function retrievalRoutes({ retriever, chat, limits: { searchMaxK: maxK } }: Pick<FenceServices, "retriever" | "chat" | "limits">) {
  const search = createRoute({
    operationId: "search",
    "x-fence-scope": "query",
    method: "post",
    path: "/search",
    tags: ["Retrieval"],
    security,
    description: "Hybrid (vector + full-text) search over the calling tenant's documents only.",
    request: { body: { content: { "application/json": { schema: searchBody(maxK) } }, required: true } },
    responses: { 200: { description: "Ranked chunks", content: { "application/json": { schema: SearchResults } } }, ...commonErrors },
  });

  const chatRoute = createRoute({
    operationId: "chat",
    "x-fence-scope": "query",
    method: "post",
    path: "/chat",
    tags: ["Retrieval"],
    security,
    description:
      "A grounded answer with citations from the tenant's documents. With `stream: true` the response is " +
      "Server-Sent Events: `token` events (`{text}`), then `citations`, then `done` (or `error`).",
    request: { body: { content: { "application/json": { schema: ChatBody } }, required: true } },
    responses: {
      200: {
        description: "The answer (JSON), or an event stream when `stream` is true",
        content: { "application/json": { schema: ChatResponse }, "text/event-stream": { schema: ChatResponse } },
      },
      ...commonErrors,
      502: { description: "The LLM provider failed", content: { "application/json": { schema: ErrorResponse } } },
    },
  });

  return new OpenAPIHono<AppEnv>({ defaultHook: validationHook })
    .openapi(search, async (c) => {
      const { query, k } = c.req.valid("json");
      const outcome = c.get("outcome");
      const hits = await retriever.search(c.get("tenant"), query, k, {
        note: (_step, detail) => void (outcome.cache = detail.cached ? "hit" : "miss"),
      });
      return c.json(
        {
          results: hits.map((h) => ({
            document_id: h.documentId,
            chunk_id: h.chunkId,
            title: h.title,
            heading: h.heading,
            text: h.text,
            score: h.score,
            similarity: h.similarity,
          })),
        },
        200,
      );
    })
    .openapi(chatRoute, async (c) => {
      const body = c.req.valid("json");
      const turns: ConversationTurn[] = body.messages ?? [{ role: "user", content: body.question! }];
      const tenant = c.get("tenant");
      const operationId = operationIdOf(c);
      // Prompts are never logged, unless the admin switched the tenant's debug flag on (then masked).
      const onPrepared: ChatRequestMeta["onPrepared"] = ({ settings, question, chunkIds }) => {
        if (promptLoggingActive(settings.overrides)) c.get("log").info(promptLogRecord(question, chunkIds), "chat prompt");
      };
      if (!body.stream) {
        const answer = await chat.answer(tenant, turns, { operationId, onPrepared });
        recordAnswerOutcome(c.get("outcome"), answer);
        if (answer.model_downgraded) c.header("x-fence-model-downgraded", "true");
        return c.json({ ...answer, request_id: tenant.requestId }, 200);
      }
      const abort = new AbortController();
      const events = await chat.openStream(tenant, turns, { operationId, signal: abort.signal, onPrepared });
      return streamSSE(c, async (sse) => {
        sse.onAbort(() => abort.abort());
        try {
          for await (const event of events) {
            if (event.type === "done") recordAnswerOutcome(c.get("outcome"), event.answer);
            await sse.writeSSE({ event: event.type, data: JSON.stringify(chatStreamEventJson(event, tenant.requestId)) });
          }
        } catch (error) {
          // Headers are already sent (only the LLM can fail this late): the failure travels as an
          // `error` event with the usual body.
          const known = error instanceof FenceError;
          c.get("outcome").errorCode = known ? error.code : "internal_error";
          if (!known) c.get("log").error({ err: error }, "chat stream failed");
          await sse.writeSSE({
            event: "error",
            data: JSON.stringify({
              error: {
                code: known ? error.code : "internal_error",
                message: known ? error.message : "Internal server error.",
                request_id: tenant.requestId,
              },
            }),
          });
        }
      }) as never;
    });
}
