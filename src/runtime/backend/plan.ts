/**
 * The lane plan: which rows of which weight each lane owns, and where everything lives in each
 * lane's WebAssembly memory. Built once on the loading thread by running the model's `declare`
 * against a recording WeightSpace; sent as plain data to the workers, which run `declare` again
 * against a `BoundSpace` to get the very same handles.
 */
import { ModelFormatError, ResourceError, UsageError, assert } from "../../errors.js";
import type { WeightSource } from "../../formats/weights.js";
import type { Act, KvCacheShape, MatrixOptions, Vec, Weight, WeightSpace } from "../../models/ops.js";
import { GgmlType } from "../../tensor/ggml-type.js";
import { getFormat } from "../../tensor/registry.js";
import { type KvType, computeTypeFor, activationRowBytes, attentionScratchBytes, kvRowBytes, kvTypeFits } from "../../kernels/kernel-set.js";
import { KERNEL_RESERVED_BYTES, packedBytes } from "../../kernels/index.js";
import type { BatchCapacity } from "./batch.js";

export interface PlannedMatrix extends Weight {
  /** Type in the file. */
  readonly fileType: GgmlType;
  /**
   * Type the kernels compute on: fileType when computed, Q8_0 for Q5_0 (converted exactly at
   * load: same scale, quants q - 16), F32 for the other storage-only types.
   */
  readonly type: GgmlType;
  readonly bias: string | undefined;
  /** Row boundaries per lane: lane i owns rows [bounds[i], bounds[i+1]). */
  readonly bounds: readonly number[];
  /** Index of `bounds` in LanePlan.partitions (how the product's columns are split). */
  readonly partition: number;
}

export interface PlannedAct extends Act {
  readonly perOutputRow: boolean;
}

export interface KvPlan extends KvCacheShape {
  /** Positions per block. */
  readonly blockSize: number;
  readonly nBlocks: number;
  /** KV heads per lane: lane i holds the cache of KV heads [headRanges[i][0], headRanges[i][1]). */
  readonly headRanges: readonly (readonly [number, number])[];
  /**
   * Some head is held by two lanes (the heads do not divide evenly: 3 on 2 lanes), which split
   * its attention by tokens (see kvHeadRanges). Attention then reads full q, k and v.
   */
  readonly shared: boolean;
  /** Without shared heads: partitions (LanePlan.partitions) of q-wide and k/v-wide activations by the lanes' heads. */
  readonly qPartition: number;
  readonly kvPartition: number;
  /** Precision of the cached rows. */
  readonly kvType: KvType;
}

export interface LaneLayout {
  readonly bytes: number;
  readonly pages: number;
  readonly act: readonly number[];
  readonly matrix: readonly number[];
  readonly bias: readonly number[];
  readonly vec: readonly number[];
  /** Activations converted for the matmul kernels: maxTokens rows of the widest conversion. */
  readonly quantScratch: number;
  /** maxContext floats of attention scores. */
  readonly attnScratch: number;
  /** RoPE cos/sin table: maxTokens x nRot/2 x 2 floats. */
  readonly ropeTable: number;
  /** i32 block tables of the batch. */
  readonly blockTables: number;
  /** Per layer, the K and V pools of this lane's KV heads: [head][block][slot][row of kvType]. */
  readonly kCache: readonly number[];
  readonly vCache: readonly number[];
}

export interface LanePlan {
  readonly family: string;
  readonly nLanes: number;
  readonly matrices: readonly PlannedMatrix[];
  /** Distinct column splits of activations: partition p gives lane i columns [p[i], p[i+1]). */
  readonly partitions: readonly (readonly number[])[];
  readonly vectors: readonly Vec[];
  readonly acts: readonly PlannedAct[];
  readonly kv: KvPlan;
  readonly small: Readonly<Record<string, readonly number[]>>;
  readonly capacity: BatchCapacity;
  /** Longest sequence (positions) the attention scratch can hold. */
  readonly maxContext: number;
  readonly ropeMaxPairs: number;
  readonly lanes: readonly LaneLayout[];
}

export interface PlanOptions {
  readonly nLanes: number;
  readonly capacity: BatchCapacity;
  /** Total KV positions over all sequences. */
  readonly kvTokens: number;
  readonly kvBlockSize: number;
  readonly maxContext: number;
  /** Precision of the cached K and V rows. Default f32. */
  readonly kvType?: KvType;
}

/** Rows are split in multiples of this when a matrix does not ask for a unit. */
const DEFAULT_SHARD_UNIT = 4;
const ALIGN = 64;
const MAX_PAGES = 65535; // one WebAssembly memory: 4 GiB - 64 KiB
const PAGE = 65536;

/** Lane i of n gets units [floor(i*n/L), floor((i+1)*n/L)); returns row boundaries. */
export function partition(rows: number, unit: number, nLanes: number): number[] {
  const units = Math.ceil(rows / unit);
  const bounds: number[] = [];
  for (let i = 0; i <= nLanes; i++) bounds.push(Math.min(rows, Math.floor((i * units) / nLanes) * unit));
  return bounds;
}

/**
 * The KV heads each lane holds, [lo, hi) per lane: lane i of L takes heads [floor(i n / L),
 * ceil((i + 1) n / L)). When L divides n the ranges are disjoint; otherwise a head on a boundary
 * (head 1 of 3 on 2 lanes) is in both neighbours' ranges: both cache its keys and values and each
 * attends for part of the tokens, so neither lane does twice the other's attention.
 */
export function kvHeadRanges(nKvHeads: number, nLanes: number): [number, number][] {
  const r: [number, number][] = [];
  for (let i = 0; i < nLanes; i++) r.push([Math.floor((i * nKvHeads) / nLanes), Math.ceil(((i + 1) * nKvHeads) / nLanes)]);
  return r;
}

/**
 * Byte offset, inside one layer's K or V pool of a lane, of the row of (the lane's j-th KV head,
 * block, slot): pools are [head][block][slot][row], so a head's slots of one block are contiguous.
 */
export function kvRowOffset(kv: KvPlan, j: number, block: number, slot: number): number {
  return ((j * kv.nBlocks + block) * kv.blockSize + slot) * kvRowBytes(kv.kvType, kv.headDim);
}

/** KV heads cached over all lanes (more than nKvHeads when some are shared). */
export function kvHeadsStored(nKvHeads: number, nLanes: number): number {
  return kvHeadRanges(nKvHeads, nLanes).reduce((n, [lo, hi]) => n + hi - lo, 0);
}

/**
 * Bytes of a lane's slice of `rows` rows of a matrix in its computed type: the kernels' packed
 * layout (src/kernels/packing.ts), rounded up to whole groups of 4 rows.
 */
export function weightBytes(type: GgmlType, rows: number, cols: number): number {
  return packedBytes(type, rows, cols);
}

/** Records a model's declarations against a file's tensors. */
export class RecordingSpace implements WeightSpace {
  readonly matrices: PlannedMatrix[] = [];
  readonly partitions: number[][] = [];
  readonly vectors: Vec[] = [];
  readonly acts: PlannedAct[] = [];
  readonly small: Record<string, number[]> = {};
  kv: KvCacheShape | undefined;

  constructor(
    private readonly weights: WeightSource,
    private readonly nLanes: number,
  ) {}

  has(name: string): boolean {
    return this.weights.get(name) !== undefined;
  }

  private tensor(name: string, dims: readonly number[]) {
    const t = this.weights.get(name);
    if (t === undefined) {
      throw new ModelFormatError("missing tensor", { file: this.weights.path, field: name, hint: "the file is incomplete or not a supported architecture" });
    }
    const got = t.dims.length === 1 && dims.length === 2 && dims[1] === 1 ? [...t.dims, 1] : t.dims;
    if (got.length !== dims.length || got.some((d, i) => d !== dims[i])) {
      throw new ModelFormatError("tensor has the wrong shape", {
        file: this.weights.path,
        field: name,
        expected: `[${dims.join(", ")}]`,
        got: `[${t.dims.join(", ")}]`,
      });
    }
    return t;
  }

  matrix(name: string, opts: MatrixOptions): Weight {
    const existing = this.matrices.find((m) => m.name === name);
    if (existing !== undefined) return existing;
    const [cols, rows] = opts.shape;
    const t = this.tensor(name, opts.shape);
    getFormat(t.type, name); // unsupported types fail here, naming the tensor
    const type = computeTypeFor(t.type);
    if (opts.bias !== undefined) this.tensor(opts.bias, [rows]);
    // A unit that does not divide evenly between the lanes (3 KV heads on 2 lanes) would leave
    // one lane with twice the work: split evenly instead (the runtime then gathers whole heads).
    const unit = opts.shardUnit ?? DEFAULT_SHARD_UNIT;
    const even = Math.ceil(rows / unit) % this.nLanes === 0;
    const bounds = partition(rows, even ? unit : DEFAULT_SHARD_UNIT, this.nLanes);
    const m: PlannedMatrix = {
      id: this.matrices.length,
      name,
      rows,
      cols,
      fileType: t.type,
      type,
      bias: opts.bias,
      bounds,
      partition: this.partitionIndex(bounds),
    };
    this.matrices.push(m);
    return m;
  }

  /** Index of a column split, registering it on first use. */
  partitionIndex(bounds: readonly number[]): number {
    const i = this.partitions.findIndex((p) => p.length === bounds.length && p.every((x, j) => x === bounds[j]));
    if (i >= 0) return i;
    this.partitions.push([...bounds]);
    return this.partitions.length - 1;
  }

  vector(name: string, length: number): Vec {
    this.tensor(name, [length]);
    const v: Vec = { id: this.vectors.length, name, length };
    this.vectors.push(v);
    return v;
  }

  readSmall(name: string, length: number): Float32Array {
    const t = this.tensor(name, [length]);
    const values = readTensorF32(this.weights, name, t.type, length);
    this.small[name] = Array.from(values);
    return values;
  }

  activation(name: string, width: number, opts?: { perOutputRow?: boolean }): Act {
    const a: PlannedAct = { id: this.acts.length, name, width, perOutputRow: opts?.perOutputRow ?? false };
    this.acts.push(a);
    return a;
  }

  kvCache(shape: KvCacheShape): void {
    this.kv = shape;
  }
}

/** The same declarations, answered from a finished plan (in every lane). */
export class BoundSpace implements WeightSpace {
  private nextMatrix = 0;
  private nextVec = 0;
  private nextAct = 0;

  constructor(private readonly plan: LanePlan) {}

  has(name: string): boolean {
    return (
      this.plan.matrices.some((m) => m.name === name || m.bias === name) ||
      this.plan.vectors.some((v) => v.name === name) ||
      Object.hasOwn(this.plan.small, name)
    );
  }

  matrix(name: string): Weight {
    const seen = this.plan.matrices.find((m) => m.name === name && m.id < this.nextMatrix);
    if (seen !== undefined) return seen;
    const m = this.plan.matrices[this.nextMatrix++];
    assert(m !== undefined && m.name === name, () => `plan/declare mismatch at matrix ${name}`);
    return m;
  }

  vector(name: string): Vec {
    const v = this.plan.vectors[this.nextVec++];
    assert(v !== undefined && v.name === name, () => `plan/declare mismatch at vector ${name}`);
    return v;
  }

  readSmall(name: string): Float32Array {
    const v = this.plan.small[name];
    assert(v !== undefined, () => `plan has no small tensor ${name}`);
    return Float32Array.from(v);
  }

  activation(name: string): Act {
    const a = this.plan.acts[this.nextAct++];
    assert(a !== undefined && a.name === name, () => `plan/declare mismatch at activation ${name}`);
    return a;
  }

  kvCache(): void {}
}

/** Read a whole (small) tensor as f32, converting from its file type. */
export function readTensorF32(weights: WeightSource, name: string, type: GgmlType, length: number): Float32Array {
  const f = getFormat(type, name);
  const bytes = new Uint8Array((length / f.blockSize) * f.typeSize);
  weights.readInto(name, 0, bytes);
  const out = new Float32Array(length);
  f.dequantizeRow(bytes, out, length);
  return out;
}

/** Lay out every lane's memory. Throws ResourceError when a lane would exceed 4 GiB. */
export function layoutLanes(rec: RecordingSpace, family: string, opts: PlanOptions): LanePlan {
  const kvShape = rec.kv;
  assert(kvShape !== undefined, "model declared no KV cache");
  const { nLanes, capacity } = opts;
  const blockSize = opts.kvBlockSize;
  const nBlocks = Math.ceil(opts.kvTokens / blockSize);
  const headBounds = partition(kvShape.nKvHeads, 1, nLanes);
  const headRanges = kvHeadRanges(kvShape.nKvHeads, nLanes);
  const shared = kvHeadsStored(kvShape.nKvHeads, nLanes) > kvShape.nKvHeads;
  const group = kvShape.nHeads / kvShape.nKvHeads;
  const qPartition = rec.partitionIndex(headBounds.map((h) => h * group * kvShape.headDim));
  const kvPartition = rec.partitionIndex(headBounds.map((h) => h * kvShape.headDim));
  const ropeMaxPairs = kvShape.headDim / 2; // nRot <= headDim
  const kvType = opts.kvType ?? "f32";
  if (!kvTypeFits(kvType, kvShape.headDim)) {
    throw new UsageError(`this model's heads cannot be cached as ${kvType}`, {
      expected: "a head size that is a multiple of 32",
      got: String(kvShape.headDim),
      hint: "use --kv-type f16 or f32",
    });
  }
  const kvRow = kvRowBytes(kvType, kvShape.headDim);
  let maxQuantRow = 0;
  for (const m of rec.matrices) maxQuantRow = Math.max(maxQuantRow, activationRowBytes(m.type, m.cols));

  const lanes: LaneLayout[] = [];
  for (let lane = 0; lane < nLanes; lane++) {
    let at = KERNEL_RESERVED_BYTES;
    const take = (bytes: number): number => {
      const p = at;
      at += Math.ceil(bytes / ALIGN) * ALIGN;
      return p;
    };
    const act = rec.acts.map((a) => take((a.perOutputRow ? capacity.maxOutputRows : capacity.maxTokens) * a.width * 4));
    const quantScratch = take(capacity.maxTokens * maxQuantRow);
    const attnScratch = take(attentionScratchBytes(opts.maxContext, kvShape.headDim, kvType));
    const ropeTable = take(capacity.maxTokens * ropeMaxPairs * 2 * 4);
    const blockTables = take(capacity.maxTableEntries * 4);
    const vec = rec.vectors.map((v) => take(v.length * 4));
    const bias = rec.matrices.map((m) => (m.bias === undefined ? -1 : take((m.bounds[lane + 1]! - m.bounds[lane]!) * 4)));
    const matrix = rec.matrices.map((m) => take(weightBytes(m.type, m.bounds[lane + 1]! - m.bounds[lane]!, m.cols)));
    const localKv = headRanges[lane]![1] - headRanges[lane]![0];
    const poolBytes = nBlocks * localKv * blockSize * kvRow;
    const kCache: number[] = [];
    const vCache: number[] = [];
    for (let l = 0; l < kvShape.nLayers; l++) {
      kCache.push(take(poolBytes));
      vCache.push(take(poolBytes));
    }
    const pages = Math.ceil(at / PAGE);
    if (pages > MAX_PAGES) {
      throw new ResourceError("model does not fit in the lanes' memories", {
        expected: `<= 4 GiB per lane`,
        got: `${(at / 2 ** 30).toFixed(2)} GiB in lane ${lane} of ${nLanes}`,
        hint: "use more threads (each lane holds 1/threads of the weights), a smaller context or a smaller KV cache",
      });
    }
    lanes.push({ bytes: at, pages, act, matrix, bias, vec, quantScratch, attnScratch, ropeTable, blockTables, kCache, vCache });
  }
  return {
    family,
    nLanes,
    matrices: rec.matrices,
    partitions: rec.partitions,
    vectors: rec.vectors,
    acts: rec.acts,
    kv: { ...kvShape, blockSize, nBlocks, headRanges, shared, qPartition, kvPartition, kvType },
    small: rec.small,
    capacity,
    maxContext: opts.maxContext,
    ropeMaxPairs,
    lanes,
  };
}
