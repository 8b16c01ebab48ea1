/**
 * Merge-rank BPE (llama.cpp `llm_tokenizer_bpe_session`, Hugging Face `BPE::merge_word`): start
 * from one symbol per character, repeatedly apply the adjacent merge with the lowest rank (ties:
 * leftmost). Symbols are interned "pieces": vocabulary tokens keep their id, other strings that
 * appear in merges get ids from `vocabSize` up, so the inner loop compares integers only.
 */
import { MergeHeap } from "./heap.js";

export class BpeMerges {
  /** Texts of pieces that are not vocabulary tokens (piece id - vocabSize). */
  readonly extraPieces: string[] = [];
  private readonly extraIds = new Map<string, number>();
  // Open-addressing hash of (left, right) -> merge index; left = -1 marks a free slot.
  private slotLeft = new Int32Array(0);
  private slotRight = new Int32Array(0);
  private slotIndex = new Int32Array(0);
  private mask = 0;
  private ranks = new Int32Array(0);
  private results = new Int32Array(0);
  private count = 0;
  private pending: number[] = [];

  constructor(
    private readonly tokenToId: ReadonlyMap<string, number>,
    readonly vocabSize: number,
  ) {}

  /** Piece id of a text, or -1 when it is neither a token nor part of a merge. */
  pieceId(text: string): number {
    return this.tokenToId.get(text) ?? this.extraIds.get(text) ?? -1;
  }

  intern(text: string): number {
    let id = this.pieceId(text);
    if (id < 0) {
      id = this.vocabSize + this.extraPieces.length;
      this.extraPieces.push(text);
      this.extraIds.set(text, id);
    }
    return id;
  }

  /**
   * Queue a merge; `finish()` builds the table. With `keep: "first"` a repeated pair keeps its
   * first (lowest) rank, as llama.cpp's map emplace does; "last" lets the later one win, as Hugging
   * Face's HashMap collect does.
   */
  add(left: number, right: number, result: number, rank: number): void {
    this.pending.push(left, right, result, rank);
  }

  private static hash(a: number, b: number): number {
    return (Math.imul(a, 0x9e3779b1) ^ Math.imul(b + 0x7f4a7c15, 0x85ebca77)) >>> 0;
  }

  finish(keep: "first" | "last"): void {
    const p = this.pending;
    const n = p.length / 4;
    let cap = 16;
    while (cap < n * 2) cap *= 2;
    this.mask = cap - 1;
    this.slotLeft = new Int32Array(cap).fill(-1);
    this.slotRight = new Int32Array(cap);
    this.slotIndex = new Int32Array(cap);
    this.ranks = new Int32Array(n);
    this.results = new Int32Array(n);
    this.count = 0;
    for (let i = 0; i < p.length; i += 4) {
      const l = p[i] as number;
      const r = p[i + 1] as number;
      let h = BpeMerges.hash(l, r) & this.mask;
      while (this.slotLeft[h] !== -1 && (this.slotLeft[h] !== l || this.slotRight[h] !== r)) h = (h + 1) & this.mask;
      if (this.slotLeft[h] === -1) {
        this.slotLeft[h] = l;
        this.slotRight[h] = r;
        this.slotIndex[h] = this.count;
        this.ranks[this.count] = p[i + 3] as number;
        this.results[this.count] = p[i + 2] as number;
        this.count++;
      } else if (keep === "last") {
        const at = this.slotIndex[h] as number;
        this.ranks[at] = p[i + 3] as number;
        this.results[at] = p[i + 2] as number;
      }
    }
    this.pending = [];
  }

  /** Number of distinct merges. */
  get size(): number {
    return this.count;
  }

  /** Merge index of a pair of pieces, or -1. */
  find(left: number, right: number): number {
    if (left < 0 || right < 0) return -1;
    const sl = this.slotLeft;
    let h = BpeMerges.hash(left, right) & this.mask;
    for (;;) {
      const v = sl[h] as number;
      if (v === -1) return -1;
      if (v === left && this.slotRight[h] === right) return this.slotIndex[h] as number;
      h = (h + 1) & this.mask;
    }
  }

  rank(index: number): number {
    return this.ranks[index] as number;
  }

  result(index: number): number {
    return this.results[index] as number;
  }

  /** Text of a piece id (vocabulary tokens via `tokenText`). */
  pieceText(id: number, tokenText: (id: number) => string): string {
    return id < this.vocabSize ? tokenText(id) : (this.extraPieces[id - this.vocabSize] ?? "");
  }
}

/**
 * Scratch space for merging one word; `merge` rewrites `syms[0..n)` (piece ids; -1 never merges)
 * and returns the new count. `spans` (character count of each symbol) follows the merges.
 */
export class BpeWordMerger {
  private heap = new MergeHeap(256);
  private prev = new Int32Array(64);
  private next = new Int32Array(64);
  private alive = new Uint8Array(64);

  constructor(private readonly merges: BpeMerges) {}

  merge(syms: Int32Array, spans: Int32Array, n: number): number {
    if (n < 2) return n;
    if (this.prev.length < n) {
      const c = Math.max(n, this.prev.length * 2);
      this.prev = new Int32Array(c);
      this.next = new Int32Array(c);
      this.alive = new Uint8Array(c);
    }
    const { prev, next, alive, heap, merges } = this;
    heap.clear();
    for (let i = 0; i < n; i++) {
      prev[i] = i - 1;
      next[i] = i + 1 < n ? i + 1 : -1;
      alive[i] = 1;
    }
    const tryAdd = (l: number, r: number): void => {
      if (l === -1 || r === -1) return;
      const a = syms[l] as number;
      const b = syms[r] as number;
      const m = merges.find(a, b);
      if (m < 0) return;
      // `size` carries the left piece, `value` the right one: the entry is stale once either changed.
      heap.push(merges.rank(m), l, r, a, b);
    };
    for (let i = 1; i < n; i++) tryAdd(i - 1, i);

    while (heap.length > 0) {
      const l = heap.topLeft;
      const r = heap.topRight;
      const a = heap.topSize;
      const b = heap.topValue;
      heap.pop();
      if (alive[l] === 0 || alive[r] === 0 || next[l] !== r || syms[l] !== a || syms[r] !== b) continue;
      const m = merges.find(a, b);
      syms[l] = merges.result(m);
      spans[l] = (spans[l] as number) + (spans[r] as number);
      alive[r] = 0;
      const rn = next[r] as number;
      next[l] = rn;
      if (rn >= 0) prev[rn] = l;
      tryAdd(prev[l] as number, l);
      tryAdd(l, rn);
    }

    let k = 0;
    for (let i = 0; i !== -1; i = next[i] as number) {
      syms[k] = syms[i] as number;
      spans[k] = spans[i] as number;
      k++;
    }
    return k;
  }
}
