// matmul for K-quant weights against Q8_K activations: Q4_K and Q6_K.
// y[t*ldy + r] = dot(W[r, :], Xq[t, :]); Q8_K activation block (292 B): f32 d @0, i8 qs[256] @4,
// i16 bsums[16] @260.
//
// Same integer sums as ggml's vec_dot_q4_K_q8_K / q6_K_q8_K (exact); per superblock
//   acc[r] += f32(isum[r]) * (d[r] * dx)  (Q4_K also: - f32(msum[r]) * (dmin[r] * dx))
// with 4 rows in the lanes of one f32x4 accumulator. Tiles are 4 rows x 1 token (tokens in
// turn: the unpack work a second token could share is about what merging its sums costs).
//
// Loop order: sub-block outer, the 4 rows inner, so the activations of one sub-block (widened
// once for SIMD128) stay in registers while the 4 weight rows stream past. NOTE: an order with
// whole superblocks per row let Binaryen share all 32 widened activation vectors of a
// superblock between the rows, and V8 spilled them on every iteration (3x slower).
//
// Products: SIMD128 multiplies i16 (|q*x| <= 63*127; sums of up to 4 in one lane fit i16) and
// applies the sub-block scale with one i32x4.dot_i16x8_s against a splat. Relaxed uses
// i16x8.relaxed_dot_i8x16_i7x16_s with the quants (0..15 / 0..63) as the 7-bit operand.

import { tokenBlock, madd, f16x8Lo, f16x8Hi, hsum4i, storeLanes, kv, K_I8_15, K_I16_15, K_I8_0X30 } from "./common";
import { f16Gather4, rdot16, q8kPairSums } from "./qcommon";

// -------------------------------------------------------------------------- Q4_K x Q8_K (144 B)
// block: f16 d @0, f16 dmin @2, u8 scales[12] @4 (6-bit sc[8], m[8]), u8 qs[128] @16:
// chunk c (32 bytes at 16 + 32c): low nibbles = elements 64c..64c+31 (sub-block 2c),
// high nibbles = 64c+32..64c+63 (sub-block 2c+1). w = d*sc*q - dmin*m.

/** sc[0..8) of a Q4_K block as the bytes of a u64 (byte j = sc[j], 6 bits). */
@inline function q4kScales(wp: usize): u64 {
  const u0 = load<u32>(wp, 4);
  const u2 = load<u32>(wp, 12);
  const lo = u0 & 0x3f3f3f3f;
  const hi = (u2 & 0x0f0f0f0f) | (((u0 >> 6) & 0x03030303) << 4);
  return <u64>lo | (<u64>hi << 32);
}

/** i16x8 splat of byte `sh / 8` of a q4kScales word. */
@inline function scaleAt(sc: u64, sh: u64): v128 {
  return i16x8.splat(<i16>(<i32>(sc >> sh) & 0xff));
}

/** sum_j m[j] * (sum of x over sub-block j), i32x4 partial sums; pb = q8kPairSums. */
@inline function q4kMins(wp: usize, pb: v128): v128 {
  const u0 = load<u32>(wp, 4);
  const u1 = load<u32>(wp, 8);
  const u2 = load<u32>(wp, 12);
  const lo = u1 & 0x3f3f3f3f;
  const hi = ((u2 >> 4) & 0x0f0f0f0f) | (((u1 >> 6) & 0x03030303) << 4);
  const mins = i16x8.extend_low_i8x16_u(i64x2.splat(<i64>lo | (<i64>hi << 32)));
  return i32x4.dot_i16x8_s(mins, pb);
}

/** d and dmin of 4 rows' blocks -> (d0, d1, d2, d3, dmin0, ..., dmin3) as i16x8. */
@inline function q4kDGather(p0: usize, p1: usize, p2: usize, p3: usize): v128 {
  let v = v128.load32_lane(p0, i32x4.splat(0), 0);
  v = v128.load32_lane(p1, v, 1);
  v = v128.load32_lane(p2, v, 2);
  v = v128.load32_lane(p3, v, 3);
  return v128.shuffle<u8>(v, v, 0, 1, 4, 5, 8, 9, 12, 13, 2, 3, 6, 7, 10, 11, 14, 15);
}

/** SIMD128: 16 nibbles (low or high of the 16 bytes at q) . 16 widened activations: i16x8. */
@inline function q4kQuarter(q: usize, high: bool, x0: v128, x1: v128): v128 {
  let b0 = v128.load8x8_u(q);
  let b1 = v128.load8x8_u(q, 8);
  if (high) {
    b0 = i16x8.shr_u(b0, 4);
    b1 = i16x8.shr_u(b1, 4);
  } else {
    b0 = v128.and(b0, kv(K_I16_15));
    b1 = v128.and(b1, kv(K_I16_15));
  }
  return i16x8.add(i16x8.mul(b0, x0), i16x8.mul(b1, x1));
}

/** SIMD128: one sub-block (32 nibbles of the 32 bytes at q) . x (widened x0..x3) * scale s. */
@inline function q4kSub(q: usize, high: bool, x0: v128, x1: v128, x2: v128, x3: v128, s: v128): v128 {
  return i32x4.dot_i16x8_s(i16x8.add(q4kQuarter(q, high, x0, x1), q4kQuarter(q + 16, high, x2, x3)), s);
}

/** relaxed: one sub-block (32 nibbles of the 32 bytes at q) . x (raw i8 x0, x1) * scale s. */
@inline function q4kSubR(q: usize, high: bool, x0: v128, x1: v128, s: v128): v128 {
  let v0 = v128.load(q);
  let v1 = v128.load(q, 16);
  if (high) {
    v0 = i16x8.shr_u(v0, 4);
    v1 = i16x8.shr_u(v1, 4);
  }
  const m = kv(K_I8_15);
  return i32x4.dot_i16x8_s(i16x8.add(rdot16(x0, v128.and(v0, m)), rdot16(x1, v128.and(v1, m))), s);
}

function q4_KTile4x1(w0: usize, w1: usize, w2: usize, w3: usize, x: usize, nb: i32, yp: usize, nr: i32): void {
  let acc = f32x4.splat(0);
  let ow: usize = 0;
  const end = <usize>nb * 292;
  for (let ox: usize = 0; ox < end; ox += 292) {
    const xp = x + ox;
    const p0 = w0 + ow;
    const p1 = w1 + ow;
    const p2 = w2 + ow;
    const p3 = w3 + ow;
    const c0 = q4kScales(p0);
    const c1 = q4kScales(p1);
    const c2 = q4kScales(p2);
    const c3 = q4kScales(p3);
    let i0 = i32x4.splat(0);
    let i1 = i32x4.splat(0);
    let i2 = i32x4.splat(0);
    let i3 = i32x4.splat(0);
    for (let c: usize = 0; c < 4; c++) {
      const xq = xp + 4 + (c << 6);
      const qo: usize = 16 + (c << 5);
      const sl = <u64>(c << 4);
      const sh = sl + 8;
      if (ASC_FEATURE_RELAXED_SIMD) {
        let x0 = v128.load(xq);
        let x1 = v128.load(xq, 16);
        i0 = i32x4.add(i0, q4kSubR(p0 + qo, false, x0, x1, scaleAt(c0, sl)));
        i1 = i32x4.add(i1, q4kSubR(p1 + qo, false, x0, x1, scaleAt(c1, sl)));
        i2 = i32x4.add(i2, q4kSubR(p2 + qo, false, x0, x1, scaleAt(c2, sl)));
        i3 = i32x4.add(i3, q4kSubR(p3 + qo, false, x0, x1, scaleAt(c3, sl)));
        x0 = v128.load(xq, 32);
        x1 = v128.load(xq, 48);
        i0 = i32x4.add(i0, q4kSubR(p0 + qo, true, x0, x1, scaleAt(c0, sh)));
        i1 = i32x4.add(i1, q4kSubR(p1 + qo, true, x0, x1, scaleAt(c1, sh)));
        i2 = i32x4.add(i2, q4kSubR(p2 + qo, true, x0, x1, scaleAt(c2, sh)));
        i3 = i32x4.add(i3, q4kSubR(p3 + qo, true, x0, x1, scaleAt(c3, sh)));
      } else {
        let x0 = v128.load8x8_s(xq);
        let x1 = v128.load8x8_s(xq, 8);
        let x2 = v128.load8x8_s(xq, 16);
        let x3 = v128.load8x8_s(xq, 24);
        i0 = i32x4.add(i0, q4kSub(p0 + qo, false, x0, x1, x2, x3, scaleAt(c0, sl)));
        i1 = i32x4.add(i1, q4kSub(p1 + qo, false, x0, x1, x2, x3, scaleAt(c1, sl)));
        i2 = i32x4.add(i2, q4kSub(p2 + qo, false, x0, x1, x2, x3, scaleAt(c2, sl)));
        i3 = i32x4.add(i3, q4kSub(p3 + qo, false, x0, x1, x2, x3, scaleAt(c3, sl)));
        x0 = v128.load8x8_s(xq, 32);
        x1 = v128.load8x8_s(xq, 40);
        x2 = v128.load8x8_s(xq, 48);
        x3 = v128.load8x8_s(xq, 56);
        i0 = i32x4.add(i0, q4kSub(p0 + qo, true, x0, x1, x2, x3, scaleAt(c0, sh)));
        i1 = i32x4.add(i1, q4kSub(p1 + qo, true, x0, x1, x2, x3, scaleAt(c1, sh)));
        i2 = i32x4.add(i2, q4kSub(p2 + qo, true, x0, x1, x2, x3, scaleAt(c2, sh)));
        i3 = i32x4.add(i3, q4kSub(p3 + qo, true, x0, x1, x2, x3, scaleAt(c3, sh)));
      }
    }
    const dd = q4kDGather(p0, p1, p2, p3);
    const xd = v128.load32_splat(xp);
    const pb = q8kPairSums(xp);
    const m = hsum4i(q4kMins(p0, pb), q4kMins(p1, pb), q4kMins(p2, pb), q4kMins(p3, pb));
    acc = madd(f32x4.convert_i32x4_s(hsum4i(i0, i1, i2, i3)), f32x4.mul(f16x8Lo(dd), xd), acc);
    acc = madd(f32x4.convert_i32x4_s(m), f32x4.neg(f32x4.mul(f16x8Hi(dd), xd)), acc);
    ow += 144;
  }
  storeLanes(yp, acc, nr);
}

export function matmulQ4_K(w: usize, x: usize, y: usize, rows: i32, k: i32, T: i32, ldy: i32): void {
  const nb = k >> 8;
  const rb = <usize>nb * 144;
  const xb = <usize>nb * 292;
  const yb = <usize>ldy << 2;
  const TB = tokenBlock(xb);
  for (let t0 = 0; t0 < T; t0 += TB) {
    const t1 = min(T, t0 + TB);
    for (let r = 0; r < rows; r += 4) {
      const nr = min(rows - r, 4);
      const w0 = w + <usize>r * rb;
      const w1 = nr > 1 ? w0 + rb : w0;
      const w2 = nr > 2 ? w1 + rb : w1;
      const w3 = nr > 3 ? w2 + rb : w2;
      const yr = y + (<usize>r << 2);
      for (let t = t0; t < t1; t++) q4_KTile4x1(w0, w1, w2, w3, x + <usize>t * xb, nb, yr + <usize>t * yb, nr);
    }
  }
}

// -------------------------------------------------------------------------- Q6_K x Q8_K (210 B)
// block: u8 ql[128] @0, u8 qh[64] @128, i8 scales[16] @192, f16 d @208.
// Half n (elements 128n..128n+127), l in 0..31, with ql' = ql + 64n, qh' = qh + 32n:
//   q[l]      = (ql'[l] & 15)      | ((qh'[l] >> 0) & 3) << 4
//   q[l + 32] = (ql'[l + 32] & 15) | ((qh'[l] >> 2) & 3) << 4
//   q[l + 64] = (ql'[l] >> 4)      | ((qh'[l] >> 4) & 3) << 4
//   q[l + 96] = (ql'[l + 32] >> 4) | ((qh'[l] >> 6) & 3) << 4
// w = d * scales[p / 16] * (q - 32). The -32 is folded in as -32 * sum_j sc[j] * bsums[j].
// Sub-blocks of 16 are visited as (n, g = l / 16) x (m = 0..3): sub-block 8n + 2m + g, its
// quants from ql' + 32(m & 1) + 16g (low nibbles for m < 2) and qh' + 16g (bits 2m, 2m+1).

/**
 * 16 quants (0..63, i8x16) of sub-block (n, g, m) of the block at p, lo = 64n + 16g,
 * ho = 128 + 32n + 16g; odd = m & 1 (ql' + 32, qh bits 2m), high = m >= 2 (high nibbles).
 */
@inline function q6Quants(p: usize, lo: usize, ho: usize, odd: bool, high: bool): v128 {
  const L = v128.load(p + lo + (odd ? 32 : 0));
  let H = v128.load(p + ho);
  if (odd) H = i16x8.shr_u(H, 2);
  if (high) {
    return v128.or(v128.and(i16x8.shr_u(L, 4), kv(K_I8_15)), v128.and(H, kv(K_I8_0X30)));
  }
  return v128.or(v128.and(L, kv(K_I8_15)), v128.and(i16x8.shl(H, 4), kv(K_I8_0X30)));
}

/** Sub-block of 16: quants q . x, times the i8 scale at sp: i32x4 partial sums. x: raw (relaxed) or widened pair. */
@inline function q6Sub(q: v128, xl: v128, xh: v128, sp: usize): v128 {
  let p: v128;
  if (ASC_FEATURE_RELAXED_SIMD) {
    p = rdot16(xl, q);
  } else {
    p = i16x8.add(i16x8.mul(i16x8.extend_low_i8x16_u(q), xl), i16x8.mul(i16x8.extend_high_i8x16_u(q), xh));
  }
  return i32x4.dot_i16x8_s(p, i16x8.splat(<i16>load<i8>(sp)));
}

/** 32 * sum_j sc[j] * bsums[j] (i32x4 partial sums): the -32 offset of the quants. */
@inline function q6Offset(wp: usize, xp: usize): v128 {
  const s = v128.load(wp, 192);
  return i32x4.shl(
    i32x4.add(
      i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_s(s), v128.load(xp, 260)),
      i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_s(s), v128.load(xp, 276)),
    ),
    5,
  );
}

function q6_KTile4x1(w0: usize, w1: usize, w2: usize, w3: usize, x: usize, nb: i32, yp: usize, nr: i32): void {
  let acc = f32x4.splat(0);
  let ow: usize = 0;
  const end = <usize>nb * 292;
  for (let ox: usize = 0; ox < end; ox += 292) {
    const xp = x + ox;
    const p0 = w0 + ow;
    const p1 = w1 + ow;
    const p2 = w2 + ow;
    const p3 = w3 + ow;
    let i0 = i32x4.splat(0);
    let i1 = i32x4.splat(0);
    let i2 = i32x4.splat(0);
    let i3 = i32x4.splat(0);
    for (let ng: usize = 0; ng < 4; ng++) {
      const n = ng >> 1;
      const g = ng & 1;
      const lo: usize = (n << 6) + (g << 4);
      const ho: usize = 128 + (n << 5) + (g << 4);
      const xo = xp + 4 + (n << 7) + (g << 4); // + 32m
      const so: usize = 192 + (n << 3) + g; // + 2m
      // m = 0..3 written out so that q6Quants' shifts are constants
      for (let mm = 0; mm < 4; mm += 2) {
        // mm = 0: m = 0 (low nibbles of ql' + 16g, qh bits 0-1) and m = 2 (high nibbles, bits 4-5);
        // mm = 2: m = 1 (low nibbles of ql' + 32 + 16g, bits 2-3) and m = 3 (bits 6-7). The
        // second loop turn shifts lo by 32 and qh by 2 through q6Quants' `odd` argument.
        const odd = mm == 2;
        let xl: v128, xh: v128;
        const xa = xo + (odd ? 32 : 0);
        const sa = so + (odd ? 2 : 0);
        if (ASC_FEATURE_RELAXED_SIMD) {
          xl = v128.load(xa);
          xh = xl;
        } else {
          xl = v128.load8x8_s(xa);
          xh = v128.load8x8_s(xa, 8);
        }
        i0 = i32x4.add(i0, q6Sub(q6Quants(p0, lo, ho, odd, false), xl, xh, p0 + sa));
        i1 = i32x4.add(i1, q6Sub(q6Quants(p1, lo, ho, odd, false), xl, xh, p1 + sa));
        i2 = i32x4.add(i2, q6Sub(q6Quants(p2, lo, ho, odd, false), xl, xh, p2 + sa));
        i3 = i32x4.add(i3, q6Sub(q6Quants(p3, lo, ho, odd, false), xl, xh, p3 + sa));
        const xb = xa + 64; // m + 2
        const sb = sa + 4;
        if (ASC_FEATURE_RELAXED_SIMD) {
          xl = v128.load(xb);
          xh = xl;
        } else {
          xl = v128.load8x8_s(xb);
          xh = v128.load8x8_s(xb, 8);
        }
        i0 = i32x4.add(i0, q6Sub(q6Quants(p0, lo, ho, odd, true), xl, xh, p0 + sb));
        i1 = i32x4.add(i1, q6Sub(q6Quants(p1, lo, ho, odd, true), xl, xh, p1 + sb));
        i2 = i32x4.add(i2, q6Sub(q6Quants(p2, lo, ho, odd, true), xl, xh, p2 + sb));
        i3 = i32x4.add(i3, q6Sub(q6Quants(p3, lo, ho, odd, true), xl, xh, p3 + sb));
      }
    }
    i0 = i32x4.sub(i0, q6Offset(p0, xp));
    i1 = i32x4.sub(i1, q6Offset(p1, xp));
    i2 = i32x4.sub(i2, q6Offset(p2, xp));
    i3 = i32x4.sub(i3, q6Offset(p3, xp));
    const ds = f32x4.mul(f16Gather4(p0 + 208, p1 + 208, p2 + 208, p3 + 208), v128.load32_splat(xp));
    acc = madd(f32x4.convert_i32x4_s(hsum4i(i0, i1, i2, i3)), ds, acc);
    ow += 210;
  }
  storeLanes(yp, acc, nr);
}

export function matmulQ6_K(w: usize, x: usize, y: usize, rows: i32, k: i32, T: i32, ldy: i32): void {
  const nb = k >> 8;
  const rb = <usize>nb * 210;
  const xb = <usize>nb * 292;
  const yb = <usize>ldy << 2;
  const TB = tokenBlock(xb);
  for (let t0 = 0; t0 < T; t0 += TB) {
    const t1 = min(T, t0 + TB);
    for (let r = 0; r < rows; r += 4) {
      const nr = min(rows - r, 4);
      const w0 = w + <usize>r * rb;
      const w1 = nr > 1 ? w0 + rb : w0;
      const w2 = nr > 2 ? w1 + rb : w1;
      const w3 = nr > 3 ? w2 + rb : w2;
      const yr = y + (<usize>r << 2);
      for (let t = t0; t < t1; t++) q6_KTile4x1(w0, w1, w2, w3, x + <usize>t * xb, nb, yr + <usize>t * yb, nr);
    }
  }
}
