import { pino } from "pino";
import { maskPii, maskPiiDeep } from "./pii-mask.js";

/**
 * Security events get a level of their own, between warn (40) and error (50): a log pipeline can
 * alert on `level == 45` without parsing fields, they survive `LOG_LEVEL=warn`, and they are not
 * mistaken for (or drowned in) ordinary failures. Each line also names its `security_event` kind.
 */
export const SECURITY_LEVEL = 45;
export type FenceLogLevel = "security";
export type Logger = pino.Logger<FenceLogLevel>;

/** Every argument of a log call, masked: the merge object (nested, errors included) and the message. */
function maskArguments(args: unknown[]): unknown[] {
  return args.map((arg) => (typeof arg === "string" ? maskPii(arg) : maskPiiDeep(arg)));
}

/**
 * Structured JSON logs. Records carry tenant id, key id, project, environment and request id
 * (invariant I7), never raw document text, prompts or keys. Two layers keep personal data out:
 * - every record goes through `maskPiiDeep` before it is serialised — the message, every field,
 *   nested objects, error messages and stacks, and the bindings of child loggers — so e-mail
 *   addresses, phone and card numbers, IBANs, national ids, API keys and bearer tokens become
 *   typed placeholders whatever path they took into a log call;
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
          method.apply(this, maskArguments(args) as Parameters<typeof method>);
        },
      },
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
      browser: { asObject: true, write: (record: object) => console.log(JSON.stringify(maskPiiDeep({ service: "fence", ...record }))) },
    },
    destination,
  );
  // Child bindings are serialised once, when the child is made, by no hook of pino's own (its
  // bindings formatter applies to the root only): mask them on the way in. Children inherit
  // this `child` from the root, so every descendant masks its bindings too.
  const child = logger.child;
  logger.child = function maskedChild(this: Logger, bindings, options) {
    return child.call(this, maskPiiDeep(bindings), options);
  } as typeof logger.child;
  return logger;
}
