/**
 * The HTTP layer: OpenAI-compatible routes on fastify. JSON, validation, chat templates and SSE
 * stay here; the serving engine sees typed requests.
 *
 * Routes (each also without the /v1 prefix): POST /v1/chat/completions, POST /v1/completions,
 * GET /v1/models, GET /health, GET /metrics.
 * Errors always have OpenAI's shape {"error": {message, type, param, code}}; anything a client
 * sends gets a 4xx, never a 500.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import Fastify, { type FastifyInstance, type FastifyRequest } from "fastify";
import type { ZodError } from "zod";
import { ChatTemplate } from "./chat-template.js";
import { runCompletion } from "./completion.js";
import { HttpError, clientErrorHandler, errorBody, errorHeaders, toHttpError } from "./http-errors.js";
import type { ServerMetrics } from "./metrics.js";
import { chatRequest, completionRequest, describeIssue, messageText } from "./openai-schema.js";
import type { ServingEngine } from "./serving-engine.js";

export interface AppOptions {
  readonly modelName: string;
  readonly apiKey?: string;
  /** Bytes; larger bodies get 413. */
  readonly bodyLimit?: number;
  readonly metrics: ServerMetrics;
  /** The engine once loaded (health is 503 before). */
  readonly serving: () => ServingEngine | undefined;
  readonly draining: () => boolean;
  /** Origins whose browser pages may call the API (CORS); "*" for any. Default: none. */
  readonly corsOrigins?: readonly string[];
}

/** Headers a browser page may send and read (CORS). */
const CORS_REQUEST_HEADERS = "Authorization, Content-Type, X-Api-Key, OpenAI-Organization, OpenAI-Project";
const CORS_EXPOSED_HEADERS = "Retry-After, X-Request-Id";

function digest(s: string): Buffer {
  return createHash("sha256").update(s).digest();
}

export function buildApp(opts: AppOptions): FastifyInstance {
  const app = Fastify({
    bodyLimit: opts.bodyLimit ?? 4 * 1024 * 1024,
    logger: false,
    return503OnClosing: true,
    forceCloseConnections: "idle",
    // NOTE: Node's limits: 16 KiB of headers (431 above), the whole request within 60 s (408).
    requestTimeout: 60_000,
    clientErrorHandler,
  });
  const keyDigest = opts.apiKey === undefined ? undefined : digest(opts.apiKey);
  let template: ChatTemplate | undefined;
  const chatTemplate = (s: ServingEngine): ChatTemplate => {
    template ??= new ChatTemplate(s.tokenizer, s.engine.file.metadata.optString("tokenizer.chat_template"));
    return template;
  };

  app.setErrorHandler((err, _req, reply) => {
    const e = toHttpError(err);
    void reply.status(e.status).headers(errorHeaders(e.status)).send(errorBody(e));
  });
  app.setNotFoundHandler((req, reply) => {
    const e = new HttpError(404, `no route ${req.method} ${req.url.split("?")[0]}`, "not_found_error", null, "not_found");
    void reply.status(404).send(errorBody(e));
  });
  app.addHook("onResponse", (req, reply, done) => {
    opts.metrics.countHttp(req.routeOptions.url ?? "unknown", req.method, reply.statusCode);
    done();
  });
  /** A client gone before the response ended skips onResponse: count it as nginx does (499). */
  const clientGone = (req: FastifyRequest) => (): void => opts.metrics.countHttp(req.routeOptions.url ?? "unknown", req.method, 499);

  /** 401 unless the key matches (constant time); /health and /metrics stay open. */
  const authorize = (req: FastifyRequest): void => {
    if (keyDigest === undefined) return;
    const h = req.headers.authorization;
    const bearer = typeof h === "string" ? /^bearer +(.*)$/i.exec(h)?.[1] : undefined;
    const x = req.headers["x-api-key"];
    const given = bearer ?? (typeof x === "string" ? x : undefined);
    if (given === undefined || !timingSafeEqual(digest(given), keyDigest)) {
      throw new HttpError(401, "invalid or missing API key", "authentication_error", null, "invalid_api_key");
    }
  };
  const corsAll = opts.corsOrigins?.includes("*") === true;
  const corsSet = new Set(opts.corsOrigins ?? []);
  /** The Access-Control-Allow-Origin for this request's Origin, if it is allowed. */
  const allowedOrigin = (req: FastifyRequest): string | undefined => {
    const origin = req.headers.origin;
    if (typeof origin !== "string" || (!corsAll && !corsSet.has(origin))) return undefined;
    return corsAll ? "*" : origin;
  };
  // Before the body is read: an unauthenticated client cannot make us parse megabytes.
  app.addHook("onRequest", async (req, reply) => {
    const allow = allowedOrigin(req);
    if (allow !== undefined) {
      void reply.header("access-control-allow-origin", allow);
      if (!corsAll) void reply.header("vary", "Origin");
      if (req.method === "OPTIONS" && req.headers["access-control-request-method"] !== undefined) {
        // a preflight: browsers send it without credentials, so it never needs the API key
        return reply
          .code(204)
          .headers({
            "access-control-allow-methods": "GET, POST, OPTIONS",
            "access-control-allow-headers": CORS_REQUEST_HEADERS,
            "access-control-max-age": "600",
          })
          .send();
      }
      void reply.header("access-control-expose-headers", CORS_EXPOSED_HEADERS);
    }
    const route = req.routeOptions.url;
    if (route !== undefined && route !== "/health" && route !== "/metrics") authorize(req);
    const enc = req.headers["content-encoding"];
    if (enc !== undefined && enc.trim().toLowerCase() !== "identity") {
      // fastify would parse compressed bytes as JSON and answer "not valid JSON"
      throw new HttpError(415, `request bodies with content-encoding "${enc}" are not supported`, "invalid_request_error", null, "unsupported_encoding");
    }
  });

  const ready = (): ServingEngine => {
    const s = opts.serving();
    if (opts.draining()) throw new HttpError(503, "the server is shutting down", "unavailable_error", null, "draining");
    if (s === undefined) throw new HttpError(503, "the model is loading", "unavailable_error", null, "loading");
    if (s.state !== "ready") throw new HttpError(503, `the engine is ${s.state}`, "unavailable_error", null, s.state);
    return s;
  };

  /**
   * Text longer than the context times the longest vocabulary entry cannot fit the context: refuse
   * it before tokenizing (megabytes of text hold the event loop, and so every stream, for a second).
   */
  let charCap: number | undefined;
  const checkChars = (s: ServingEngine, chars: number, param: string): void => {
    if (charCap === undefined) {
      let longest = 1;
      for (let id = 0; id < s.tokenizer.vocabSize; id++) longest = Math.max(longest, s.tokenizer.tokenText(id).length);
      charCap = longest * s.contextSize;
    }
    if (chars > charCap) {
      throw new HttpError(400, `the prompt (${chars} characters) cannot fit the context (${s.contextSize} tokens)`, "invalid_request_error", param, "context_length_exceeded");
    }
  };

  const checkModel = (model: string | null | undefined): void => {
    if (model !== null && model !== undefined && model !== "" && model !== opts.modelName) {
      throw new HttpError(404, `model "${model}" not found; this server serves "${opts.modelName}"`, "not_found_error", "model", "model_not_found");
    }
  };

  for (const prefix of ["/v1", ""]) {
    app.get(`${prefix}/models`, async () => {
      return { object: "list", data: [{ id: opts.modelName, object: "model", created: 0, owned_by: "slimlm" }] };
    });
    app.post(`${prefix}/chat/completions`, async (req, reply) => {
      const body = parse(chatRequest, req.body);
      checkModel(body.model);
      const s = ready();
      checkChars(s, body.messages.reduce((n, m) => n + messageText(m.content).length, 0), "messages");
      const prompt = chatTemplate(s).tokenize(body.messages);
      const maxTokens = body.max_completion_tokens ?? body.max_tokens ?? undefined;
      const logprobs = body.logprobs === true ? (body.top_logprobs ?? 0) : undefined;
      return runCompletion(s, req, reply, { kind: "chat", body, prompts: [prompt], maxTokens, logprobs, modelName: opts.modelName, onClientGone: clientGone(req) });
    });
    app.post(`${prefix}/completions`, async (req, reply) => {
      const body = parse(completionRequest, req.body);
      checkModel(body.model);
      const s = ready();
      const p = body.prompt;
      if (typeof p === "string") checkChars(s, p.length, "prompt");
      else for (const x of p) if (typeof x === "string") checkChars(s, x.length, "prompt");
      const prompts: number[][] =
        typeof p === "string"
          ? [s.tokenizer.encode(p, { addSpecial: true })]
          : p.every((x) => typeof x === "number")
            ? [p as number[]]
            : (p as (string | number[])[]).map((x) => (typeof x === "string" ? s.tokenizer.encode(x, { addSpecial: true }) : x));
      const logprobs = body.logprobs ?? undefined;
      return runCompletion(s, req, reply, { kind: "text", body, prompts, maxTokens: body.max_tokens ?? undefined, logprobs, modelName: opts.modelName, onClientGone: clientGone(req) });
    });
  }
  app.get("/health", async (_req, reply) => {
    const s = opts.serving();
    const status = opts.draining() ? "draining" : s === undefined ? "loading" : s.state;
    return reply
      .status(status === "ready" ? 200 : 503)
      .headers(status === "ready" ? {} : errorHeaders(503))
      .send({ status });
  });
  app.get("/metrics", async (_req, reply) => {
    const m = await opts.metrics.render();
    return reply.header("content-type", m.contentType).send(m.body);
  });

  /** Validate a body; the first problem becomes a 400 naming the parameter. */
  function parse<T>(schema: { safeParse(x: unknown): { success: true; data: T } | { success: false; error: ZodError } }, body: unknown): T {
    if (typeof body !== "object" || body === null || Array.isArray(body)) {
      throw new HttpError(400, "the request body must be a JSON object", "invalid_request_error", null, "invalid_body");
    }
    const r = schema.safeParse(body);
    if (!r.success) {
      const { param, message } = describeIssue(r.error);
      throw new HttpError(400, message, "invalid_request_error", param, "invalid_value");
    }
    return r.data;
  }

  return app;
}
