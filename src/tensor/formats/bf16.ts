/**
 * BF16: little-endian bfloat16 (the high 16 bits of an f32), one element per "block".
 *
 * Block layout (2 bytes):
 *   0  bf16 value
 */

import { GgmlType } from "../ggml-type.js";
import type { BlockFormat } from "../format.js";
import { bf16ToF32, bf16ToF32Row, f32ToBf16Row } from "../f16.js";
import { readU16 } from "../bytes.js";
import { checkDot, checkRow } from "../row-args.js";

export const BLOCK_SIZE = 1;
export const TYPE_SIZE = 2;

function dequantizeRow(src: Uint8Array, dst: Float32Array, n: number): void {
  checkRow("bf16", BLOCK_SIZE, TYPE_SIZE, n, src, dst);
  bf16ToF32Row(src, dst, n);
}

/** ggml_fp32_to_bf16_row_ref: round to nearest even, NaN forced quiet. */
function quantizeRowRef(src: Float32Array, dst: Uint8Array, n: number): void {
  checkRow("bf16", BLOCK_SIZE, TYPE_SIZE, n, dst, src);
  f32ToBf16Row(src, dst, n);
}

/** ggml_vec_dot_bf16 (scalar path): f32 products summed in double, result rounded to f32. */
function vecDot(n: number, w: Uint8Array, x: Uint8Array): number {
  checkDot("bf16", BLOCK_SIZE, TYPE_SIZE, 1, 2, n, w, x);
  let sum = 0;
  // NOTE: fround needed: bf16 has the f32 exponent range, so the product can overflow or
  // underflow in f32 where the double product would not.
  for (let i = 0, o = 0; i < n; i++, o += 2) {
    sum += Math.fround(bf16ToF32(readU16(w, o)) * bf16ToF32(readU16(x, o)));
  }
  return Math.fround(sum);
}

export const BF16_FORMAT: BlockFormat = {
  type: GgmlType.BF16,
  name: "bf16",
  blockSize: BLOCK_SIZE,
  typeSize: TYPE_SIZE,
  vecDotType: GgmlType.BF16,
  dequantizeRow,
  quantizeRowRef,
  vecDot,
};
