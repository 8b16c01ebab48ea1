/**
 * The KV cache as a pool of fixed-size blocks (`blockSize` positions of every layer and KV head),
 * with automatic prefix caching.
 *
 * A sequence owns a block table: block i holds its positions [i*blockSize, (i+1)*blockSize).
 * A block that a sequence has filled completely gets a hash: a chain over the tokens of all
 * blocks up to and including it (sha256 of the parent's hash and the block's token ids, plus an
 * optional salt), so equal hashes mean equal prefixes. Hashed blocks stay in the cache after
 * their sequences release them, until the pool needs them back.
 *
 * Invariants:
 * - refCount[b] > 0: some sequence uses b; b is not on the free list.
 * - refCount[b] === 0: b is on the free list. The free list is ordered least recently used
 *   first; allocation takes its head and forgets that block's hash (eviction).
 * - cache maps a hash to one block whose `blockHash` is that hash.
 * The free list is a Map (insertion ordered; delete + set moves a block to the end): O(1) for
 * every operation, with no linked-list bookkeeping of our own.
 *
 * Partial reuse (when the pool has a `copyRows`, i.e. a backend behind it): besides whole blocks,
 * a new sequence reuses the longest common prefix of the next block's tokens with any block that
 * followed the same prefix before (a full block, or the partial last block of a released
 * sequence), by copying those rows into a block of its own (llama.cpp's server reuses at token
 * granularity too; whole blocks alone lose up to blockSize - 1 positions per request). Blocks
 * with known contents are indexed by their parent (`children`); eviction drops them.
 */
import { createHash } from "node:crypto";
import { ResourceError, assert } from "../errors.js";

export class BlockPool {
  private readonly refCount: Int32Array;
  private readonly blockHash: (string | undefined)[];
  private readonly free = new Map<number, true>();
  private readonly cache = new Map<string, number>();
  /** Known contents: the tokens a block holds in its first slots, and its parent's key. */
  private readonly contents: (Int32Array | undefined)[];
  private readonly parentOf: (string | undefined)[];
  private readonly children = new Map<string, Set<number>>();
  /**
   * Copies the keys and values of positions [0, n) of block src into block dst (set by the
   * engine; without it only whole blocks are reused).
   */
  copyRows: ((src: number, dst: number, n: number) => void) | undefined;
  /** Prefix-cache counters, in tokens. */
  queriedTokens = 0;
  hitTokens = 0;

  constructor(
    readonly nBlocks: number,
    readonly blockSize: number,
  ) {
    this.refCount = new Int32Array(nBlocks);
    this.blockHash = new Array<string | undefined>(nBlocks);
    this.contents = new Array<Int32Array | undefined>(nBlocks);
    this.parentOf = new Array<string | undefined>(nBlocks);
    for (let i = 0; i < nBlocks; i++) this.free.set(i, true);
  }

  /** Blocks that can be allocated (free, including cached ones that would be evicted). */
  get freeBlocks(): number {
    return this.free.size;
  }

  /** Blocks referenced by at least one sequence. */
  get usedBlocks(): number {
    return this.nBlocks - this.free.size;
  }

  get cachedBlocks(): number {
    return this.cache.size;
  }

  /** A block with refCount 1 (evicting the least recently used cached block), or undefined. */
  allocate(): number | undefined {
    const it = this.free.keys().next();
    if (it.done) return undefined;
    const id = it.value;
    this.free.delete(id);
    const h = this.blockHash[id];
    if (h !== undefined) {
      if (this.cache.get(h) === id) this.cache.delete(h);
      this.blockHash[id] = undefined;
    }
    this.forgetContents(id);
    this.refCount[id] = 1;
    return id;
  }

  retain(id: number): void {
    if (this.refCount[id] === 0) {
      assert(this.free.delete(id), () => `block ${id} neither used nor free`);
    }
    this.refCount[id]!++;
  }

  release(id: number): void {
    assert(this.refCount[id]! > 0, () => `release of free block ${id}`);
    if (--this.refCount[id]! === 0) this.free.set(id, true);
  }

  refs(id: number): number {
    return this.refCount[id]!;
  }

  /**
   * Record that `id` is full and holds the prefix with this hash: `tokens` after the prefix whose
   * key is `parent` (see childKey).
   */
  commit(id: number, hash: string, parent: string, tokens: Int32Array): void {
    if (this.blockHash[id] !== undefined) return;
    this.blockHash[id] = hash;
    if (!this.cache.has(hash)) this.cache.set(hash, id);
    this.setContents(id, parent, tokens);
  }

  /**
   * Record that `id`, whose last user is about to release it, holds `tokens` (fewer than
   * blockSize) after the prefix whose key is `parent`: later sequences may copy a prefix of it.
   */
  retirePartial(id: number, parent: string, tokens: Int32Array): void {
    assert(this.refCount[id] === 1 && this.blockHash[id] === undefined, "retirePartial of a shared or full block");
    if (tokens.length > 0) this.setContents(id, parent, tokens);
  }

  /**
   * The block that best continues the prefix with key `parent` by tokens[start..start+max): the
   * longest common prefix (>= 1 token) among the blocks that followed it. [block, length] or
   * undefined.
   */
  bestContinuation(parent: string, tokens: readonly number[], start: number, max: number): [number, number] | undefined {
    const set = this.children.get(parent);
    if (set === undefined) return undefined;
    let best: [number, number] | undefined;
    for (const id of set) {
      const c = this.contents[id]!;
      const n = Math.min(c.length, max);
      let m = 0;
      while (m < n && c[m] === tokens[start + m]) m++;
      if (m > 0 && (best === undefined || m > best[1])) best = [id, m];
    }
    return best;
  }

  private setContents(id: number, parent: string, tokens: Int32Array): void {
    this.forgetContents(id);
    this.contents[id] = tokens;
    this.parentOf[id] = parent;
    let set = this.children.get(parent);
    if (set === undefined) this.children.set(parent, (set = new Set()));
    set.add(id);
  }

  private forgetContents(id: number): void {
    const p = this.parentOf[id];
    if (p === undefined) return;
    const set = this.children.get(p);
    if (set !== undefined) {
      set.delete(id);
      if (set.size === 0) this.children.delete(p);
    }
    this.contents[id] = undefined;
    this.parentOf[id] = undefined;
  }

  /** The cached block for a prefix hash, if any. */
  lookup(hash: string): number | undefined {
    return this.cache.get(hash);
  }

  /** Forget every cached prefix (blocks in use keep their contents). */
  clearCache(): void {
    this.cache.clear();
    this.children.clear();
    for (let i = 0; i < this.nBlocks; i++) {
      this.blockHash[i] = undefined;
      this.contents[i] = undefined;
      this.parentOf[i] = undefined;
    }
  }
}

/** Hash of a full block given its parent's hash (chain over the whole prefix). */
export function blockHash(parent: string, tokens: readonly number[], start: number, end: number, salt = ""): string {
  return hashOf(parent, tokenSlice(tokens, start, end), salt);
}

function hashOf(parent: string, block: Int32Array, salt: string): string {
  const h = createHash("sha256");
  h.update(parent);
  h.update(salt);
  h.update(new Uint8Array(block.buffer, block.byteOffset, block.byteLength));
  return h.digest("base64");
}

/** Key of the prefix a block follows: its parent's hash, or the salt for a first block. */
function childKey(parentHash: string, salt: string): string {
  return parentHash === "" ? `\u0000${salt}` : parentHash;
}

function tokenSlice(tokens: readonly number[], start: number, end: number): Int32Array {
  const out = new Int32Array(end - start);
  for (let i = start; i < end; i++) out[i - start] = tokens[i]!;
  return out;
}

/** One sequence's positions in the pool. */
export class SequenceKv {
  readonly blockTable: number[] = [];
  /** Positions [0, length) hold valid keys and values. */
  length = 0;
  /** Hashes of the full blocks committed so far (blockTable[i] holds hashes[i]). */
  private readonly hashes: string[] = [];
  /** The tokens given to the last commitFullBlocks (positions [0, length) hold their keys). */
  private tokens: readonly number[] | undefined;

  constructor(
    private readonly pool: BlockPool,
    /** Per-tenant salt: prefixes are only shared between sequences with the same salt. */
    private readonly salt = "",
  ) {}

  get capacity(): number {
    return this.blockTable.length * this.pool.blockSize;
  }

  /**
   * Reuse the longest cached prefix of `tokens` (whole blocks, and never all of `tokens`: the
   * last one must be computed to produce logits). Only on an empty sequence. Returns the number
   * of positions reused.
   */
  adoptCachedPrefix(tokens: readonly number[]): number {
    assert(this.length === 0 && this.blockTable.length === 0, "adoptCachedPrefix on a used sequence");
    const B = this.pool.blockSize;
    const maxBlocks = Math.floor((tokens.length - 1) / B);
    let parent = "";
    for (let b = 0; b < maxBlocks; b++) {
      const h = blockHash(parent, tokens, b * B, (b + 1) * B, this.salt);
      const id = this.pool.lookup(h);
      if (id === undefined) break;
      this.pool.retain(id);
      this.blockTable.push(id);
      this.hashes.push(h);
      parent = h;
    }
    this.length = this.blockTable.length * B;
    this.adoptPartialBlock(tokens, parent);
    this.pool.queriedTokens += tokens.length;
    this.pool.hitTokens += this.length;
    return this.length;
  }

  /** After the whole blocks: copy the longest known continuation's rows into a new block. */
  private adoptPartialBlock(tokens: readonly number[], parent: string): void {
    const copy = this.pool.copyRows;
    const start = this.length;
    const max = Math.min(this.pool.blockSize, tokens.length - 1 - start);
    if (copy === undefined || max < 1) return;
    const best = this.pool.bestContinuation(childKey(parent, this.salt), tokens, start, max);
    if (best === undefined) return;
    const [src, n] = best;
    this.pool.retain(src); // NOTE: so that allocating dst cannot evict it
    const dst = this.pool.allocate();
    if (dst !== undefined) {
      copy(src, dst, n);
      this.blockTable.push(dst);
      this.length = start + n;
    }
    this.pool.release(src);
  }

  /**
   * After positions [0, length) were computed from `tokens` (all tokens of the sequence so far),
   * hash every newly completed block so later sequences can reuse it.
   */
  commitFullBlocks(tokens: readonly number[]): void {
    const B = this.pool.blockSize;
    const full = Math.floor(this.length / B);
    this.tokens = tokens;
    for (let b = this.hashes.length; b < full; b++) {
      const parent = this.hashes[b - 1] ?? "";
      const block = tokenSlice(tokens, b * B, (b + 1) * B);
      const h = hashOf(parent, block, this.salt);
      this.hashes.push(h);
      this.pool.commit(this.blockTable[b]!, h, childKey(parent, this.salt), block);
    }
  }

  /** Make room for positions [0, n). Returns false (allocating nothing) if the pool is too small. */
  tryReserve(n: number): boolean {
    const need = Math.ceil(n / this.pool.blockSize) - this.blockTable.length;
    if (need <= 0) return true;
    if (need > this.pool.freeBlocks) return false;
    for (let i = 0; i < need; i++) this.blockTable.push(this.pool.allocate()!);
    return true;
  }

  reserve(n: number): void {
    if (!this.tryReserve(n)) {
      throw new ResourceError("the KV cache is full", {
        expected: `room for ${n} positions`,
        got: `${this.pool.freeBlocks * this.pool.blockSize + this.capacity} positions`,
        hint: "use a larger --ctx",
      });
    }
  }

  /** Forget positions >= n (blocks past the end return to the pool). */
  truncate(n: number): void {
    assert(n >= 0 && n <= this.length, "truncate beyond length");
    const keep = Math.ceil(n / this.pool.blockSize);
    // NOTE: positions after n in a kept block will be overwritten; a block shared through the
    // prefix cache must not be (no copy-on-write here).
    assert(n % this.pool.blockSize === 0 || this.pool.refs(this.blockTable[keep - 1]!) === 1, "truncate into a shared block");
    this.length = n;
    while (this.blockTable.length > keep) this.pool.release(this.blockTable.pop()!);
    this.hashes.length = Math.min(this.hashes.length, Math.floor(n / this.pool.blockSize));
  }

  /** Give every block back; a partly filled last block stays known for partial reuse. */
  release(): void {
    const B = this.pool.blockSize;
    const full = Math.floor(this.length / B);
    const last = this.blockTable[full];
    if (this.tokens !== undefined && this.length % B !== 0 && last !== undefined && this.hashes.length === full && this.pool.refs(last) === 1) {
      this.pool.retirePartial(last, childKey(this.hashes[full - 1] ?? "", this.salt), tokenSlice(this.tokens, full * B, this.length));
    }
    this.tokens = undefined;
    this.truncate(0);
  }
}
