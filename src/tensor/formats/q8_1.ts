/**
 * Q8_1: the activation format of the Q4_1/Q5_1 dot products. Blocks of 32 values as int8 quants
 * times one f16 scale (x = d * q), plus s = d * sum(q) for the min terms.
 *
 * Block layout (36 bytes), ggml-common.h block_q8_1:
 *   0   f16   d        scale
 *   2   f16   s        d * sum(qs), rounded to f16
 *   4   i8    qs[32]   quants, element j at byte 4 + j
 *
 * NOTE: ggml has no dequantize_row_q8_1 and no vec_dot with Q8_1 on the left; our
 * dequantizeRow is d * q (as Q8_0).
 */

import { GgmlType } from "../ggml-type.js";
import type { BlockFormat } from "../format.js";
import { readF16, writeF16 } from "../bytes.js";
import { fr, roundf } from "../quant-math.js";
import { checkRow } from "../row-args.js";

export const BLOCK_SIZE = 32;
export const TYPE_SIZE = 36;
export const OFF_D = 0;
export const OFF_S = 2;
export const OFF_QS = 4;

function dequantizeRow(src: Uint8Array, dst: Float32Array, n: number): void {
  checkRow("q8_1", BLOCK_SIZE, TYPE_SIZE, n, src, dst);
  const nb = n / BLOCK_SIZE;
  for (let b = 0; b < nb; b++) {
    const o = b * TYPE_SIZE;
    const d = readF16(src, o + OFF_D);
    const y = b * BLOCK_SIZE;
    for (let j = 0; j < 32; j++) dst[y + j] = ((src[o + OFF_QS + j] << 24) >> 24) * d;
  }
}

/** quantize_row_q8_1_ref: as Q8_0, plus s = f16(sum(q) * d). */
function quantizeRowRef(src: Float32Array, dst: Uint8Array, n: number): void {
  checkRow("q8_1", BLOCK_SIZE, TYPE_SIZE, n, dst, src);
  const nb = n / BLOCK_SIZE;
  for (let b = 0; b < nb; b++) {
    const xo = b * BLOCK_SIZE;
    const o = b * TYPE_SIZE;
    let amax = 0;
    for (let j = 0; j < 32; j++) {
      const a = Math.abs(src[xo + j]);
      amax = amax > a ? amax : a; // MAX(amax, fabsf(v))
    }
    const d = fr(amax / 127);
    const id = d !== 0 ? fr(1 / d) : 0;
    writeF16(dst, o + OFF_D, d);
    let sum = 0;
    for (let j = 0; j < 32; j++) {
      const q = roundf(fr(src[xo + j] * id)) & 0xff;
      dst[o + OFF_QS + j] = q;
      sum += (q << 24) >> 24; // the stored int8, as ggml reads it back
    }
    writeF16(dst, o + OFF_S, fr(sum * d));
  }
}

export const Q8_1_FORMAT: BlockFormat = {
  type: GgmlType.Q8_1,
  name: "q8_1",
  blockSize: BLOCK_SIZE,
  typeSize: TYPE_SIZE,
  vecDotType: undefined,
  dequantizeRow,
  quantizeRowRef,
  vecDot: undefined,
};
