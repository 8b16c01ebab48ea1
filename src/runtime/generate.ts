/** Text generation for one sequence: prompt in, streamed text out, with a reason for stopping. */
import { UsageError } from "../errors.js";
import type { StreamDecoder, Tokenizer } from "../tokenizer/index.js";
import type { Engine } from "./engine.js";
import { Sampler, type SamplingParams } from "./sampler.js";
import { StopMatcher } from "./stop.js";

export type StopReason = "eos" | "length" | "stop";

export interface GenerateOptions {
  readonly maxTokens: number;
  readonly sampling: SamplingParams;
  readonly stop?: readonly string[];
  /** Add BOS (and EOS) as the model's tokenizer settings say. Default true. */
  readonly addSpecial?: boolean;
  /** Treat special-token text in the prompt ("<|im_start|>") as those tokens. Default false. */
  readonly parseSpecial?: boolean;
  /** Called with each new piece of text as soon as it is final. */
  readonly onText?: (delta: string) => void;
  readonly signal?: AbortSignal;
}

export interface GenerateTimings {
  readonly prefill_ms: number;
  readonly decode_ms: number;
  readonly prefill_tok_s: number;
  readonly decode_tok_s: number;
}

export interface GenerateResult {
  readonly text: string;
  /** Generated ids (an end-of-generation token that stopped the run is not included). */
  readonly tokens: number[];
  /** Ids fed to the model before generation, BOS included when the model adds one. */
  readonly promptTokens: number[];
  readonly stopReason: StopReason;
  /** Finer reason: "eos", "max_tokens", "context_limit", "stop_string" or "aborted". */
  readonly stopDetail: "eos" | "max_tokens" | "context_limit" | "stop_string" | "aborted";
  readonly timings: GenerateTimings;
}

export function generate(engine: Engine, prompt: string | readonly number[], opts: GenerateOptions): GenerateResult {
  if (!Number.isInteger(opts.maxTokens) || opts.maxTokens < 0) {
    throw new UsageError("invalid max tokens", { expected: "an integer >= 0", got: String(opts.maxTokens) });
  }
  const tok = engine.tokenizer;
  const promptTokens =
    typeof prompt === "string"
      ? tok.encode(prompt, { addSpecial: opts.addSpecial ?? true, parseSpecial: opts.parseSpecial ?? false })
      : [...prompt];
  if (promptTokens.length === 0) {
    throw new UsageError("the prompt is empty", { expected: "at least one token", got: "0", hint: "this model adds no BOS token: give a prompt" });
  }
  if (promptTokens.length >= engine.contextSize) {
    throw new UsageError("the prompt does not fit in the context", {
      expected: `< ${engine.contextSize} tokens`,
      got: `${promptTokens.length} tokens`,
      hint: "use a larger --ctx or a shorter prompt",
    });
  }
  const sampler = new Sampler(opts.sampling);
  for (const t of promptTokens) sampler.accept(t);
  const stops = new StopMatcher(opts.stop ?? []);
  const decoder = continuationDecoder(tok, promptTokens);
  const seq = engine.newSequence();
  const tokens: number[] = [];
  let text = "";
  const emit = (s: string): void => {
    if (s.length === 0) return;
    text += s;
    opts.onText?.(s);
  };

  let stopDetail: GenerateResult["stopDetail"] = "max_tokens";
  const t0 = performance.now();
  let tFirst = t0;
  try {
    let logits = opts.maxTokens > 0 ? engine.evaluate(seq, promptTokens) : undefined;
    tFirst = performance.now();
    while (logits !== undefined) {
      if (opts.signal?.aborted) {
        stopDetail = "aborted";
        break;
      }
      const id = sampler.sample(logits);
      if (tok.eogIds.has(id)) {
        stopDetail = "eos";
        break;
      }
      tokens.push(id);
      sampler.accept(id);
      const r = stops.push(decoder.push(id));
      emit(r.emit);
      if (r.stopped) {
        stopDetail = "stop_string";
        break;
      }
      if (tokens.length >= opts.maxTokens) break;
      if (seq.length >= engine.contextSize) {
        stopDetail = "context_limit";
        break;
      }
      logits = engine.evaluate(seq, [id]);
    }
    if (stopDetail !== "stop_string") emit(stops.push(decoder.flush()).emit + stops.flush());
  } finally {
    seq.release();
  }
  const t1 = performance.now();
  const prefillMs = tFirst - t0;
  const decodeMs = t1 - tFirst;
  const decoded = Math.max(0, tokens.length - 1);
  return {
    text,
    tokens,
    promptTokens,
    stopReason: stopDetail === "eos" ? "eos" : stopDetail === "stop_string" ? "stop" : "length",
    stopDetail,
    timings: {
      prefill_ms: round(prefillMs),
      decode_ms: round(decodeMs),
      prefill_tok_s: round(prefillMs > 0 ? (promptTokens.length * 1000) / prefillMs : 0),
      decode_tok_s: round(decodeMs > 0 ? (decoded * 1000) / decodeMs : 0),
    },
  };
}

/**
 * A stream decoder for text that continues `promptTokens`. NOTE: a fresh decoder takes its first
 * token as the start of a text and drops the SentencePiece space prefix ("▁time" -> "time");
 * generated text continues the prompt (prompt + completion reads right, as in llama.cpp), so the
 * decoder is primed with the prompt's last token, whose text is thrown away.
 */
export function continuationDecoder(tok: Tokenizer, promptTokens: readonly number[]): StreamDecoder {
  const decoder = tok.createStreamDecoder();
  const last = promptTokens[promptTokens.length - 1];
  if (last !== undefined) decoder.push(last);
  return decoder;
}

function round(x: number): number {
  return Math.round(x * 100) / 100;
}
