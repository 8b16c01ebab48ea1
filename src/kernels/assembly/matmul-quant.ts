// matmul for Q8_0 and Q4_0 weights against Q8_0 activations (K-quants: matmul-kquant.ts).
// y[t*ldy + r] = dot(W[r, :], Xq[t, :]).
//
// Integer parts are exact (same integer sums as ggml's vec_dot); only the f32 scaling and the
// order of the f32 accumulation differ from the src/tensor references:
//   per block: acc[r] += f32(isum[r]) * (dw[r] * dx)
// with the 4 rows of a tile in the 4 lanes of one f32x4 accumulator per token.
//
// Tiles: 4 rows x 2 tokens (weights unpacked once for both tokens) while two tokens remain,
// 4 rows x 1 token for the last (decode). A partial group of rows repeats its last row in the
// unused lanes and stores only the valid ones.
//
// Integer techniques:
// - SIMD128: i8 -> i16 widening loads (v128.load8x8_s/u) and i32x4.dot_i16x8_s.
// - relaxed: i16x8.relaxed_dot_i8x16_i7x16_s with the 7-bit operand always in 0..127: Q4
//   nibbles (the -8 folded in as -8 * sum(x)), |x| for Q8_0 (the sign of x moved onto the
//   weight). Pair sums stay below 2^15, so an engine that saturates (pmaddubsw) is exact too.
//
// NOTE: i32x4.relaxed_dot_i8x16_i7x16_add_s is not used: V8 11.3 (Node 20) miscompiles it on
// x64 (returns 2 * dot and ignores the accumulator; seen with Node 20.20.2). The i16x8
// form (one pmaddubsw) plus extadd_pairwise is exact and as fast.
//
// NOTE: Q8_0 relaxed: a weight of -128 (never produced by ggml's quantizers, which stay in
// -127..127) against a negative activation counts as 127 instead of 128 (saturating negation).

import { tokenBlock, madd, hsum4i, storeLanes, kv, K_I8_15, K_I8_8, K_I16_15, K_I16_8 } from "./common";
import { f16Gather4, f16Splat, pack2, unpackLo, unpackHi, rdot16 } from "./qcommon";

// ------------------------------------------------------------------------- Q8_0 x Q8_0 (34 B)
// block: f16 d @0, i8 qs[32] @2

/** SIMD128: integer dot of one Q8_0 weight block with one Q8_0 activation block (i32x4 partial sums). */
@inline function q8Dot(wp: usize, xp: usize): v128 {
  return i32x4.add(
    i32x4.add(
      i32x4.dot_i16x8_s(v128.load8x8_s(wp, 2), v128.load8x8_s(xp, 2)),
      i32x4.dot_i16x8_s(v128.load8x8_s(wp, 10), v128.load8x8_s(xp, 10)),
    ),
    i32x4.add(
      i32x4.dot_i16x8_s(v128.load8x8_s(wp, 18), v128.load8x8_s(xp, 18)),
      i32x4.dot_i16x8_s(v128.load8x8_s(wp, 26), v128.load8x8_s(xp, 26)),
    ),
  );
}

/** relaxed: w * sign(x) (saturating) . |x| -> i32x4; pair sums |.| <= 2*128*127 fit i16. */
@inline function q8SignedDotR(w0: v128, w1: v128, ax0: v128, sx0: v128, ax1: v128, sx1: v128): v128 {
  const a0 = i8x16.sub_sat_s(v128.xor(w0, sx0), sx0);
  const a1 = i8x16.sub_sat_s(v128.xor(w1, sx1), sx1);
  return i32x4.add(i32x4.extadd_pairwise_i16x8_s(rdot16(a0, ax0)), i32x4.extadd_pairwise_i16x8_s(rdot16(a1, ax1)));
}

/** relaxed: one Q8_0 weight block . activations given as |x| and (x < 0) of the two halves. */
@inline function q8DotR(wp: usize, ax0: v128, sx0: v128, ax1: v128, sx1: v128): v128 {
  return q8SignedDotR(v128.load(wp, 2), v128.load(wp, 18), ax0, sx0, ax1, sx1);
}

function q8_0Tile4x1(w0: usize, w1: usize, w2: usize, w3: usize, x: usize, nb: i32, yp: usize, nr: i32): void {
  let acc = f32x4.splat(0);
  const end = <usize>nb * 34;
  for (let o: usize = 0; o < end; o += 34) {
    const xp = x + o;
    const ds = f32x4.mul(f16Gather4(w0 + o, w1 + o, w2 + o, w3 + o), f16Splat(xp));
    let s: v128;
    if (ASC_FEATURE_RELAXED_SIMD) {
      const x0 = v128.load(xp, 2);
      const x1 = v128.load(xp, 18);
      const ax0 = i8x16.abs(x0);
      const ax1 = i8x16.abs(x1);
      const sx0 = i8x16.lt_s(x0, i8x16.splat(0));
      const sx1 = i8x16.lt_s(x1, i8x16.splat(0));
      s = hsum4i(
        q8DotR(w0 + o, ax0, sx0, ax1, sx1),
        q8DotR(w1 + o, ax0, sx0, ax1, sx1),
        q8DotR(w2 + o, ax0, sx0, ax1, sx1),
        q8DotR(w3 + o, ax0, sx0, ax1, sx1),
      );
    } else {
      s = hsum4i(q8Dot(w0 + o, xp), q8Dot(w1 + o, xp), q8Dot(w2 + o, xp), q8Dot(w3 + o, xp));
    }
    acc = madd(f32x4.convert_i32x4_s(s), ds, acc);
  }
  storeLanes(yp, acc, nr);
}

/** One weight row against two activation blocks: pack2(sumA, sumB). */
@inline function q8Row2(wp: usize, xa: usize, xb: usize): v128 {
  const v0 = v128.load8x8_s(wp, 2);
  const v1 = v128.load8x8_s(wp, 10);
  const v2 = v128.load8x8_s(wp, 18);
  const v3 = v128.load8x8_s(wp, 26);
  const a = i32x4.add(
    i32x4.add(i32x4.dot_i16x8_s(v0, v128.load8x8_s(xa, 2)), i32x4.dot_i16x8_s(v1, v128.load8x8_s(xa, 10))),
    i32x4.add(i32x4.dot_i16x8_s(v2, v128.load8x8_s(xa, 18)), i32x4.dot_i16x8_s(v3, v128.load8x8_s(xa, 26))),
  );
  const b = i32x4.add(
    i32x4.add(i32x4.dot_i16x8_s(v0, v128.load8x8_s(xb, 2)), i32x4.dot_i16x8_s(v1, v128.load8x8_s(xb, 10))),
    i32x4.add(i32x4.dot_i16x8_s(v2, v128.load8x8_s(xb, 18)), i32x4.dot_i16x8_s(v3, v128.load8x8_s(xb, 26))),
  );
  return pack2(a, b);
}

@inline function q8Row2R(
  wp: usize, aa0: v128, sa0: v128, aa1: v128, sa1: v128, ab0: v128, sb0: v128, ab1: v128, sb1: v128,
): v128 {
  const w0 = v128.load(wp, 2);
  const w1 = v128.load(wp, 18);
  return pack2(q8SignedDotR(w0, w1, aa0, sa0, aa1, sa1), q8SignedDotR(w0, w1, ab0, sb0, ab1, sb1));
}

function q8_0Tile4x2(
  w0: usize, w1: usize, w2: usize, w3: usize, x: usize, z: usize, nb: i32, yx: usize, yz: usize, nr: i32,
): void {
  let accA = f32x4.splat(0);
  let accB = f32x4.splat(0);
  const end = <usize>nb * 34;
  for (let o: usize = 0; o < end; o += 34) {
    const xa = x + o;
    const xb = z + o;
    const dw = f16Gather4(w0 + o, w1 + o, w2 + o, w3 + o);
    let r0: v128, r1: v128, r2: v128, r3: v128;
    if (ASC_FEATURE_RELAXED_SIMD) {
      const a0 = v128.load(xa, 2);
      const a1 = v128.load(xa, 18);
      const b0 = v128.load(xb, 2);
      const b1 = v128.load(xb, 18);
      const zero = i8x16.splat(0);
      const aa0 = i8x16.abs(a0), sa0 = i8x16.lt_s(a0, zero);
      const aa1 = i8x16.abs(a1), sa1 = i8x16.lt_s(a1, zero);
      const ab0 = i8x16.abs(b0), sb0 = i8x16.lt_s(b0, zero);
      const ab1 = i8x16.abs(b1), sb1 = i8x16.lt_s(b1, zero);
      r0 = q8Row2R(w0 + o, aa0, sa0, aa1, sa1, ab0, sb0, ab1, sb1);
      r1 = q8Row2R(w1 + o, aa0, sa0, aa1, sa1, ab0, sb0, ab1, sb1);
      r2 = q8Row2R(w2 + o, aa0, sa0, aa1, sa1, ab0, sb0, ab1, sb1);
      r3 = q8Row2R(w3 + o, aa0, sa0, aa1, sa1, ab0, sb0, ab1, sb1);
    } else {
      r0 = q8Row2(w0 + o, xa, xb);
      r1 = q8Row2(w1 + o, xa, xb);
      r2 = q8Row2(w2 + o, xa, xb);
      r3 = q8Row2(w3 + o, xa, xb);
    }
    accA = madd(f32x4.convert_i32x4_s(unpackLo(r0, r1, r2, r3)), f32x4.mul(dw, f16Splat(xa)), accA);
    accB = madd(f32x4.convert_i32x4_s(unpackHi(r0, r1, r2, r3)), f32x4.mul(dw, f16Splat(xb)), accB);
  }
  storeLanes(yx, accA, nr);
  storeLanes(yz, accB, nr);
}

export function matmulQ8_0(w: usize, x: usize, y: usize, rows: i32, k: i32, T: i32, ldy: i32): void {
  const nb = k >> 5;
  const rb = <usize>nb * 34;
  const yb = <usize>ldy << 2;
  const TB = tokenBlock(rb);
  for (let t0 = 0; t0 < T; t0 += TB) {
    const t1 = min(T, t0 + TB);
    for (let r = 0; r < rows; r += 4) {
      const nr = min(rows - r, 4);
      const w0 = w + <usize>r * rb;
      const w1 = nr > 1 ? w0 + rb : w0;
      const w2 = nr > 2 ? w1 + rb : w1;
      const w3 = nr > 3 ? w2 + rb : w2;
      const yr = y + (<usize>r << 2);
      let t = t0;
      for (; t + 2 <= t1; t += 2) {
        const xt = x + <usize>t * rb;
        const yt = yr + <usize>t * yb;
        q8_0Tile4x2(w0, w1, w2, w3, xt, xt + rb, nb, yt, yt + yb, nr);
      }
      if (t < t1) q8_0Tile4x1(w0, w1, w2, w3, x + <usize>t * rb, nb, yr + <usize>t * yb, nr);
    }
  }
}

// ------------------------------------------------------------------------- Q4_0 x Q8_0 (18 B)
// block: f16 d @0, u8 qs[16] @2; element j < 16: (qs[j] & 15) - 8, element 16 + j: (qs[j] >> 4) - 8

/** SIMD128: nibbles - 8 as i16 (l0: elements 0..7, l1: 8..15, h0: 16..23, h1: 24..31) . x. */
@inline function q4Dot16(l0: v128, l1: v128, h0: v128, h1: v128, xp: usize): v128 {
  return i32x4.add(
    i32x4.add(i32x4.dot_i16x8_s(l0, v128.load8x8_s(xp, 2)), i32x4.dot_i16x8_s(l1, v128.load8x8_s(xp, 10))),
    i32x4.add(i32x4.dot_i16x8_s(h0, v128.load8x8_s(xp, 18)), i32x4.dot_i16x8_s(h1, v128.load8x8_s(xp, 26))),
  );
}

/** relaxed: raw nibbles (lo: elements 0..15, hi: 16..31) . x, minus corr = 8 * sum(x) (i32x4). */
@inline function q4DotR(lo: v128, hi: v128, x0: v128, x1: v128, corr: v128): v128 {
  return i32x4.sub(i32x4.extadd_pairwise_i16x8_s(i16x8.add(rdot16(x0, lo), rdot16(x1, hi))), corr);
}

/** relaxed: 8 * sum of the 32 activations of a block as i32x4 partial sums. */
@inline function q4Corr(x0: v128, x1: v128): v128 {
  const e = kv(K_I8_8);
  return i32x4.extadd_pairwise_i16x8_s(i16x8.add(rdot16(x0, e), rdot16(x1, e)));
}

@inline function q4Row1(wp: usize, xp: usize): v128 {
  const b0 = v128.load8x8_u(wp, 2);
  const b1 = v128.load8x8_u(wp, 10);
  const m = kv(K_I16_15);
  const e = kv(K_I16_8);
  return q4Dot16(
    i16x8.sub(v128.and(b0, m), e),
    i16x8.sub(v128.and(b1, m), e),
    i16x8.sub(i16x8.shr_u(b0, 4), e),
    i16x8.sub(i16x8.shr_u(b1, 4), e),
    xp,
  );
}

@inline function q4Row1R(wp: usize, x0: v128, x1: v128, corr: v128): v128 {
  const v = v128.load(wp, 2);
  const m = kv(K_I8_15);
  return q4DotR(v128.and(v, m), v128.and(i16x8.shr_u(v, 4), m), x0, x1, corr);
}

function q4_0Tile4x1(w0: usize, w1: usize, w2: usize, w3: usize, x: usize, nb: i32, yp: usize, nr: i32): void {
  let acc = f32x4.splat(0);
  let ow: usize = 0;
  const end = <usize>nb * 34;
  for (let ox: usize = 0; ox < end; ox += 34) {
    const xp = x + ox;
    const ds = f32x4.mul(f16Gather4(w0 + ow, w1 + ow, w2 + ow, w3 + ow), f16Splat(xp));
    let s: v128;
    if (ASC_FEATURE_RELAXED_SIMD) {
      const x0 = v128.load(xp, 2);
      const x1 = v128.load(xp, 18);
      const corr = q4Corr(x0, x1);
      s = hsum4i(
        q4Row1R(w0 + ow, x0, x1, corr),
        q4Row1R(w1 + ow, x0, x1, corr),
        q4Row1R(w2 + ow, x0, x1, corr),
        q4Row1R(w3 + ow, x0, x1, corr),
      );
    } else {
      s = hsum4i(q4Row1(w0 + ow, xp), q4Row1(w1 + ow, xp), q4Row1(w2 + ow, xp), q4Row1(w3 + ow, xp));
    }
    acc = madd(f32x4.convert_i32x4_s(s), ds, acc);
    ow += 18;
  }
  storeLanes(yp, acc, nr);
}

@inline function q4Row2(wp: usize, xa: usize, xb: usize): v128 {
  const b0 = v128.load8x8_u(wp, 2);
  const b1 = v128.load8x8_u(wp, 10);
  const m = kv(K_I16_15);
  const e = kv(K_I16_8);
  const l0 = i16x8.sub(v128.and(b0, m), e);
  const l1 = i16x8.sub(v128.and(b1, m), e);
  const h0 = i16x8.sub(i16x8.shr_u(b0, 4), e);
  const h1 = i16x8.sub(i16x8.shr_u(b1, 4), e);
  return pack2(q4Dot16(l0, l1, h0, h1, xa), q4Dot16(l0, l1, h0, h1, xb));
}

@inline function q4Row2R(wp: usize, a0: v128, a1: v128, ca: v128, b0: v128, b1: v128, cb: v128): v128 {
  const v = v128.load(wp, 2);
  const m = kv(K_I8_15);
  const lo = v128.and(v, m);
  const hi = v128.and(i16x8.shr_u(v, 4), m);
  return pack2(q4DotR(lo, hi, a0, a1, ca), q4DotR(lo, hi, b0, b1, cb));
}

function q4_0Tile4x2(
  w0: usize, w1: usize, w2: usize, w3: usize, x: usize, z: usize, nb: i32, yx: usize, yz: usize, nr: i32,
): void {
  let accA = f32x4.splat(0);
  let accB = f32x4.splat(0);
  let ow: usize = 0;
  const end = <usize>nb * 34;
  for (let ox: usize = 0; ox < end; ox += 34) {
    const xa = x + ox;
    const xb = z + ox;
    const dw = f16Gather4(w0 + ow, w1 + ow, w2 + ow, w3 + ow);
    let r0: v128, r1: v128, r2: v128, r3: v128;
    if (ASC_FEATURE_RELAXED_SIMD) {
      const a0 = v128.load(xa, 2);
      const a1 = v128.load(xa, 18);
      const b0 = v128.load(xb, 2);
      const b1 = v128.load(xb, 18);
      const ca = q4Corr(a0, a1);
      const cb = q4Corr(b0, b1);
      r0 = q4Row2R(w0 + ow, a0, a1, ca, b0, b1, cb);
      r1 = q4Row2R(w1 + ow, a0, a1, ca, b0, b1, cb);
      r2 = q4Row2R(w2 + ow, a0, a1, ca, b0, b1, cb);
      r3 = q4Row2R(w3 + ow, a0, a1, ca, b0, b1, cb);
    } else {
      r0 = q4Row2(w0 + ow, xa, xb);
      r1 = q4Row2(w1 + ow, xa, xb);
      r2 = q4Row2(w2 + ow, xa, xb);
      r3 = q4Row2(w3 + ow, xa, xb);
    }
    accA = madd(f32x4.convert_i32x4_s(unpackLo(r0, r1, r2, r3)), f32x4.mul(dw, f16Splat(xa)), accA);
    accB = madd(f32x4.convert_i32x4_s(unpackHi(r0, r1, r2, r3)), f32x4.mul(dw, f16Splat(xb)), accB);
    ow += 18;
  }
  storeLanes(yx, accA, nr);
  storeLanes(yz, accB, nr);
}

export function matmulQ4_0(w: usize, x: usize, y: usize, rows: i32, k: i32, T: i32, ldy: i32): void {
  const nb = k >> 5;
  const rb = <usize>nb * 18;
  const xb = <usize>nb * 34;
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
      let t = t0;
      for (; t + 2 <= t1; t += 2) {
        const xt = x + <usize>t * xb;
        const yt = yr + <usize>t * yb;
        q4_0Tile4x2(w0, w1, w2, w3, xt, xt + xb, nb, yt, yt + yb, nr);
      }
      if (t < t1) q4_0Tile4x1(w0, w1, w2, w3, x + <usize>t * xb, nb, yr + <usize>t * yb, nr);
    }
  }
}
