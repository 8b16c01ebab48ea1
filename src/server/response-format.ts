/** OpenAI response pieces: usage, logprobs (chat and legacy completions), llama.cpp-style timings. */
import type { RequestTimings, ServingEngine, TokenLogprob, Usage } from "./serving-engine.js";

/** Sum the usage of every choice; the prompt counts once per prompt, whatever n is (OpenAI's usage). */
export function sumUsage(us: readonly (Usage | undefined)[], n: number): Usage {
  let promptTokens = 0;
  let completionTokens = 0;
  let cachedPromptTokens = 0;
  us.forEach((u, i) => {
    if (u === undefined) return;
    completionTokens += u.completionTokens;
    if (i % n === 0) {
      promptTokens += u.promptTokens;
      cachedPromptTokens += u.cachedPromptTokens;
    }
  });
  return { promptTokens, completionTokens, cachedPromptTokens };
}

export function usageBody(u: Usage) {
  return {
    prompt_tokens: u.promptTokens,
    completion_tokens: u.completionTokens,
    total_tokens: u.promptTokens + u.completionTokens,
    prompt_tokens_details: { cached_tokens: u.cachedPromptTokens },
  };
}

export function timingsBody(u: Usage, t: RequestTimings) {
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

const utf8 = new TextDecoder();

function tokenStr(s: ServingEngine, id: number): { token: string; bytes: number[] } {
  const b = s.tokenizer.tokenToPiece(id);
  return { token: utf8.decode(b), bytes: [...b] };
}

export function chatLogprob(s: ServingEngine, lp: TokenLogprob) {
  return {
    ...tokenStr(s, lp.token),
    logprob: lp.logprob,
    top_logprobs: lp.top.map((t) => ({ ...tokenStr(s, t.token), logprob: t.logprob })),
  };
}

/**
 * Legacy completions logprobs. `startOffset`: characters of text before these tokens (streaming).
 * NOTE: top_logprobs is a map keyed by token text, as OpenAI's: two alternatives with the same
 * text (byte pieces that decode to U+FFFD) collapse into one entry.
 */
export function textLogprobs(s: ServingEngine, lps: readonly TokenLogprob[], startOffset = 0) {
  let offset = startOffset;
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
