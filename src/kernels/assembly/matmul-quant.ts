// matmul for quantized weights: Q8_0 and Q4_0 against Q8_0 activations, Q4_K and Q6_K against
// Q8_K activations. y[t*ldy + r] = dot(W[r, :], Xq[t, :]).
//
// Integer parts are exact (same integer sums as ggml's vec_dot); only the f32 scaling and the
// order of the f32 accumulation differ from the src/tensor references:
//   per block: acc[r] += f32(isum[r]) * (dw[r] * dx)   (K-quants also: - f32(msum[r]) * (dmin[r] * dx))
// with the 4 rows of a tile in the 4 lanes of one f32x4 accumulator per token.
//
// Tiles: 4 rows x 2 tokens (weights unpacked once for both tokens) while two tokens remain,
// 4 rows x 1 token for the last (decode). A partial group of rows repeats its last row in the
// unused lanes and stores only the valid ones.
//
// Integer techniques:
// - SIMD128: i8 -> i16 widening loads (v128.load8x8_s/u) and i32x4.dot_i16x8_s; for K-quants
//   i16 products (|q*x| <= 63*127 fits, sums of 2-4 products too) summed in i16 and multiplied
//   by the sub-block scale with one dot_i16x8_s against a splat.
// - relaxed: i16x8/i32x4.relaxed_dot_i8x16_i7x16 with the 7-bit operand always in 0..127:
//   Q4 nibbles (0..15), Q6 quants (0..63, the -32 folded in through the bsums), |x| for Q8_0
//   (the sign of x moved onto the weight). Pair sums stay below 2^15, so an engine that
//   saturates (pmaddubsw) gives the exact result too.
//
// NOTE: i32x4.relaxed_dot_i8x16_i7x16_add_s is not used: V8 11.3 (Node 20) miscompiles it on
// x64 (returns 2 * dot and ignores the accumulator; seen with Node 20.20.2). The i16x8
// form (one pmaddubsw) plus extadd_pairwise is exact and as fast.
//
// NOTE: Q8_0 relaxed: a weight of -128 (never produced by ggml's quantizers, which stay in
// -127..127) against a negative activation counts as 127 instead of 128 (saturating negation).

import { madd, f16x8Lo, f16x8Hi, hsum4i, storeLanes } from "./common";

// ------------------------------------------------------------------------------ shared helpers

/** f16 at p0..p3 -> f32x4 [f(p0), f(p1), f(p2), f(p3)]. */
@inline function f16Gather4(p0: usize, p1: usize, p2: usize, p3: usize): v128 {
  let v = v128.load16_lane(p0, i32x4.splat(0), 0);
  v = v128.load16_lane(p1, v, 1);
  v = v128.load16_lane(p2, v, 2);
  v = v128.load16_lane(p3, v, 3);
  return f16x8Lo(v);
}

/** f16 at p -> f32x4 splat. */
@inline function f16Splat(p: usize): v128 {
  return f16x8Lo(v128.load16_splat(p));
}

/** [a0+a2, a1+a3, b0+b2, b1+b3]: two i32x4 partial sums packed into one vector. */
@inline function pack2(a: v128, b: v128): v128 {
  return i32x4.add(v128.shuffle<i32>(a, b, 0, 1, 4, 5), v128.shuffle<i32>(a, b, 2, 3, 6, 7));
}

/** [a0+a1, a2+a3, b0+b1, b2+b3]: of two pack2 results, the totals [A, B, A', B']. */
@inline function pairAdd(a: v128, b: v128): v128 {
  return i32x4.add(v128.shuffle<i32>(a, b, 0, 2, 4, 6), v128.shuffle<i32>(a, b, 1, 3, 5, 7));
}

/** From 4 pack2 results (one per row): per-row totals of the first (lo) or second (hi) operand. */
@inline function unpackLo(v0: v128, v1: v128, v2: v128, v3: v128): v128 {
  const p = v128.shuffle<i32>(v0, v1, 0, 1, 4, 5);
  const q = v128.shuffle<i32>(v2, v3, 0, 1, 4, 5);
  return i32x4.add(v128.shuffle<i32>(p, q, 0, 2, 4, 6), v128.shuffle<i32>(p, q, 1, 3, 5, 7));
}
@inline function unpackHi(v0: v128, v1: v128, v2: v128, v3: v128): v128 {
  const p = v128.shuffle<i32>(v0, v1, 2, 3, 6, 7);
  const q = v128.shuffle<i32>(v2, v3, 2, 3, 6, 7);
  return i32x4.add(v128.shuffle<i32>(p, q, 0, 2, 4, 6), v128.shuffle<i32>(p, q, 1, 3, 5, 7));
}

/** 4x4 i32 transpose helper: lane `l` of each of v0..v3 -> one vector. */
@inline function lane0(v0: v128, v1: v128, v2: v128, v3: v128): v128 {
  return v128.shuffle<i32>(v128.shuffle<i32>(v0, v1, 0, 4, 0, 4), v128.shuffle<i32>(v2, v3, 0, 4, 0, 4), 0, 1, 4, 5);
}
@inline function lane1(v0: v128, v1: v128, v2: v128, v3: v128): v128 {
  return v128.shuffle<i32>(v128.shuffle<i32>(v0, v1, 1, 5, 1, 5), v128.shuffle<i32>(v2, v3, 1, 5, 1, 5), 0, 1, 4, 5);
}
@inline function lane2(v0: v128, v1: v128, v2: v128, v3: v128): v128 {
  return v128.shuffle<i32>(v128.shuffle<i32>(v0, v1, 2, 6, 2, 6), v128.shuffle<i32>(v2, v3, 2, 6, 2, 6), 0, 1, 4, 5);
}
@inline function lane3(v0: v128, v1: v128, v2: v128, v3: v128): v128 {
  return v128.shuffle<i32>(v128.shuffle<i32>(v0, v1, 3, 7, 3, 7), v128.shuffle<i32>(v2, v3, 3, 7, 3, 7), 0, 1, 4, 5);
}

@inline function rdot16(x: v128, q7: v128): v128 {
  return i16x8.relaxed_dot_i8x16_i7x16_s(x, q7);
}

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
  for (let r = 0; r < rows; r += 4) {
    const nr = min(rows - r, 4);
    const w0 = w + <usize>r * rb;
    const w1 = nr > 1 ? w0 + rb : w0;
    const w2 = nr > 2 ? w1 + rb : w1;
    const w3 = nr > 3 ? w2 + rb : w2;
    const yr = y + (<usize>r << 2);
    let t = 0;
    for (; t + 2 <= T; t += 2) {
      const xt = x + <usize>t * rb;
      const yt = yr + <usize>t * yb;
      q8_0Tile4x2(w0, w1, w2, w3, xt, xt + rb, nb, yt, yt + yb, nr);
    }
    if (t < T) q8_0Tile4x1(w0, w1, w2, w3, x + <usize>t * rb, nb, yr + <usize>t * yb, nr);
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
  const e = i8x16.splat(8);
  return i32x4.extadd_pairwise_i16x8_s(i16x8.add(rdot16(x0, e), rdot16(x1, e)));
}

@inline function q4Row1(wp: usize, xp: usize): v128 {
  const b0 = v128.load8x8_u(wp, 2);
  const b1 = v128.load8x8_u(wp, 10);
  const m = i16x8.splat(15);
  const e = i16x8.splat(8);
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
  const m = i8x16.splat(15);
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
  const m = i16x8.splat(15);
  const e = i16x8.splat(8);
  const l0 = i16x8.sub(v128.and(b0, m), e);
  const l1 = i16x8.sub(v128.and(b1, m), e);
  const h0 = i16x8.sub(i16x8.shr_u(b0, 4), e);
  const h1 = i16x8.sub(i16x8.shr_u(b1, 4), e);
  return pack2(q4Dot16(l0, l1, h0, h1, xa), q4Dot16(l0, l1, h0, h1, xb));
}

@inline function q4Row2R(wp: usize, a0: v128, a1: v128, ca: v128, b0: v128, b1: v128, cb: v128): v128 {
  const v = v128.load(wp, 2);
  const m = i8x16.splat(15);
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
  for (let r = 0; r < rows; r += 4) {
    const nr = min(rows - r, 4);
    const w0 = w + <usize>r * rb;
    const w1 = nr > 1 ? w0 + rb : w0;
    const w2 = nr > 2 ? w1 + rb : w1;
    const w3 = nr > 3 ? w2 + rb : w2;
    const yr = y + (<usize>r << 2);
    let t = 0;
    for (; t + 2 <= T; t += 2) {
      const xt = x + <usize>t * xb;
      const yt = yr + <usize>t * yb;
      q4_0Tile4x2(w0, w1, w2, w3, xt, xt + xb, nb, yt, yt + yb, nr);
    }
    if (t < T) q4_0Tile4x1(w0, w1, w2, w3, x + <usize>t * xb, nb, yr + <usize>t * yb, nr);
  }
}

// -------------------------------------------------------------------------- Q8_K activations
// block (292 B): f32 d @0, i8 qs[256] @4, i16 bsums[16] @260

/** Sums of the 8 sub-blocks of 32 (bsums[2j] + bsums[2j+1]) as i16x8 (|sum| <= 4064). */
@inline function q8kPairSums(xp: usize): v128 {
  return i16x8.narrow_i32x4_s(
    i32x4.extadd_pairwise_i16x8_s(v128.load(xp, 260)),
    i32x4.extadd_pairwise_i16x8_s(v128.load(xp, 276)),
  );
}

// -------------------------------------------------------------------------- Q4_K x Q8_K (144 B)
// block: f16 d @0, f16 dmin @2, u8 scales[12] @4 (6-bit sc[8], m[8]), u8 qs[128] @16:
// chunk c (32 bytes at 16 + 32c): low nibbles = elements 64c..64c+31 (sub-block 2c),
// high nibbles = 64c+32..64c+63 (sub-block 2c+1). w = d*sc*q - dmin*m.

/** SIMD128: sub-block pair of chunk `q` (32 bytes) against x at xq (64 i8), scales s1, s2. */
@inline function q4kChunk(q: usize, xq: usize, s1: i32, s2: i32): v128 {
  const b0 = v128.load8x8_u(q);
  const b1 = v128.load8x8_u(q, 8);
  const b2 = v128.load8x8_u(q, 16);
  const b3 = v128.load8x8_u(q, 24);
  const m = i16x8.splat(15);
  const pl = i16x8.add(
    i16x8.add(i16x8.mul(v128.and(b0, m), v128.load8x8_s(xq)), i16x8.mul(v128.and(b1, m), v128.load8x8_s(xq, 8))),
    i16x8.add(i16x8.mul(v128.and(b2, m), v128.load8x8_s(xq, 16)), i16x8.mul(v128.and(b3, m), v128.load8x8_s(xq, 24))),
  );
  const ph = i16x8.add(
    i16x8.add(i16x8.mul(i16x8.shr_u(b0, 4), v128.load8x8_s(xq, 32)), i16x8.mul(i16x8.shr_u(b1, 4), v128.load8x8_s(xq, 40))),
    i16x8.add(i16x8.mul(i16x8.shr_u(b2, 4), v128.load8x8_s(xq, 48)), i16x8.mul(i16x8.shr_u(b3, 4), v128.load8x8_s(xq, 56))),
  );
  return i32x4.add(i32x4.dot_i16x8_s(pl, i16x8.splat(<i16>s1)), i32x4.dot_i16x8_s(ph, i16x8.splat(<i16>s2)));
}

/** relaxed variant of q4kChunk. */
@inline function q4kChunkR(q: usize, xq: usize, s1: i32, s2: i32): v128 {
  const v0 = v128.load(q);
  const v1 = v128.load(q, 16);
  const m = i8x16.splat(15);
  const pl = i16x8.add(rdot16(v128.load(xq), v128.and(v0, m)), rdot16(v128.load(xq, 16), v128.and(v1, m)));
  const ph = i16x8.add(
    rdot16(v128.load(xq, 32), v128.and(i16x8.shr_u(v0, 4), m)),
    rdot16(v128.load(xq, 48), v128.and(i16x8.shr_u(v1, 4), m)),
  );
  return i32x4.add(i32x4.dot_i16x8_s(pl, i16x8.splat(<i16>s1)), i32x4.dot_i16x8_s(ph, i16x8.splat(<i16>s2)));
}

/** sum_j sc[j] * (q . x over sub-block j) of one superblock, i32x4 partial sums. */
@inline function q4kDot(wp: usize, xp: usize): v128 {
  const u0 = load<u32>(wp, 4);
  const u2 = load<u32>(wp, 12);
  const lo = u0 & 0x3f3f3f3f;
  const hi = (u2 & 0x0f0f0f0f) | (((u0 >> 6) & 0x03030303) << 4);
  if (ASC_FEATURE_RELAXED_SIMD) {
    return i32x4.add(
      i32x4.add(
        q4kChunkR(wp + 16, xp + 4, lo & 0xff, (lo >> 8) & 0xff),
        q4kChunkR(wp + 48, xp + 68, (lo >> 16) & 0xff, lo >> 24),
      ),
      i32x4.add(
        q4kChunkR(wp + 80, xp + 132, hi & 0xff, (hi >> 8) & 0xff),
        q4kChunkR(wp + 112, xp + 196, (hi >> 16) & 0xff, hi >> 24),
      ),
    );
  } else {
    return i32x4.add(
      i32x4.add(
        q4kChunk(wp + 16, xp + 4, lo & 0xff, (lo >> 8) & 0xff),
        q4kChunk(wp + 48, xp + 68, (lo >> 16) & 0xff, lo >> 24),
      ),
      i32x4.add(
        q4kChunk(wp + 80, xp + 132, hi & 0xff, (hi >> 8) & 0xff),
        q4kChunk(wp + 112, xp + 196, (hi >> 16) & 0xff, hi >> 24),
      ),
    );
  }
}

/** sum_j m[j] * (sum of x over sub-block j), i32x4 partial sums; pb = q8kPairSums. */
@inline function q4kMins(wp: usize, pb: v128): v128 {
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

function q4_KTile4x1(w0: usize, w1: usize, w2: usize, w3: usize, x: usize, nb: i32, yp: usize, nr: i32): void {
  let acc = f32x4.splat(0);
  let ow: usize = 0;
  const end = <usize>nb * 292;
  for (let ox: usize = 0; ox < end; ox += 292) {
    const xp = x + ox;
    const dd = q4kDGather(w0 + ow, w1 + ow, w2 + ow, w3 + ow);
    const xd = v128.load32_splat(xp);
    const pb = q8kPairSums(xp);
    const s = hsum4i(q4kDot(w0 + ow, xp), q4kDot(w1 + ow, xp), q4kDot(w2 + ow, xp), q4kDot(w3 + ow, xp));
    const m = hsum4i(q4kMins(w0 + ow, pb), q4kMins(w1 + ow, pb), q4kMins(w2 + ow, pb), q4kMins(w3 + ow, pb));
    acc = madd(f32x4.convert_i32x4_s(s), f32x4.mul(f16x8Lo(dd), xd), acc);
    acc = madd(f32x4.convert_i32x4_s(m), f32x4.neg(f32x4.mul(f16x8Hi(dd), xd)), acc);
    ow += 144;
  }
  storeLanes(yp, acc, nr);
}

/** SIMD128: one chunk against two tokens, each sum scaled: returns pack2(A, B). */
@inline function q4kChunk2(q: usize, xa: usize, xb: usize, s1: i32, s2: i32): v128 {
  const b0 = v128.load8x8_u(q);
  const b1 = v128.load8x8_u(q, 8);
  const b2 = v128.load8x8_u(q, 16);
  const b3 = v128.load8x8_u(q, 24);
  const m = i16x8.splat(15);
  const l0 = v128.and(b0, m), l1 = v128.and(b1, m), l2 = v128.and(b2, m), l3 = v128.and(b3, m);
  const h0 = i16x8.shr_u(b0, 4), h1 = i16x8.shr_u(b1, 4), h2 = i16x8.shr_u(b2, 4), h3 = i16x8.shr_u(b3, 4);
  const c1 = i16x8.splat(<i16>s1);
  const c2 = i16x8.splat(<i16>s2);
  const a = i32x4.add(
    i32x4.dot_i16x8_s(
      i16x8.add(
        i16x8.add(i16x8.mul(l0, v128.load8x8_s(xa)), i16x8.mul(l1, v128.load8x8_s(xa, 8))),
        i16x8.add(i16x8.mul(l2, v128.load8x8_s(xa, 16)), i16x8.mul(l3, v128.load8x8_s(xa, 24))),
      ),
      c1,
    ),
    i32x4.dot_i16x8_s(
      i16x8.add(
        i16x8.add(i16x8.mul(h0, v128.load8x8_s(xa, 32)), i16x8.mul(h1, v128.load8x8_s(xa, 40))),
        i16x8.add(i16x8.mul(h2, v128.load8x8_s(xa, 48)), i16x8.mul(h3, v128.load8x8_s(xa, 56))),
      ),
      c2,
    ),
  );
  const b = i32x4.add(
    i32x4.dot_i16x8_s(
      i16x8.add(
        i16x8.add(i16x8.mul(l0, v128.load8x8_s(xb)), i16x8.mul(l1, v128.load8x8_s(xb, 8))),
        i16x8.add(i16x8.mul(l2, v128.load8x8_s(xb, 16)), i16x8.mul(l3, v128.load8x8_s(xb, 24))),
      ),
      c1,
    ),
    i32x4.dot_i16x8_s(
      i16x8.add(
        i16x8.add(i16x8.mul(h0, v128.load8x8_s(xb, 32)), i16x8.mul(h1, v128.load8x8_s(xb, 40))),
        i16x8.add(i16x8.mul(h2, v128.load8x8_s(xb, 48)), i16x8.mul(h3, v128.load8x8_s(xb, 56))),
      ),
      c2,
    ),
  );
  return pack2(a, b);
}

/** relaxed variant of q4kChunk2. */
@inline function q4kChunk2R(q: usize, xa: usize, xb: usize, s1: i32, s2: i32): v128 {
  const v0 = v128.load(q);
  const v1 = v128.load(q, 16);
  const m = i8x16.splat(15);
  const l0 = v128.and(v0, m);
  const l1 = v128.and(v1, m);
  const h0 = v128.and(i16x8.shr_u(v0, 4), m);
  const h1 = v128.and(i16x8.shr_u(v1, 4), m);
  const c1 = i16x8.splat(<i16>s1);
  const c2 = i16x8.splat(<i16>s2);
  const a = i32x4.add(
    i32x4.dot_i16x8_s(i16x8.add(rdot16(v128.load(xa), l0), rdot16(v128.load(xa, 16), l1)), c1),
    i32x4.dot_i16x8_s(i16x8.add(rdot16(v128.load(xa, 32), h0), rdot16(v128.load(xa, 48), h1)), c2),
  );
  const b = i32x4.add(
    i32x4.dot_i16x8_s(i16x8.add(rdot16(v128.load(xb), l0), rdot16(v128.load(xb, 16), l1)), c1),
    i32x4.dot_i16x8_s(i16x8.add(rdot16(v128.load(xb, 32), h0), rdot16(v128.load(xb, 48), h1)), c2),
  );
  return pack2(a, b);
}

/** One row's superblock against two tokens: [I_A, I_B, M_A, M_B] (scaled quant sums and min sums). */
@inline function q4kRow2(wp: usize, xa: usize, xb: usize, pa: v128, pbb: v128): v128 {
  const u0 = load<u32>(wp, 4);
  const u2 = load<u32>(wp, 12);
  const lo = u0 & 0x3f3f3f3f;
  const hi = (u2 & 0x0f0f0f0f) | (((u0 >> 6) & 0x03030303) << 4);
  let s: v128;
  if (ASC_FEATURE_RELAXED_SIMD) {
    s = i32x4.add(
      i32x4.add(
        q4kChunk2R(wp + 16, xa + 4, xb + 4, lo & 0xff, (lo >> 8) & 0xff),
        q4kChunk2R(wp + 48, xa + 68, xb + 68, (lo >> 16) & 0xff, lo >> 24),
      ),
      i32x4.add(
        q4kChunk2R(wp + 80, xa + 132, xb + 132, hi & 0xff, (hi >> 8) & 0xff),
        q4kChunk2R(wp + 112, xa + 196, xb + 196, (hi >> 16) & 0xff, hi >> 24),
      ),
    );
  } else {
    s = i32x4.add(
      i32x4.add(
        q4kChunk2(wp + 16, xa + 4, xb + 4, lo & 0xff, (lo >> 8) & 0xff),
        q4kChunk2(wp + 48, xa + 68, xb + 68, (lo >> 16) & 0xff, lo >> 24),
      ),
      i32x4.add(
        q4kChunk2(wp + 80, xa + 132, xb + 132, hi & 0xff, (hi >> 8) & 0xff),
        q4kChunk2(wp + 112, xa + 196, xb + 196, (hi >> 16) & 0xff, hi >> 24),
      ),
    );
  }
  // s = [A lanes 0+2, A 1+3, B 0+2, B 1+3]; mins of both tokens likewise
  return pairAdd(s, pack2(q4kMins(wp, pa), q4kMins(wp, pbb)));
}

function q4_KTile4x2(
  w0: usize, w1: usize, w2: usize, w3: usize, x: usize, z: usize, nb: i32, yx: usize, yz: usize, nr: i32,
): void {
  let accA = f32x4.splat(0);
  let accB = f32x4.splat(0);
  let ow: usize = 0;
  const end = <usize>nb * 292;
  for (let ox: usize = 0; ox < end; ox += 292) {
    const xa = x + ox;
    const xb = z + ox;
    const dd = q4kDGather(w0 + ow, w1 + ow, w2 + ow, w3 + ow);
    const d = f16x8Lo(dd);
    const dmin = f16x8Hi(dd);
    const pa = q8kPairSums(xa);
    const pbb = q8kPairSums(xb);
    const r0 = q4kRow2(w0 + ow, xa, xb, pa, pbb);
    const r1 = q4kRow2(w1 + ow, xa, xb, pa, pbb);
    const r2 = q4kRow2(w2 + ow, xa, xb, pa, pbb);
    const r3 = q4kRow2(w3 + ow, xa, xb, pa, pbb);
    // r = [I_A, I_B, M_A, M_B]
    const xda = v128.load32_splat(xa);
    const xdb = v128.load32_splat(xb);
    accA = madd(f32x4.convert_i32x4_s(lane0(r0, r1, r2, r3)), f32x4.mul(d, xda), accA);
    accA = madd(f32x4.convert_i32x4_s(lane2(r0, r1, r2, r3)), f32x4.neg(f32x4.mul(dmin, xda)), accA);
    accB = madd(f32x4.convert_i32x4_s(lane1(r0, r1, r2, r3)), f32x4.mul(d, xdb), accB);
    accB = madd(f32x4.convert_i32x4_s(lane3(r0, r1, r2, r3)), f32x4.neg(f32x4.mul(dmin, xdb)), accB);
    ow += 144;
  }
  storeLanes(yx, accA, nr);
  storeLanes(yz, accB, nr);
}

export function matmulQ4_K(w: usize, x: usize, y: usize, rows: i32, k: i32, T: i32, ldy: i32): void {
  const nb = k >> 8;
  const rb = <usize>nb * 144;
  const xb = <usize>nb * 292;
  const yb = <usize>ldy << 2;
  for (let r = 0; r < rows; r += 4) {
    const nr = min(rows - r, 4);
    const w0 = w + <usize>r * rb;
    const w1 = nr > 1 ? w0 + rb : w0;
    const w2 = nr > 2 ? w1 + rb : w1;
    const w3 = nr > 3 ? w2 + rb : w2;
    const yr = y + (<usize>r << 2);
    let t = 0;
    for (; t + 2 <= T; t += 2) {
      const xt = x + <usize>t * xb;
      const yt = yr + <usize>t * yb;
      q4_KTile4x2(w0, w1, w2, w3, xt, xt + xb, nb, yt, yt + yb, nr);
    }
    if (t < T) q4_KTile4x1(w0, w1, w2, w3, x + <usize>t * xb, nb, yr + <usize>t * yb, nr);
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

/** Quants 0..63 (as i8x16) of the 4 groups of 16 built from ql bytes A, B and qh bytes H. */
@inline function q6q0(A: v128, H: v128): v128 {
  return v128.or(v128.and(A, i8x16.splat(15)), v128.and(i16x8.shl(H, 4), i8x16.splat(0x30)));
}
@inline function q6q1(B: v128, H: v128): v128 {
  return v128.or(v128.and(B, i8x16.splat(15)), v128.and(i16x8.shl(H, 2), i8x16.splat(0x30)));
}
@inline function q6q2(A: v128, H: v128): v128 {
  return v128.or(v128.and(i16x8.shr_u(A, 4), i8x16.splat(15)), v128.and(H, i8x16.splat(0x30)));
}
@inline function q6q3(B: v128, H: v128): v128 {
  return v128.or(v128.and(i16x8.shr_u(B, 4), i8x16.splat(15)), v128.and(i16x8.shr_u(H, 2), i8x16.splat(0x30)));
}

/** 16 quants (0..63) . 16 activations at xp, times scale at sp: i32x4 partial sums. */
@inline function q6Sub(q: v128, xp: usize, sp: usize): v128 {
  let p: v128;
  if (ASC_FEATURE_RELAXED_SIMD) {
    p = rdot16(v128.load(xp), q);
  } else {
    p = i16x8.add(
      i16x8.mul(i16x8.extend_low_i8x16_u(q), v128.load8x8_s(xp)),
      i16x8.mul(i16x8.extend_high_i8x16_u(q), v128.load8x8_s(xp, 8)),
    );
  }
  return i32x4.dot_i16x8_s(p, i16x8.splat(<i16>load<i8>(sp)));
}

/** One group (g = 0/1) of one half: 4 sub-blocks of 16. */
@inline function q6Group(ql: usize, qh: usize, sc: usize, xq: usize): v128 {
  const A = v128.load(ql);
  const B = v128.load(ql, 32);
  const H = v128.load(qh);
  return i32x4.add(
    i32x4.add(q6Sub(q6q0(A, H), xq, sc), q6Sub(q6q1(B, H), xq + 32, sc + 2)),
    i32x4.add(q6Sub(q6q2(A, H), xq + 64, sc + 4), q6Sub(q6q3(B, H), xq + 96, sc + 6)),
  );
}

/** 32 * sum_j sc[j] * bsums[j] (i32x4 partial sums). */
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

/** sum_j sc[j] * ((q - 32) . x over sub-block j) of one superblock: i32x4 partial sums. */
@inline function q6kDot(wp: usize, xp: usize): v128 {
  const s = i32x4.add(
    i32x4.add(q6Group(wp, wp + 128, wp + 192, xp + 4), q6Group(wp + 16, wp + 144, wp + 193, xp + 20)),
    i32x4.add(q6Group(wp + 64, wp + 160, wp + 200, xp + 132), q6Group(wp + 80, wp + 176, wp + 201, xp + 148)),
  );
  return i32x4.sub(s, q6Offset(wp, xp));
}

function q6_KTile4x1(w0: usize, w1: usize, w2: usize, w3: usize, x: usize, nb: i32, yp: usize, nr: i32): void {
  let acc = f32x4.splat(0);
  let ow: usize = 0;
  const end = <usize>nb * 292;
  for (let ox: usize = 0; ox < end; ox += 292) {
    const xp = x + ox;
    const ds = f32x4.mul(f16Gather4(w0 + ow + 208, w1 + ow + 208, w2 + ow + 208, w3 + ow + 208), v128.load32_splat(xp));
    const s = hsum4i(q6kDot(w0 + ow, xp), q6kDot(w1 + ow, xp), q6kDot(w2 + ow, xp), q6kDot(w3 + ow, xp));
    acc = madd(f32x4.convert_i32x4_s(s), ds, acc);
    ow += 210;
  }
  storeLanes(yp, acc, nr);
}

/** q6Group against two tokens: pack2(A, B). */
@inline function q6Group2(ql: usize, qh: usize, sc: usize, xa: usize, xb: usize): v128 {
  const A = v128.load(ql);
  const B = v128.load(ql, 32);
  const H = v128.load(qh);
  const q0 = q6q0(A, H);
  const q1 = q6q1(B, H);
  const q2 = q6q2(A, H);
  const q3 = q6q3(B, H);
  const a = i32x4.add(
    i32x4.add(q6Sub(q0, xa, sc), q6Sub(q1, xa + 32, sc + 2)),
    i32x4.add(q6Sub(q2, xa + 64, sc + 4), q6Sub(q3, xa + 96, sc + 6)),
  );
  const b = i32x4.add(
    i32x4.add(q6Sub(q0, xb, sc), q6Sub(q1, xb + 32, sc + 2)),
    i32x4.add(q6Sub(q2, xb + 64, sc + 4), q6Sub(q3, xb + 96, sc + 6)),
  );
  return pack2(a, b);
}

/** One row's superblock against two tokens: pack2(A, B) of the offset-corrected sums. */
@inline function q6kRow2(wp: usize, xa: usize, xb: usize): v128 {
  const s = i32x4.add(
    i32x4.add(
      q6Group2(wp, wp + 128, wp + 192, xa + 4, xb + 4),
      q6Group2(wp + 16, wp + 144, wp + 193, xa + 20, xb + 20),
    ),
    i32x4.add(
      q6Group2(wp + 64, wp + 160, wp + 200, xa + 132, xb + 132),
      q6Group2(wp + 80, wp + 176, wp + 201, xa + 148, xb + 148),
    ),
  );
  return i32x4.sub(s, pack2(q6Offset(wp, xa), q6Offset(wp, xb)));
}

function q6_KTile4x2(
  w0: usize, w1: usize, w2: usize, w3: usize, x: usize, z: usize, nb: i32, yx: usize, yz: usize, nr: i32,
): void {
  let accA = f32x4.splat(0);
  let accB = f32x4.splat(0);
  let ow: usize = 0;
  const end = <usize>nb * 292;
  for (let ox: usize = 0; ox < end; ox += 292) {
    const xa = x + ox;
    const xb = z + ox;
    const d = f16Gather4(w0 + ow + 208, w1 + ow + 208, w2 + ow + 208, w3 + ow + 208);
    const r0 = q6kRow2(w0 + ow, xa, xb);
    const r1 = q6kRow2(w1 + ow, xa, xb);
    const r2 = q6kRow2(w2 + ow, xa, xb);
    const r3 = q6kRow2(w3 + ow, xa, xb);
    accA = madd(f32x4.convert_i32x4_s(unpackLo(r0, r1, r2, r3)), f32x4.mul(d, v128.load32_splat(xa)), accA);
    accB = madd(f32x4.convert_i32x4_s(unpackHi(r0, r1, r2, r3)), f32x4.mul(d, v128.load32_splat(xb)), accB);
    ow += 210;
  }
  storeLanes(yx, accA, nr);
  storeLanes(yz, accB, nr);
}

export function matmulQ6_K(w: usize, x: usize, y: usize, rows: i32, k: i32, T: i32, ldy: i32): void {
  const nb = k >> 8;
  const rb = <usize>nb * 210;
  const xb = <usize>nb * 292;
  const yb = <usize>ldy << 2;
  for (let r = 0; r < rows; r += 4) {
    const nr = min(rows - r, 4);
    const w0 = w + <usize>r * rb;
    const w1 = nr > 1 ? w0 + rb : w0;
    const w2 = nr > 2 ? w1 + rb : w1;
    const w3 = nr > 3 ? w2 + rb : w2;
    const yr = y + (<usize>r << 2);
    let t = 0;
    for (; t + 2 <= T; t += 2) {
      const xt = x + <usize>t * xb;
      const yt = yr + <usize>t * yb;
      q6_KTile4x2(w0, w1, w2, w3, xt, xt + xb, nb, yt, yt + yb, nr);
    }
    if (t < T) q6_KTile4x1(w0, w1, w2, w3, x + <usize>t * xb, nb, yr + <usize>t * yb, nr);
  }
}
