/**
 * One chat or text completion request: check it against the context, submit every choice to the
 * serving engine, and answer with one JSON object or an SSE stream in OpenAI's format:
 *
 *   chat:  {delta:{role:"assistant",content:""}} per choice, content deltas, a chunk with
 *          finish_reason per choice, [with stream_options.include_usage: a chunk with choices []
 *          and the usage], then `data: [DONE]`.
 *   error mid-stream: a chunk `{"error": {...}}`, then `data: [DONE]`.
 *
 * A client that goes away aborts its choices at once (their KV blocks return to the pool).
 */
import { randomUUID } from "node:crypto";
import type { FastifyReply, FastifyRequest } from "fastify";
import { DEFAULT_SAMPLING, type SamplingParams } from "../runtime/sampler.js";
import type { FinishReason } from "../scheduler/scheduler.js";
import { HttpError, errorBody, errorHeaders } from "./http-errors.js";
import type { ChatRequest, CompletionRequest } from "./openai-schema.js";
import { chatLogprob, sumUsage, textLogprobs, timingsBody, usageBody } from "./response-format.js";
import type { GenerationSink, RequestHandle, RequestTimings, ServingEngine, TokenLogprob, Usage } from "./serving-engine.js";

/** Choices (prompts x n) one request may ask for. */
export const MAX_CHOICES = 16;

export interface CompletionJob {
  readonly kind: "chat" | "text";
  readonly body: ChatRequest | CompletionRequest;
  readonly prompts: readonly number[][];
  readonly maxTokens: number | undefined;
  /** Top alternatives per token (0..20), or undefined for no logprobs. */
  readonly logprobs: number | undefined;
  readonly modelName: string;
  /** Called if the client goes away before the response ended (fastify's onResponse does not fire then). */
  readonly onClientGone?: () => void;
}

interface ChoiceResult {
  text: string;
  tokens: number[];
  logprobs: TokenLogprob[];
  finish: FinishReason | undefined;
  usage: Usage | undefined;
  timings: RequestTimings | undefined;
}

/** Reject what can never run: too many choices, empty prompts, prompts over the context. */
function checkPrompts(s: ServingEngine, job: CompletionJob): void {
  const n = job.body.n ?? 1;
  if (job.prompts.length * n > MAX_CHOICES) throw new HttpError(400, `too many choices (prompts x n > ${MAX_CHOICES})`, "invalid_request_error", "n", "invalid_value");
  const ctx = s.contextSize;
  const param = job.kind === "chat" ? "messages" : "prompt";
  for (const p of job.prompts) {
    if (p.length === 0) throw new HttpError(400, "the prompt is empty", "invalid_request_error", param, "invalid_value");
    if (p.length >= ctx) {
      throw new HttpError(400, `the prompt has ${p.length} tokens; the context holds ${ctx}`, "invalid_request_error", param, "context_length_exceeded");
    }
    if (job.maxTokens !== undefined && p.length + job.maxTokens > ctx) {
      throw new HttpError(400, `prompt (${p.length} tokens) plus max_tokens (${job.maxTokens}) exceed the context (${ctx})`, "invalid_request_error", "max_tokens", "context_length_exceeded");
    }
  }
}

/** Sampling parameters from OpenAI's fields, with OpenAI's defaults. */
export function samplingOf(body: Pick<ChatRequest, "temperature" | "top_p" | "top_k" | "min_p" | "repetition_penalty" | "presence_penalty" | "frequency_penalty" | "seed">): SamplingParams {
  return {
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
}

/** OpenAI's logit_bias object as token id -> bias. */
export function logitBiasOf(o: Readonly<Record<string, number>> | null | undefined): Map<number, number> | undefined {
  return o === null || o === undefined ? undefined : new Map(Object.entries(o).map(([k, v]) => [Number(k), v] as const));
}

/** Our finish reasons as OpenAI's ("abort" only reaches clients that are gone). */
export const finishReason = (f: FinishReason | undefined): "stop" | "length" => (f === "length" ? "length" : "stop");

export async function runCompletion(s: ServingEngine, req: FastifyRequest, reply: FastifyReply, job: CompletionJob): Promise<unknown> {
  checkPrompts(s, job);
  const { kind, body, logprobs } = job;
  const n = body.n ?? 1;
  const ctx = s.contextSize;
  const stop = body.stop === null || body.stop === undefined ? [] : typeof body.stop === "string" ? [body.stop] : body.stop;
  const base = samplingOf(body);
  const id = `${kind === "chat" ? "chatcmpl" : "cmpl"}-${randomUUID().replace(/-/g, "").slice(0, 24)}`;
  const created = Math.floor(Date.now() / 1000);
  const stream = body.stream === true;
  const includeUsage = stream && body.stream_options?.include_usage === true;
  const salt = body.cache_salt ?? undefined;
  const bias = logitBiasOf(body.logit_bias);
  const choices = job.prompts.flatMap((p, pi) => Array.from({ length: n }, (_, j) => ({ prompt: p, index: pi * n + j, seed: base.seed === undefined ? undefined : base.seed + j })));
  const handles: RequestHandle[] = [];
  const results: ChoiceResult[] = choices.map(() => ({ text: "", tokens: [], logprobs: [], finish: undefined, usage: undefined, timings: undefined }));
  let failed: Error | undefined;
  let settle: () => void = () => {};
  const allDone = new Promise<void>((resolve) => (settle = resolve));
  let remaining = choices.length;
  const finishOne = (): void => {
    if (--remaining === 0) settle();
  };
  const fingerprint = `slimlm-${s.engine.backend.kernelName}`;
  const object = kind === "chat" ? "chat.completion.chunk" : "text_completion";
  const chunk = (choiceObjs: unknown[], usage?: unknown): string =>
    `data: ${JSON.stringify({ id, object, created, model: job.modelName, system_fingerprint: fingerprint, choices: choiceObjs, ...(includeUsage ? { usage: usage ?? null } : {}) })}\n\n`;

  const raw = reply.raw;
  /** The client is gone (or the stream ended): nothing more can be written. */
  const closed = (): boolean => raw.destroyed || raw.writableEnded;
  const write = (s: string): void => {
    if (!closed()) raw.write(s);
  };
  const abortAll = (): void => {
    for (const h of handles) h.abort();
  };
  // NOTE: the response's "close" fires when the connection closes before the response ended (the
  // client went away) and after a normal end; keep-alive sockets outlive requests, so listen on
  // the response, not the socket (a listener per request on the socket would pile up).
  raw.on("close", () => {
    if (raw.writableFinished) return;
    abortAll();
    job.onClientGone?.();
  });
  // The client may have gone while the body was parsed: then nothing is worth computing.
  if (req.raw.socket.destroyed) throw new HttpError(400, "the client closed the connection", "invalid_request_error", null, "client_closed");

  const textOffset = results.map(() => 0);

  for (const c of choices) {
    const r = results[c.index]!;
    const sink: GenerationSink = {
      onDelta: (text, token, lp) => {
        if (token >= 0) r.tokens.push(token);
        if (lp !== undefined) r.logprobs.push(lp);
        r.text += text;
        if (!stream || (text.length === 0 && lp === undefined)) return;
        if (kind === "chat") {
          write(chunk([{ index: c.index, delta: { content: text }, logprobs: lp === undefined ? null : { content: [chatLogprob(s, lp)] }, finish_reason: null }]));
        } else {
          const lps = lp === undefined ? null : textLogprobs(s, [lp], textOffset[c.index]);
          // offsets count token texts from the start of the completion, as the non-streamed answer
          if (lps !== null) textOffset[c.index] = textOffset[c.index]! + lps.tokens[0]!.length;
          write(chunk([{ index: c.index, text, logprobs: lps, finish_reason: null }]));
        }
      },
      onFinish: (reason, usage, timings) => {
        r.finish = reason;
        r.usage = usage;
        r.timings = timings;
        if (stream && reason !== "abort") {
          const fr = finishReason(reason);
          write(chunk([kind === "chat" ? { index: c.index, delta: {}, logprobs: null, finish_reason: fr } : { index: c.index, text: "", logprobs: null, finish_reason: fr }]));
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
            maxTokens: job.maxTokens ?? ctx - c.prompt.length,
            sampling: { ...base, seed: c.seed },
            stop,
            ...(logprobs === undefined ? {} : { logprobs }),
            ...(salt === undefined ? {} : { cacheSalt: salt }),
            ...(bias === undefined ? {} : { logitBias: bias }),
            ...(body.ignore_eos === true ? { ignoreEos: true } : {}),
          },
          sink,
        ),
      );
    } catch (e) {
      // queue full, does not fit...: nothing was sent yet, so this is a plain error response
      abortAll();
      throw e;
    }
  }
  // NOTE: submit() only schedules work (the first step runs on a later event-loop turn), so the
  // headers and role chunks written here go out before any delta.
  if (stream) {
    reply.hijack();
    // NOTE: hijacked, so the headers set on the reply so far (CORS) must be copied over by hand.
    const set: Record<string, string> = {};
    for (const [k, v] of Object.entries(reply.getHeaders())) if (typeof v === "string") set[k] = v;
    raw.writeHead(200, { ...set, "content-type": "text/event-stream", "cache-control": "no-cache", connection: "keep-alive", "x-accel-buffering": "no", "x-request-id": id });
    raw.flushHeaders();
    if (kind === "chat") {
      for (const c of choices) write(chunk([{ index: c.index, delta: { role: "assistant", content: "" }, logprobs: null, finish_reason: null }]));
    }
  }
  await allDone;
  const usage = sumUsage(results.map((r) => r.usage), n);
  const timings = results[0]?.timings;
  // Aborted while the client is still there: the server is shutting down (drain timeout).
  const abortedByServer = failed === undefined && !closed() && results.some((r) => r.finish === "abort");
  if (stream) {
    if (failed !== undefined) {
      writeStreamError(reply, new HttpError(500, failed.message, "server_error", null, "engine_error"));
    } else if (abortedByServer) {
      writeStreamError(reply, new HttpError(503, "the request was aborted: the server is shutting down", "unavailable_error", null, "aborted"));
    } else {
      if (includeUsage) write(chunk([], usageBody(usage)));
      write("data: [DONE]\n\n");
      if (!closed()) raw.end();
    }
    return reply;
  }
  if (failed !== undefined) throw new HttpError(500, failed.message, "server_error", null, "engine_error");
  if (abortedByServer) throw new HttpError(503, "the request was aborted: the server is shutting down", "unavailable_error", null, "aborted");
  void reply.header("x-request-id", id);
  return {
    id,
    object: kind === "chat" ? "chat.completion" : "text_completion",
    created,
    model: job.modelName,
    system_fingerprint: fingerprint,
    choices: results.map((r, index) =>
      kind === "chat"
        ? { index, message: { role: "assistant", content: r.text }, logprobs: logprobs === undefined ? null : { content: r.logprobs.map((lp) => chatLogprob(s, lp)) }, finish_reason: finishReason(r.finish) }
        : { index, text: r.text, logprobs: logprobs === undefined ? null : textLogprobs(s, r.logprobs), finish_reason: finishReason(r.finish) },
    ),
    usage: usageBody(usage),
    timings: timings === undefined ? undefined : timingsBody(usage, timings),
  };
}

/** An error as an SSE event, then [DONE]; a full error response if nothing was sent yet. */
export function writeStreamError(reply: FastifyReply, e: HttpError): void {
  const raw = reply.raw;
  if (raw.destroyed || raw.writableEnded) return;
  if (!raw.headersSent) raw.writeHead(e.status, { "content-type": "text/event-stream", ...errorHeaders(e.status) });
  raw.write(`data: ${JSON.stringify(errorBody(e))}\n\n`);
  raw.write("data: [DONE]\n\n");
  raw.end();
}
