/**
 * F32: plain little-endian IEEE binary32, one element per "block".
 *
 * Block layout (4 bytes):
 *   0  f32 value
 */

import { GgmlType } from "../ggml-type.js";
import type { BlockFormat } from "../format.js";
import { readF32, writeF32 } from "../bytes.js";
import { checkDot, checkRow } from "../row-args.js";

export const BLOCK_SIZE = 1;
export const TYPE_SIZE = 4;

function dequantizeRow(src: Uint8Array, dst: Float32Array, n: number): void {
  checkRow("f32", BLOCK_SIZE, TYPE_SIZE, n, src, dst);
  for (let i = 0; i < n; i++) dst[i] = readF32(src, i * 4);
}

function quantizeRowRef(src: Float32Array, dst: Uint8Array, n: number): void {
  checkRow("f32", BLOCK_SIZE, TYPE_SIZE, n, dst, src);
  for (let i = 0; i < n; i++) writeF32(dst, i * 4, src[i]);
}

/** ggml_vec_dot_f32 (scalar path): f32 products summed in double, result rounded to f32. */
function vecDot(n: number, w: Uint8Array, x: Uint8Array): number {
  checkDot("f32", BLOCK_SIZE, TYPE_SIZE, 1, 4, n, w, x);
  let sum = 0;
  for (let i = 0, o = 0; i < n; i++, o += 4) sum += Math.fround(readF32(w, o) * readF32(x, o));
  return Math.fround(sum);
}

export const F32_FORMAT: BlockFormat = {
  type: GgmlType.F32,
  name: "f32",
  blockSize: BLOCK_SIZE,
  typeSize: TYPE_SIZE,
  vecDotType: GgmlType.F32,
  dequantizeRow,
  quantizeRowRef,
  vecDot,
};
