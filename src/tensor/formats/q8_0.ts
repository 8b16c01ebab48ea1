/**
 * Q8_0: blocks of 32 weights as int8 quants times one f16 scale: x = d * q.
 *
 * Block layout (34 bytes), ggml-common.h block_q8_0:
 *   0   f16   d        scale
 *   2   i8    qs[32]   quants, element j at byte 2 + j
 */

import { GgmlType } from "../ggml-type.js";
import type { BlockFormat } from "../format.js";
import { readF16, writeF16 } from "../bytes.js";
import { fr, roundf } from "../quant-math.js";
import { checkDot, checkRow } from "../row-args.js";

export const BLOCK_SIZE = 32;
export const TYPE_SIZE = 34;

/** dequantize_row_q8_0 */
function dequantizeRow(src: Uint8Array, dst: Float32Array, n: number): void {
  checkRow("q8_0", BLOCK_SIZE, TYPE_SIZE, n, src, dst);
  const nb = n / BLOCK_SIZE;
  for (let b = 0; b < nb; b++) {
    const o = b * TYPE_SIZE;
    const d = readF16(src, o);
    const y = b * BLOCK_SIZE;
    for (let j = 0; j < 32; j++) dst[y + j] = ((src[o + 2 + j] << 24) >> 24) * d;
  }
}

/** quantize_row_q8_0_ref: d = amax/127, q = roundf(x/d). */
function quantizeRowRef(src: Float32Array, dst: Uint8Array, n: number): void {
  checkRow("q8_0", BLOCK_SIZE, TYPE_SIZE, n, dst, src);
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
    writeF16(dst, o, d);
    for (let j = 0; j < 32; j++) dst[o + 2 + j] = roundf(fr(src[xo + j] * id)) & 0xff;
  }
}

/** ggml_vec_dot_q8_0_q8_0_generic: per block sumi * (dw * dx), summed in f32. */
function vecDot(n: number, w: Uint8Array, x: Uint8Array): number {
  checkDot("q8_0", BLOCK_SIZE, TYPE_SIZE, BLOCK_SIZE, TYPE_SIZE, n, w, x);
  const nb = n / BLOCK_SIZE;
  let sumf = 0;
  for (let b = 0; b < nb; b++) {
    const o = b * TYPE_SIZE;
    let sumi = 0;
    for (let j = 2; j < 34; j++) sumi += ((w[o + j] << 24) >> 24) * ((x[o + j] << 24) >> 24);
    sumf = fr(sumf + fr(sumi * fr(readF16(w, o) * readF16(x, o))));
  }
  return sumf;
}

export const Q8_0_FORMAT: BlockFormat = {
  type: GgmlType.Q8_0,
  name: "q8_0",
  blockSize: BLOCK_SIZE,
  typeSize: TYPE_SIZE,
  vecDotType: GgmlType.Q8_0,
  dequantizeRow,
  quantizeRowRef,
  vecDot,
};
