import { pino, type Logger } from "pino";

export type { Logger };

/**
 * Structured JSON logs. Records carry tenant id, key id, project, environment and request id
 * (invariant I7), never raw document text, prompts or keys: the redaction paths below are a
 * backstop for the fields that could hold them if someone logged a whole object by mistake.
 */
export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: "fence" },
      timestamp: pino.stdTimeFunctions.isoTime,
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
    },
    destination,
  );
}
