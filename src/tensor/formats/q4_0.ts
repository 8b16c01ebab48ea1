/**
 * Q4_0: blocks of 32 weights as 4-bit quants q in 0..15 with one f16 scale: x = d * (q - 8).
 *
 * Block layout (18 bytes), ggml-common.h block_q4_0:
 *   0   f16   d        scale
 *   2   u8    qs[16]   byte j: low nibble = element j, high nibble = element j + 16
 */

import { GgmlType } from "../ggml-type.js";
import type { BlockFormat } from "../format.js";
import { readF16, writeF16 } from "../bytes.js";
import { fr } from "../quant-math.js";
import { checkDot, checkRow } from "../row-args.js";
import { TYPE_SIZE as Q8_0_TYPE_SIZE } from "./q8_0.js";

export const BLOCK_SIZE = 32;
export const TYPE_SIZE = 18;

/** dequantize_row_q4_0 */
function dequantizeRow(src: Uint8Array, dst: Float32Array, n: number): void {
  checkRow("q4_0", BLOCK_SIZE, TYPE_SIZE, n, src, dst);
  const nb = n / BLOCK_SIZE;
  for (let b = 0; b < nb; b++) {
    const o = b * TYPE_SIZE;
    const d = readF16(src, o);
    const y = b * BLOCK_SIZE;
    for (let j = 0; j < 16; j++) {
      const q = src[o + 2 + j];
      dst[y + j] = ((q & 0x0f) - 8) * d;
      dst[y + j + 16] = ((q >> 4) - 8) * d;
    }
  }
}

/**
 * quantize_row_q4_0_ref: d = max / -8 where max is the signed value of largest magnitude
 * (so that value maps to quant 0 exactly), q = min(15, trunc(x/d + 8.5)).
 */
function quantizeRowRef(src: Float32Array, dst: Uint8Array, n: number): void {
  checkRow("q4_0", BLOCK_SIZE, TYPE_SIZE, n, dst, src);
  const nb = n / BLOCK_SIZE;
  for (let b = 0; b < nb; b++) {
    const xo = b * BLOCK_SIZE;
    const o = b * TYPE_SIZE;
    let amax = 0;
    let max = 0;
    for (let j = 0; j < 32; j++) {
      const v = src[xo + j];
      if (amax < Math.abs(v)) {
        amax = Math.abs(v);
        max = v;
      }
    }
    const d = fr(max / -8);
    const id = d !== 0 ? fr(1 / d) : 0;
    writeF16(dst, o, d);
    for (let j = 0; j < 16; j++) {
      // (int8_t)(x*id + 8.5f): truncation toward zero (NaN -> 0 like cvttss2si's low byte).
      const xi0 = Math.min(15, (fr(fr(src[xo + j] * id) + 8.5) | 0) << 24 >> 24);
      const xi1 = Math.min(15, (fr(fr(src[xo + 16 + j] * id) + 8.5) | 0) << 24 >> 24);
      dst[o + 2 + j] = (xi0 | (xi1 << 4)) & 0xff;
    }
  }
}

/** ggml_vec_dot_q4_0_q8_0_generic: per block (sumi * dw) * dx, summed in f32. */
function vecDot(n: number, w: Uint8Array, x: Uint8Array): number {
  checkDot("q4_0", BLOCK_SIZE, TYPE_SIZE, 32, Q8_0_TYPE_SIZE, n, w, x);
  const nb = n / BLOCK_SIZE;
  let sumf = 0;
  for (let b = 0; b < nb; b++) {
    const o = b * TYPE_SIZE;
    const ox = b * Q8_0_TYPE_SIZE;
    let sumi = 0;
    for (let j = 0; j < 16; j++) {
      const q = w[o + 2 + j];
      sumi += ((q & 0x0f) - 8) * ((x[ox + 2 + j] << 24) >> 24) + ((q >> 4) - 8) * ((x[ox + 18 + j] << 24) >> 24);
    }
    sumf = fr(sumf + fr(fr(sumi * readF16(w, o)) * readF16(x, ox)));
  }
  return sumf;
}

export const Q4_0_FORMAT: BlockFormat = {
  type: GgmlType.Q4_0,
  name: "q4_0",
  blockSize: BLOCK_SIZE,
  typeSize: TYPE_SIZE,
  vecDotType: GgmlType.Q8_0,
  dequantizeRow,
  quantizeRowRef,
  vecDot,
};
