/**
 * Importance-weighted quantizers: ggml's `quantize_q4_0` ... `quantize_q6_K` with
 * `quant_weights` (ggml-quants.c `quantize_row_*_impl`), written in TypeScript with the same C
 * float emulation as src/tensor. `qw` holds one importance per column of the row (llama.cpp's
 * imatrix: the mean of x^2 of that input channel over the calibration tokens).
 *
 * Without importance weights (qw === null) every type uses exactly its `quantizeRowRef`, which is
 * also what llama.cpp's llama-quantize does without an imatrix. Q8_0 ignores weights (as ggml).
 *
 * Block layouts are documented in src/tensor/formats/*.ts.
 */
import { UnsupportedError } from "../errors.js";
import { writeF16, writeU32 } from "../tensor/bytes.js";
import { f16ToF32 } from "../tensor/f16.js";
import { GgmlType, ggmlTypeName } from "../tensor/ggml-type.js";
import { GROUP_MAX_EPS, fr, makeQxQuants, minK4, nearestInt, scaleK4 } from "../tensor/quant-math.js";
import { getFormat } from "../tensor/registry.js";
import { makeQkx3Quants, makeQpQuants } from "./weighted-math.js";

/** Types with an importance-weighted quantizer (the others ignore weights). */
export const WEIGHTED_TYPES: ReadonlySet<GgmlType> = new Set([
  GgmlType.Q4_0,
  GgmlType.Q4_1,
  GgmlType.Q5_0,
  GgmlType.Q5_1,
  GgmlType.Q4_K,
  GgmlType.Q5_K,
  GgmlType.Q6_K,
]);

/**
 * Quantize one row of `n` values (a whole number of blocks) from `src` into `dst`. `qw`: `n`
 * importance weights (one per column) or null for the reference (round-to-nearest) quantizer.
 */
export function quantizeRow(type: GgmlType, src: Float32Array, dst: Uint8Array, n: number, qw: Float32Array | null): void {
  if (qw !== null && WEIGHTED_TYPES.has(type)) {
    switch (type) {
      case GgmlType.Q4_0:
        return quantizeQ4_0(src, dst, n, qw);
      case GgmlType.Q5_0:
        return quantizeQ5_0(src, dst, n, qw);
      case GgmlType.Q4_1:
        return quantizeQx1(src, dst, n, qw, 15);
      case GgmlType.Q5_1:
        return quantizeQx1(src, dst, n, qw, 31);
      case GgmlType.Q4_K:
        return quantizeQ45K(src, dst, n, qw, 15);
      case GgmlType.Q5_K:
        return quantizeQ45K(src, dst, n, qw, 31);
      case GgmlType.Q6_K:
        return quantizeQ6K(src, dst, n, qw);
    }
  }
  const f = getFormat(type);
  if (f.quantizeRowRef === undefined) {
    throw new UnsupportedError(`cannot write ${ggmlTypeName(type)} tensors`, {
      expected: "a type slimlm can quantize to",
      got: ggmlTypeName(type),
    });
  }
  f.quantizeRowRef(src, dst, n);
}

// scratch (module level: no allocation per row; each worker thread has its own module instance)
const weight32 = new Float32Array(32);
const L32 = new Int8Array(32);
const U32 = new Uint8Array(32);
const Laux32 = new Uint8Array(32);
const min1 = new Float32Array(1);
const LK = new Uint8Array(256);
const Ls = new Uint8Array(8);
const Lm = new Uint8Array(8);
const sw = new Float32Array(8);
const scales8 = new Float32Array(8);
const mins8 = new Float32Array(8);
const L6 = new Int8Array(256);
const qw16 = new Float32Array(16);
const scales16 = new Float32Array(16);
const RMIN = fr(-0.9);
const RDELTA = fr(0.05);

/** sigma2 of the legacy quantizers: sum(x^2) / n over the whole row. */
function rowSigma2(src: Float32Array, n: number): number {
  let sumX2 = 0;
  for (let j = 0; j < n; j++) sumX2 = fr(sumX2 + fr(src[j]! * src[j]!));
  return fr(sumX2 / n);
}

/** weight[j] = qw[j] * sqrt(sigma2 + x[j]^2) for the 32 elements at `xo`. */
function blockWeights(src: Float32Array, xo: number, qw: Float32Array, sigma2: number): void {
  for (let j = 0; j < 32; j++) {
    const x = src[xo + j]!;
    weight32[j] = fr(qw[xo + j]! * fr(Math.sqrt(fr(sigma2 + fr(x * x)))));
  }
}

/** quantize_row_q4_0_impl: 18-byte blocks; make_qx_quants(32, 8) with the block weights. */
function quantizeQ4_0(src: Float32Array, dst: Uint8Array, n: number, qw: Float32Array): void {
  const sigma2 = rowSigma2(src, n);
  for (let b = 0; b < n / 32; b++) {
    const xo = 32 * b;
    const o = 18 * b;
    blockWeights(src, xo, qw, sigma2);
    const d = makeQxQuants(32, 8, src, xo, L32, 0, 1, weight32);
    writeF16(dst, o, d);
    for (let j = 0; j < 16; j++) dst[o + 2 + j] = (L32[j]! | (L32[j + 16]! << 4)) & 0xff;
  }
}

/** quantize_row_q5_0_impl: 22-byte blocks; make_qx_quants(32, 16), the 5th bits in qh. */
function quantizeQ5_0(src: Float32Array, dst: Uint8Array, n: number, qw: Float32Array): void {
  const sigma2 = rowSigma2(src, n);
  for (let b = 0; b < n / 32; b++) {
    const xo = 32 * b;
    const o = 22 * b;
    blockWeights(src, xo, qw, sigma2);
    const d = makeQxQuants(32, 16, src, xo, L32, 0, 1, weight32);
    writeF16(dst, o, d);
    let qh = 0;
    for (let j = 0; j < 16; j++) {
      const x0 = L32[j]! & 0xff;
      const x1 = L32[j + 16]! & 0xff;
      dst[o + 6 + j] = (x0 & 0x0f) | ((x1 & 0x0f) << 4);
      qh |= ((x0 & 0x10) >> 4) << j;
      qh |= ((x1 & 0x10) >> 4) << (j + 16);
    }
    writeU32(dst, o + 2, qh);
  }
}

/**
 * quantize_row_q4_1_impl / quantize_row_q5_1_impl (nmax 15 / 31): make_qkx3_quants per block,
 * d and m = -min as f16; Q4_1 blocks are 20 bytes (d, m, qs), Q5_1 24 bytes (d, m, qh, qs).
 */
function quantizeQx1(src: Float32Array, dst: Uint8Array, n: number, qw: Float32Array, nmax: 15 | 31): void {
  const sigma2 = rowSigma2(src, n);
  const bs = nmax === 15 ? 20 : 24;
  for (let b = 0; b < n / 32; b++) {
    const xo = 32 * b;
    const o = bs * b;
    blockWeights(src, xo, qw, sigma2);
    const d = makeQkx3Quants(32, nmax, src, xo, weight32, U32, 0, min1, 0, Laux32, RMIN, RDELTA, 36);
    writeF16(dst, o, d);
    writeF16(dst, o + 2, -min1[0]!);
    if (nmax === 15) {
      for (let j = 0; j < 16; j++) dst[o + 4 + j] = U32[j]! | (U32[j + 16]! << 4);
    } else {
      let qh = 0;
      for (let j = 0; j < 16; j++) {
        const x0 = U32[j]!;
        const x1 = U32[j + 16]!;
        dst[o + 8 + j] = (x0 & 0x0f) | ((x1 & 0x0f) << 4);
        qh |= ((x0 & 0x10) >> 4) << j;
        qh |= ((x1 & 0x10) >> 4) << (j + 16);
      }
      writeU32(dst, o + 4, qh);
    }
  }
}

/**
 * quantize_row_q4_K_impl / quantize_row_q5_K_impl (nmax 15 / 31): per 256-element super-block,
 * make_qkx3_quants on each 32-element sub-block with weights qw * sqrt(sigma2 + x^2)
 * (sigma2 = 2 * mean x^2 of the super-block), then the 8 scales and 8 mins are themselves
 * quantized to 6 bits by make_qp_quants weighted by the sub-blocks' weight sums.
 * Q4_K blocks: 144 bytes (d, dmin, scales[12], qs[128]); Q5_K: 176 (d, dmin, scales, qh[32], qs).
 */
function quantizeQ45K(src: Float32Array, dst: Uint8Array, n: number, qw: Float32Array, nmax: 15 | 31): void {
  const bs = nmax === 15 ? 144 : 176;
  const offQs = nmax === 15 ? 16 : 48;
  for (let b = 0; b < n / 256; b++) {
    const xo = 256 * b;
    const o = bs * b;
    let sumX2 = 0;
    for (let l = 0; l < 256; l++) sumX2 = fr(sumX2 + fr(src[xo + l]! * src[xo + l]!));
    const sigma2 = fr(fr(2 * sumX2) / 256);
    for (let j = 0; j < 8; j++) {
      const xj = xo + 32 * j;
      for (let l = 0; l < 32; l++) {
        const x = src[xj + l]!;
        weight32[l] = fr(qw[xj + l]! * fr(Math.sqrt(fr(sigma2 + fr(x * x)))));
      }
      let sumw = 0;
      for (let l = 0; l < 32; l++) sumw = fr(sumw + weight32[l]!);
      sw[j] = sumw;
      scales8[j] = makeQkx3Quants(32, nmax, src, xj, weight32, LK, 32 * j, mins8, j, Laux32, RMIN, RDELTA, 36);
    }
    const dBlock = makeQpQuants(8, 63, scales8, Ls, sw);
    const mBlock = makeQpQuants(8, 63, mins8, Lm, sw);
    const s = o + 4;
    dst.fill(0, s, s + 12);
    for (let j = 0; j < 8; j++) {
      // NOTE: Q5_K clamps to 63 here, Q4_K does not (make_qp_quants already keeps <= 63).
      const ls = nmax === 31 ? Math.min(63, Ls[j]!) : Ls[j]!;
      const lm = nmax === 31 ? Math.min(63, Lm[j]!) : Lm[j]!;
      if (j < 4) {
        dst[s + j] = ls;
        dst[s + j + 4] = lm;
      } else {
        dst[s + j + 4] = (ls & 0xf) | ((lm & 0xf) << 4);
        dst[s + j - 4] = dst[s + j - 4]! | (ls >> 4) << 6;
        dst[s + j] = dst[s + j]! | (lm >> 4) << 6;
      }
    }
    writeF16(dst, o, dBlock);
    writeF16(dst, o + 2, mBlock);
    const d16 = f16ToF32(dst[o]! | (dst[o + 1]! << 8));
    const dmin16 = f16ToF32(dst[o + 2]! | (dst[o + 3]! << 8));
    for (let j = 0; j < 8; j++) {
      const d = fr(d16 * scaleK4(j, dst, s));
      if (d === 0) continue;
      const dm = fr(dmin16 * minK4(j, dst, s));
      for (let ii = 0; ii < 32; ii++) {
        const l = nearestInt(fr(fr(src[xo + 32 * j + ii]! + dm) / d));
        LK[32 * j + ii] = Math.max(0, Math.min(nmax, l));
      }
    }
    if (nmax === 15) {
      for (let c = 0; c < 4; c++) {
        const q = o + offQs + 32 * c;
        for (let l = 0; l < 32; l++) dst[q + l] = LK[64 * c + l]! | (LK[64 * c + 32 + l]! << 4);
      }
    } else {
      const qh = o + 16;
      dst.fill(0, qh, qh + 32);
      for (let c = 0; c < 4; c++) {
        const m1 = 1 << (2 * c);
        const m2 = 2 << (2 * c);
        const ql = o + offQs + 32 * c;
        for (let j = 0; j < 32; j++) {
          let l1 = LK[64 * c + j]!;
          if (l1 > 15) {
            l1 -= 16;
            dst[qh + j] = dst[qh + j]! | m1;
          }
          let l2 = LK[64 * c + 32 + j]!;
          if (l2 > 15) {
            l2 -= 16;
            dst[qh + j] = dst[qh + j]! | m2;
          }
          dst[ql + j] = l1 | (l2 << 4);
        }
      }
    }
  }
}

/**
 * quantize_row_q6_K_impl: the reference Q6_K algorithm with the raw importances as the
 * make_qx_quants weights of each 16-element sub-block (210-byte blocks: ql[128], qh[64],
 * scales[16], d).
 */
function quantizeQ6K(src: Float32Array, dst: Uint8Array, n: number, qw: Float32Array): void {
  for (let b = 0; b < n / 256; b++) {
    const xo = 256 * b;
    const o = 210 * b;
    let maxScale = 0;
    let maxAbsScale = 0;
    for (let ib = 0; ib < 16; ib++) {
      for (let j = 0; j < 16; j++) qw16[j] = qw[xo + 16 * ib + j]!;
      const scale = makeQxQuants(16, 32, src, xo + 16 * ib, L6, 16 * ib, 1, qw16);
      scales16[ib] = scale;
      const abs = Math.abs(scale);
      if (abs > maxAbsScale) {
        maxAbsScale = abs;
        maxScale = scale;
      }
    }
    if (maxAbsScale < GROUP_MAX_EPS) {
      dst.fill(0, o, o + 210);
      continue;
    }
    const iscale = fr(-128 / maxScale);
    writeF16(dst, o + 208, fr(1 / iscale));
    for (let ib = 0; ib < 16; ib++) dst[o + 192 + ib] = Math.min(127, nearestInt(fr(iscale * scales16[ib]!))) & 0xff;
    const d16 = f16ToF32(dst[o + 208]! | (dst[o + 209]! << 8));
    for (let j = 0; j < 16; j++) {
      const d = fr(d16 * ((dst[o + 192 + j]! << 24) >> 24));
      if (d === 0) continue;
      for (let ii = 0; ii < 16; ii++) {
        const l = nearestInt(fr(src[xo + 16 * j + ii]! / d));
        L6[16 * j + ii] = Math.max(-32, Math.min(31, l)) + 32;
      }
    }
    for (let h = 0; h < 2; h++) {
      const ql = o + 64 * h;
      const qh = o + 128 + 32 * h;
      const j = 128 * h;
      for (let l = 0; l < 32; l++) {
        const l1 = L6[j + l]!;
        const l2 = L6[j + l + 32]!;
        const l3 = L6[j + l + 64]!;
        const l4 = L6[j + l + 96]!;
        dst[ql + l] = (l1 & 0xf) | ((l3 & 0xf) << 4);
        dst[ql + l + 32] = (l2 & 0xf) | ((l4 & 0xf) << 4);
        dst[qh + l] = (l1 >> 4) | ((l2 >> 4) << 2) | ((l3 >> 4) << 4) | ((l4 >> 4) << 6);
      }
    }
  }
}
