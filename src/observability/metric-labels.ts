import { isErrorCode, LIMIT_REASONS, type LimitReason } from "../core/error-catalogue.js";

/**
 * Label values are closed sets or strings written in Fence's own code or configuration — never a
 * piece of a request. Every value passes through one of these functions, which map anything
 * unexpected to a fixed fallback instead of passing it on: a label that could carry a raw path,
 * an e-mail address or a tenant's name would be both a cardinality bomb and a data leak.
 */

const METHODS = new Set(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]);

/** A code-defined identifier (job kind, cache name, provider, security event kind). */
const IDENTIFIER = /^[a-z][a-z0-9_]{0,63}$/;
/**
 * Model ids come from configuration and plans (admin data), e.g. `local:use-lite-512`,
 * `openai:text-embedding-3-small@256`. An `@` only before digits: no e-mail address fits.
 */
const MODEL = /^[A-Za-z0-9][A-Za-z0-9._:/+-]{0,99}(@\d{1,6})?$/;
/** A route template as registered in code: segments, `:params`, `*`; nothing else. */
const ROUTE_TEMPLATE = /^\/[A-Za-z0-9._:/*{}-]{0,199}$/;

export function methodLabel(method: string): string {
  return METHODS.has(method) ? method : "other";
}

export function statusClassLabel(status: number): string {
  return status >= 100 && status < 600 ? `${Math.floor(status / 100)}xx` : "other";
}

export function errorCodeLabel(code: string | undefined): string {
  return code !== undefined && isErrorCode(code) ? code : "unknown";
}

export function limitReasonLabel(reason: string | undefined): LimitReason | undefined {
  return (LIMIT_REASONS as readonly string[]).includes(reason ?? "") ? (reason as LimitReason) : undefined;
}

export function identifierLabel(value: string): string {
  return IDENTIFIER.test(value) ? value : "other";
}

export function modelLabel(model: string): string {
  return MODEL.test(model) ? model : "other";
}

/** `template` must be the matched route's pattern (hono `routePath`), never `c.req.path`. */
export function routeLabel(template: string): string {
  return ROUTE_TEMPLATE.test(template) ? template : "unmatched";
}
