/**
 * Q4_K: super-blocks of 256 weights = 8 sub-blocks of 32. Each sub-block j has a 6-bit scale
 * sc[j] and a 6-bit min m[j]; x = (d * sc[j]) * q - (dmin * m[j]) with q in 0..15.
 *
 * Block layout (144 bytes), ggml-common.h block_q4_K:
 *   0    f16   d            super-scale of the sub-block scales
 *   2    f16   dmin         super-scale of the sub-block mins
 *   4    u8    scales[12]   6-bit sc[0..8) and m[0..8), packed:
 *                             j < 4: sc[j] = scales[j] & 63,  m[j] = scales[j+4] & 63
 *                             j >= 4: sc[j] = (scales[j+4] & 15) | (scales[j-4] >> 6) << 4
 *                                     m[j]  = (scales[j+4] >> 4) | (scales[j]   >> 6) << 4
 *   16   u8    qs[128]      4 chunks of 32 bytes; chunk c byte l: low nibble = element
 *                           64c + l (sub-block 2c), high nibble = element 64c + 32 + l (2c+1)
 */

import { GgmlType } from "../ggml-type.js";
import type { BlockFormat } from "../format.js";
import { readF16, readF32, readI16, writeF16 } from "../bytes.js";
import { f16ToF32 } from "../f16.js";
import { fr, makeQkx2Quants, minK4, nearestInt, scaleK4 } from "../quant-math.js";
import { checkDot, checkRow } from "../row-args.js";
import { OFF_BSUMS as Q8K_BSUMS, OFF_QS as Q8K_QS, TYPE_SIZE as Q8_K_TYPE_SIZE } from "./q8_k.js";

export const BLOCK_SIZE = 256;
export const TYPE_SIZE = 144;
export const OFF_D = 0;
export const OFF_DMIN = 2;
export const OFF_SCALES = 4;
export const OFF_QS = 16;

/** dequantize_row_q4_K */
function dequantizeRow(src: Uint8Array, dst: Float32Array, n: number): void {
  checkRow("q4_k", BLOCK_SIZE, TYPE_SIZE, n, src, dst);
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
      const q = o + OFF_QS + 32 * c;
      for (let l = 0; l < 32; l++) dst[y + l] = fr(d1 * (src[q + l] & 0xf)) - m1;
      for (let l = 0; l < 32; l++) dst[y + 32 + l] = fr(d2 * (src[q + l] >> 4)) - m2;
      y += 64;
    }
  }
}

// quantize scratch (module level: no allocation per row)
const L = new Uint8Array(256);
const Laux = new Uint8Array(32);
const weights = new Float32Array(32);
const mins = new Float32Array(8);
const scales = new Float32Array(8);
const F01 = fr(0.1);

/** quantize_row_q4_K_ref */
function quantizeRowRef(src: Float32Array, dst: Uint8Array, n: number): void {
  checkRow("q4_k", BLOCK_SIZE, TYPE_SIZE, n, dst, src);
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
      scales[j] = makeQkx2Quants(32, 15, src, xj, weights, L, 32 * j, mins, j, Laux, -1, F01, 20, false);
      if (scales[j] > maxScale) maxScale = scales[j];
      if (mins[j] > maxMin) maxMin = mins[j];
    }
    packScalesK4(dst, o, maxScale, maxMin, scales, mins);
    const d = f16ToF32(dst[o] | (dst[o + 1] << 8));
    const dmin = f16ToF32(dst[o + 2] | (dst[o + 3] << 8));
    for (let j = 0; j < 8; j++) {
      const dd = fr(d * scaleK4(j, dst, o + OFF_SCALES));
      if (dd === 0) continue;
      const dm = fr(dmin * minK4(j, dst, o + OFF_SCALES));
      for (let ii = 0; ii < 32; ii++) {
        const l = nearestInt(fr(fr(src[xo + 32 * j + ii] + dm) / dd));
        L[32 * j + ii] = Math.max(0, Math.min(15, l));
      }
    }
    for (let c = 0; c < 4; c++) {
      const q = o + OFF_QS + 32 * c;
      for (let l = 0; l < 32; l++) dst[q + l] = L[64 * c + l] | (L[64 * c + 32 + l] << 4);
    }
  }
}

/**
 * Shared by Q4_K and Q5_K: quantizes the 8 sub-block scales `sc` and mins `mn` to 6 bits
 * against max/63, packs them at dst[o+4..o+16) and writes d and dmin at dst[o], dst[o+2].
 */
export function packScalesK4(
  dst: Uint8Array,
  o: number,
  maxScale: number,
  maxMin: number,
  sc: Float32Array,
  mn: Float32Array,
): void {
  const invScale = maxScale > 0 ? fr(63 / maxScale) : 0;
  const invMin = maxMin > 0 ? fr(63 / maxMin) : 0;
  const s = o + OFF_SCALES;
  for (let j = 0; j < 8; j++) {
    // uint8_t ls = nearest_int(...): NOTE: the int is truncated to 8 bits before MIN(63, .)
    const ls = Math.min(63, nearestInt(fr(invScale * sc[j])) & 0xff);
    const lm = Math.min(63, nearestInt(fr(invMin * mn[j])) & 0xff);
    if (j < 4) {
      dst[s + j] = ls;
      dst[s + j + 4] = lm;
    } else {
      dst[s + j + 4] = (ls & 0xf) | ((lm & 0xf) << 4);
      dst[s + j - 4] |= (ls >> 4) << 6;
      dst[s + j] |= (lm >> 4) << 6;
    }
  }
  writeF16(dst, o + OFF_D, fr(maxScale / 63));
  writeF16(dst, o + OFF_DMIN, fr(maxMin / 63));
}

// vec_dot scratch: the 8 int32 lanes and 8 f32 lane sums of ggml's generic kernel
const aux32 = new Int32Array(8);
const sums = new Float32Array(8);

/**
 * ggml_vec_dot_q4_K_q8_K_generic, reproduced with its f32 rounding: per block, 8 integer lanes
 * (element p goes to lane p % 8) of sc[p/32] * q * q8 are scaled by d*dq8 into 8 f32 lane sums;
 * dmin*dq8 * sum(bsums[g] * m[g/2]) is subtracted from the running f32 total; the lane sums
 * are added to the total at the end.
 */
function vecDot(n: number, w: Uint8Array, x: Uint8Array): number {
  checkDot("q4_k", BLOCK_SIZE, TYPE_SIZE, 256, Q8_K_TYPE_SIZE, n, w, x);
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
      const q = o + OFF_QS + 32 * c;
      const q8 = ox + Q8K_QS + 64 * c;
      for (let l = 0; l < 32; l++) {
        const v = w[q + l];
        aux32[l & 7] += s1 * (v & 0xf) * ((x[q8 + l] << 24) >> 24) + s2 * (v >> 4) * ((x[q8 + 32 + l] << 24) >> 24);
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

export const Q4_K_FORMAT: BlockFormat = {
  type: GgmlType.Q4_K,
  name: "q4_k",
  blockSize: BLOCK_SIZE,
  typeSize: TYPE_SIZE,
  vecDotType: GgmlType.Q8_K,
  dequantizeRow,
  quantizeRowRef,
  vecDot,
};
