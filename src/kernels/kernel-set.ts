import { InternalError, assert } from "../errors.js";
import { GgmlType } from "../tensor/ggml-type.js";

/**
 * The compute kernels of one lane (one thread and its WebAssembly memory).
 *
 * Every pointer is a byte offset into that lane's memory; every length is in elements unless it
 * says bytes. Two implementations exist behind this one interface:
 * - `wasm` (src/kernels/wasm-kernels.ts): AssemblyScript SIMD, relaxed SIMD when the runtime has it;
 * - `ref` (src/kernels/ref-kernels.ts): plain TypeScript over the same memory, the test oracle.
 * `SLIMLM_VALIDATE_KERNELS=1` wraps the fast set so that every call is checked against `ref`.
 *
 * Layouts (row-major, f32 unless said otherwise):
 * - activations X: [T][k]; matmul outputs Y: [T][ldy] (a lane writes its own columns, y already
 *   points at its first column).
 * - weights W: `rows` rows of k elements of `type` in the packed layout of src/kernels/packing.ts
 *   (groups of 4 rows interleaved, packedBytes(type, rows, k) bytes; W points at the first group).
 * - KV cache of one layer: [block][nKvHeads][blockSize][row], a row holding headDim values of the
 *   cache's KvType (kvRowBytes), located through a block table (i32 block ids, one per
 *   `blockSize` positions).
 */
export interface KernelSet {
  readonly name: string;

  /**
   * Convert `T` activation rows of `k` floats at `x` into `type`'s vecDot format at `dst`
   * (F32: copy; F16: f32 values rounded to f16 precision, stored as f32; Q8_0: 34-byte blocks;
   * Q8_K: 292-byte blocks). Returns nothing; the row stride at dst is `activationRowBytes(type, k)`.
   */
  quantizeActivations(type: GgmlType, x: number, dst: number, k: number, T: number): void;

  /**
   * y[t * ldy + r] = dot(W[r, :], Xq[t, :]) for r < rows, t < T.
   * `xq` holds T rows already converted by `quantizeActivations(type, ...)`.
   */
  matmul(type: GgmlType, w: number, xq: number, y: number, rows: number, k: number, T: number, ldy: number): void;

  /** out[t, i] = x[t, i] / sqrt(mean_i(x[t, :]^2) + eps) * w[i], for T rows of n; out may equal x. */
  rmsnorm(x: number, w: number, out: number, n: number, T: number, eps: number): void;

  /**
   * Rotate the first nRot dims of each of nHeads heads of T rows in place.
   * x: [T][rowStride] floats, head h of row t at x + (t * rowStride + h * headDim) * 4.
   * cosSin: [T][nRot / 2][2] (cos, sin) per row, precomputed by the caller.
   * neox = false: pairs (2i, 2i+1) (llama.cpp "normal"); neox = true: pairs (i, i + nRot/2).
   */
  rope(x: number, cosSin: number, T: number, nHeads: number, headDim: number, nRot: number, rowStride: number, neox: boolean): void;

  /**
   * Causal attention of one query token over `nKeys` cached positions of one sequence.
   * q, out: [nHeads][headDim]; query head h reads KV head floor(h / (nHeads / nKvHeads)).
   * kCache, vCache: one layer's pools of kvType rows (see layout above); blockTable: i32 block ids.
   * scratch: attentionScratchBytes(nKeys, headDim, kvType) bytes. out = softmax(scale * q.K^T) . V,
   * with K and V as stored (F16/Q8_0 rows converted to f32 exactly; q stays f32).
   */
  attention(
    q: number,
    out: number,
    kCache: number,
    vCache: number,
    blockTable: number,
    nKeys: number,
    nHeads: number,
    nKvHeads: number,
    headDim: number,
    blockSize: number,
    scale: number,
    scratch: number,
    kvType: KvType,
  ): void;

  /** Store n f32 values at x as one KV row of `type` at dst (F16: round to nearest even; Q8_0: as quantizeRowRef). */
  storeKv(type: KvType, x: number, dst: number, n: number): void;

  /**
   * Memory-read probe for bandwidth measurements: the XOR of the `bytes` bytes at `ptr` taken as
   * little-endian i32 words (a last partial word padded with zero bytes), as a signed i32.
   */
  readBytes(ptr: number, bytes: number): number;

  /** out[i] = silu(gate[i]) * up[i], i < n (out may alias either input). */
  swiglu(gate: number, up: number, out: number, n: number): void;

  /** out[i] = a[i] + b[i], i < n (out may alias either input). */
  add(a: number, b: number, out: number, n: number): void;

  /** x[t * rowStride + i] += bias[i] for i < n, t < T. */
  addBias(x: number, bias: number, n: number, T: number, rowStride: number): void;
}

/** Formats the matmul kernels compute on directly; every other type is converted at load. */
export const COMPUTED_TYPES: readonly GgmlType[] = [0, 1, 8, 2, 12, 14]; // F32 F16 Q8_0 Q4_0 Q4_K Q6_K

/**
 * The type a weight of `fileType` is computed in: itself when computed, Q8_0 for Q5_0 (converted
 * exactly at load), F32 for the rest (dequantized at load).
 */
export function computeTypeFor(fileType: GgmlType): GgmlType {
  return COMPUTED_TYPES.includes(fileType) ? fileType : fileType === GgmlType.Q5_0 ? GgmlType.Q8_0 : GgmlType.F32;
}

/**
 * Bytes of one activation row of `k` floats after `quantizeActivations(type, ...)`, where `type`
 * is the weight type: F32 and F16 keep f32 (F16 values rounded to f16 precision), Q8_0 and Q4_0
 * use Q8_0 blocks (34 bytes per 32), Q4_K and Q6_K use Q8_K blocks (292 bytes per 256).
 * `k` must be a multiple of the block size.
 */
export function activationRowBytes(type: GgmlType, k: number): number {
  switch (type) {
    case GgmlType.F32:
    case GgmlType.F16:
      return k * 4;
    case GgmlType.Q8_0:
    case GgmlType.Q4_0:
      assert(k % 32 === 0, () => `activationRowBytes: k=${k} is not a multiple of 32`);
      return (k / 32) * 34;
    case GgmlType.Q4_K:
    case GgmlType.Q6_K:
      assert(k % 256 === 0, () => `activationRowBytes: k=${k} is not a multiple of 256`);
      return (k / 256) * 292;
    default:
      throw new InternalError(`activationRowBytes: type ${type} is not a computed type`);
  }
}

/** Elements per weight block of a computed type (the granularity of `k`). */
export function computedBlockSize(type: GgmlType): number {
  switch (type) {
    case GgmlType.F32:
    case GgmlType.F16:
      return 1;
    case GgmlType.Q8_0:
    case GgmlType.Q4_0:
      return 32;
    case GgmlType.Q4_K:
    case GgmlType.Q6_K:
      return 256;
    default:
      throw new InternalError(`type ${type} is not a computed type`);
  }
}

/** Precision of the KV cache rows (`--kv-type`). */
export type KvType = "f32" | "f16" | "q8_0";
export const KV_TYPES: readonly KvType[] = ["f32", "f16", "q8_0"];

/** The kernels' numeric code of a KV type (ops.ts KV_F32, KV_F16, KV_Q8_0). */
export function kvTypeCode(t: KvType): number {
  return t === "f32" ? 0 : t === "f16" ? 1 : 2;
}

/** Bytes of one cached row of headDim values (Q8_0: 34-byte blocks of 32; headDim % 32 == 0). */
export function kvRowBytes(t: KvType, headDim: number): number {
  return t === "f32" ? headDim * 4 : t === "f16" ? headDim * 2 : (headDim / 32) * 34;
}

/** Whether a head size can be cached in `t` (Q8_0 needs whole 32-value blocks). */
export function kvTypeFits(t: KvType, headDim: number): boolean {
  return t !== "q8_0" || headDim % 32 === 0;
}

const align64 = (n: number): number => Math.ceil(n / 64) * 64;

/** Attention scratch for up to maxKeys keys: the scores, plus f32 copies of K and V rows when not F32. */
export function attentionScratchBytes(maxKeys: number, headDim: number, t: KvType): number {
  const scores = align64(maxKeys * 4);
  return t === "f32" ? scores : scores + 2 * align64(maxKeys * headDim * 4) + 64;
}
