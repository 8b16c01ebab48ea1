/**
 * Q3_K: super-blocks of 256 weights = 16 sub-blocks of 16, each with a signed 6-bit scale:
 * x = (d * (sc[j] - 32)) * (q - 4) with q in 0..7 (2 low bits in qs, the high bit in hmask).
 *
 * Block layout (110 bytes), ggml-common.h block_q3_K:
 *   0     u8    hmask[32]   bit b of byte l = high bit of element 32b + l (b = 0..7)
 *   32    u8    qs[64]      two halves h = 0,1 of 32 bytes (elements 128h..128h+128): byte l of
 *                           half h holds, in bits 2s..2s+1, element 128h + 32s + l (s = 0..3)
 *   96    u8    scales[12]  16 6-bit values sc[j] (stored with +32 bias):
 *                             low 4 bits:  j < 8: scales[j] & 15, j >= 8: scales[j-8] >> 4
 *                             high 2 bits: (scales[8 + j%4] >> (2*(j/4))) & 3
 *   108   f16   d           super-scale
 */

import { GgmlType } from "../ggml-type.js";
import type { BlockFormat } from "../format.js";
import { readF16, readF32, writeF16 } from "../bytes.js";
import { f16ToF32 } from "../f16.js";
import { fr, makeQ3Quants, nearestInt, toInt8 } from "../quant-math.js";
import { checkDot, checkRow } from "../row-args.js";
import { OFF_QS as Q8K_QS, TYPE_SIZE as Q8_K_TYPE_SIZE } from "./q8_k.js";

export const BLOCK_SIZE = 256;
export const TYPE_SIZE = 110;
export const OFF_HMASK = 0;
export const OFF_QS = 32;
export const OFF_SCALES = 96;
export const OFF_D = 108;

/** Unbiased 6-bit scale j (-32..31) of the block at `o`. */
function scale(b: Uint8Array, o: number, j: number): number {
  const s = o + OFF_SCALES;
  const lo = j < 8 ? b[s + j] & 0xf : b[s + j - 8] >> 4;
  return (lo | (((b[s + 8 + (j & 3)] >> (2 * (j >> 2))) & 3) << 4)) - 32;
}

/** Signed quant (-4..3) of element p = 128h + 32s + l of the block at `o`. */
function quant(b: Uint8Array, o: number, p: number): number {
  const h = p >> 7;
  const s = (p >> 5) & 3;
  const l = p & 31;
  const low = (b[o + OFF_QS + 32 * h + l] >> (2 * s)) & 3;
  return low - ((b[o + OFF_HMASK + l] >> (4 * h + s)) & 1 ? 0 : 4);
}

/** dequantize_row_q3_K */
function dequantizeRow(src: Uint8Array, dst: Float32Array, n: number): void {
  checkRow("q3_k", BLOCK_SIZE, TYPE_SIZE, n, src, dst);
  const nb = n / BLOCK_SIZE;
  for (let b = 0; b < nb; b++) {
    const o = b * TYPE_SIZE;
    const dAll = readF16(src, o + OFF_D);
    const y = b * BLOCK_SIZE;
    for (let j = 0; j < 16; j++) {
      // the sub-block of 16 elements 16j.. uses scale j; dl * q is exact, the store rounds
      const dl = fr(dAll * scale(src, o, j));
      for (let l = 0; l < 16; l++) dst[y + 16 * j + l] = dl * quant(src, o, 16 * j + l);
    }
  }
}

// quantize scratch
const L = new Int8Array(256);
const scales = new Float32Array(16);

/** quantize_row_q3_K_ref */
function quantizeRowRef(src: Float32Array, dst: Uint8Array, n: number): void {
  checkRow("q3_k", BLOCK_SIZE, TYPE_SIZE, n, dst, src);
  const nb = n / BLOCK_SIZE;
  for (let b = 0; b < nb; b++) {
    const xo = b * BLOCK_SIZE;
    const o = b * TYPE_SIZE;
    let maxScale = 0;
    let amax = 0;
    for (let j = 0; j < 16; j++) {
      scales[j] = makeQ3Quants(16, 4, src, xo + 16 * j, L, 16 * j, true);
      const sc = Math.abs(scales[j]);
      if (sc > amax) {
        amax = sc;
        maxScale = scales[j];
      }
    }
    const s = o + OFF_SCALES;
    dst.fill(0, s, s + 12);
    if (maxScale !== 0) {
      const iscale = fr(-32 / maxScale);
      for (let j = 0; j < 16; j++) {
        let l = toInt8(nearestInt(fr(iscale * scales[j]))); // int8_t l = nearest_int(...)
        l = Math.max(-32, Math.min(31, l)) + 32;
        if (j < 8) dst[s + j] = l & 0xf;
        else dst[s + j - 8] |= (l & 0xf) << 4;
        l >>= 4;
        dst[s + 8 + (j % 4)] |= l << (2 * (j >> 2));
      }
      writeF16(dst, o + OFF_D, fr(1 / iscale));
    } else {
      writeF16(dst, o + OFF_D, 0);
    }
    const d16 = f16ToF32(dst[o + OFF_D] | (dst[o + OFF_D + 1] << 8));
    for (let j = 0; j < 16; j++) {
      const d = fr(d16 * scale(dst, o, j));
      if (d === 0) continue;
      for (let ii = 0; ii < 16; ii++) {
        const l = nearestInt(fr(src[xo + 16 * j + ii] / d));
        L[16 * j + ii] = Math.max(-4, Math.min(3, l)) + 4;
      }
    }
    const hm = o + OFF_HMASK;
    dst.fill(0, hm, hm + 32);
    // the high bit of element j goes to hmask[j % 32], bit j / 32
    for (let j = 0; j < 256; j++) {
      if (L[j] > 3) {
        dst[hm + (j & 31)] |= 1 << (j >> 5);
        L[j] -= 4;
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

const aux32 = new Int32Array(8);
const sums = new Float32Array(8);

/**
 * ggml_vec_dot_q3_K_q8_K_generic with its f32 rounding: 8 integer lanes (element p -> lane
 * p % 8) of (sc[p/16] - 32) * (q - 4) * q8, scaled per block by d*dq8 into 8 f32 lane sums,
 * added up at the end.
 */
function vecDot(n: number, w: Uint8Array, x: Uint8Array): number {
  checkDot("q3_k", BLOCK_SIZE, TYPE_SIZE, 256, Q8_K_TYPE_SIZE, n, w, x);
  const nb = n / BLOCK_SIZE;
  sums.fill(0);
  for (let b = 0; b < nb; b++) {
    const o = b * TYPE_SIZE;
    const ox = b * Q8_K_TYPE_SIZE;
    aux32.fill(0);
    for (let j = 0; j < 16; j++) {
      const sc = scale(w, o, j);
      for (let i = 0; i < 16; i++) {
        const p = 16 * j + i;
        aux32[i & 7] += sc * quant(w, o, p) * ((x[ox + Q8K_QS + p] << 24) >> 24);
      }
    }
    const d = fr(readF16(w, o + OFF_D) * readF32(x, ox));
    for (let l = 0; l < 8; l++) sums[l] = fr(sums[l] + fr(d * aux32[l]));
  }
  let sumf = 0;
  for (let l = 0; l < 8; l++) sumf = fr(sumf + sums[l]);
  return sumf;
}

export const Q3_K_FORMAT: BlockFormat = {
  type: GgmlType.Q3_K,
  name: "q3_k",
  blockSize: BLOCK_SIZE,
  typeSize: TYPE_SIZE,
  vecDotType: GgmlType.Q8_K,
  dequantizeRow,
  quantizeRowRef,
  vecDot,
};
