import { pino } from "pino";
import { boundLogArguments, boundLogBindings, boundLoggedError, boundLogRecord } from "./log-value-bounds.js";

/**
 * Security events get a level of their own, between warn (40) and error (50): a log pipeline can
 * alert on `level == 45` without parsing fields, they survive `LOG_LEVEL=warn`, and they are not
 * mistaken for (or drowned in) ordinary failures. Each line also names its `security_event` kind.
 */
export const SECURITY_LEVEL = 45;
export type FenceLogLevel = "security";
export type Logger = pino.Logger<FenceLogLevel>;

/**
 * Structured JSON logs. Records carry tenant id, key id, project, environment and request id
 * (invariant I7), never raw document text, prompts or keys. Three layers keep them out:
 * - every error becomes a loggable record before it is serialised (loggable-error.ts): a database
 *   error gives its SQLSTATE code and the names of what it hit, never its statement, parameters,
 *   message or detail, which quote the values it failed on — a document, say;
 * - every value is bounded and masked before it is serialised (log-value-bounds.ts) — the
 *   message, every field, nested objects, errors, and the bindings of child loggers: strings are
 *   cut to a few KB and a line to tens of KB, and e-mail addresses, phone and card numbers,
 *   IBANs, national ids, API keys and bearer tokens become typed placeholders whatever path they
 *   took into a log call;
 * - the redaction paths below drop whole fields that hold free text (a document, a question,
 *   a prompt) if someone logged such an object by mistake: masking alone would leave their prose.
 */
export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  const logger = pino<FenceLogLevel>(
    {
      level,
      customLevels: { security: SECURITY_LEVEL },
      base: { service: "fence" },
      timestamp: pino.stdTimeFunctions.isoTime,
      hooks: {
        logMethod(args, method) {
          method.apply(this, boundLogArguments(args) as Parameters<typeof method>);
        },
      },
      // Errors reach this already made loggable by the hook; this catches any that did not.
      serializers: { err: boundLoggedError },
      redact: {
        paths: [
          "authorization",
          "headers.authorization",
          "req.headers.authorization",
          "key",
          "*.key",
          "text",
          "*.text",
          "question",
          "*.question",
          "messages",
          "prompt",
        ],
        censor: "[redacted]",
      },
      // Workers bundle pino's browser build, which has no logMethod hook and no stream: each record
      // is masked here instead and written as one JSON line (Node's build ignores this option).
      browser: { asObject: true, write: (record: object) => console.log(JSON.stringify(boundLogRecord({ service: "fence", ...record }))) },
    },
    destination,
  );
  // Child bindings are serialised once, when the child is made, by no hook of pino's own (its
  // bindings formatter applies to the root only): bound and mask them on the way in. Children inherit
  // this `child` from the root, so every descendant masks its bindings too.
  const child = logger.child;
  logger.child = function maskedChild(this: Logger, bindings, options) {
    return child.call(this, boundLogBindings(bindings), options);
  } as typeof logger.child;
  return logger;
}
