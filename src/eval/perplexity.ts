/**
 * Perplexity and KL divergence over a text, following llama.cpp's llama-perplexity:
 * the tokens (BOS added if the model adds one) are cut into non-overlapping windows of `ctx`
 * tokens; each window's first token is replaced by BOS (when the model adds one); only the second
 * half of each window is scored (positions ctx/2 .. ctx-2 predict the next token), so every
 * scored token has at least ctx/2 tokens of context. All statistics are float64.
 *
 * With a reference model (usually the unquantized one): per scored position the KL divergence
 * KL(reference || model) of the two next-token distributions, whether their argmax agrees, and
 * the ratio of the perplexities.
 */
import { UsageError } from "../errors.js";
import type { Engine } from "../runtime/engine.js";
import type { Tokenizer } from "../tokenizer/index.js";
import { argmaxRow, klDivergence, logSumExp, percentile } from "./logits.js";

export interface PerplexityOptions {
  /** Tokens per window. */
  readonly ctx: number;
  /** Use at most this many tokens of the text (BOS included). */
  readonly maxTokens?: number;
  /** Called after each window. */
  readonly onProgress?: (done: number, total: number) => void;
}

export interface KldReport {
  /** Mean KL(reference || model) per scored token, nats. */
  readonly kld_mean: number;
  /** Standard error of kld_mean. */
  readonly kld_stderr: number;
  readonly kld_median: number;
  /** 99th percentile (llama-perplexity's interpolation). */
  readonly kld_p99: number;
  readonly kld_max: number;
  /** Fraction of scored tokens where both models' most likely next token is the same. */
  readonly top1_agreement: number;
  /** perplexity / reference_perplexity. */
  readonly ppl_ratio: number;
  readonly reference_perplexity: number;
  readonly reference_nll: number;
}

export interface PerplexityReport {
  readonly perplexity: number;
  /** Mean negative log-likelihood per scored token, nats. */
  readonly nll: number;
  /** Standard error of nll. */
  readonly nll_stderr: number;
  /** Scored tokens. */
  readonly tokens: number;
  readonly windows: number;
  readonly ctx: number;
  /** Tokens of the text (BOS included) before windowing, after --max-tokens. */
  readonly data_tokens: number;
  readonly reference?: KldReport;
}

/** The text's tokens as llama-perplexity sees them: add_special on, special-token text not parsed. */
export function dataTokens(tokenizer: Tokenizer, text: string, maxTokens?: number): number[] {
  const ids = tokenizer.encode(text, { addSpecial: true });
  return maxTokens === undefined ? ids : ids.slice(0, maxTokens);
}

/** Non-overlapping windows of `ctx` tokens, the first token of each replaced by BOS if the model adds one. */
export function windowsOf(tokenizer: Tokenizer, tokens: readonly number[], ctx: number): number[][] {
  const n = Math.floor(tokens.length / ctx);
  const out: number[][] = [];
  for (let w = 0; w < n; w++) {
    const win = tokens.slice(w * ctx, (w + 1) * ctx);
    if (tokenizer.addBos && tokenizer.bosId !== undefined) win[0] = tokenizer.bosId;
    out.push(win);
  }
  return out;
}

/** Perplexity of `model` on `text`, and its divergence from `reference` when given. */
export function evaluatePerplexity(model: Engine, text: string, opts: PerplexityOptions, reference?: Engine): PerplexityReport {
  const ctx = opts.ctx;
  if (!Number.isInteger(ctx) || ctx < 4) throw new UsageError("invalid window size", { expected: "an integer >= 4", got: String(ctx) });
  const tokens = dataTokens(model.tokenizer, text, opts.maxTokens);
  if (reference !== undefined) checkSameTokenizer(model, reference, text, opts.maxTokens, tokens);
  const windows = windowsOf(model.tokenizer, tokens, ctx);
  if (windows.length === 0) {
    throw new UsageError("not enough data for one window", {
      expected: `at least ${ctx} tokens`,
      got: `${tokens.length} tokens`,
      hint: "use a longer text, a smaller --ctx or a larger --max-tokens",
    });
  }
  const V = model.config.vocabSize;
  const first = Math.floor(ctx / 2);
  const perWindow = ctx - first - 1;
  const nScored = windows.length * perWindow;
  const kld = reference === undefined ? undefined : new Float64Array(nScored);
  let nll = 0;
  let nll2 = 0;
  let refNll = 0;
  let agree = 0;
  let k = 0;
  windows.forEach((win, w) => {
    const logits = runWindow(model, win, first);
    const refLogits = reference === undefined ? undefined : runWindow(reference, win, first);
    for (let j = 0; j < perWindow; j++) {
      const o = j * V;
      const next = win[first + j + 1]!;
      const lse = logSumExp(logits, o, V);
      const v = lse - logits[o + next]!;
      nll += v;
      nll2 += v * v;
      if (refLogits !== undefined && kld !== undefined) {
        const lseRef = logSumExp(refLogits, o, V);
        refNll += lseRef - refLogits[o + next]!;
        kld[k] = klDivergence(refLogits, o, lseRef, logits, o, lse, V);
        if (argmaxRow(refLogits, o, V) === argmaxRow(logits, o, V)) agree++;
      }
      k++;
    }
    opts.onProgress?.(w + 1, windows.length);
  });
  const mean = nll / nScored;
  const report: PerplexityReport = {
    perplexity: Math.exp(mean),
    nll: mean,
    nll_stderr: stderr(nll, nll2, nScored),
    tokens: nScored,
    windows: windows.length,
    ctx,
    data_tokens: tokens.length,
  };
  if (kld === undefined) return report;
  let s = 0;
  let s2 = 0;
  for (const v of kld) {
    s += v;
    s2 += v * v;
  }
  const sorted = kld.slice().sort();
  const refMean = refNll / nScored;
  return {
    ...report,
    reference: {
      kld_mean: s / nScored,
      kld_stderr: stderr(s, s2, nScored),
      kld_median: percentile(sorted, 0.5),
      kld_p99: percentile(sorted, 0.99),
      kld_max: sorted[sorted.length - 1]!,
      top1_agreement: agree / nScored,
      ppl_ratio: Math.exp(mean - refMean),
      reference_perplexity: Math.exp(refMean),
      reference_nll: refMean,
    },
  };
}

/** Logits rows first..ctx-1 of one window, on a fresh sequence. */
function runWindow(engine: Engine, win: readonly number[], first: number): Float32Array {
  const seq = engine.newSequence();
  try {
    return engine.evaluateAll(seq, win, first);
  } finally {
    seq.release();
  }
}

function stderr(sum: number, sum2: number, n: number): number {
  if (n < 2) return 0;
  const m = sum / n;
  const v = sum2 / n - m * m;
  return v > 0 ? Math.sqrt(v / (n - 1)) : 0;
}

/** Model and reference must turn the text into the same tokens and have the same vocabulary. */
function checkSameTokenizer(model: Engine, reference: Engine, text: string, maxTokens: number | undefined, tokens: readonly number[]): void {
  const a = model.tokenizer;
  const b = reference.tokenizer;
  const mismatch = (what: string, got: string, expected: string): never => {
    throw new UsageError(`the model and the reference use different tokenizers (${what})`, {
      expected,
      got,
      hint: "compare a model with a quantization of itself (same tokenizer and vocabulary)",
    });
  };
  if (model.config.vocabSize !== reference.config.vocabSize) {
    mismatch("vocabulary size", `${model.config.vocabSize} for the model`, `${reference.config.vocabSize} as in the reference`);
  }
  if (a.vocabSize !== b.vocabSize) mismatch("tokenizer vocabulary", `${a.vocabSize} tokens`, `${b.vocabSize} as in the reference`);
  if (a.addBos !== b.addBos || a.bosId !== b.bosId) mismatch("BOS", `bos ${a.bosId} add ${a.addBos}`, `bos ${b.bosId} add ${b.addBos}`);
  const refTokens = dataTokens(b, text, maxTokens);
  const n = Math.min(tokens.length, refTokens.length);
  let i = 0;
  while (i < n && tokens[i] === refTokens[i]) i++;
  if (i < n || tokens.length !== refTokens.length) {
    mismatch("the data tokenizes differently", `token ${i}: ${tokens[i] ?? "end"}`, `${refTokens[i] ?? "end"} as the reference`);
  }
}
