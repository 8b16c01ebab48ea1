/**
 * Q8_K: the activation format of the K-quant dot products. Blocks of 256 values as int8 quants
 * times one f32 scale (x = d * q), plus the sum of each group of 16 quants for the min terms.
 *
 * Block layout (292 bytes), ggml-common.h block_q8_K:
 *   0     f32   d           scale
 *   4     i8    qs[256]     quants, element j at byte 4 + j
 *   260   i16   bsums[16]   bsums[g] = sum of qs[16g .. 16g+16), at byte 260 + 2g
 *
 * NOTE: ggml has no vec_dot with Q8_K as the left operand; it is only ever an activation.
 */

import { GgmlType } from "../ggml-type.js";
import type { BlockFormat } from "../format.js";
import { readF32, writeF32, writeU16 } from "../bytes.js";
import { fr, nearestInt } from "../quant-math.js";
import { checkRow } from "../row-args.js";

export const BLOCK_SIZE = 256;
export const TYPE_SIZE = 292;
/** Byte offsets of the fields. */
export const OFF_D = 0;
export const OFF_QS = 4;
export const OFF_BSUMS = 260;

/** dequantize_row_q8_K */
function dequantizeRow(src: Uint8Array, dst: Float32Array, n: number): void {
  checkRow("q8_k", BLOCK_SIZE, TYPE_SIZE, n, src, dst);
  const nb = n / BLOCK_SIZE;
  for (let b = 0; b < nb; b++) {
    const o = b * TYPE_SIZE;
    const d = readF32(src, o);
    const y = b * BLOCK_SIZE;
    for (let j = 0; j < 256; j++) dst[y + j] = d * ((src[o + OFF_QS + j] << 24) >> 24);
  }
}

/**
 * quantize_row_q8_K_ref: iscale = -127/max (max = signed value of largest magnitude),
 * q = min(127, nearest_int(iscale*x)), d = 1/iscale.
 * NOTE: for an all-zero block ggml leaves bsums untouched; we write zeros.
 */
function quantizeRowRef(src: Float32Array, dst: Uint8Array, n: number): void {
  checkRow("q8_k", BLOCK_SIZE, TYPE_SIZE, n, dst, src);
  const nb = n / BLOCK_SIZE;
  for (let b = 0; b < nb; b++) {
    const xo = b * BLOCK_SIZE;
    const o = b * TYPE_SIZE;
    let max = 0;
    let amax = 0;
    for (let j = 0; j < 256; j++) {
      const ax = Math.abs(src[xo + j]);
      if (ax > amax) {
        amax = ax;
        max = src[xo + j];
      }
    }
    if (amax === 0) {
      dst.fill(0, o, o + TYPE_SIZE);
      continue;
    }
    const iscale = fr(-127 / max);
    for (let j = 0; j < 256; j++) {
      const v = nearestInt(fr(iscale * src[xo + j]));
      dst[o + OFF_QS + j] = Math.min(127, v) & 0xff;
    }
    for (let g = 0; g < 16; g++) {
      let sum = 0;
      for (let i = 0; i < 16; i++) sum += (dst[o + OFF_QS + 16 * g + i] << 24) >> 24;
      writeU16(dst, o + OFF_BSUMS + 2 * g, sum);
    }
    writeF32(dst, o, fr(1 / iscale));
  }
}

export const Q8_K_FORMAT: BlockFormat = {
  type: GgmlType.Q8_K,
  name: "q8_k",
  blockSize: BLOCK_SIZE,
  typeSize: TYPE_SIZE,
  vecDotType: undefined,
  dequantizeRow,
  quantizeRowRef,
  vecDot: undefined,
};
