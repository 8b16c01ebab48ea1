/**
 * Q2_K: super-blocks of 256 weights = 16 sub-blocks of 16. Sub-block j has a 4-bit scale and a
 * 4-bit min; x = (d * sc[j]) * q - (dmin * m[j]) with q in 0..3.
 *
 * Block layout (84 bytes), ggml-common.h block_q2_K:
 *   0    u8    scales[16]   sub-block j: low nibble = sc[j], high nibble = m[j]
 *   16   u8    qs[64]       two halves h = 0,1 of 32 bytes (elements 128h..128h+128): byte l of
 *                           half h holds, in bits 2s..2s+1, element 128h + 32s + l (s = 0..3)
 *   80   f16   d            super-scale of the scales
 *   82   f16   dmin         super-scale of the mins
 */

import { GgmlType } from "../ggml-type.js";
import type { BlockFormat } from "../format.js";
import { readF16, readF32, readI16, writeF16 } from "../bytes.js";
import { f16ToF32 } from "../f16.js";
import { fr, makeQkx2Quants, nearestInt } from "../quant-math.js";
import { checkDot, checkRow } from "../row-args.js";
import { OFF_BSUMS as Q8K_BSUMS, OFF_QS as Q8K_QS, TYPE_SIZE as Q8_K_TYPE_SIZE } from "./q8_k.js";

export const BLOCK_SIZE = 256;
export const TYPE_SIZE = 84;
export const OFF_SCALES = 0;
export const OFF_QS = 16;
export const OFF_D = 80;
export const OFF_DMIN = 82;

/** dequantize_row_q2_K */
function dequantizeRow(src: Uint8Array, dst: Float32Array, n: number): void {
  checkRow("q2_k", BLOCK_SIZE, TYPE_SIZE, n, src, dst);
  const nb = n / BLOCK_SIZE;
  for (let b = 0; b < nb; b++) {
    const o = b * TYPE_SIZE;
    const d = readF16(src, o + OFF_D);
    const min = readF16(src, o + OFF_DMIN);
    let y = b * BLOCK_SIZE;
    for (let h = 0; h < 2; h++) {
      const q = o + OFF_QS + 32 * h;
      for (let s = 0; s < 4; s++) {
        const shift = 2 * s;
        for (let half = 0; half < 2; half++) {
          const sc = src[o + OFF_SCALES + 8 * h + 2 * s + half];
          const dl = fr(d * (sc & 0xf));
          const ml = fr(min * (sc >> 4));
          const qq = q + 16 * half;
          for (let l = 0; l < 16; l++) dst[y + l] = fr(dl * ((src[qq + l] >> shift) & 3)) - ml;
          y += 16;
        }
      }
    }
  }
}

// quantize scratch
const L = new Uint8Array(256);
const Laux = new Uint8Array(16);
const weights = new Float32Array(16);
const mins = new Float32Array(16);
const scales = new Float32Array(16);
const F01 = fr(0.1);

/** quantize_row_q2_K_ref */
function quantizeRowRef(src: Float32Array, dst: Uint8Array, n: number): void {
  checkRow("q2_k", BLOCK_SIZE, TYPE_SIZE, n, dst, src);
  const nb = n / BLOCK_SIZE;
  const q4scale = 15;
  for (let b = 0; b < nb; b++) {
    const xo = b * BLOCK_SIZE;
    const o = b * TYPE_SIZE;
    let maxScale = 0;
    let maxMin = 0;
    for (let j = 0; j < 16; j++) {
      for (let l = 0; l < 16; l++) weights[l] = Math.abs(src[xo + 16 * j + l]);
      scales[j] = makeQkx2Quants(16, 3, src, xo + 16 * j, weights, L, 16 * j, mins, j, Laux, -0.5, F01, 15, true);
      if (scales[j] > maxScale) maxScale = scales[j];
      if (mins[j] > maxMin) maxMin = mins[j];
    }
    if (maxScale > 0) {
      const iscale = fr(q4scale / maxScale);
      for (let j = 0; j < 16; j++) dst[o + OFF_SCALES + j] = nearestInt(fr(iscale * scales[j])) & 0xff;
      writeF16(dst, o + OFF_D, fr(maxScale / q4scale));
    } else {
      for (let j = 0; j < 16; j++) dst[o + OFF_SCALES + j] = 0;
      writeF16(dst, o + OFF_D, 0);
    }
    if (maxMin > 0) {
      const iscale = fr(q4scale / maxMin);
      for (let j = 0; j < 16; j++) {
        const l = nearestInt(fr(iscale * mins[j]));
        dst[o + OFF_SCALES + j] = (dst[o + OFF_SCALES + j] | (l << 4)) & 0xff;
      }
      writeF16(dst, o + OFF_DMIN, fr(maxMin / q4scale));
    } else {
      writeF16(dst, o + OFF_DMIN, 0);
    }
    const dAll = f16ToF32(dst[o + OFF_D] | (dst[o + OFF_D + 1] << 8));
    const dMin = f16ToF32(dst[o + OFF_DMIN] | (dst[o + OFF_DMIN + 1] << 8));
    for (let j = 0; j < 16; j++) {
      const sc = dst[o + OFF_SCALES + j];
      const d = fr(dAll * (sc & 0xf));
      if (d === 0) continue;
      const dm = fr(dMin * (sc >> 4));
      for (let ii = 0; ii < 16; ii++) {
        const l = nearestInt(fr(fr(src[xo + 16 * j + ii] + dm) / d));
        L[16 * j + ii] = Math.max(0, Math.min(3, l));
      }
    }
    for (let h = 0; h < 2; h++) {
      const j = 128 * h;
      for (let l = 0; l < 32; l++) {
        dst[o + OFF_QS + 32 * h + l] = L[j + l] | (L[j + l + 32] << 2) | (L[j + l + 64] << 4) | (L[j + l + 96] << 6);
      }
    }
  }
}

/**
 * ggml_vec_dot_q2_K_q8_K_generic: per block, f32 (dq8*d) * isum - (dq8*dmin) * summs where
 * isum = sum sc[j] * q * q8 and summs = sum bsums[j] * m[j]; summed in f32.
 */
function vecDot(n: number, w: Uint8Array, x: Uint8Array): number {
  checkDot("q2_k", BLOCK_SIZE, TYPE_SIZE, 256, Q8_K_TYPE_SIZE, n, w, x);
  const nb = n / BLOCK_SIZE;
  let sumf = 0;
  for (let b = 0; b < nb; b++) {
    const o = b * TYPE_SIZE;
    const ox = b * Q8_K_TYPE_SIZE;
    let summs = 0;
    for (let j = 0; j < 16; j++) summs += readI16(x, ox + Q8K_BSUMS + 2 * j) * (w[o + OFF_SCALES + j] >> 4);
    const dq8 = readF32(x, ox);
    const dall = fr(dq8 * readF16(w, o + OFF_D));
    const dmin = fr(dq8 * readF16(w, o + OFF_DMIN));
    let isum = 0;
    let p = 0; // element index
    for (let h = 0; h < 2; h++) {
      const q = o + OFF_QS + 32 * h;
      for (let s = 0; s < 4; s++) {
        const shift = 2 * s;
        for (let half = 0; half < 2; half++) {
          const sc = w[o + OFF_SCALES + 8 * h + 2 * s + half] & 0xf;
          let isuml = 0;
          for (let l = 16 * half; l < 16 * half + 16; l++) isuml += ((x[ox + Q8K_QS + p + (l & 15)] << 24) >> 24) * ((w[q + l] >> shift) & 3);
          isum += sc * isuml;
          p += 16;
        }
      }
    }
    sumf = fr(sumf + fr(fr(dall * isum) - fr(dmin * summs)));
  }
  return sumf;
}

export const Q2_K_FORMAT: BlockFormat = {
  type: GgmlType.Q2_K,
  name: "q2_k",
  blockSize: BLOCK_SIZE,
  typeSize: TYPE_SIZE,
  vecDotType: GgmlType.Q8_K,
  dequantizeRow,
  quantizeRowRef,
  vecDot,
};
