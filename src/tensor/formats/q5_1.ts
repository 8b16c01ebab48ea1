/**
 * Q5_1: blocks of 32 weights as 5-bit quants q in 0..31 with an f16 scale and an f16 min:
 * x = d * q + m.
 *
 * Block layout (24 bytes), ggml-common.h block_q5_1:
 *   0   f16   d        scale
 *   2   f16   m        min
 *   4   u32   qh       (little-endian, unaligned) bit j = 5th bit of element j (j < 32)
 *   8   u8    qs[16]   byte j: low nibble = low 4 bits of element j, high nibble = of element j + 16
 */

import { GgmlType } from "../ggml-type.js";
import type { BlockFormat } from "../format.js";
import { readF16, readU32, writeF16, writeU32 } from "../bytes.js";
import { fr } from "../quant-math.js";
import { checkDot, checkRow } from "../row-args.js";
import { OFF_D as Q8_1_D, OFF_QS as Q8_1_QS, OFF_S as Q8_1_S, TYPE_SIZE as Q8_1_TYPE_SIZE } from "./q8_1.js";

export const BLOCK_SIZE = 32;
export const TYPE_SIZE = 24;
const FLT_MAX = 3.4028234663852886e38;

/** dequantize_row_q5_1 */
function dequantizeRow(src: Uint8Array, dst: Float32Array, n: number): void {
  checkRow("q5_1", BLOCK_SIZE, TYPE_SIZE, n, src, dst);
  const nb = n / BLOCK_SIZE;
  for (let b = 0; b < nb; b++) {
    const o = b * TYPE_SIZE;
    const d = readF16(src, o);
    const m = readF16(src, o + 2);
    const qh = readU32(src, o + 4);
    const y = b * BLOCK_SIZE;
    for (let j = 0; j < 16; j++) {
      const q = src[o + 8 + j];
      const xh0 = ((qh >>> j) << 4) & 0x10;
      const xh1 = (qh >>> (j + 12)) & 0x10;
      dst[y + j] = fr(((q & 0x0f) | xh0) * d) + m;
      dst[y + j + 16] = fr(((q >> 4) | xh1) * d) + m;
    }
  }
}

/** quantize_row_q5_1_ref: d = (max - min)/31, m = min, q = trunc((x - min)/d + 0.5) (no clamp, as ggml). */
function quantizeRowRef(src: Float32Array, dst: Uint8Array, n: number): void {
  checkRow("q5_1", BLOCK_SIZE, TYPE_SIZE, n, dst, src);
  const nb = n / BLOCK_SIZE;
  for (let b = 0; b < nb; b++) {
    const xo = b * BLOCK_SIZE;
    const o = b * TYPE_SIZE;
    let min = FLT_MAX;
    let max = -FLT_MAX;
    for (let j = 0; j < 32; j++) {
      const v = src[xo + j];
      if (v < min) min = v;
      if (v > max) max = v;
    }
    const d = fr(fr(max - min) / 31);
    const id = d !== 0 ? fr(1 / d) : 0;
    writeF16(dst, o, d);
    writeF16(dst, o + 2, min);
    let qh = 0;
    for (let j = 0; j < 16; j++) {
      // (uint8_t)(x + 0.5f): truncation toward zero, then the low 8 bits
      const xi0 = (fr(fr(fr(src[xo + j] - min) * id) + 0.5) | 0) & 0xff;
      const xi1 = (fr(fr(fr(src[xo + 16 + j] - min) * id) + 0.5) | 0) & 0xff;
      dst[o + 8 + j] = (xi0 & 0x0f) | ((xi1 & 0x0f) << 4);
      qh |= ((xi0 & 0x10) >> 4) << j;
      qh |= ((xi1 & 0x10) >> 4) << (j + 16);
    }
    writeU32(dst, o + 4, qh);
  }
}

/** ggml_vec_dot_q5_1_q8_1_generic: per block (dw*dx)*sumi + mw*sx, summed in f32. */
function vecDot(n: number, w: Uint8Array, x: Uint8Array): number {
  checkDot("q5_1", BLOCK_SIZE, TYPE_SIZE, 32, Q8_1_TYPE_SIZE, n, w, x);
  const nb = n / BLOCK_SIZE;
  let sumf = 0;
  for (let b = 0; b < nb; b++) {
    const o = b * TYPE_SIZE;
    const ox = b * Q8_1_TYPE_SIZE;
    const qh = readU32(w, o + 4);
    let sumi = 0;
    for (let j = 0; j < 16; j++) {
      const q = w[o + 8 + j];
      const x0 = (q & 0x0f) | (((qh >>> j) << 4) & 0x10);
      const x1 = (q >> 4) | ((qh >>> (j + 12)) & 0x10);
      sumi += x0 * ((x[ox + Q8_1_QS + j] << 24) >> 24) + x1 * ((x[ox + Q8_1_QS + 16 + j] << 24) >> 24);
    }
    const dd = fr(readF16(w, o) * readF16(x, ox + Q8_1_D));
    sumf = fr(sumf + fr(fr(dd * sumi) + fr(readF16(w, o + 2) * readF16(x, ox + Q8_1_S))));
  }
  return sumf;
}

export const Q5_1_FORMAT: BlockFormat = {
  type: GgmlType.Q5_1,
  name: "q5_1",
  blockSize: BLOCK_SIZE,
  typeSize: TYPE_SIZE,
  vecDotType: GgmlType.Q8_1,
  dequantizeRow,
  quantizeRowRef,
  vecDot,
};
