/**
 * Q5_K: super-blocks of 256 weights = 8 sub-blocks of 32, with 6-bit scales and mins as Q4_K:
 * x = (d * sc[j]) * q - (dmin * m[j]) with q in 0..31 (4 low bits in qs, the high bit in qh).
 *
 * Block layout (176 bytes), ggml-common.h block_q5_K:
 *   0    f16   d            super-scale of the sub-block scales
 *   2    f16   dmin         super-scale of the sub-block mins
 *   4    u8    scales[12]   6-bit sc[0..8) and m[0..8), packed exactly as Q4_K (see q4_k.ts)
 *   16   u8    qh[32]       bit b of byte l = high bit of element 32b + l (b = 0..7)
 *   48   u8    qs[128]      4 chunks of 32 bytes; chunk c byte l: low nibble = element
 *                           64c + l (sub-block 2c), high nibble = element 64c + 32 + l (2c+1)
 */

import { GgmlType } from "../ggml-type.js";
import type { BlockFormat } from "../format.js";
import { readF16, readF32, readI16 } from "../bytes.js";
import { f16ToF32 } from "../f16.js";
import { fr, makeQkx2Quants, minK4, nearestInt, scaleK4 } from "../quant-math.js";
import { checkDot, checkRow } from "../row-args.js";
import { packScalesK4 } from "./q4_k.js";
import { OFF_BSUMS as Q8K_BSUMS, OFF_QS as Q8K_QS, TYPE_SIZE as Q8_K_TYPE_SIZE } from "./q8_k.js";

export const BLOCK_SIZE = 256;
export const TYPE_SIZE = 176;
export const OFF_D = 0;
export const OFF_DMIN = 2;
export const OFF_SCALES = 4;
export const OFF_QH = 16;
export const OFF_QS = 48;

/** dequantize_row_q5_K */
function dequantizeRow(src: Uint8Array, dst: Float32Array, n: number): void {
  checkRow("q5_k", BLOCK_SIZE, TYPE_SIZE, n, src, dst);
  const nb = n / BLOCK_SIZE;
  for (let b = 0; b < nb; b++) {
    const o = b * TYPE_SIZE;
    const d = readF16(src, o + OFF_D);
    const min = readF16(src, o + OFF_DMIN);
    let y = b * BLOCK_SIZE;
    for (let c = 0; c < 4; c++) {
      const d1 = fr(d * scaleK4(2 * c, src, o + OFF_SCALES));
      const m1 = fr(min * minK4(2 * c, src, o + OFF_SCALES));
      const d2 = fr(d * scaleK4(2 * c + 1, src, o + OFF_SCALES));
      const m2 = fr(min * minK4(2 * c + 1, src, o + OFF_SCALES));
      const u1 = 1 << (2 * c);
      const u2 = 2 << (2 * c);
      const ql = o + OFF_QS + 32 * c;
      const qh = o + OFF_QH;
      for (let l = 0; l < 32; l++) dst[y + l] = fr(d1 * ((src[ql + l] & 0xf) + (src[qh + l] & u1 ? 16 : 0))) - m1;
      for (let l = 0; l < 32; l++) dst[y + 32 + l] = fr(d2 * ((src[ql + l] >> 4) + (src[qh + l] & u2 ? 16 : 0))) - m2;
      y += 64;
    }
  }
}

// quantize scratch
const L = new Uint8Array(256);
const Laux = new Uint8Array(32);
const weights = new Float32Array(32);
const mins = new Float32Array(8);
const scales = new Float32Array(8);
const F01 = fr(0.1);

/** quantize_row_q5_K_ref */
function quantizeRowRef(src: Float32Array, dst: Uint8Array, n: number): void {
  checkRow("q5_k", BLOCK_SIZE, TYPE_SIZE, n, dst, src);
  const nb = n / BLOCK_SIZE;
  for (let b = 0; b < nb; b++) {
    const xo = b * BLOCK_SIZE;
    const o = b * TYPE_SIZE;
    let maxScale = 0;
    let maxMin = 0;
    for (let j = 0; j < 8; j++) {
      const xj = xo + 32 * j;
      let sumX2 = 0;
      for (let l = 0; l < 32; l++) sumX2 = fr(sumX2 + fr(src[xj + l] * src[xj + l]));
      const avX = fr(Math.sqrt(fr(sumX2 / 32)));
      for (let l = 0; l < 32; l++) weights[l] = avX + Math.abs(src[xj + l]);
      scales[j] = makeQkx2Quants(32, 31, src, xj, weights, L, 32 * j, mins, j, Laux, -0.5, F01, 15, false);
      if (scales[j] > maxScale) maxScale = scales[j];
      if (mins[j] > maxMin) maxMin = mins[j];
    }
    packScalesK4(dst, o, maxScale, maxMin, scales, mins);
    const d = f16ToF32(dst[o + OFF_D] | (dst[o + OFF_D + 1] << 8));
    const dmin = f16ToF32(dst[o + OFF_DMIN] | (dst[o + OFF_DMIN + 1] << 8));
    for (let j = 0; j < 8; j++) {
      const dd = fr(d * scaleK4(j, dst, o + OFF_SCALES));
      if (dd === 0) continue;
      const dm = fr(dmin * minK4(j, dst, o + OFF_SCALES));
      for (let ii = 0; ii < 32; ii++) {
        const l = nearestInt(fr(fr(src[xo + 32 * j + ii] + dm) / dd));
        L[32 * j + ii] = Math.max(0, Math.min(31, l));
      }
    }
    const qh = o + OFF_QH;
    dst.fill(0, qh, qh + 32);
    for (let c = 0; c < 4; c++) {
      const m1 = 1 << (2 * c);
      const m2 = 2 << (2 * c);
      const ql = o + OFF_QS + 32 * c;
      for (let j = 0; j < 32; j++) {
        let l1 = L[64 * c + j];
        if (l1 > 15) {
          l1 -= 16;
          dst[qh + j] |= m1;
        }
        let l2 = L[64 * c + 32 + j];
        if (l2 > 15) {
          l2 -= 16;
          dst[qh + j] |= m2;
        }
        dst[ql + j] = l1 | (l2 << 4);
      }
    }
  }
}

const aux32 = new Int32Array(8);
const sums = new Float32Array(8);

/** ggml_vec_dot_q5_K_q8_K_generic with its f32 rounding; same structure as Q4_K's (see q4_k.ts). */
function vecDot(n: number, w: Uint8Array, x: Uint8Array): number {
  checkDot("q5_k", BLOCK_SIZE, TYPE_SIZE, 256, Q8_K_TYPE_SIZE, n, w, x);
  const nb = n / BLOCK_SIZE;
  sums.fill(0);
  let sumf = 0;
  for (let b = 0; b < nb; b++) {
    const o = b * TYPE_SIZE;
    const ox = b * Q8_K_TYPE_SIZE;
    aux32.fill(0);
    for (let c = 0; c < 4; c++) {
      const s1 = scaleK4(2 * c, w, o + OFF_SCALES);
      const s2 = scaleK4(2 * c + 1, w, o + OFF_SCALES);
      const u1 = 1 << (2 * c);
      const u2 = 2 << (2 * c);
      const ql = o + OFF_QS + 32 * c;
      const q8 = ox + Q8K_QS + 64 * c;
      for (let l = 0; l < 32; l++) {
        const v = w[ql + l];
        const h = w[o + OFF_QH + l];
        const a1 = (v & 0xf) + (h & u1 ? 16 : 0);
        const a2 = (v >> 4) + (h & u2 ? 16 : 0);
        aux32[l & 7] += s1 * a1 * ((x[q8 + l] << 24) >> 24) + s2 * a2 * ((x[q8 + 32 + l] << 24) >> 24);
      }
    }
    let sumi = 0;
    for (let g = 0; g < 16; g++) sumi += readI16(x, ox + Q8K_BSUMS + 2 * g) * minK4(g >> 1, w, o + OFF_SCALES);
    const dq8 = readF32(x, ox);
    const d = fr(readF16(w, o + OFF_D) * dq8);
    for (let l = 0; l < 8; l++) sums[l] = fr(sums[l] + fr(d * aux32[l]));
    const dmin = fr(readF16(w, o + OFF_DMIN) * dq8);
    sumf = fr(sumf - fr(dmin * sumi));
  }
  for (let l = 0; l < 8; l++) sumf = fr(sumf + sums[l]);
  return sumf;
}

export const Q5_K_FORMAT: BlockFormat = {
  type: GgmlType.Q5_K,
  name: "q5_k",
  blockSize: BLOCK_SIZE,
  typeSize: TYPE_SIZE,
  vecDotType: GgmlType.Q8_K,
  dequantizeRow,
  quantizeRowRef,
  vecDot,
};
