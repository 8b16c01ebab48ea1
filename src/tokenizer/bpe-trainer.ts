/**
 * Train a byte-level BPE vocabulary (GPT-2 style) on a text, and write it as GGUF tokenizer
 * metadata (`tokenizer.ggml.model = gpt2`, pre-tokenizer "gpt-2") that our tokenizer and
 * llama.cpp load.
 *
 * Algorithm: split the text into words with the GPT-2 pre-tokenizer regex, count distinct words,
 * start from the 256 byte symbols, and repeatedly merge the most frequent adjacent pair (ties:
 * the pair whose merged text sorts first, so training is deterministic). Pair counts are updated
 * incrementally from an index pair -> words, so each merge costs only the words it touches.
 */
import { UsageError } from "../errors.js";
import { GgufValueType, Metadata } from "../formats/metadata.js";
import { REGEX_GPT2 } from "./pretokenize.js";
import { byteLevelEncode, byteToChar } from "./unicode.js";

export interface BpeTrainOptions {
  /** Total vocabulary including the 256 bytes and the special tokens. */
  readonly vocabSize: number;
  /** Special tokens appended after the merges; the first is BOS, the second EOS. */
  readonly specials?: readonly string[];
  /** Words seen fewer times than this are ignored (speed on large corpora). */
  readonly minWordCount?: number;
}

export interface TrainedBpe {
  readonly tokens: string[];
  readonly merges: string[];
  readonly bosId: number;
  readonly eosId: number;
}

const DEFAULT_SPECIALS = ["<|bos|>", "<|eos|>"];

export function trainBpe(text: string, o: BpeTrainOptions): TrainedBpe {
  const specials = o.specials ?? DEFAULT_SPECIALS;
  const target = o.vocabSize - specials.length;
  if (!Number.isInteger(o.vocabSize) || target < 256) {
    throw new UsageError("vocabulary too small", { expected: `>= ${256 + specials.length} (256 bytes + special tokens)`, got: String(o.vocabSize) });
  }
  // 1. distinct words (byte-level strings) and their counts
  const counts = new Map<string, number>();
  const re = new RegExp(REGEX_GPT2, "gu");
  for (const m of text.matchAll(re)) {
    const w = byteLevelEncode(m[0]);
    counts.set(w, (counts.get(w) ?? 0) + 1);
  }
  const minCount = o.minWordCount ?? 1;
  const words: string[][] = [];
  const freq: number[] = [];
  for (const [w, c] of counts) {
    if (c < minCount) continue;
    words.push([...w]);
    freq.push(c);
  }
  // 2. initial vocabulary: the 256 byte symbols in byte order
  const tokens: string[] = [];
  for (let b = 0; b < 256; b++) tokens.push(byteToChar(b));
  const merges: string[] = [];
  // 3. pair counts and the index pair -> words containing it
  const SEP = "\u0001";
  const pairCount = new Map<string, number>();
  const where = new Map<string, Set<number>>();
  // Max-heap of (count, pair) with lazy deletion: an entry is live when its count is current.
  const heap: [number, string][] = [];
  const better = (x: [number, string], y: [number, string]): boolean => x[0] > y[0] || (x[0] === y[0] && x[1] < y[1]);
  const push = (e: [number, string]): void => {
    heap.push(e);
    for (let i = heap.length - 1; i > 0; ) {
      const parent = (i - 1) >> 1;
      if (!better(heap[i]!, heap[parent]!)) break;
      [heap[i], heap[parent]] = [heap[parent]!, heap[i]!];
      i = parent;
    }
  };
  const pop = (): [number, string] | undefined => {
    const top = heap[0];
    const last = heap.pop();
    if (heap.length > 0 && last !== undefined) {
      heap[0] = last;
      for (let i = 0; ; ) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < heap.length && better(heap[l]!, heap[m]!)) m = l;
        if (r < heap.length && better(heap[r]!, heap[m]!)) m = r;
        if (m === i) break;
        [heap[i], heap[m]] = [heap[m]!, heap[i]!];
        i = m;
      }
    }
    return top;
  };
  const touched = new Set<string>();
  const addPairs = (wi: number, sign: number): void => {
    const w = words[wi]!;
    for (let i = 0; i + 1 < w.length; i++) {
      const p = w[i]! + SEP + w[i + 1]!;
      pairCount.set(p, (pairCount.get(p) ?? 0) + sign * freq[wi]!);
      touched.add(p);
      if (sign > 0) {
        let s = where.get(p);
        if (s === undefined) where.set(p, (s = new Set()));
        s.add(wi);
      }
    }
  };
  const flushTouched = (): void => {
    for (const p of touched) {
      const c = pairCount.get(p) ?? 0;
      if (c > 0) push([c, p]);
    }
    touched.clear();
  };
  for (let wi = 0; wi < words.length; wi++) addPairs(wi, 1);
  flushTouched();
  while (tokens.length < target) {
    let top = pop();
    while (top !== undefined && pairCount.get(top[1]) !== top[0]) top = pop(); // stale entry
    if (top === undefined || top[0] < 2) break; // nothing worth merging
    const best = top[1];
    const [a, b] = best.split(SEP) as [string, string];
    const merged = a + b;
    merges.push(`${a} ${b}`);
    tokens.push(merged);
    for (const wi of where.get(best) ?? []) {
      const w = words[wi]!;
      addPairs(wi, -1);
      const next: string[] = [];
      for (let i = 0; i < w.length; i++) {
        if (i + 1 < w.length && w[i] === a && w[i + 1] === b) {
          next.push(merged);
          i++;
        } else next.push(w[i]!);
      }
      words[wi] = next;
      addPairs(wi, 1);
    }
    where.delete(best);
    pairCount.delete(best);
    touched.delete(best);
    flushTouched();
  }
  const bosId = tokens.length;
  tokens.push(...specials);
  return { tokens, merges, bosId, eosId: specials.length > 1 ? bosId + 1 : bosId };
}

/** GGUF tokenizer keys for a trained vocabulary (llama.cpp: model gpt2, pre "gpt-2"). */
export function bpeMetadata(bpe: TrainedBpe): Metadata {
  const m = new Metadata("trained tokenizer");
  const nSpecial = bpe.tokens.length - bpe.bosId;
  m.set("tokenizer.ggml.model", GgufValueType.STRING, "gpt2");
  m.set("tokenizer.ggml.pre", GgufValueType.STRING, "gpt-2");
  m.set("tokenizer.ggml.tokens", GgufValueType.ARRAY, bpe.tokens, GgufValueType.STRING);
  m.set("tokenizer.ggml.token_type", GgufValueType.ARRAY, bpe.tokens.map((_, i) => (i >= bpe.tokens.length - nSpecial ? 3 : 1)), GgufValueType.INT32);
  m.set("tokenizer.ggml.merges", GgufValueType.ARRAY, bpe.merges, GgufValueType.STRING);
  m.set("tokenizer.ggml.bos_token_id", GgufValueType.UINT32, bpe.bosId);
  m.set("tokenizer.ggml.eos_token_id", GgufValueType.UINT32, bpe.eosId);
  m.set("tokenizer.ggml.add_bos_token", GgufValueType.BOOL, true);
  m.set("tokenizer.ggml.add_eos_token", GgufValueType.BOOL, false);
  return m;
}
