import type { GgmlType } from "./ggml-type.js";

/**
 * A tensor storage format: a block layout of `blockSize` elements in `typeSize` bytes.
 * F32/F16/BF16 are formats with blockSize 1. Every row of a 2-D tensor is a whole number of
 * blocks (rowLength % blockSize === 0).
 *
 * All routines work on byte views (`Uint8Array` with any byteOffset) so they run equally on file
 * buffers, Node Buffers and WebAssembly memories. They are the plain-TypeScript references: the
 * fast kernels in src/kernels are tested against them.
 */
export interface BlockFormat {
  readonly type: GgmlType;
  /** llama.cpp's lower-case name: "f32", "q4_0", "q4_k"... */
  readonly name: string;
  /** Elements per block. */
  readonly blockSize: number;
  /** Bytes per block. */
  readonly typeSize: number;
  /**
   * The format activations are converted to before `vecDot` (ggml's `vec_dot_type`):
   * F32 for F32, F16 for F16, BF16 for BF16, Q8_0 for Q4_0/Q5_0/Q8_0, Q8_1 for Q4_1/Q5_1, Q8_K for
   * the K-quants. Undefined for the activation-only formats Q8_1 and Q8_K (ggml has no vec_dot
   * with them on the left) and for storage-only formats (dequantized at load).
   */
  readonly vecDotType: GgmlType | undefined;
  /** `n` elements (a multiple of blockSize) from `src` (n/blockSize*typeSize bytes) into `dst[0..n)`. */
  dequantizeRow(src: Uint8Array, dst: Float32Array, n: number): void;
  /** Reference quantizer (round to nearest / ggml's `quantize_row_*_ref`). Undefined if we cannot write the type. */
  quantizeRowRef: ((src: Float32Array, dst: Uint8Array, n: number) => void) | undefined;
  /**
   * Dot product of one row of this format with one activation row already in `vecDotType`,
   * both `n` elements. Undefined for storage-only formats.
   */
  vecDot: ((n: number, w: Uint8Array, x: Uint8Array) => number) | undefined;
}

/** Bytes taken by `n` elements of a format (n must be a multiple of blockSize). */
export function rowBytes(f: BlockFormat, n: number): number {
  return (n / f.blockSize) * f.typeSize;
}
