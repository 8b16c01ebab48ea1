// quantizeActivations: f32 activation rows -> the vecDot formats, bit-identical to the
// src/tensor references (quantizeRowRef of Q8_0/Q8_K, f32 -> f16 -> f32 for F16).
// All take a count of contiguous elements or blocks: activation rows are contiguous in both
// the source ([T][k] f32) and the destination (row stride = whole blocks), so T rows of k are
// simply T*k/blockSize consecutive blocks.
//
// NOTE: dst may equal x (in place): every block is fully loaded before its output is stored,
// and outputs are never larger than inputs.

import { roundToF16, f32ToF16Bits } from "./common";

/** n f32 at x -> n f32 rounded to f16 precision at dst. */
export function quantizeF16(x: usize, dst: usize, n: i32): void {
  let i = 0;
  for (; i + 8 <= n; i += 8) {
    const p = <usize>i << 2;
    const a = v128.load(x + p);
    const b = v128.load(x + p, 16);
    v128.store(dst + p, roundToF16(a));
    v128.store(dst + p, roundToF16(b), 16);
  }
  for (; i < n; i++) {
    const p = <usize>i << 2;
    store<f32>(dst + p, f32x4.extract_lane(roundToF16(f32x4.splat(load<f32>(x + p))), 0));
  }
}

/** C roundf (half away from zero) on f32x4 lanes. */
@inline function roundAway(v: v128): v128 {
  const t = f32x4.trunc(v);
  const frac = f32x4.abs(f32x4.sub(v, t));
  // +-1 with the sign of v, kept where |frac| >= 0.5 (v - trunc(v) is exact)
  const one = v128.or(v128.and(v, i32x4.splat(0x80000000)), i32x4.splat(0x3f800000));
  return f32x4.add(t, v128.and(one, f32x4.ge(frac, f32x4.splat(0.5))));
}

/** Four f32x4 of small integers -> 16 i8 (saturating). */
@inline function packI8(a: v128, b: v128, c: v128, d: v128): v128 {
  return i8x16.narrow_i16x8_s(
    i16x8.narrow_i32x4_s(i32x4.trunc_sat_f32x4_s(a), i32x4.trunc_sat_f32x4_s(b)),
    i16x8.narrow_i32x4_s(i32x4.trunc_sat_f32x4_s(c), i32x4.trunc_sat_f32x4_s(d)),
  );
}

/**
 * nb blocks of 32 f32 at x -> nb Q8_0 blocks (34 bytes: f16 d, 32 i8) at dst.
 * quantize_row_q8_0_ref: amax = max |x|, d = amax/127, id = 1/d (0 if d = 0), q = roundf(x*id).
 * NOTE: ggml's own wasm quantize_row_q8_0 truncates instead of rounding; we follow the ref.
 */
export function quantizeQ8_0(x: usize, dst: usize, nb: i32): void {
  for (let i = 0; i < nb; i++) {
    const v0 = v128.load(x);
    const v1 = v128.load(x, 16);
    const v2 = v128.load(x, 32);
    const v3 = v128.load(x, 48);
    const v4 = v128.load(x, 64);
    const v5 = v128.load(x, 80);
    const v6 = v128.load(x, 96);
    const v7 = v128.load(x, 112);
    let m = f32x4.max(
      f32x4.max(f32x4.max(f32x4.abs(v0), f32x4.abs(v1)), f32x4.max(f32x4.abs(v2), f32x4.abs(v3))),
      f32x4.max(f32x4.max(f32x4.abs(v4), f32x4.abs(v5)), f32x4.max(f32x4.abs(v6), f32x4.abs(v7))),
    );
    m = f32x4.max(m, v128.shuffle<f32>(m, m, 2, 3, 0, 1));
    m = f32x4.max(m, v128.shuffle<f32>(m, m, 1, 0, 3, 2));
    const amax = f32x4.extract_lane(m, 0);
    const d: f32 = amax / <f32>127;
    const id: f32 = d != 0 ? <f32>1 / d : <f32>0;
    const s = f32x4.splat(id);
    const q0 = packI8(
      roundAway(f32x4.mul(v0, s)),
      roundAway(f32x4.mul(v1, s)),
      roundAway(f32x4.mul(v2, s)),
      roundAway(f32x4.mul(v3, s)),
    );
    const q1 = packI8(
      roundAway(f32x4.mul(v4, s)),
      roundAway(f32x4.mul(v5, s)),
      roundAway(f32x4.mul(v6, s)),
      roundAway(f32x4.mul(v7, s)),
    );
    store<u16>(dst, <u16>f32ToF16Bits(d));
    v128.store(dst, q0, 2);
    v128.store(dst, q1, 18);
    x += 128;
    dst += 34;
  }
}

/** [sum(a), sum(b), sum(c), sum(d)] of the 16 i8 lanes of each. */
@inline function byteSums4(a: v128, b: v128, c: v128, d: v128): v128 {
  const sa = i32x4.extadd_pairwise_i16x8_s(i16x8.extadd_pairwise_i8x16_s(a));
  const sb = i32x4.extadd_pairwise_i16x8_s(i16x8.extadd_pairwise_i8x16_s(b));
  const sc = i32x4.extadd_pairwise_i16x8_s(i16x8.extadd_pairwise_i8x16_s(c));
  const sd = i32x4.extadd_pairwise_i16x8_s(i16x8.extadd_pairwise_i8x16_s(d));
  const ab = i32x4.add(v128.shuffle<i32>(sa, sb, 0, 4, 1, 5), v128.shuffle<i32>(sa, sb, 2, 6, 3, 7));
  const cd = i32x4.add(v128.shuffle<i32>(sc, sd, 0, 4, 1, 5), v128.shuffle<i32>(sc, sd, 2, 6, 3, 7));
  return i32x4.add(v128.shuffle<i32>(ab, cd, 0, 1, 4, 5), v128.shuffle<i32>(ab, cd, 2, 3, 6, 7));
}

/** 16 f32 at p times s, rounded half to even (ggml nearest_int), -> 16 i8 (saturating: min(127, .)). */
@inline function q8kGroup(p: usize, s: v128): v128 {
  return packI8(
    f32x4.nearest(f32x4.mul(v128.load(p), s)),
    f32x4.nearest(f32x4.mul(v128.load(p, 16), s)),
    f32x4.nearest(f32x4.mul(v128.load(p, 32), s)),
    f32x4.nearest(f32x4.mul(v128.load(p, 48), s)),
  );
}

/**
 * nb blocks of 256 f32 at x -> nb Q8_K blocks (292 bytes: f32 d, 256 i8 qs, 16 i16 bsums).
 * quantize_row_q8_K_ref: max = the first value of largest magnitude, iscale = -127/max,
 * q = min(127, nearest_int(iscale*x)), bsums = sums of 16 quants, d = 1/iscale. An all-zero
 * block is written as zeros (d, qs and bsums; ggml leaves bsums untouched).
 */
export function quantizeQ8_K(x: usize, dst: usize, nb: i32): void {
  for (let i = 0; i < nb; i++) {
    let m0 = f32x4.splat(0);
    let m1 = f32x4.splat(0);
    let m2 = f32x4.splat(0);
    let m3 = f32x4.splat(0);
    for (let j: usize = 0; j < 1024; j += 64) {
      m0 = f32x4.max(m0, f32x4.abs(v128.load(x + j)));
      m1 = f32x4.max(m1, f32x4.abs(v128.load(x + j, 16)));
      m2 = f32x4.max(m2, f32x4.abs(v128.load(x + j, 32)));
      m3 = f32x4.max(m3, f32x4.abs(v128.load(x + j, 48)));
    }
    let m = f32x4.max(f32x4.max(m0, m1), f32x4.max(m2, m3));
    m = f32x4.max(m, v128.shuffle<f32>(m, m, 2, 3, 0, 1));
    m = f32x4.max(m, v128.shuffle<f32>(m, m, 1, 0, 3, 2));
    const amax = f32x4.extract_lane(m, 0);
    if (amax == 0) {
      memory.fill(dst, 0, 292);
      x += 1024;
      dst += 292;
      continue;
    }
    // The signed value at the first position holding amax (the ref's strict '>' scan).
    const am = f32x4.splat(amax);
    let at: usize = 0;
    for (let j: usize = 0; j < 1024; j += 16) {
      const mask = i32x4.bitmask(f32x4.eq(f32x4.abs(v128.load(x + j)), am));
      if (mask != 0) {
        at = j + (<usize>ctz(mask) << 2);
        break;
      }
    }
    const iscale: f32 = <f32>-127 / load<f32>(x + at);
    const s = f32x4.splat(iscale);
    for (let g: usize = 0; g < 2; g++) {
      // 8 groups of 16 -> 8 bsums per half
      const xp = x + (g << 9);
      const qp = dst + 4 + (g << 7);
      const a0 = q8kGroup(xp, s);
      const a1 = q8kGroup(xp + 64, s);
      const a2 = q8kGroup(xp + 128, s);
      const a3 = q8kGroup(xp + 192, s);
      const a4 = q8kGroup(xp + 256, s);
      const a5 = q8kGroup(xp + 320, s);
      const a6 = q8kGroup(xp + 384, s);
      const a7 = q8kGroup(xp + 448, s);
      v128.store(qp, a0);
      v128.store(qp, a1, 16);
      v128.store(qp, a2, 32);
      v128.store(qp, a3, 48);
      v128.store(qp, a4, 64);
      v128.store(qp, a5, 80);
      v128.store(qp, a6, 96);
      v128.store(qp, a7, 112);
      const bs = i16x8.narrow_i32x4_s(byteSums4(a0, a1, a2, a3), byteSums4(a4, a5, a6, a7));
      v128.store(dst + 260 + (g << 4), bs);
    }
    store<f32>(dst, <f32>1 / iscale);
    x += 1024;
    dst += 292;
  }
}
