/**
 * Q5_0: blocks of 32 weights as 5-bit quants q in 0..31 with one f16 scale: x = d * (q - 16).
 *
 * Block layout (22 bytes), ggml-common.h block_q5_0:
 *   0   f16   d        scale
 *   2   u32   qh       (little-endian, unaligned) bit j = 5th bit of element j (j < 32)
 *   6   u8    qs[16]   byte j: low nibble = low 4 bits of element j, high nibble = of element j + 16
 */

import { GgmlType } from "../ggml-type.js";
import type { BlockFormat } from "../format.js";
import { readF16, readU32, writeF16, writeU32 } from "../bytes.js";
import { fr } from "../quant-math.js";
import { checkDot, checkRow } from "../row-args.js";
import { TYPE_SIZE as Q8_0_TYPE_SIZE } from "./q8_0.js";

export const BLOCK_SIZE = 32;
export const TYPE_SIZE = 22;

/** dequantize_row_q5_0 */
function dequantizeRow(src: Uint8Array, dst: Float32Array, n: number): void {
  checkRow("q5_0", BLOCK_SIZE, TYPE_SIZE, n, src, dst);
  const nb = n / BLOCK_SIZE;
  for (let b = 0; b < nb; b++) {
    const o = b * TYPE_SIZE;
    const d = readF16(src, o);
    const qh = readU32(src, o + 2);
    const y = b * BLOCK_SIZE;
    for (let j = 0; j < 16; j++) {
      const q = src[o + 6 + j];
      const xh0 = ((qh >>> j) << 4) & 0x10;
      const xh1 = (qh >>> (j + 12)) & 0x10;
      dst[y + j] = (((q & 0x0f) | xh0) - 16) * d;
      dst[y + j + 16] = (((q >> 4) | xh1) - 16) * d;
    }
  }
}

/** quantize_row_q5_0_ref: d = max / -16 (max = signed value of largest magnitude), q = min(31, trunc(x/d + 16.5)). */
function quantizeRowRef(src: Float32Array, dst: Uint8Array, n: number): void {
  checkRow("q5_0", BLOCK_SIZE, TYPE_SIZE, n, dst, src);
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
    const d = fr(max / -16);
    const id = d !== 0 ? fr(1 / d) : 0;
    writeF16(dst, o, d);
    let qh = 0;
    for (let j = 0; j < 16; j++) {
      const xi0 = Math.min(31, ((fr(fr(src[xo + j] * id) + 16.5) | 0) << 24) >> 24) & 0xff;
      const xi1 = Math.min(31, ((fr(fr(src[xo + 16 + j] * id) + 16.5) | 0) << 24) >> 24) & 0xff;
      dst[o + 6 + j] = (xi0 & 0x0f) | ((xi1 & 0x0f) << 4);
      qh |= ((xi0 & 0x10) >> 4) << j;
      qh |= ((xi1 & 0x10) >> 4) << (j + 16);
    }
    writeU32(dst, o + 2, qh);
  }
}

/** ggml_vec_dot_q5_0_q8_0_generic: per block (dw*dx) * sumi, summed in f32. */
function vecDot(n: number, w: Uint8Array, x: Uint8Array): number {
  checkDot("q5_0", BLOCK_SIZE, TYPE_SIZE, 32, Q8_0_TYPE_SIZE, n, w, x);
  const nb = n / BLOCK_SIZE;
  let sumf = 0;
  for (let b = 0; b < nb; b++) {
    const o = b * TYPE_SIZE;
    const ox = b * Q8_0_TYPE_SIZE;
    const qh = readU32(w, o + 2);
    let sumi = 0;
    for (let j = 0; j < 16; j++) {
      const q = w[o + 6 + j];
      const x0 = ((q & 0x0f) | (((qh >>> j) & 1) << 4)) - 16;
      const x1 = ((q >> 4) | (((qh >>> (j + 16)) & 1) << 4)) - 16;
      sumi += x0 * ((x[ox + 2 + j] << 24) >> 24) + x1 * ((x[ox + 18 + j] << 24) >> 24);
    }
    sumf = fr(sumf + fr(fr(readF16(w, o) * readF16(x, ox)) * sumi));
  }
  return sumf;
}

export const Q5_0_FORMAT: BlockFormat = {
  type: GgmlType.Q5_0,
  name: "q5_0",
  blockSize: BLOCK_SIZE,
  typeSize: TYPE_SIZE,
  vecDotType: GgmlType.Q8_0,
  dequantizeRow,
  quantizeRowRef,
  vecDot,
};
