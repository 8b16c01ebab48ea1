/**
 * SentencePiece-style BPE with scores (llama.cpp `llm_tokenizer_spm_session`): start from one
 * symbol per code point, repeatedly merge the adjacent pair whose concatenation is the vocabulary
 * entry with the highest score (ties: leftmost), then emit each symbol's token, or its UTF-8 bytes
 * as byte tokens when the symbol is not in the vocabulary.
 */
import { MergeHeap } from "./heap.js";
import { utf8Encode } from "./unicode.js";

export interface SpmVocab {
  readonly tokenToId: ReadonlyMap<string, number>;
  readonly scores: Float32Array;
  readonly size: number;
  /** Longest token in UTF-16 units: longer concatenations cannot be tokens. */
  readonly maxTokenUnits: number;
  /** Token of each byte for the fallback ("<0xXX>", else the one-byte text), -1 if none. */
  readonly byteTokens: Int32Array;
  /** What to emit for a byte with no token (llama.cpp throws); -1 to throw. */
  readonly unkId: number;
}

const NONE = -1;
const PAIR_CACHE_LIMIT = 1 << 20;
const SEGMENT_CACHE_LIMIT = 100_000;
const SEGMENT_CACHE_MAX_LEN = 64;

export class SpmEncoder {
  private readonly heap = new MergeHeap(1024);
  // (left id, right id) -> merged token id or NONE. Persistent: the vocabulary does not change.
  private readonly pairCache = new Map<number, number>();
  // UTF-16 units that some token has right before a U+2581 (for astral characters: their low
  // surrogate, which over-approximates and is therefore safe).
  private readonly joinsMeta = new Set<number>();
  private readonly segmentCache = new Map<string, readonly number[]>();

  constructor(private readonly vocab: SpmVocab) {
    for (const t of vocab.tokenToId.keys()) {
      for (let i = t.indexOf("\u2581", 1); i !== -1; i = t.indexOf("\u2581", i + 1)) this.joinsMeta.add(t.charCodeAt(i - 1));
    }
  }

  /**
   * Append the tokens of `text` (spaces already escaped as U+2581) to `out`.
   *
   * The text is cut before every U+2581 whose preceding character never precedes a U+2581 inside
   * a token. No vocabulary entry spans such a cut, so no bigram across it is ever queued and the
   * merge process of each side is independent of the other: tokenizing the pieces one by one
   * gives exactly llama.cpp's result, with small heaps and a per-piece cache.
   */
  encode(text: string, out: number[], onMissingByte: (byte: number) => number): void {
    let seg = 0;
    for (let i = text.indexOf("\u2581", 1); i !== -1; i = text.indexOf("\u2581", i + 1)) {
      if (this.joinsMeta.has(text.charCodeAt(i - 1))) continue;
      this.encodeSegment(text.slice(seg, i), out, onMissingByte);
      seg = i;
    }
    this.encodeSegment(seg === 0 ? text : text.slice(seg), out, onMissingByte);
  }

  private encodeSegment(text: string, out: number[], onMissingByte: (byte: number) => number): void {
    if (text.length > SEGMENT_CACHE_MAX_LEN) {
      this.merge(text, out, onMissingByte);
      return;
    }
    let ids = this.segmentCache.get(text);
    if (ids === undefined) {
      const fresh: number[] = [];
      this.merge(text, fresh, onMissingByte);
      if (this.segmentCache.size >= SEGMENT_CACHE_LIMIT) this.segmentCache.clear();
      this.segmentCache.set(text, fresh);
      ids = fresh;
    }
    for (const id of ids) out.push(id);
  }

  private lookup(text: string, start: number, end: number): number {
    return this.vocab.tokenToId.get(text.slice(start, end)) ?? NONE;
  }

  /** The merge loop proper over one piece of text. */
  private merge(text: string, out: number[], onMissingByte: (byte: number) => number): void {
    const n0 = text.length;
    if (n0 === 0) return;
    const { tokenToId, scores, size, maxTokenUnits } = this.vocab;
    // Symbols: code points, as [start, start + len) in UTF-16 units, linked by prev/next.
    const start = new Int32Array(n0);
    const len = new Int32Array(n0);
    const ids = new Int32Array(n0);
    const prev = new Int32Array(n0);
    const next = new Int32Array(n0);
    let n = 0;
    for (let i = 0; i < n0; ) {
      const c = text.charCodeAt(i);
      let l = 1;
      if (c >= 0xd800 && c <= 0xdbff && i + 1 < n0) {
        const d = text.charCodeAt(i + 1);
        if (d >= 0xdc00 && d <= 0xdfff) l = 2;
      }
      start[n] = i;
      len[n] = l;
      ids[n] = tokenToId.get(l === 1 ? text[i] ?? "" : text.slice(i, i + 2)) ?? NONE;
      prev[n] = n - 1;
      next[n] = i + l === n0 ? -1 : n + 1;
      n++;
      i += l;
    }

    const heap = this.heap;
    const cache = this.pairCache;
    heap.clear();
    const tryAdd = (l: number, r: number): void => {
      if (l === -1 || r === -1) return;
      const total = (len[l] as number) + (len[r] as number);
      if (total > maxTokenUnits) return;
      const a = ids[l] as number;
      const b = ids[r] as number;
      let tok: number;
      if (a >= 0 && b >= 0) {
        const key = a * size + b;
        const hit = cache.get(key);
        if (hit === undefined) {
          tok = this.lookup(text, start[l] as number, (start[l] as number) + total);
          if (cache.size >= PAIR_CACHE_LIMIT) cache.clear();
          cache.set(key, tok);
        } else tok = hit;
      } else {
        tok = this.lookup(text, start[l] as number, (start[l] as number) + total);
      }
      if (tok === NONE) return;
      heap.push(-(scores[tok] as number), l, r, total, tok);
    };

    for (let i = 1; i < n; i++) tryAdd(i - 1, i);

    while (heap.length > 0) {
      const l = heap.topLeft;
      const r = heap.topRight;
      const sz = heap.topSize;
      const tok = heap.topValue;
      heap.pop();
      const ll = len[l] as number;
      const rl = len[r] as number;
      // A symbol that merged since this pair was queued has another length: skip the entry.
      if (ll === 0 || rl === 0 || ll + rl !== sz) continue;
      len[l] = ll + rl;
      len[r] = 0;
      ids[l] = tok;
      const rn = next[r] as number;
      next[l] = rn;
      if (rn >= 0) prev[rn] = l;
      tryAdd(prev[l] as number, l);
      tryAdd(l, rn);
    }

    for (let i = 0; i !== -1; i = next[i] as number) {
      const id = ids[i] as number;
      if (id >= 0) {
        out.push(id);
        continue;
      }
      // Only single code points can be out of the vocabulary: every merge made a vocabulary entry.
      const s = start[i] as number;
      for (const b of utf8Encode(text.slice(s, s + (len[i] as number)))) {
        const bt = this.vocab.byteTokens[b] as number;
        out.push(bt >= 0 ? bt : onMissingByte(b));
      }
    }
  }
}
