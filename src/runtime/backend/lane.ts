/**
 * One lane: a thread, its WebAssembly memory and kernels, running the model's forward pass in
 * step with the other lanes (see ARCHITECTURE.md, "How a forward pass runs").
 *
 * Sharding bookkeeping: every activation buffer is either *full* (all columns valid in this lane)
 * or *sharded* by a matrix's row partition (this lane holds only its own columns). An op that
 * needs a full input gathers it: barrier, then copy the other lanes' columns from their memories.
 * NOTE: a lane must not overwrite columns that another lane may still be copying. Copies happen
 * right after a gather's barrier, so a write to a buffer gathered in the current barrier epoch
 * first waits at one more barrier (`beforeWrite`). Every lane runs the same op sequence, so
 * they all take the same barriers.
 */
import { assert } from "../../errors.js";
import type { KernelSet } from "../../kernels/kernel-set.js";
import { packedBytes, unpackRow } from "../../kernels/index.js";
import type { Act, AttentionSpec, ModelFamily, Ops, RopeSpec, Vec, Weight } from "../../models/ops.js";
import { getFormat } from "../../tensor/registry.js";
import type { BatchLayout } from "./batch.js";
import { BoundSpace, type LaneLayout, type LanePlan, type PlannedMatrix, kvRowOffset } from "./plan.js";
import type { LaneSync } from "./sync.js";

const FULL = -1;

export class Lane<Model> implements Ops {
  readonly layout: LaneLayout;
  readonly model: Model;
  private readonly f32: Float32Array;
  private readonly i32: Int32Array;
  private readonly u8: Uint8Array;
  /** Float views of every lane's memory, for gathers. */
  private readonly peers: Float32Array[];
  /** Per KV head, the lanes that hold its cache (several when the heads are shared). */
  private readonly headOwners: number[][];
  /** With shared KV heads: the lane attending for (head, token) in this forward pass. */
  private tokenOwner: ((h: number, t: number) => number) | undefined;
  private readonly peerBytes: Uint8Array[];

  // per-activation state (same in every lane)
  private readonly rows: Int32Array;
  private readonly shard: Int32Array; // FULL or the index of the partition (plan.partitions) splitting the columns
  private readonly gatheredAt: Float64Array;
  private readonly version: Float64Array;
  private epoch = 0;
  // activation conversion cache: skip re-quantizing the same input for q, k and v
  private quantAct = -1;
  private quantVersion = -1;
  private quantType = -1;
  // rope table cache, per forward
  private ropeKey: RopeSpec | undefined;
  // batch of the current forward pass
  private T = 0;
  private outputAct: Act | undefined;
  /**
   * Lane 0 only: called with every matrix product's input (full, `rows` x `w.cols` floats) before
   * the product, e.g. to collect activation statistics for calibrated quantization.
   */
  matmulObserver: ((w: PlannedMatrix, x: Float32Array, rows: number) => void) | undefined;

  constructor(
    readonly index: number,
    readonly plan: LanePlan,
    private readonly family: ModelFamily<unknown, Model>,
    readonly config: unknown,
    readonly kernels: KernelSet,
    memories: readonly WebAssembly.Memory[],
    private readonly sync: LaneSync,
    private readonly batch: BatchLayout,
  ) {
    this.layout = plan.lanes[index]!;
    const own = memories[index]!.buffer;
    this.f32 = new Float32Array(own);
    this.i32 = new Int32Array(own);
    this.u8 = new Uint8Array(own);
    this.peers = memories.map((m) => new Float32Array(m.buffer));
    this.peerBytes = memories.map((m) => new Uint8Array(m.buffer));
    const n = plan.acts.length;
    this.rows = new Int32Array(n);
    this.shard = new Int32Array(n).fill(FULL);
    this.gatheredAt = new Float64Array(n).fill(-1);
    this.version = new Float64Array(n);
    this.model = family.declare(config, new BoundSpace(plan));
    this.headOwners = Array.from({ length: plan.kv.nKvHeads }, (_, h) =>
      plan.kv.headRanges.flatMap(([lo, hi], lane) => (h >= lo && h < hi ? [lane] : [])),
    );
  }

  /** Run one forward pass over the batch in the control block. */
  forward(): void {
    const c = this.sync.ctrl;
    this.T = c[this.batch.nTokens]!;
    this.epoch++; // publishing the command was a barrier
    this.ropeKey = undefined;
    this.quantAct = -1;
    const tables = this.layout.blockTables >> 2;
    const nEntries = c[this.batch.tableStart + c[this.batch.nSeqs]! - 1]! + c[this.batch.tableLen + c[this.batch.nSeqs]! - 1]!;
    for (let i = 0; i < nEntries; i++) this.i32[tables + i] = c[this.batch.tables + i]!;
    this.shard.fill(FULL);
    this.tokenOwner = this.plan.kv.shared ? this.sharedTokenOwners() : undefined;
    this.family.forward(this.model, this);
  }

  /** Row-major float offset of row `t` of an activation. */
  private actF32(a: Act): number {
    return this.layout.act[a.id]! >> 2;
  }

  private barrier(): void {
    this.sync.barrier();
    this.epoch++;
  }

  private matrixOf(w: Weight): PlannedMatrix {
    return this.plan.matrices[w.id]!;
  }

  /** Make every column of `a` valid in this lane. */
  private ensureFull(a: Act): void {
    const s = this.shard[a.id]!;
    if (s === FULL) return;
    this.barrier();
    const bounds = this.plan.partitions[s]!;
    const rows = this.rows[a.id]!;
    for (let lane = 0; lane < this.plan.nLanes; lane++) {
      if (lane === this.index) continue;
      const c0 = bounds[lane]!;
      const c1 = bounds[lane + 1]!;
      if (c1 === c0) continue;
      for (let t = 0; t < rows; t++) this.copyFromPeer(lane, a, t, c0, c1);
    }
    this.shard[a.id] = FULL;
    this.gatheredAt[a.id] = this.epoch;
  }

  /** Columns [c0, c1) of row t of `a`, from lane `lane`'s memory into this lane's. */
  private copyFromPeer(lane: number, a: Act, t: number, c0: number, c1: number): void {
    // NOTE: every lane keeps an activation at the same offset in its memory.
    const o = this.actF32(a) + t * a.width;
    this.peers[this.index]!.set(this.peers[lane]!.subarray(o + c0, o + c1), o + c0);
  }

  private beforeWrite(a: Act): void {
    if (this.gatheredAt[a.id] === this.epoch) this.barrier();
    this.version[a.id]!++;
  }

  private written(a: Act, rows: number, shard: number): void {
    this.rows[a.id] = rows;
    this.shard[a.id] = this.plan.nLanes === 1 ? FULL : shard;
  }

  /** This lane's columns of a sharded activation, or all of them. */
  private columns(a: Act): [number, number] {
    const s = this.shard[a.id]!;
    if (s === FULL) return [0, a.width];
    return this.partColumns(s);
  }

  private partColumns(p: number): [number, number] {
    const b = this.plan.partitions[p]!;
    return [b[this.index]!, b[this.index + 1]!];
  }

  /** Gather `a` unless it is full or split exactly by partition `p`. */
  private ensureSplitBy(a: Act, p: number): void {
    const s = this.shard[a.id]!;
    if (s !== FULL && s !== p) this.ensureFull(a);
  }

  // ---------------------------------------------------------------- Ops

  embed(out: Act, table: Weight): void {
    this.beforeWrite(out);
    const m = this.matrixOf(table);
    const fmt = getFormat(m.type);
    const rowBytes = (m.cols / fmt.blockSize) * fmt.typeSize;
    const row = new Uint8Array(rowBytes);
    const c = this.sync.ctrl;
    const base = this.actF32(out);
    for (let t = 0; t < this.T; t++) {
      const tok = c[this.batch.tokens + t]!;
      assert(tok >= 0 && tok < m.rows, () => `token id ${tok} out of range`);
      let lane = 0;
      while (tok >= m.bounds[lane + 1]!) lane++;
      // the row lives packed (src/kernels/packing.ts) in that lane's slice of the table
      const at = this.plan.lanes[lane]!.matrix[m.id]!;
      const slice = this.peerBytes[lane]!.subarray(at, at + packedBytes(m.type, m.bounds[lane + 1]! - m.bounds[lane]!, m.cols));
      unpackRow(m.type, slice, tok - m.bounds[lane]!, m.cols, row);
      const dst = this.f32.subarray(base + t * out.width, base + (t + 1) * out.width);
      fmt.dequantizeRow(row, dst, m.cols);
    }
    this.written(out, this.T, FULL);
  }

  rmsnorm(out: Act, x: Act, w: Vec, eps: number): void {
    assert(out.width === x.width && x.width === w.length, "rmsnorm width mismatch");
    this.ensureFull(x);
    this.beforeWrite(out);
    const rows = this.rows[x.id]!;
    this.kernels.rmsnorm(this.layout.act[x.id]!, this.layout.vec[w.id]!, this.layout.act[out.id]!, x.width, rows, eps);
    this.written(out, rows, FULL);
  }

  matmul(out: Act, x: Act, w: Weight): void {
    const m = this.matrixOf(w);
    assert(x.width === m.cols && out.width === m.rows, () => `matmul shape mismatch at ${m.name}`);
    this.ensureFull(x);
    this.beforeWrite(out);
    const rows = this.rows[x.id]!;
    if (this.matmulObserver !== undefined) {
      const base = this.actF32(x);
      this.matmulObserver(m, this.f32.subarray(base, base + rows * x.width), rows);
    }
    const r0 = m.bounds[this.index]!;
    const nRows = m.bounds[this.index + 1]! - r0;
    if (nRows > 0) {
      const q = this.layout.quantScratch;
      if (this.quantAct !== x.id || this.quantVersion !== this.version[x.id] || this.quantType !== m.type) {
        this.kernels.quantizeActivations(m.type, this.layout.act[x.id]!, q, m.cols, rows);
        this.quantAct = x.id;
        this.quantVersion = this.version[x.id]!;
        this.quantType = m.type;
      }
      const y = this.layout.act[out.id]! + r0 * 4;
      this.kernels.matmul(m.type, this.layout.matrix[m.id]!, q, y, nRows, m.cols, rows, out.width);
      const bias = this.layout.bias[m.id]!;
      if (bias >= 0) this.kernels.addBias(y, bias, nRows, rows, out.width);
    }
    this.written(out, rows, m.partition);
  }

  rope(x: Act, spec: RopeSpec): void {
    const s = this.shard[x.id]!;
    // NOTE: decide from the whole partition, not this lane's columns: every lane must take the
    // same barriers.
    if (s !== FULL && this.plan.partitions[s]!.some((b) => b % spec.headDim !== 0)) {
      // split mid-head (heads did not divide evenly between lanes): rotate all heads
      this.ensureFull(x);
    }
    const [c0, c1] = this.columns(x);
    this.beforeWrite(x);
    const rows = this.rows[x.id]!;
    this.fillRopeTable(spec, rows);
    const nHeads = (c1 - c0) / spec.headDim;
    if (nHeads > 0) {
      this.kernels.rope(this.layout.act[x.id]! + c0 * 4, this.layout.ropeTable, rows, nHeads, spec.headDim, spec.nRot, x.width, spec.neox);
    }
  }

  /**
   * cos/sin of every (token, pair), computed as ggml_rope_cache_init does in f32:
   * theta = pos; per pair: angle = freqScale * theta / factor; theta *= base^(-2/nRot).
   */
  private fillRopeTable(s: RopeSpec, rows: number): void {
    if (this.ropeKey !== undefined && sameRope(this.ropeKey, s)) return;
    this.ropeKey = s;
    const f = Math.fround;
    const thetaScale = f(Math.pow(s.freqBase, -2 / s.nRot));
    const c = this.sync.ctrl;
    const tbl = this.layout.ropeTable >> 2;
    const pairs = s.nRot / 2;
    for (let t = 0; t < rows; t++) {
      let theta = f(c[this.batch.positions + t]!);
      const o = tbl + t * pairs * 2;
      for (let i = 0; i < pairs; i++) {
        const ff = s.freqFactors === undefined ? 1 : s.freqFactors[i]!;
        const angle = f(s.freqScale * f(theta / ff));
        this.f32[o + 2 * i] = Math.cos(angle);
        this.f32[o + 2 * i + 1] = Math.sin(angle);
        theta = f(theta * thetaScale);
      }
    }
  }

  attention(out: Act, q: Act, k: Act, v: Act, s: AttentionSpec): void {
    const group = s.nHeads / s.nKvHeads;
    const hd = s.headDim;
    // This lane attends for the heads whose KV cache it holds (a head it shares with another
    // lane: for its part of the tokens); q, k and v must hold those heads.
    const kv = this.plan.kv;
    if (kv.shared) {
      this.ensureFull(q);
      this.ensureFull(k);
      this.ensureFull(v);
    } else {
      this.ensureSplitBy(q, kv.qPartition);
      this.ensureSplitBy(k, kv.kvPartition);
      this.ensureSplitBy(v, kv.kvPartition);
    }
    const [h0, h1] = kv.headRanges[this.index]!;
    this.beforeWrite(out);
    const T = this.T;
    const c = this.sync.ctrl;
    const B = kv.blockSize;
    const kPool = this.layout.kCache[s.layer]!;
    const vPool = this.layout.vCache[s.layer]!;
    const tables = this.layout.blockTables >> 2;
    const kBase = this.layout.act[k.id]!;
    const vBase = this.layout.act[v.id]!;
    // 1. store k and v of every token (all before any attention: tokens of one chunk see each other)
    for (let t = 0; t < T; t++) {
      const pos = c[this.batch.positions + t]!;
      const seq = c[this.batch.seqOf + t]!;
      const blk = this.i32[tables + c[this.batch.tableStart + seq]! + Math.floor(pos / B)]!;
      for (let h = h0; h < h1; h++) {
        const dst = kvRowOffset(kv, h - h0, blk, pos % B);
        const src = (t * k.width + h * hd) * 4;
        this.kernels.storeKv(kv.kvType, kBase + src, kPool + dst, hd);
        this.kernels.storeKv(kv.kvType, vBase + src, vPool + dst, hd);
      }
    }
    // 2. attend: a KV head and its group of query heads per call
    const owner = this.tokenOwner;
    const qPtr = this.layout.act[q.id]!;
    const oPtr = this.layout.act[out.id]!;
    for (let t = 0; t < T; t++) {
      const pos = c[this.batch.positions + t]!;
      const seq = c[this.batch.seqOf + t]!;
      for (let h = h0; h < h1; h++) {
        if (owner !== undefined && owner(h, t) !== this.index) continue;
        const col = (t * q.width + h * group * hd) * 4;
        this.kernels.attention(
          qPtr + col,
          oPtr + col,
          kPool + kvRowOffset(kv, h - h0, 0, 0),
          vPool + kvRowOffset(kv, h - h0, 0, 0),
          this.layout.blockTables + c[this.batch.tableStart + seq]! * 4,
          pos + 1,
          group,
          1,
          hd,
          B,
          s.scale,
          this.layout.attnScratch,
          kv.kvType,
        );
      }
    }
    if (owner === undefined) {
      this.written(out, T, kv.qPartition);
      return;
    }
    // 3. shared heads: every lane wrote its heads' columns for its tokens; take the others'
    this.barrier();
    const w = group * hd;
    for (let lane = 0; lane < this.plan.nLanes; lane++) {
      if (lane === this.index) continue;
      const [l0, l1] = kv.headRanges[lane]!;
      for (let t = 0; t < T; t++) {
        for (let h = l0; h < l1; h++) {
          if (owner(h, t) === lane) this.copyFromPeer(lane, out, t, h * w, (h + 1) * w);
        }
      }
    }
    this.written(out, T, FULL);
    this.gatheredAt[out.id] = this.epoch;
  }

  /**
   * Which lane attends for (KV head h, token t) when some heads are shared: a head held by one
   * lane is its own; a head held by n lanes is split by tokens into n runs of about equal work
   * (a token's work grows with its position), in lane order. Every lane computes the same, once
   * per forward pass (the batch's positions fix it).
   */
  private sharedTokenOwners(): (h: number, t: number) => number {
    const kv = this.plan.kv;
    const c = this.sync.ctrl;
    const T = this.T;
    const before = new Float64Array(T + 1); // work of tokens [0, t)
    for (let t = 0; t < T; t++) before[t + 1] = before[t]! + c[this.batch.positions + t]! + 1;
    const owners = this.headOwners;
    return (h, t) => {
      const o = owners[h]!;
      if (o.length === 1) return o[0]!;
      return o[Math.min(o.length - 1, Math.floor((o.length * before[t]!) / before[T]!))]!;
    };
  }

  swiglu(out: Act, gate: Act, up: Act): void {
    assert(out.width === gate.width && gate.width === up.width, "swiglu width mismatch");
    if (this.shard[gate.id] !== this.shard[up.id]) {
      this.ensureFull(gate);
      this.ensureFull(up);
    }
    const [c0, c1] = this.columns(gate);
    this.beforeWrite(out);
    const rows = this.rows[gate.id]!;
    const g = this.layout.act[gate.id]!;
    const u = this.layout.act[up.id]!;
    const o = this.layout.act[out.id]!;
    if (c0 === 0 && c1 === gate.width) {
      this.kernels.swiglu(g, u, o, rows * gate.width);
    } else if (c1 > c0) {
      for (let t = 0; t < rows; t++) {
        const off = (t * gate.width + c0) * 4;
        this.kernels.swiglu(g + off, u + off, o + off, c1 - c0);
      }
    }
    this.written(out, rows, this.shard[gate.id]!);
  }

  add(out: Act, a: Act, b: Act): void {
    assert(out.width === a.width && a.width === b.width, "add width mismatch");
    assert(this.rows[a.id] === this.rows[b.id], "add row mismatch");
    this.ensureFull(a);
    this.ensureFull(b);
    this.beforeWrite(out);
    const rows = this.rows[a.id]!;
    this.kernels.add(this.layout.act[a.id]!, this.layout.act[b.id]!, this.layout.act[out.id]!, rows * a.width);
    this.written(out, rows, FULL);
  }

  selectOutputRows(x: Act): number {
    this.ensureFull(x);
    const c = this.sync.ctrl;
    const R = c[this.batch.nOutputRows]!;
    if (R === this.rows[x.id]) return R; // every row is an output row
    this.beforeWrite(x);
    const base = this.actF32(x);
    for (let i = 0; i < R; i++) {
      const r = c[this.batch.outputRows + i]!;
      if (r !== i) this.f32.copyWithin(base + i * x.width, base + r * x.width, base + (r + 1) * x.width);
    }
    this.written(x, R, FULL);
    return R;
  }

  output(x: Act): void {
    this.outputAct = x;
    // Only lane 0 needs the logits: gather there without marking the others full.
    if (this.shard[x.id] === FULL) return;
    if (this.index === 0) this.ensureFull(x);
    else this.barrier();
  }

  /** Lane 0 after forward: the rows given to `output` (a view into this lane's memory). */
  outputView(): Float32Array {
    const x = this.outputAct;
    assert(x !== undefined, "the model produced no output");
    const base = this.actF32(x);
    return this.f32.subarray(base, base + this.rows[x.id]! * x.width);
  }
}

function sameRope(a: RopeSpec, b: RopeSpec): boolean {
  return a.nRot === b.nRot && a.freqBase === b.freqBase && a.freqScale === b.freqScale && a.freqFactors === b.freqFactors;
}

