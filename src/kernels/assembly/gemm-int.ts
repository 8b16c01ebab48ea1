// Integer GEMM (T >= 4: prefill, batched decode) for the quantized types Q8_0, Q4_0, Q4_K, Q6_K,
// the same code in both builds: i16 x i16 products with i32x4.dot_i16x8_s (exact integers).
//
// Per pass over the weights (up to ~1 MiB of activations):
// - activations -> tiles of 4 tokens: for each weight block b, L = L1 + L2 "pair steps" of
//   4 tokens x (elements 2j, 2j+1 as two i16 in one i32) = 16 B per step, and dx [nb][4] f32;
// - per group of 4 rows, a weight panel in the same shape: per block, L steps of 4 rows x
//   (elements 2j, 2j+1 as i16) = 16 B, plus per block two f32x4 scales (s1 for the L1 steps,
//   s2 for the L2 steps);
// - per (group, tile): i_t = sum_j dot_i16x8_s(panel step j, splat(tile step j, token t)) is
//   the 4 rows' integer sum for token t (no horizontal sums), f_t += f32(i_t) * (s * dx_t).
// - two groups at a time (8 rows, intTile8): their panels interleaved step by step, so each
//   token splat feeds two dots; 2 + 4 loads per 8 dots instead of 5 per 4 (+20-25% at T >= 16,
//   scripts/kernel-speed.mjs; a 4-row tail group runs intTile).
//
// What the panel holds per type (w = weight value):
// | type | L1 | L2 | panel i16 | s1 | s2 | tile steps |
// | Q8_0 | 16 | 0 | q | d | - | x pairs |
// | Q4_0 | 16 | 0 | q - 8 | d | - | x pairs |
// | Q4_K | 128 | 4 | sc_j * q | d | -dmin | x pairs; then (B_2p, B_2p+1), B_j = sum of x over sub-block j |
// | Q6_K | 128 | 0 | sc_j * (q - 32) | d | - | x pairs |
// All i16 values fit (|sc * (q - 32)| <= 4096), and every block's i32 sum fits (<= 256 * 4096 * 128).
// The relaxed build runs Q4_0/Q4_K/Q6_K through gemm-rq.ts instead (2x fewer instructions).

import { madd, f16x8Lo, f16x8Hi, storeLanes, transpose4Store, kv, K_I8_15, K_I8_8, K_I8_0X30, SCRATCH, SCRATCH_END, align64 } from "./common";
import { q8kPairSums } from "./qcommon";

export const KIND_Q8_0: i32 = 0;
export const KIND_Q4_0: i32 = 1;
export const KIND_Q4_K: i32 = 2;
export const KIND_Q6_K: i32 = 3;

/** Pair steps per weight block (L1 + L2). */
@inline function stepsOf(kind: i32): usize {
  return kind == KIND_Q4_K ? 132 : kind == KIND_Q6_K ? 128 : 16;
}
@inline function l1Of(kind: i32): i32 {
  return kind == KIND_Q4_K || kind == KIND_Q6_K ? 128 : 16;
}
/** Elements per weight block. */
@inline function blockOf(kind: i32): i32 {
  return kind == KIND_Q4_K || kind == KIND_Q6_K ? 256 : 32;
}
/** Bytes of one activation block (Q8_0: 34, Q8_K: 292). */
@inline function actBytesOf(kind: i32): usize {
  return kind == KIND_Q4_K || kind == KIND_Q6_K ? 292 : 34;
}

/** Packed group bytes (src/kernels/packing.ts). */
export function groupBytesOf(kind: i32, nb: i32): usize {
  const s = (<usize>(nb << 3) + 15) & ~<usize>15;
  if (kind == KIND_Q8_0) return s + (<usize>nb << 7);
  if (kind == KIND_Q4_0) return s + (<usize>nb << 6);
  if (kind == KIND_Q4_K) return <usize>nb * 576;
  return s + <usize>nb * 832;
}

/** Scale region bytes of a group (Q8_0, Q4_0, Q6_K): round16(8 nb). */
@inline export function scaleRegion(nb: i32): usize {
  return (<usize>(nb << 3) + 15) & ~<usize>15;
}

// ------------------------------------------------------------------------------ small helpers

/** Pairs view of 16 i8 lanes as 4 rows x 4 elements: [r0 e0 e1, r1 e0 e1, ...] and [.. e2 e3 ..]. */
@inline function pairShuffle(v: v128): v128 {
  return v128.shuffle<u8>(v, v, 0, 1, 4, 5, 8, 9, 12, 13, 2, 3, 6, 7, 10, 11, 14, 15);
}

/**
 * Per-row byte `b` (0..3, runtime) of the 4 i32 lanes of v (lane r = row r), as i8 in bytes
 * [r0, r0, r1, r1, r2, r2, r3, r3] (low 8 bytes): the pair-form scale for dot_i16x8_s.
 */
@inline export function rowBytePairs(v: v128, b: i32): v128 {
  const s = i32x4.shr_u(v, b << 3);
  return v128.shuffle<u8>(s, s, 0, 0, 4, 4, 8, 8, 12, 12, 0, 0, 4, 4, 8, 8, 12, 12);
}

/** The 6-bit scales and mins of a packed Q4_K superblock's 4 rows (lane r = bytes of row r). */
@inline export function q4kScaleLo(a: v128): v128 {
  return v128.and(a, i32x4.splat(0x3f3f3f3f));
}
@inline export function q4kScaleHi(a: v128, c: v128): v128 {
  return v128.or(v128.and(c, i32x4.splat(0x0f0f0f0f)), i32x4.shl(v128.and(i32x4.shr_u(a, 6), i32x4.splat(0x03030303)), 4));
}
@inline export function q4kMinHi(b: v128, c: v128): v128 {
  return v128.or(v128.and(i32x4.shr_u(c, 4), i32x4.splat(0x0f0f0f0f)), i32x4.shl(v128.and(i32x4.shr_u(b, 6), i32x4.splat(0x03030303)), 4));
}

/** Q4_K mins pair step p (0..3) of mLo/mHi as i16 [r0 m2p, r0 m2p+1, r1 ..]. */
@inline export function q4kMinPair(mLo: v128, mHi: v128, p: i32): v128 {
  const s = i32x4.shr_u(p < 2 ? mLo : mHi, (p & 1) << 4);
  return i16x8.extend_low_i8x16_u(v128.shuffle<u8>(s, s, 0, 1, 4, 5, 8, 9, 12, 13, 0, 1, 4, 5, 8, 9, 12, 13));
}

/** Q6_K quants (0..63) of packed vectors L0, L1 (ql) and H (qh) for m = 0..3 (see matmul-kquant.ts). */
@inline export function q6Quant(L0: v128, L1: v128, H: v128, m: i32): v128 {
  const L = (m & 1) != 0 ? L1 : L0;
  const lq = v128.and(m >= 2 ? i16x8.shr_u(L, 4) : L, kv(K_I8_15));
  const hs = m == 0 ? i16x8.shl(H, 4) : m == 1 ? i16x8.shl(H, 2) : m == 2 ? H : i16x8.shr_u(H, 2);
  return v128.or(lq, v128.and(hs, kv(K_I8_0X30)));
}

// ------------------------------------------------------------------------------- weight panels

/**
 * Build the panel of one packed group at g (layout above) at pp; scales at ps. Pair step j of block
 * b goes to pp + ((b L + j) << sh) and the block's scales to ps + (b << ssh): sh = 4, ssh = 5 for
 * a panel of one group; sh = 5, ssh = 6 (and pp, ps + 16, + 32 for the second group) interleave
 * two groups, 8 rows, for intTile8.
 */
function buildPanel(kind: i32, g: usize, nb: i32, pp: usize, ps: usize, sh: usize, ssh: usize): void {
  if (kind == KIND_Q8_0) {
    const q = g + scaleRegion(nb);
    for (let b = 0; b < nb; b++) {
      const qb = q + (<usize>b << 7);
      const pb = pp + (<usize>(b << 4) << sh);
      for (let j: usize = 0; j < 16; j++) v128.store(pb + (j << sh), v128.load8x8_s(qb + (j << 3)));
      v128.store(ps + (<usize>b << ssh), f16x8Lo(v128.load64_zero(g + (<usize>b << 3))));
    }
  } else if (kind == KIND_Q4_0) {
    const q = g + scaleRegion(nb);
    const m = kv(K_I8_15);
    const e = kv(K_I8_8);
    for (let b = 0; b < nb; b++) {
      const qb = q + (<usize>b << 6);
      const pb = pp + (<usize>(b << 4) << sh);
      for (let c: usize = 0; c < 4; c++) {
        const v = v128.load(qb + (c << 4));
        const lo = pairShuffle(i8x16.sub(v128.and(v, m), e));
        const hi = pairShuffle(i8x16.sub(v128.and(i16x8.shr_u(v, 4), m), e));
        // elements 4c.. (low nibbles) -> steps 2c, 2c + 1; 16 + 4c.. (high) -> steps 8 + 2c, 9 + 2c
        const o = pb + ((c << 1) << sh);
        v128.store(o, i16x8.extend_low_i8x16_s(lo));
        v128.store(o + (<usize>1 << sh), i16x8.extend_high_i8x16_s(lo));
        v128.store(o + (<usize>8 << sh), i16x8.extend_low_i8x16_s(hi));
        v128.store(o + (<usize>9 << sh), i16x8.extend_high_i8x16_s(hi));
      }
      v128.store(ps + (<usize>b << ssh), f16x8Lo(v128.load64_zero(g + (<usize>b << 3))));
    }
  } else if (kind == KIND_Q4_K) {
    const m = kv(K_I8_15);
    for (let b = 0; b < nb; b++) {
      const p = g + <usize>b * 576;
      const pb = pp + (<usize>(b * 132) << sh);
      const A = v128.load(p, 16);
      const B = v128.load(p, 32);
      const C = v128.load(p, 48);
      const scLo = q4kScaleLo(A);
      const scHi = q4kScaleHi(A, C);
      const mLo = q4kScaleLo(B);
      const mHi = q4kMinHi(B, C);
      for (let c = 0; c < 4; c++) {
        // chunk c: low nibbles = sub-block 2c, high nibbles = 2c + 1
        const sc = c < 2 ? scLo : scHi;
        const sA = i16x8.extend_low_i8x16_u(rowBytePairs(sc, (c & 1) << 1));
        const sB = i16x8.extend_low_i8x16_u(rowBytePairs(sc, ((c & 1) << 1) + 1));
        for (let j = 0; j < 8; j++) {
          const v = v128.load(p + 64 + (<usize>((c << 3) + j) << 4));
          const lo = pairShuffle(v128.and(v, m));
          const hi = pairShuffle(v128.and(i16x8.shr_u(v, 4), m));
          // elements 64c + 4j.. -> pair steps 32c + 2j, +1; high nibbles 16 steps later
          const o = pb + (<usize>((c << 5) + (j << 1)) << sh);
          v128.store(o, i16x8.mul(i16x8.extend_low_i8x16_u(lo), sA));
          v128.store(o + (<usize>1 << sh), i16x8.mul(i16x8.extend_high_i8x16_u(lo), sA));
          v128.store(o + (<usize>16 << sh), i16x8.mul(i16x8.extend_low_i8x16_u(hi), sB));
          v128.store(o + (<usize>17 << sh), i16x8.mul(i16x8.extend_high_i8x16_u(hi), sB));
        }
      }
      for (let s = 0; s < 4; s++) v128.store(pb + (<usize>(128 + s) << sh), q4kMinPair(mLo, mHi, s));
      const dd = v128.load(p);
      v128.store(ps + (<usize>b << ssh), f16x8Lo(dd));
      v128.store(ps + (<usize>b << ssh), f32x4.neg(f16x8Hi(dd)), 16);
    }
  } else {
    // Q6_K
    const base = g + scaleRegion(nb);
    const k32 = i16x8.splat(32);
    for (let b = 0; b < nb; b++) {
      const p = base + <usize>b * 832;
      const pb = pp + (<usize>(b << 7) << sh);
      for (let n = 0; n < 2; n++) {
        for (let c = 0; c < 8; c++) {
          const L0 = v128.load(p + (<usize>((n << 4) + c) << 4));
          const L1 = v128.load(p + (<usize>((n << 4) + 8 + c) << 4));
          const H = v128.load(p + 512 + (<usize>((n << 3) + c) << 4));
          for (let m = 0; m < 4; m++) {
            // elements 128n + 32m + 4c.., sub-block 8n + 2m + (c >= 4)
            const s = (n << 3) + (m << 1) + (c >> 2);
            const sv = i16x8.extend_low_i8x16_s(rowBytePairs(v128.load(p + 768 + (<usize>(s >> 2) << 4)), s & 3));
            const q = pairShuffle(q6Quant(L0, L1, H, m));
            const o = pb + (<usize>((n << 6) + (m << 4) + (c << 1)) << sh);
            v128.store(o, i16x8.mul(i16x8.sub(i16x8.extend_low_i8x16_u(q), k32), sv));
            v128.store(o + (<usize>1 << sh), i16x8.mul(i16x8.sub(i16x8.extend_high_i8x16_u(q), k32), sv));
          }
        }
      }
      v128.store(ps + (<usize>b << ssh), f16x8Lo(v128.load64_zero(g + (<usize>b << 3))));
    }
  }
}

// --------------------------------------------------------------------------- activation tiles

/**
 * Tokens t0..t0+nt (nt <= 4) of the quantized activations into one tile at xt (steps) and dxt
 * (scales). Missing tokens are zero.
 */
function buildTile(kind: i32, x: usize, xb: usize, nb: i32, nt: i32, xt: usize, dxt: usize): void {
  const zero = i32x4.splat(0);
  const L = stepsOf(kind);
  const kb = kind == KIND_Q4_K || kind == KIND_Q6_K;
  const ab = actBytesOf(kind);
  const x1 = x + xb;
  const x2 = x1 + xb;
  const x3 = x2 + xb;
  for (let b = 0; b < nb; b++) {
    const o = <usize>b * ab;
    const st = xt + <usize>b * (L << 4);
    // scales
    let d: v128;
    if (kb) {
      d = v128.load32_zero(x + o);
      if (nt > 1) d = v128.load32_lane(x1 + o, d, 1);
      if (nt > 2) d = v128.load32_lane(x2 + o, d, 2);
      if (nt > 3) d = v128.load32_lane(x3 + o, d, 3);
    } else {
      let h = v128.load16_lane(x + o, zero, 0);
      if (nt > 1) h = v128.load16_lane(x1 + o, h, 1);
      if (nt > 2) h = v128.load16_lane(x2 + o, h, 2);
      if (nt > 3) h = v128.load16_lane(x3 + o, h, 3);
      d = f16x8Lo(h);
    }
    v128.store(dxt + (<usize>b << 4), d);
    // element pairs: 16 qs bytes -> 8 pairs -> two 4-pair transposes
    const q = o + (kb ? 4 : 2);
    const nq: usize = kb ? 256 : 32;
    for (let e: usize = 0; e < nq; e += 16) {
      const a = v128.load(x + q + e);
      const bb = nt > 1 ? v128.load(x1 + q + e) : zero;
      const c = nt > 2 ? v128.load(x2 + q + e) : zero;
      const dd = nt > 3 ? v128.load(x3 + q + e) : zero;
      const s = st + (e << 3); // 8 pair steps of 16 B per 16 elements
      transpose4Store(s, i16x8.extend_low_i8x16_s(a), i16x8.extend_low_i8x16_s(bb), i16x8.extend_low_i8x16_s(c), i16x8.extend_low_i8x16_s(dd));
      transpose4Store(s + 64, i16x8.extend_high_i8x16_s(a), i16x8.extend_high_i8x16_s(bb), i16x8.extend_high_i8x16_s(c), i16x8.extend_high_i8x16_s(dd));
    }
    if (kind == KIND_Q4_K) {
      // (B_2p, B_2p+1): the 8 sub-block sums as 4 pairs
      transpose4Store(
        st + (128 << 4),
        q8kPairSums(x + o),
        nt > 1 ? q8kPairSums(x1 + o) : zero,
        nt > 2 ? q8kPairSums(x2 + o) : zero,
        nt > 3 ? q8kPairSums(x3 + o) : zero,
      );
    }
  }
}

// -------------------------------------------------------------------------------- micro-kernel

/** One (group, tile): panel pp/ps, tile xt/dxt; stores nr rows x nt tokens at y (row stride yb). */
function intTile(pp: usize, ps: usize, xt: usize, dxt: usize, nb: i32, L1: i32, L2: i32, y: usize, yb: usize, nr: i32, nt: i32): void {
  let f0 = f32x4.splat(0), f1 = f32x4.splat(0), f2 = f32x4.splat(0), f3 = f32x4.splat(0);
  const d = xt - pp; // the tile walks in step with the panel
  for (let b = 0; b < nb; b++) {
    let i0 = i32x4.splat(0), i1 = i32x4.splat(0), i2 = i32x4.splat(0), i3 = i32x4.splat(0);
    const e1 = pp + (<usize>L1 << 4);
    for (; pp < e1; pp += 32) {
      const w = v128.load(pp);
      const xp = pp + d;
      i0 = i32x4.add(i0, i32x4.dot_i16x8_s(w, v128.load32_splat(xp)));
      i1 = i32x4.add(i1, i32x4.dot_i16x8_s(w, v128.load32_splat(xp, 4)));
      i2 = i32x4.add(i2, i32x4.dot_i16x8_s(w, v128.load32_splat(xp, 8)));
      i3 = i32x4.add(i3, i32x4.dot_i16x8_s(w, v128.load32_splat(xp, 12)));
      const u = v128.load(pp, 16);
      i0 = i32x4.add(i0, i32x4.dot_i16x8_s(u, v128.load32_splat(xp, 16)));
      i1 = i32x4.add(i1, i32x4.dot_i16x8_s(u, v128.load32_splat(xp, 20)));
      i2 = i32x4.add(i2, i32x4.dot_i16x8_s(u, v128.load32_splat(xp, 24)));
      i3 = i32x4.add(i3, i32x4.dot_i16x8_s(u, v128.load32_splat(xp, 28)));
    }
    const s1 = v128.load(ps);
    f0 = madd(f32x4.convert_i32x4_s(i0), f32x4.mul(s1, v128.load32_splat(dxt)), f0);
    f1 = madd(f32x4.convert_i32x4_s(i1), f32x4.mul(s1, v128.load32_splat(dxt, 4)), f1);
    f2 = madd(f32x4.convert_i32x4_s(i2), f32x4.mul(s1, v128.load32_splat(dxt, 8)), f2);
    f3 = madd(f32x4.convert_i32x4_s(i3), f32x4.mul(s1, v128.load32_splat(dxt, 12)), f3);
    if (L2 > 0) {
      i0 = i32x4.splat(0);
      i1 = i32x4.splat(0);
      i2 = i32x4.splat(0);
      i3 = i32x4.splat(0);
      const e2 = pp + (<usize>L2 << 4);
      for (; pp < e2; pp += 16) {
        const w = v128.load(pp);
        const xp = pp + d;
        i0 = i32x4.add(i0, i32x4.dot_i16x8_s(w, v128.load32_splat(xp)));
        i1 = i32x4.add(i1, i32x4.dot_i16x8_s(w, v128.load32_splat(xp, 4)));
        i2 = i32x4.add(i2, i32x4.dot_i16x8_s(w, v128.load32_splat(xp, 8)));
        i3 = i32x4.add(i3, i32x4.dot_i16x8_s(w, v128.load32_splat(xp, 12)));
      }
      const s2 = v128.load(ps, 16);
      f0 = madd(f32x4.convert_i32x4_s(i0), f32x4.mul(s2, v128.load32_splat(dxt)), f0);
      f1 = madd(f32x4.convert_i32x4_s(i1), f32x4.mul(s2, v128.load32_splat(dxt, 4)), f1);
      f2 = madd(f32x4.convert_i32x4_s(i2), f32x4.mul(s2, v128.load32_splat(dxt, 8)), f2);
      f3 = madd(f32x4.convert_i32x4_s(i3), f32x4.mul(s2, v128.load32_splat(dxt, 12)), f3);
    }
    ps += 32;
    dxt += 16;
  }
  storeLanes(y, f0, nr);
  if (nt > 1) storeLanes(y + yb, f1, nr);
  if (nt > 2) storeLanes(y + 2 * yb, f2, nr);
  if (nt > 3) storeLanes(y + 3 * yb, f3, nr);
}

/** Token t's flush: f += f32(i) * (s * dx_t). */
@inline function flush(f: v128, i: v128, s: v128, dx: v128): v128 {
  return madd(f32x4.convert_i32x4_s(i), f32x4.mul(s, dx), f);
}

/**
 * Two groups (8 rows) x one tile: an interleaved panel (pair step j of the two groups at pp + 32 j,
 * pp + 32 j + 16; block scales at ps + 64 b: s1, s2 of the first group, then of the second);
 * stores nr (5..8) rows x nt tokens at y. Per step: 2 panel loads and 4 splats feed 8 dots (the
 * 4-row intTile needs 5 loads for 4).
 */
function intTile8(pp: usize, ps: usize, xt: usize, dxt: usize, nb: i32, L1: i32, L2: i32, y: usize, yb: usize, nr: i32, nt: i32): void {
  let f0 = f32x4.splat(0), f1 = f0, f2 = f0, f3 = f0, g0 = f0, g1 = f0, g2 = f0, g3 = f0;
  let xp = xt;
  for (let b = 0; b < nb; b++) {
    let a0 = i32x4.splat(0), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
    const e1 = pp + (<usize>L1 << 5);
    for (; pp < e1; pp += 32) {
      const w = v128.load(pp);
      const u = v128.load(pp, 16);
      let s = v128.load32_splat(xp);
      a0 = i32x4.add(a0, i32x4.dot_i16x8_s(w, s));
      b0 = i32x4.add(b0, i32x4.dot_i16x8_s(u, s));
      s = v128.load32_splat(xp, 4);
      a1 = i32x4.add(a1, i32x4.dot_i16x8_s(w, s));
      b1 = i32x4.add(b1, i32x4.dot_i16x8_s(u, s));
      s = v128.load32_splat(xp, 8);
      a2 = i32x4.add(a2, i32x4.dot_i16x8_s(w, s));
      b2 = i32x4.add(b2, i32x4.dot_i16x8_s(u, s));
      s = v128.load32_splat(xp, 12);
      a3 = i32x4.add(a3, i32x4.dot_i16x8_s(w, s));
      b3 = i32x4.add(b3, i32x4.dot_i16x8_s(u, s));
      xp += 16;
    }
    let sA = v128.load(ps);
    let sB = v128.load(ps, 32);
    let d = v128.load32_splat(dxt);
    f0 = flush(f0, a0, sA, d);
    g0 = flush(g0, b0, sB, d);
    d = v128.load32_splat(dxt, 4);
    f1 = flush(f1, a1, sA, d);
    g1 = flush(g1, b1, sB, d);
    d = v128.load32_splat(dxt, 8);
    f2 = flush(f2, a2, sA, d);
    g2 = flush(g2, b2, sB, d);
    d = v128.load32_splat(dxt, 12);
    f3 = flush(f3, a3, sA, d);
    g3 = flush(g3, b3, sB, d);
    if (L2 > 0) {
      // NOTE: the same loop again on purpose: a loop over the two phases measured slower here
      // (scripts/kernel-speed.mjs, Q8_0 576x576 at T=64: 37-43 against 45-69 GFLOP/s, interleaved runs).
      a0 = i32x4.splat(0);
      a1 = a0;
      a2 = a0;
      a3 = a0;
      b0 = a0;
      b1 = a0;
      b2 = a0;
      b3 = a0;
      const e2 = pp + (<usize>L2 << 5);
      for (; pp < e2; pp += 32) {
        const w = v128.load(pp);
        const u = v128.load(pp, 16);
        let s = v128.load32_splat(xp);
        a0 = i32x4.add(a0, i32x4.dot_i16x8_s(w, s));
        b0 = i32x4.add(b0, i32x4.dot_i16x8_s(u, s));
        s = v128.load32_splat(xp, 4);
        a1 = i32x4.add(a1, i32x4.dot_i16x8_s(w, s));
        b1 = i32x4.add(b1, i32x4.dot_i16x8_s(u, s));
        s = v128.load32_splat(xp, 8);
        a2 = i32x4.add(a2, i32x4.dot_i16x8_s(w, s));
        b2 = i32x4.add(b2, i32x4.dot_i16x8_s(u, s));
        s = v128.load32_splat(xp, 12);
        a3 = i32x4.add(a3, i32x4.dot_i16x8_s(w, s));
        b3 = i32x4.add(b3, i32x4.dot_i16x8_s(u, s));
        xp += 16;
      }
      sA = v128.load(ps, 16);
      sB = v128.load(ps, 48);
      d = v128.load32_splat(dxt);
      f0 = flush(f0, a0, sA, d);
      g0 = flush(g0, b0, sB, d);
      d = v128.load32_splat(dxt, 4);
      f1 = flush(f1, a1, sA, d);
      g1 = flush(g1, b1, sB, d);
      d = v128.load32_splat(dxt, 8);
      f2 = flush(f2, a2, sA, d);
      g2 = flush(g2, b2, sB, d);
      d = v128.load32_splat(dxt, 12);
      f3 = flush(f3, a3, sA, d);
      g3 = flush(g3, b3, sB, d);
    }
    ps += 64;
    dxt += 16;
  }
  const nr2 = nr - 4;
  const y2 = y + 16;
  v128.store(y, f0);
  storeLanes(y2, g0, nr2);
  if (nt > 1) {
    v128.store(y + yb, f1);
    storeLanes(y2 + yb, g1, nr2);
  }
  if (nt > 2) {
    v128.store(y + 2 * yb, f2);
    storeLanes(y2 + 2 * yb, g2, nr2);
  }
  if (nt > 3) {
    v128.store(y + 3 * yb, f3);
    storeLanes(y2 + 3 * yb, g3, nr2);
  }
}

// ------------------------------------------------------------------------------------- driver

/** Tokens per pass (multiple of 4), or 0 when the panel and one tile do not fit the scratch. */
export function intPassTokens(kind: i32, k: i32, T: i32): i32 {
  const nb = <usize>(k / blockOf(kind));
  const L = stepsOf(kind);
  const panel = align64(nb * (L << 5)) + align64(nb << 6); // two groups
  const tile = align64(nb * (L << 4)) + align64(nb << 4); // 4 tokens
  const room = SCRATCH_END - SCRATCH;
  if (nb == 0 || panel + tile > room) return 0;
  const budget = min(room - panel, max(tile, <usize>(1 << 20)));
  const tiles = budget / tile;
  return <i32>min(tiles << 2, <usize>(T + 3) & ~<usize>3);
}

export function gemmInt(kind: i32, w: usize, x: usize, y: usize, rows: i32, k: i32, T: i32, ldy: i32): void {
  const nb = k / blockOf(kind);
  const L = stepsOf(kind);
  const L1 = l1Of(kind);
  const L2 = <i32>L - L1;
  const gb = groupBytesOf(kind, nb);
  const xb = <usize>nb * actBytesOf(kind);
  const yb = <usize>ldy << 2;
  const TB = intPassTokens(kind, k, T);
  const pp = SCRATCH;
  const ps = pp + align64(<usize>nb * (L << 5));
  const tiles = ps + align64(<usize>nb << 6);
  const stepBytes = align64(<usize>nb * (L << 4));
  const tileBytes = stepBytes + align64(<usize>nb << 4);
  for (let t0 = 0; t0 < T; t0 += TB) {
    const nt = min(TB, T - t0);
    for (let tt = 0; tt < nt; tt += 4) {
      const tile = tiles + <usize>(tt >> 2) * tileBytes;
      buildTile(kind, x + <usize>(t0 + tt) * xb, xb, nb, min(4, nt - tt), tile, tile + stepBytes);
    }
    let g = w;
    for (let r = 0; r < rows; ) {
      const yr = y + (<usize>r << 2) + <usize>t0 * yb;
      if (rows - r > 4) {
        // two groups, interleaved
        const nr = min(rows - r, 8);
        buildPanel(kind, g, nb, pp, ps, 5, 6);
        buildPanel(kind, g + gb, nb, pp + 16, ps + 32, 5, 6);
        for (let tt = 0; tt < nt; tt += 4) {
          const tile = tiles + <usize>(tt >> 2) * tileBytes;
          intTile8(pp, ps, tile, tile + stepBytes, nb, L1, L2, yr + <usize>tt * yb, yb, nr, min(4, nt - tt));
        }
        g += gb << 1;
        r += 8;
      } else {
        const nr = rows - r;
        buildPanel(kind, g, nb, pp, ps, 4, 5);
        for (let tt = 0; tt < nt; tt += 4) {
          const tile = tiles + <usize>(tt >> 2) * tileBytes;
          intTile(pp, ps, tile, tile + stepBytes, nb, L1, L2, yr + <usize>tt * yb, yb, nr, min(4, nt - tt));
        }
        g += gb;
        r += 4;
      }
    }
  }
}
