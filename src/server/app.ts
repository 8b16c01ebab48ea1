/**
 * The HTTP layer: OpenAI-compatible routes on fastify. JSON, validation, chat templates and SSE
 * stay here; the serving engine sees typed requests.
 *
 * Routes (each also without the /v1 prefix): POST /v1/chat/completions, POST /v1/completions,
 * GET /v1/models, GET /health, GET /metrics.
 * Errors always have OpenAI's shape {"error": {message, type, param, code}}; anything a client
 * sends gets a 4xx, never a 500.
 */
import { createHash, randomUUID, timingSafeEqual } from "node:crypto";
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from "fastify";
import { ResourceError, SlimError } from "../errors.js";
import { DEFAULT_SAMPLING, type SamplingParams } from "../runtime/sampler.js";
import { QueueFullError, type FinishReason } from "../scheduler/scheduler.js";
import { ChatTemplate } from "./chat-template.js";
import type { ServerMetrics } from "./metrics.js";
import { type ChatRequest, type CompletionRequest, chatRequest, completionRequest, describeIssue } from "./openai-schema.js";
import type { GenerationSink, RequestHandle, RequestTimings, ServingEngine, TokenLogprob, Usage } from "./serving-engine.js";

export interface AppOptions {
  readonly modelName: string;
  readonly apiKey?: string;
  /** Bytes; larger bodies get 413. */
  readonly bodyLimit?: number;
  readonly metrics: ServerMetrics;
  /** The engine once loaded (health is 503 before). */
  readonly serving: () => ServingEngine | undefined;
  readonly draining: () => boolean;
}

class HttpError extends Error {
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

function errorBody(e: HttpError) {
  return { error: { message: e.message, type: e.type, param: e.param, code: e.code } };
}

/** Map anything thrown while handling a request to an HTTP error. */
function toHttpError(e: unknown): HttpError {
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
    return new HttpError(e.statusCode, message, "invalid_request_error", null, code);
  }
  return new HttpError(500, `internal error: ${e instanceof Error ? e.message : String(e)}`, "server_error", null, "internal_error");
}

function digest(s: string): Buffer {
  return createHash("sha256").update(s).digest();
}

export function buildApp(opts: AppOptions): FastifyInstance {
  const app = Fastify({ bodyLimit: opts.bodyLimit ?? 4 * 1024 * 1024, logger: false, return503OnClosing: true, forceCloseConnections: "idle" });
  const keyDigest = opts.apiKey === undefined ? undefined : digest(opts.apiKey);
  let template: ChatTemplate | undefined;
  const chatTemplate = (s: ServingEngine): ChatTemplate => {
    template ??= new ChatTemplate(s.tokenizer, s.engine.file.metadata.optString("tokenizer.chat_template"));
    return template;
  };

  app.setErrorHandler((err, _req, reply) => {
    const e = toHttpError(err);
    void reply.status(e.status).send(errorBody(e));
  });
  app.setNotFoundHandler((req, reply) => {
    const e = new HttpError(404, `no route ${req.method} ${req.url.split("?")[0]}`, "not_found_error", null, "not_found");
    void reply.status(404).send(errorBody(e));
  });
  app.addHook("onResponse", (req, reply, done) => {
    opts.metrics.countHttp(req.routeOptions.url ?? "unknown", req.method, reply.statusCode);
    done();
  });

  /** 401 unless the key matches (constant time); /health and /metrics stay open. */
  const authorize = (req: FastifyRequest): void => {
    if (keyDigest === undefined) return;
    const h = req.headers.authorization;
    const given = typeof h === "string" && h.startsWith("Bearer ") ? h.slice(7) : typeof req.headers["x-api-key"] === "string" ? req.headers["x-api-key"] : undefined;
    if (given === undefined || !timingSafeEqual(digest(given), keyDigest)) {
      throw new HttpError(401, "invalid or missing API key", "authentication_error", null, "invalid_api_key");
    }
  };

  const ready = (): ServingEngine => {
    const s = opts.serving();
    if (opts.draining()) throw new HttpError(503, "the server is shutting down", "unavailable_error", null, "draining");
    if (s === undefined) throw new HttpError(503, "the model is loading", "unavailable_error", null, "loading");
    if (s.state !== "ready") throw new HttpError(503, `the engine is ${s.state}`, "unavailable_error", null, s.state);
    return s;
  };

  const checkModel = (model: string | null | undefined): void => {
    if (model !== null && model !== undefined && model !== "" && model !== opts.modelName) {
      throw new HttpError(404, `model "${model}" not found; this server serves "${opts.modelName}"`, "not_found_error", "model", "model_not_found");
    }
  };

  for (const prefix of ["/v1", ""]) {
    app.get(`${prefix}/models`, async (req) => {
      authorize(req);
      return { object: "list", data: [{ id: opts.modelName, object: "model", created: 0, owned_by: "slimlm" }] };
    });
    app.post(`${prefix}/chat/completions`, async (req, reply) => {
      authorize(req);
      const body = parse(chatRequest, req.body);
      checkModel(body.model);
      const s = ready();
      const prompt = chatTemplate(s).tokenize(body.messages);
      const maxTokens = body.max_completion_tokens ?? body.max_tokens ?? undefined;
      const logprobs = body.logprobs === true ? (body.top_logprobs ?? 0) : undefined;
      return run(s, req, reply, "chat", body, [prompt], maxTokens, logprobs);
    });
    app.post(`${prefix}/completions`, async (req, reply) => {
      authorize(req);
      const body = parse(completionRequest, req.body);
      checkModel(body.model);
      const s = ready();
      const p = body.prompt;
      const prompts: number[][] =
        typeof p === "string"
          ? [s.tokenizer.encode(p, { addSpecial: true })]
          : p.every((x) => typeof x === "number")
            ? [p as number[]]
            : (p as (string | number[])[]).map((x) => (typeof x === "string" ? s.tokenizer.encode(x, { addSpecial: true }) : x));
      const logprobs = body.logprobs ?? undefined;
      return run(s, req, reply, "text", body, prompts, body.max_tokens ?? undefined, logprobs);
    });
  }
  app.get("/health", async (_req, reply) => {
    const s = opts.serving();
    const status = opts.draining() ? "draining" : s === undefined ? "loading" : s.state;
    return reply.status(status === "ready" ? 200 : 503).send({ status });
  });
  app.get("/metrics", async (_req, reply) => {
    const m = await opts.metrics.render();
    return reply.header("content-type", m.contentType).send(m.body);
  });

  /** Validate a body; the first problem becomes a 400 naming the parameter. */
  function parse<T>(schema: { safeParse(x: unknown): { success: true; data: T } | { success: false; error: import("zod").ZodError } }, body: unknown): T {
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

  /** Submit every choice of every prompt, then answer as one JSON object or as an SSE stream. */
  async function run(
    s: ServingEngine,
    req: FastifyRequest,
    reply: FastifyReply,
    kind: "chat" | "text",
    body: ChatRequest | CompletionRequest,
    prompts: number[][],
    maxTokensAsked: number | undefined,
    logprobs: number | undefined,
  ): Promise<unknown> {
    const n = body.n ?? 1;
    if (prompts.length * n > 16) throw new HttpError(400, "too many choices (prompts x n > 16)", "invalid_request_error", "n", "invalid_value");
    const ctx = s.contextSize;
    for (const p of prompts) {
      if (p.length === 0) throw new HttpError(400, "the prompt is empty", "invalid_request_error", "prompt", "invalid_value");
      if (p.length >= ctx) {
        throw new HttpError(400, `the prompt has ${p.length} tokens; the context holds ${ctx}`, "invalid_request_error", kind === "chat" ? "messages" : "prompt", "context_length_exceeded");
      }
      if (maxTokensAsked !== undefined && p.length + maxTokensAsked > ctx) {
        throw new HttpError(400, `prompt (${p.length} tokens) plus max_tokens (${maxTokensAsked}) exceed the context (${ctx})`, "invalid_request_error", "max_tokens", "context_length_exceeded");
      }
    }
    const stop = body.stop === null || body.stop === undefined ? [] : typeof body.stop === "string" ? [body.stop] : body.stop;
    const base: SamplingParams = {
      ...DEFAULT_SAMPLING,
      // OpenAI's defaults: temperature 1, top_p 1, no top-k/min-p filtering
      temperature: body.temperature ?? 1,
      topP: body.top_p ?? 1,
      topK: body.top_k ?? 0,
      minP: body.min_p ?? 0,
      repeatPenalty: body.repetition_penalty ?? 1,
      presencePenalty: body.presence_penalty ?? 0,
      frequencyPenalty: body.frequency_penalty ?? 0,
      seed: body.seed ?? undefined,
    };
    const id = `${kind === "chat" ? "chatcmpl" : "cmpl"}-${randomUUID().replace(/-/g, "").slice(0, 24)}`;
    const created = Math.floor(Date.now() / 1000);
    const stream = body.stream === true;
    const includeUsage = stream && body.stream_options?.include_usage === true;
    const salt = body.cache_salt ?? undefined;
    const choices = prompts.flatMap((p, pi) => Array.from({ length: n }, (_, j) => ({ prompt: p, index: pi * n + j, seed: base.seed === undefined ? undefined : base.seed + j })));
    const handles: RequestHandle[] = [];
    const results = choices.map(() => ({ text: "", tokens: [] as number[], logprobs: [] as TokenLogprob[], finish: undefined as FinishReason | undefined, usage: undefined as Usage | undefined, timings: undefined as RequestTimings | undefined }));
    let failed: Error | undefined;
    let settle: () => void = () => {};
    const allDone = new Promise<void>((resolve) => (settle = resolve));
    let remaining = choices.length;
    const finishOne = (): void => {
      if (--remaining === 0) settle();
    };
    const fingerprint = `slimlm-${s.engine.backend.kernelName}`;
    const chunk = (choiceObjs: unknown[], usage?: unknown): string =>
      `data: ${JSON.stringify({ id, object: kind === "chat" ? "chat.completion.chunk" : "text_completion", created, model: opts.modelName, system_fingerprint: fingerprint, choices: choiceObjs, ...(includeUsage ? { usage: usage ?? null } : {}) })}\n\n`;

    if (stream) {
      reply.hijack();
      const raw = reply.raw;
      raw.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache", connection: "keep-alive", "x-accel-buffering": "no" });
      raw.flushHeaders();
      if (kind === "chat") {
        for (const c of choices) raw.write(chunk([{ index: c.index, delta: { role: "assistant", content: "" }, logprobs: null, finish_reason: null }]));
      }
      raw.on("close", () => {
        if (!raw.writableFinished) for (const h of handles) h.abort(); // client gone
      });
    } else {
      req.raw.socket.on("close", () => {
        if (!reply.sent) for (const h of handles) h.abort();
      });
    }

    for (const c of choices) {
      const r = results[c.index]!;
      const sink: GenerationSink = {
        onDelta: (text, token, lp) => {
          if (token >= 0) r.tokens.push(token);
          if (lp !== undefined) r.logprobs.push(lp);
          r.text += text;
          if (stream && (text.length > 0 || lp !== undefined)) {
            const logprobsObj = lp === undefined ? null : kind === "chat" ? { content: [chatLogprob(s, lp)] } : textLogprobs(s, [lp]);
            reply.raw.write(chunk([kind === "chat" ? { index: c.index, delta: { content: text }, logprobs: logprobsObj, finish_reason: null } : { index: c.index, text, logprobs: logprobsObj, finish_reason: null }]));
          }
        },
        onFinish: (reason, usage, timings) => {
          r.finish = reason;
          r.usage = usage;
          r.timings = timings;
          if (stream && reason !== "abort") {
            const fr = reason === "length" ? "length" : "stop";
            reply.raw.write(chunk([kind === "chat" ? { index: c.index, delta: {}, logprobs: null, finish_reason: fr } : { index: c.index, text: "", logprobs: null, finish_reason: fr }]));
          }
          finishOne();
        },
        onError: (e) => {
          failed = e;
          finishOne();
        },
      };
      try {
        handles.push(
          s.submit(
            {
              promptTokens: c.prompt,
              maxTokens: maxTokensAsked ?? ctx - c.prompt.length,
              sampling: { ...base, seed: c.seed },
              stop,
              ...(logprobs === undefined ? {} : { logprobs }),
              ...(salt === undefined ? {} : { cacheSalt: salt }),
            },
            sink,
          ),
        );
      } catch (e) {
        for (const h of handles) h.abort();
        if (stream) {
          writeStreamError(reply, toHttpError(e));
          return reply;
        }
        throw e;
      }
    }
    await allDone;
    const usage = sumUsage(results.map((r) => r.usage), n);
    const timings = results[0]?.timings;
    if (stream) {
      if (failed !== undefined) writeStreamError(reply, new HttpError(500, failed.message, "server_error", null, "engine_error"));
      else {
        if (includeUsage) reply.raw.write(chunk([], usageBody(usage)));
        reply.raw.write("data: [DONE]\n\n");
        reply.raw.end();
      }
      return reply;
    }
    if (failed !== undefined) throw new HttpError(500, failed.message, "server_error", null, "engine_error");
    const finish = (f: FinishReason | undefined): string => (f === "length" ? "length" : "stop");
    return {
      id,
      object: kind === "chat" ? "chat.completion" : "text_completion",
      created,
      model: opts.modelName,
      system_fingerprint: fingerprint,
      choices: results.map((r, index) =>
        kind === "chat"
          ? { index, message: { role: "assistant", content: r.text }, logprobs: logprobs === undefined ? null : { content: r.logprobs.map((lp) => chatLogprob(s, lp)) }, finish_reason: finish(r.finish) }
          : { index, text: r.text, logprobs: logprobs === undefined ? null : textLogprobs(s, r.logprobs), finish_reason: finish(r.finish) },
      ),
      usage: usageBody(usage),
      timings: timings === undefined ? undefined : timingsBody(usage, timings),
    };
  }

  return app;
}

function writeStreamError(reply: FastifyReply, e: HttpError): void {
  const raw = reply.raw;
  if (!raw.headersSent) raw.writeHead(e.status, { "content-type": "text/event-stream" });
  raw.write(`data: ${JSON.stringify(errorBody(e))}\n\n`);
  raw.write("data: [DONE]\n\n");
  raw.end();
}

function sumUsage(us: (Usage | undefined)[], n: number): Usage {
  let promptTokens = 0;
  let completionTokens = 0;
  let cachedPromptTokens = 0;
  us.forEach((u, i) => {
    if (u === undefined) return;
    completionTokens += u.completionTokens;
    if (i % n === 0) {
      // the prompt counts once per prompt, whatever n is (OpenAI's usage)
      promptTokens += u.promptTokens;
      cachedPromptTokens += u.cachedPromptTokens;
    }
  });
  return { promptTokens, completionTokens, cachedPromptTokens };
}

function usageBody(u: Usage) {
  return {
    prompt_tokens: u.promptTokens,
    completion_tokens: u.completionTokens,
    total_tokens: u.promptTokens + u.completionTokens,
    prompt_tokens_details: { cached_tokens: u.cachedPromptTokens },
  };
}

function timingsBody(u: Usage, t: RequestTimings) {
  return {
    prompt_n: u.promptTokens,
    cached_n: u.cachedPromptTokens,
    predicted_n: u.completionTokens,
    queue_ms: round(t.queueMs),
    ttft_ms: round(t.ttftMs),
    e2e_ms: round(t.e2eMs),
    predicted_per_second: round(t.decodeTokS),
  };
}

function round(x: number): number {
  return Math.round(x * 100) / 100;
}

function tokenStr(s: ServingEngine, id: number): { token: string; bytes: number[] } {
  const b = s.tokenizer.tokenToPiece(id);
  return { token: new TextDecoder().decode(b), bytes: [...b] };
}

function chatLogprob(s: ServingEngine, lp: TokenLogprob) {
  return {
    ...tokenStr(s, lp.token),
    logprob: lp.logprob,
    top_logprobs: lp.top.map((t) => ({ ...tokenStr(s, t.token), logprob: t.logprob })),
  };
}

function textLogprobs(s: ServingEngine, lps: readonly TokenLogprob[]) {
  let offset = 0;
  const text_offset: number[] = [];
  const tokens: string[] = [];
  for (const lp of lps) {
    const t = tokenStr(s, lp.token).token;
    tokens.push(t);
    text_offset.push(offset);
    offset += t.length;
  }
  return {
    tokens,
    token_logprobs: lps.map((l) => l.logprob),
    top_logprobs: lps.map((l) => Object.fromEntries(l.top.map((t) => [tokenStr(s, t.token).token, t.logprob]))),
    text_offset,
  };
}

