/**
 * A binary min-heap of merge candidates on typed arrays, ordered by `key` (lower first), ties by
 * `left` (lower first): the pop order of both llama.cpp merge loops (SPM pushes -score, BPE the
 * merge rank). Each entry also carries `right`, `size` and `value` for the caller (staleness
 * checks and the merge result).
 */
export class MergeHeap {
  private key: Float64Array;
  private left: Int32Array;
  private right: Int32Array;
  private size: Int32Array;
  private value: Int32Array;
  length = 0;

  constructor(capacity = 64) {
    const c = Math.max(4, capacity);
    this.key = new Float64Array(c);
    this.left = new Int32Array(c);
    this.right = new Int32Array(c);
    this.size = new Int32Array(c);
    this.value = new Int32Array(c);
  }

  clear(): void {
    this.length = 0;
  }

  private grow(): void {
    const c = this.key.length * 2;
    const k = new Float64Array(c);
    k.set(this.key);
    this.key = k;
    const l = new Int32Array(c);
    l.set(this.left);
    this.left = l;
    const r = new Int32Array(c);
    r.set(this.right);
    this.right = r;
    const s = new Int32Array(c);
    s.set(this.size);
    this.size = s;
    const v = new Int32Array(c);
    v.set(this.value);
    this.value = v;
  }

  private less(i: number, j: number): boolean {
    const ki = this.key[i] as number;
    const kj = this.key[j] as number;
    return ki < kj || (ki === kj && (this.left[i] as number) < (this.left[j] as number));
  }

  private move(from: number, to: number): void {
    this.key[to] = this.key[from] as number;
    this.left[to] = this.left[from] as number;
    this.right[to] = this.right[from] as number;
    this.size[to] = this.size[from] as number;
    this.value[to] = this.value[from] as number;
  }

  push(key: number, left: number, right: number, size: number, value: number): void {
    if (this.length === this.key.length) this.grow();
    // Sift up with a hole: parents move down until the new entry's place is found.
    let i = this.length++;
    while (i > 0) {
      const p = (i - 1) >> 1;
      const kp = this.key[p] as number;
      if (kp < key || (kp === key && (this.left[p] as number) < left)) break;
      this.move(p, i);
      i = p;
    }
    this.key[i] = key;
    this.left[i] = left;
    this.right[i] = right;
    this.size[i] = size;
    this.value[i] = value;
  }

  // The top entry, valid until the next push/pop.
  get topLeft(): number {
    return this.left[0] as number;
  }
  get topRight(): number {
    return this.right[0] as number;
  }
  get topSize(): number {
    return this.size[0] as number;
  }
  get topValue(): number {
    return this.value[0] as number;
  }

  /** Remove the top entry. */
  pop(): void {
    const n = --this.length;
    if (n === 0) return;
    // Sift the last entry down from the root, with a hole.
    const lastAt = n;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      const m = r < n && this.less(r, l) ? r : l;
      if (!this.less(m, lastAt)) break;
      this.move(m, i);
      i = m;
    }
    this.move(lastAt, i);
  }
}
