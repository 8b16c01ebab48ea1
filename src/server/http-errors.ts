/**
 * HTTP errors in OpenAI's shape, `{"error": {message, type, param, code}}`, for everything: route
 * handlers, fastify's own errors (bad JSON, body too large, content type) and errors the HTTP
 * parser raises before a request exists (bad Content-Length, header overflow, bad method).
 *
 * Status policy (see /work/shared/docs/serving-facts.md): 400 invalid or over the context, 401
 * key, 404 model or route, 413 body, 415 content type, 429 queue full (with Retry-After), 503
 * loading or draining (with Retry-After), 500 only for our bugs (with `x-should-retry: false`).
 */
import http from "node:http";
import type { Socket } from "node:net";
import { ResourceError, SlimError } from "../errors.js";
import { QueueFullError } from "../scheduler/scheduler.js";

/** Seconds a client should wait before retrying a 429 or 503. */
export const RETRY_AFTER_S = 1;

export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly type: string,
    readonly param: string | null = null,
    readonly code: string | null = null,
  ) {
    super(message);
  }
}

export function errorBody(e: HttpError): { error: { message: string; type: string; param: string | null; code: string | null } } {
  return { error: { message: e.message, type: e.type, param: e.param, code: e.code } };
}

/** Headers that go with an error status (Retry-After on 429/503, no retry on 500). */
export function errorHeaders(status: number): Record<string, string> {
  if (status === 429 || status === 503) return { "retry-after": String(RETRY_AFTER_S) };
  if (status >= 500) return { "x-should-retry": "false" };
  return {};
}

const TYPE_BY_STATUS: Record<number, string> = {
  401: "authentication_error",
  404: "not_found_error",
  408: "timeout_error",
  413: "invalid_request_error",
  429: "rate_limit_error",
};

/** Map anything thrown while handling a request to an HTTP error. */
export function toHttpError(e: unknown): HttpError {
  if (e instanceof HttpError) return e;
  if (e instanceof QueueFullError) return new HttpError(429, e.message, "rate_limit_error", null, "queue_full");
  if (e instanceof ResourceError) {
    const over = /context|KV cache/.test(e.message);
    return over ? new HttpError(400, e.message, "invalid_request_error", "messages", "context_length_exceeded") : new HttpError(503, e.message, "unavailable_error", null, "unavailable");
  }
  if (e instanceof SlimError) return new HttpError(400, e.message, "invalid_request_error", null, e.code);
  // fastify's own errors (bad JSON, body too large, bad content type) carry a statusCode
  if (typeof e === "object" && e !== null && "statusCode" in e && typeof e.statusCode === "number" && e.statusCode >= 400 && e.statusCode < 500) {
    const code = "code" in e && typeof e.code === "string" ? e.code : null;
    const message = e instanceof Error ? e.message : "bad request";
    return new HttpError(e.statusCode, message, TYPE_BY_STATUS[e.statusCode] ?? "invalid_request_error", null, code);
  }
  return new HttpError(500, `internal error: ${e instanceof Error ? e.message : String(e)}`, "server_error", null, "internal_error");
}

/**
 * Errors of the HTTP parser (no request object yet): answer in OpenAI's shape and close, as
 * Node and fastify do (fastify's default answers `{"error":"Bad Request",...}`).
 */
export function clientErrorHandler(err: Error & { code?: string }, socket: Socket): void {
  if (err.code === "ECONNRESET" || socket.destroyed) return;
  const e =
    err.code === "HPE_HEADER_OVERFLOW"
      ? new HttpError(431, "request headers too large", "invalid_request_error", null, "header_overflow")
      : err.code === "ERR_HTTP_REQUEST_TIMEOUT"
        ? new HttpError(408, "the request took too long to arrive", "timeout_error", null, "request_timeout")
        : new HttpError(400, `malformed HTTP request (${err.code ?? "parse error"})`, "invalid_request_error", null, "bad_http");
  const body = JSON.stringify(errorBody(e));
  if (socket.writable) {
    socket.write(
      `HTTP/1.1 ${e.status} ${http.STATUS_CODES[e.status] ?? "Error"}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  }
  socket.destroy();
}
