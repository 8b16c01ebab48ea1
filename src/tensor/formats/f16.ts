/**
 * F16: little-endian IEEE binary16, one element per "block".
 *
 * Block layout (2 bytes):
 *   0  f16 value
 */

import { GgmlType } from "../ggml-type.js";
import type { BlockFormat } from "../format.js";
import { f16ToF32Row, f32ToF16Row } from "../f16.js";
import { readF16 } from "../bytes.js";
import { checkDot, checkRow } from "../row-args.js";

export const BLOCK_SIZE = 1;
export const TYPE_SIZE = 2;

function dequantizeRow(src: Uint8Array, dst: Float32Array, n: number): void {
  checkRow("f16", BLOCK_SIZE, TYPE_SIZE, n, src, dst);
  f16ToF32Row(src, dst, n);
}

/** ggml_fp32_to_fp16_row: round to nearest even (ggml_compute_fp32_to_fp16). */
function quantizeRowRef(src: Float32Array, dst: Uint8Array, n: number): void {
  checkRow("f16", BLOCK_SIZE, TYPE_SIZE, n, dst, src);
  f32ToF16Row(src, dst, n);
}

/** ggml_vec_dot_f16 (scalar path): f32 products summed in double, result rounded to f32. */
function vecDot(n: number, w: Uint8Array, x: Uint8Array): number {
  checkDot("f16", BLOCK_SIZE, TYPE_SIZE, 1, 2, n, w, x);
  let sum = 0;
  // NOTE: a product of two f16 values is exact in f32 (22 significant bits, no overflow), so no
  // fround is needed per term.
  for (let i = 0, o = 0; i < n; i++, o += 2) sum += readF16(w, o) * readF16(x, o);
  return Math.fround(sum);
}

export const F16_FORMAT: BlockFormat = {
  type: GgmlType.F16,
  name: "f16",
  blockSize: BLOCK_SIZE,
  typeSize: TYPE_SIZE,
  vecDotType: GgmlType.F16,
  dequantizeRow,
  quantizeRowRef,
  vecDot,
};
