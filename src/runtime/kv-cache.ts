/**
 * The KV cache as a pool of fixed-size blocks (`blockSize` positions of every layer and KV head).
 * A sequence owns a block table: block i holds its positions [i*blockSize, (i+1)*blockSize).
 *
 * Invariants: a block is either free (refCount 0, on the free list) or referenced by at least one
 * sequence. Reference counts let later work share blocks between sequences (prefix caching).
 */
import { ResourceError, assert } from "../errors.js";

export class BlockPool {
  private readonly refCount: Int32Array;
  /** Free block ids; a stack, so recently freed (still warm in cache) blocks are reused first. */
  private readonly freeList: number[] = [];

  constructor(
    readonly nBlocks: number,
    readonly blockSize: number,
  ) {
    this.refCount = new Int32Array(nBlocks);
    for (let i = nBlocks - 1; i >= 0; i--) this.freeList.push(i);
  }

  get freeBlocks(): number {
    return this.freeList.length;
  }

  get usedBlocks(): number {
    return this.nBlocks - this.freeList.length;
  }

  /** A free block with refCount 1, or undefined when the pool is exhausted. */
  allocate(): number | undefined {
    const id = this.freeList.pop();
    if (id !== undefined) this.refCount[id] = 1;
    return id;
  }

  retain(id: number): void {
    assert(this.refCount[id]! > 0, () => `retain of free block ${id}`);
    this.refCount[id]!++;
  }

  release(id: number): void {
    assert(this.refCount[id]! > 0, () => `release of free block ${id}`);
    if (--this.refCount[id]! === 0) this.freeList.push(id);
  }
}

/** One sequence's positions in the pool. */
export class SequenceKv {
  readonly blockTable: number[] = [];
  /** Positions [0, length) hold valid keys and values. */
  length = 0;

  constructor(private readonly pool: BlockPool) {}

  get capacity(): number {
    return this.blockTable.length * this.pool.blockSize;
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
    this.length = n;
    const keep = Math.ceil(n / this.pool.blockSize);
    while (this.blockTable.length > keep) this.pool.release(this.blockTable.pop()!);
  }

  release(): void {
    this.truncate(0);
  }
}
