/**
 * A binary min-heap of merge candidates, ordered by `key` (lower first), ties by `left` (lower
 * first): the pop order of both llama.cpp merge loops (SPM pushes -score, BPE the merge rank).
 * Each entry also carries `right`, `size` and `value` for the caller (staleness checks and the
 * merge result). Entries are stored interleaved in one Float64Array (5 slots each) so that a
 * sift step touches one cache line.
 */
const W = 5;

export class MergeHeap {
  private a: Float64Array;
  length = 0;

  constructor(capacity = 64) {
    this.a = new Float64Array(Math.max(4, capacity) * W);
  }

  clear(): void {
    this.length = 0;
  }

  push(key: number, left: number, right: number, size: number, value: number): void {
    if ((this.length + 1) * W > this.a.length) {
      const b = new Float64Array(this.a.length * 2);
      b.set(this.a);
      this.a = b;
    }
    const a = this.a;
    // Sift up with a hole: parents move down until the new entry's place is found.
    let i = this.length++;
    while (i > 0) {
      const p = (i - 1) >> 1;
      const pb = p * W;
      const kp = a[pb] as number;
      if (kp < key || (kp === key && (a[pb + 1] as number) < left)) break;
      const ib = i * W;
      a[ib] = kp;
      a[ib + 1] = a[pb + 1] as number;
      a[ib + 2] = a[pb + 2] as number;
      a[ib + 3] = a[pb + 3] as number;
      a[ib + 4] = a[pb + 4] as number;
      i = p;
    }
    const ib = i * W;
    a[ib] = key;
    a[ib + 1] = left;
    a[ib + 2] = right;
    a[ib + 3] = size;
    a[ib + 4] = value;
  }

  // The top entry, valid until the next push/pop.
  get topLeft(): number {
    return this.a[1] as number;
  }
  get topRight(): number {
    return this.a[2] as number;
  }
  get topSize(): number {
    return this.a[3] as number;
  }
  get topValue(): number {
    return this.a[4] as number;
  }

  /** Remove the top entry. */
  pop(): void {
    const n = --this.length;
    if (n === 0) return;
    const a = this.a;
    // Sift the last entry down from the root, with a hole.
    const lb = n * W;
    const key = a[lb] as number;
    const left = a[lb + 1] as number;
    let i = 0;
    for (;;) {
      let c = 2 * i + 1;
      if (c >= n) break;
      let cb = c * W;
      if (c + 1 < n) {
        const db = cb + W;
        const kc = a[cb] as number;
        const kd = a[db] as number;
        if (kd < kc || (kd === kc && (a[db + 1] as number) < (a[cb + 1] as number))) {
          c++;
          cb = db;
        }
      }
      const kc = a[cb] as number;
      if (key < kc || (key === kc && left < (a[cb + 1] as number))) break;
      const ib = i * W;
      a[ib] = kc;
      a[ib + 1] = a[cb + 1] as number;
      a[ib + 2] = a[cb + 2] as number;
      a[ib + 3] = a[cb + 3] as number;
      a[ib + 4] = a[cb + 4] as number;
      i = c;
    }
    const ib = i * W;
    a[ib] = key;
    a[ib + 1] = left;
    a[ib + 2] = a[lb + 2] as number;
    a[ib + 3] = a[lb + 3] as number;
    a[ib + 4] = a[lb + 4] as number;
  }
}
