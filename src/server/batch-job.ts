/**
 * Offline jobs over the serving engine (`slimlm batch`): JSONL lines in, one result per line out,
 * in input order.
 *
 * A line is `{"prompt": string | number[]}` or `{"messages": [...]}`, plus optional sampling
 * fields with OpenAI's names (max_tokens, temperature, top_p, top_k, min_p, repetition_penalty,
 * presence_penalty, frequency_penalty, seed, stop, logit_bias) and an `id` (string or integer)
 * copied to the result. Defaults are OpenAI's (temperature 1, top_p 1); max_tokens defaults to the
 * job's default, else the rest of the context.
 */
import { z } from "zod";
import { UsageError } from "../errors.js";
import type { Tokenizer } from "../tokenizer/index.js";
import type { ChatTemplate } from "./chat-template.js";
import { finishReason, logitBiasOf, samplingOf } from "./completion.js";
import { MAX_MESSAGES, chatMessage, describeIssue, samplingFields, tokenIds } from "./openai-schema.js";
import type { GenerationRequest, ServingEngine, Usage } from "./serving-engine.js";

const batchLine = z.object({
  ...samplingFields,
  id: z.union([z.string().max(1024), z.number().int()]).nullish(),
  prompt: z.union([z.string(), tokenIds]).optional(),
  messages: z.array(chatMessage).min(1).max(MAX_MESSAGES).optional(),
});

export interface BatchItem {
  /** 0-based position among the input's non-blank lines. */
  readonly index: number;
  /** 1-based line number in the file. */
  readonly line: number;
  readonly id: string | number | null;
  readonly request: GenerationRequest;
}

export interface BatchLineError {
  readonly index: number;
  readonly line: number;
  readonly id: string | number | null;
  readonly message: string;
}

export interface BatchContext {
  readonly tokenizer: Tokenizer;
  readonly template: ChatTemplate;
  readonly contextSize: number;
  readonly vocabSize: number;
  /** max_tokens for lines without one; undefined = the rest of the context. */
  readonly defaultMaxTokens: number | undefined;
}

/** Parse and check one line: every problem a line can have is found here, before any generation. */
export function parseBatchLine(text: string, index: number, line: number, ctx: BatchContext): BatchItem | BatchLineError {
  let id: string | number | null = null;
  const fail = (message: string): BatchLineError => ({ index, line, id, message });
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    return fail(`not valid JSON (${e instanceof Error ? e.message : String(e)})`);
  }
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) return fail("a line must be a JSON object");
  // the id goes with the error too, when it is usable
  const rawId: unknown = (raw as { id?: unknown }).id;
  if ((typeof rawId === "string" && rawId.length <= 1024) || Number.isInteger(rawId)) id = rawId as string | number;
  const r = batchLine.safeParse(raw);
  if (!r.success) return fail(describeIssue(r.error).message);
  const o = r.data;
  id = o.id ?? null;
  if ((o.prompt === undefined) === (o.messages === undefined)) return fail('give exactly one of "prompt" and "messages"');
  if ((o.n ?? 1) !== 1) return fail("n: one completion per line (repeat the line with different seeds instead)");
  let promptTokens: number[];
  try {
    promptTokens = o.messages !== undefined ? ctx.template.tokenize(o.messages) : typeof o.prompt === "string" ? ctx.tokenizer.encode(o.prompt, { addSpecial: true }) : [...o.prompt!];
  } catch (e) {
    if (e instanceof UsageError) return fail(e.message);
    throw e;
  }
  if (promptTokens.length === 0) return fail("the prompt is empty");
  const badId = promptTokens.find((t) => t >= ctx.vocabSize);
  if (badId !== undefined) return fail(`prompt token id ${badId} out of range (vocabulary: 0..${ctx.vocabSize - 1})`);
  if (promptTokens.length >= ctx.contextSize) return fail(`the prompt has ${promptTokens.length} tokens; the context holds ${ctx.contextSize}`);
  const maxTokens = o.max_tokens ?? ctx.defaultMaxTokens ?? ctx.contextSize - promptTokens.length;
  if (promptTokens.length + maxTokens > ctx.contextSize) {
    return fail(`prompt (${promptTokens.length} tokens) plus max_tokens (${maxTokens}) exceed the context (${ctx.contextSize})`);
  }
  const bias = logitBiasOf(o.logit_bias);
  for (const t of bias?.keys() ?? []) if (t >= ctx.vocabSize) return fail(`logit_bias token id ${t} out of range (vocabulary: 0..${ctx.vocabSize - 1})`);
  const stop = o.stop === null || o.stop === undefined ? [] : typeof o.stop === "string" ? [o.stop] : o.stop;
  return {
    index,
    line,
    id,
    request: {
      promptTokens,
      maxTokens,
      sampling: samplingOf(o),
      stop,
      ...(bias === undefined ? {} : { logitBias: bias }),
      ...(o.ignore_eos === true ? { ignoreEos: true } : {}),
      ...(o.cache_salt === null || o.cache_salt === undefined ? {} : { cacheSalt: o.cache_salt }),
    },
  };
}

export interface BatchResult {
  readonly id: string | number | null;
  readonly index: number;
  readonly line: number;
  readonly text: string;
  readonly tokens: readonly number[];
  readonly finish_reason: "stop" | "length";
  readonly usage: { prompt_tokens: number; completion_tokens: number; total_tokens: number; prompt_tokens_details: { cached_tokens: number } };
}

function usageOf(u: Usage): BatchResult["usage"] {
  return { prompt_tokens: u.promptTokens, completion_tokens: u.completionTokens, total_tokens: u.promptTokens + u.completionTokens, prompt_tokens_details: { cached_tokens: u.cachedPromptTokens } };
}

/**
 * Run every item through the engine, at most `inFlight` submitted at a time (so the queue never
 * overflows and memory stays bounded), and tell the engine when the input is exhausted (static
 * batching then runs its last partial batch). `onResult` hears each item as it finishes (out of
 * order). Rejects if the engine fails.
 */
export function runBatch(s: ServingEngine, items: readonly BatchItem[], inFlight: number, onResult: (r: BatchResult) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    let next = 0;
    let running = 0;
    let finished = 0;
    let failed = false;
    const feed = (): void => {
      while (!failed && running < inFlight && next < items.length) {
        const item = items[next++]!;
        running++;
        let text = "";
        const tokens: number[] = [];
        try {
          s.submit(item.request, {
            onDelta: (t, token) => {
              text += t;
              if (token >= 0) tokens.push(token);
            },
            onFinish: (reason, usage) => {
              running--;
              finished++;
              onResult({ id: item.id, index: item.index, line: item.line, text, tokens, finish_reason: finishReason(reason), usage: usageOf(usage) });
              if (finished === items.length) resolve();
              else feed();
            },
            onError: (e) => {
              failed = true;
              reject(e);
            },
          });
        } catch (e) {
          failed = true;
          reject(e);
          return;
        }
      }
      if (next === items.length) s.closeInput();
    };
    if (items.length === 0) resolve();
    else feed();
  });
}
