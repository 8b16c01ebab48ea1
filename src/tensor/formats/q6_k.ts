/**
 * Q6_K: super-blocks of 256 weights = 16 sub-blocks of 16, each with an int8 scale:
 * x = (d * sc[j]) * (q - 32) with q in 0..63 (4 low bits in ql, 2 high bits in qh).
 *
 * Block layout (210 bytes), ggml-common.h block_q6_K:
 *   0     u8    ql[128]     low 4 bits; two halves h = 0,1 of 64 bytes (elements 128h..128h+128):
 *                           byte l (l < 32):  low nibble = elem 128h + l,  high = elem 128h + 64 + l
 *                           byte 32 + l:      low nibble = elem 128h+32+l, high = elem 128h + 96 + l
 *   128   u8    qh[64]      high 2 bits; half h byte l: bits 0-1 elem 128h+l, 2-3 +32, 4-5 +64, 6-7 +96
 *   192   i8    scales[16]  scale of sub-block j (elements 16j..16j+16)
 *   208   f16   d           super-scale
 */

import { GgmlType } from "../ggml-type.js";
import type { BlockFormat } from "../format.js";
import { readF16, readF32, writeF16 } from "../bytes.js";
import { f16ToF32 } from "../f16.js";
import { fr, GROUP_MAX_EPS, makeQxQuants, nearestInt } from "../quant-math.js";
import { checkDot, checkRow } from "../row-args.js";
import { OFF_QS as Q8K_QS, TYPE_SIZE as Q8_K_TYPE_SIZE } from "./q8_k.js";

export const BLOCK_SIZE = 256;
export const TYPE_SIZE = 210;
export const OFF_QL = 0;
export const OFF_QH = 128;
export const OFF_SCALES = 192;
export const OFF_D = 208;

/** Element p (0..255) of the block at `o`, as the signed quant q - 32 in -32..31. */
function quant(b: Uint8Array, o: number, p: number): number {
  const h = p >> 7; // half
  const r = p & 127;
  const k = r >> 5; // which of the 4 element groups of 32 in the half
  const l = r & 31;
  const ql = b[o + OFF_QL + 64 * h + l + (k & 1) * 32];
  const lo = k < 2 ? ql & 0xf : ql >> 4;
  const hi = (b[o + OFF_QH + 32 * h + l] >> (2 * k)) & 3;
  return (lo | (hi << 4)) - 32;
}

/** dequantize_row_q6_K */
function dequantizeRow(src: Uint8Array, dst: Float32Array, n: number): void {
  checkRow("q6_k", BLOCK_SIZE, TYPE_SIZE, n, src, dst);
  const nb = n / BLOCK_SIZE;
  for (let b = 0; b < nb; b++) {
    const o = b * TYPE_SIZE;
    const d = readF16(src, o + OFF_D);
    const y0 = b * BLOCK_SIZE;
    for (let h = 0; h < 2; h++) {
      const ql = o + OFF_QL + 64 * h;
      const qh = o + OFF_QH + 32 * h;
      const sc = o + OFF_SCALES + 8 * h;
      const y = y0 + 128 * h;
      for (let l = 0; l < 32; l++) {
        const is = l >> 4;
        const a = src[ql + l];
        const c = src[ql + 32 + l];
        const hb = src[qh + l];
        const q1 = ((a & 0xf) | ((hb & 3) << 4)) - 32;
        const q2 = ((c & 0xf) | (((hb >> 2) & 3) << 4)) - 32;
        const q3 = ((a >> 4) | (((hb >> 4) & 3) << 4)) - 32;
        const q4 = ((c >> 4) | (((hb >> 6) & 3) << 4)) - 32;
        // d * sc is exact in f32 (11 x 8 significant bits); the store rounds the product once.
        dst[y + l] = d * ((src[sc + is] << 24) >> 24) * q1;
        dst[y + l + 32] = d * ((src[sc + is + 2] << 24) >> 24) * q2;
        dst[y + l + 64] = d * ((src[sc + is + 4] << 24) >> 24) * q3;
        dst[y + l + 96] = d * ((src[sc + is + 6] << 24) >> 24) * q4;
      }
    }
  }
}

// quantize scratch
const L = new Int8Array(256);
const scales = new Float32Array(16);

/** quantize_row_q6_K_ref */
function quantizeRowRef(src: Float32Array, dst: Uint8Array, n: number): void {
  checkRow("q6_k", BLOCK_SIZE, TYPE_SIZE, n, dst, src);
  const nb = n / BLOCK_SIZE;
  for (let b = 0; b < nb; b++) {
    const xo = b * BLOCK_SIZE;
    const o = b * TYPE_SIZE;
    let maxScale = 0;
    let maxAbsScale = 0;
    for (let ib = 0; ib < 16; ib++) {
      const scale = makeQxQuants(16, 32, src, xo + 16 * ib, L, 16 * ib, 1, null);
      scales[ib] = scale;
      const absScale = Math.abs(scale);
      if (absScale > maxAbsScale) {
        maxAbsScale = absScale;
        maxScale = scale;
      }
    }
    if (maxAbsScale < GROUP_MAX_EPS) {
      dst.fill(0, o, o + TYPE_SIZE);
      continue;
    }
    const iscale = fr(-128 / maxScale);
    writeF16(dst, o + OFF_D, fr(1 / iscale));
    for (let ib = 0; ib < 16; ib++) {
      dst[o + OFF_SCALES + ib] = Math.min(127, nearestInt(fr(iscale * scales[ib]))) & 0xff;
    }
    const d16 = f16ToF32(dst[o + OFF_D] | (dst[o + OFF_D + 1] << 8));
    for (let j = 0; j < 16; j++) {
      const d = fr(d16 * ((dst[o + OFF_SCALES + j] << 24) >> 24));
      if (d === 0) continue;
      for (let ii = 0; ii < 16; ii++) {
        const l = nearestInt(fr(src[xo + 16 * j + ii] / d));
        L[16 * j + ii] = Math.max(-32, Math.min(31, l)) + 32;
      }
    }
    for (let h = 0; h < 2; h++) {
      const ql = o + OFF_QL + 64 * h;
      const qh = o + OFF_QH + 32 * h;
      const j = 128 * h;
      for (let l = 0; l < 32; l++) {
        const l1 = L[j + l];
        const l2 = L[j + l + 32];
        const l3 = L[j + l + 64];
        const l4 = L[j + l + 96];
        dst[ql + l] = (l1 & 0xf) | ((l3 & 0xf) << 4);
        dst[ql + l + 32] = (l2 & 0xf) | ((l4 & 0xf) << 4);
        dst[qh + l] = (l1 >> 4) | ((l2 >> 4) << 2) | ((l3 >> 4) << 4) | ((l4 >> 4) << 6);
      }
    }
  }
}

const aux32 = new Int32Array(8);
const sums = new Float32Array(8);

/**
 * ggml_vec_dot_q6_K_q8_K_generic with its f32 rounding: 8 integer lanes (element p -> lane
 * p % 8) of sc[p/16] * (q-32) * q8, scaled per block by d*dq8 into 8 f32 lane sums, which are
 * added up at the end.
 */
function vecDot(n: number, w: Uint8Array, x: Uint8Array): number {
  checkDot("q6_k", BLOCK_SIZE, TYPE_SIZE, 256, Q8_K_TYPE_SIZE, n, w, x);
  const nb = n / BLOCK_SIZE;
  sums.fill(0);
  for (let b = 0; b < nb; b++) {
    const o = b * TYPE_SIZE;
    const ox = b * Q8_K_TYPE_SIZE;
    aux32.fill(0);
    for (let j = 0; j < 16; j++) {
      const scale = (w[o + OFF_SCALES + j] << 24) >> 24;
      for (let i = 0; i < 16; i++) {
        const p = 16 * j + i;
        aux32[i & 7] += scale * quant(w, o, p) * ((x[ox + Q8K_QS + p] << 24) >> 24);
      }
    }
    const d = fr(readF16(w, o + OFF_D) * readF32(x, ox));
    for (let l = 0; l < 8; l++) sums[l] = fr(sums[l] + fr(d * aux32[l]));
  }
  let sumf = 0;
  for (let l = 0; l < 8; l++) sumf = fr(sumf + sums[l]);
  return sumf;
}

export const Q6_K_FORMAT: BlockFormat = {
  type: GgmlType.Q6_K,
  name: "q6_k",
  blockSize: BLOCK_SIZE,
  typeSize: TYPE_SIZE,
  vecDotType: GgmlType.Q8_K,
  dequantizeRow,
  quantizeRowRef,
  vecDot,
};
