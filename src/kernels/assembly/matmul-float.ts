// matmul for F32 and F16 weights against f32 activations (F16: activations already rounded to
// f16 precision, stored as f32). y[t*ldy + r] = dot(W[r, :], X[t, :]).
//
// Shapes: W [rows][k] (f32: 4k bytes per row, f16: 2k), X [T][k] f32, Y [T][ldy] f32.
// Tiles: 4 rows x 2 tokens (8 accumulators) while two tokens remain, 4 rows x 1 token for the
// last (the decode case: 4 weight rows streamed together, 2 vectors per row in flight).
// A partial group of rows (rows % 4) repeats its last row in the unused slots and stores only
// the valid lanes, so there is no separate remainder kernel.
// Summation order: per-lane partial sums over k (stride 4 or 8), then a lane tree; k % 4
// elements are added in scalar after the vector part.

import { tokenBlock, madd, hsum4, f16ExtToF32, f16x8Lo, f16x8Hi, f16ToF32, storeLanes, kv, K_F16_EXP } from "./common";

// ---------------------------------------------------------------------------------------- F32

function f32Tile4x1(w0: usize, w1: usize, w2: usize, w3: usize, x: usize, k: i32, yp: usize, nr: i32): void {
  let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
  let b0 = f32x4.splat(0), b1 = f32x4.splat(0), b2 = f32x4.splat(0), b3 = f32x4.splat(0);
  const end8 = <usize>(k & ~7) << 2;
  let o: usize = 0;
  for (; o < end8; o += 32) {
    const xa = v128.load(x + o);
    const xb = v128.load(x + o, 16);
    a0 = madd(v128.load(w0 + o), xa, a0);
    b0 = madd(v128.load(w0 + o, 16), xb, b0);
    a1 = madd(v128.load(w1 + o), xa, a1);
    b1 = madd(v128.load(w1 + o, 16), xb, b1);
    a2 = madd(v128.load(w2 + o), xa, a2);
    b2 = madd(v128.load(w2 + o, 16), xb, b2);
    a3 = madd(v128.load(w3 + o), xa, a3);
    b3 = madd(v128.load(w3 + o, 16), xb, b3);
  }
  if (k & 4) {
    const xa = v128.load(x + o);
    a0 = madd(v128.load(w0 + o), xa, a0);
    a1 = madd(v128.load(w1 + o), xa, a1);
    a2 = madd(v128.load(w2 + o), xa, a2);
    a3 = madd(v128.load(w3 + o), xa, a3);
    o += 16;
  }
  let s = hsum4(f32x4.add(a0, b0), f32x4.add(a1, b1), f32x4.add(a2, b2), f32x4.add(a3, b3));
  if (k & 3) {
    let t0: f32 = 0, t1: f32 = 0, t2: f32 = 0, t3: f32 = 0;
    const end = <usize>k << 2;
    for (; o < end; o += 4) {
      const xv = load<f32>(x + o);
      t0 += load<f32>(w0 + o) * xv;
      t1 += load<f32>(w1 + o) * xv;
      t2 += load<f32>(w2 + o) * xv;
      t3 += load<f32>(w3 + o) * xv;
    }
    s = f32x4.add(s, f32x4.replace_lane(f32x4.replace_lane(f32x4.replace_lane(f32x4.splat(t0), 1, t1), 2, t2), 3, t3));
  }
  storeLanes(yp, s, nr);
}

function f32Tile4x2(
  w0: usize, w1: usize, w2: usize, w3: usize, x: usize, z: usize, k: i32, yx: usize, yz: usize, nr: i32,
): void {
  let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
  let c0 = f32x4.splat(0), c1 = f32x4.splat(0), c2 = f32x4.splat(0), c3 = f32x4.splat(0);
  const end4 = <usize>(k & ~3) << 2;
  let o: usize = 0;
  for (; o < end4; o += 16) {
    const xa = v128.load(x + o);
    const za = v128.load(z + o);
    const v0 = v128.load(w0 + o);
    a0 = madd(v0, xa, a0);
    c0 = madd(v0, za, c0);
    const v1 = v128.load(w1 + o);
    a1 = madd(v1, xa, a1);
    c1 = madd(v1, za, c1);
    const v2 = v128.load(w2 + o);
    a2 = madd(v2, xa, a2);
    c2 = madd(v2, za, c2);
    const v3 = v128.load(w3 + o);
    a3 = madd(v3, xa, a3);
    c3 = madd(v3, za, c3);
  }
  let s = hsum4(a0, a1, a2, a3);
  let u = hsum4(c0, c1, c2, c3);
  if (k & 3) {
    let t0: f32 = 0, t1: f32 = 0, t2: f32 = 0, t3: f32 = 0;
    let q0: f32 = 0, q1: f32 = 0, q2: f32 = 0, q3: f32 = 0;
    const end = <usize>k << 2;
    for (; o < end; o += 4) {
      const xv = load<f32>(x + o);
      const zv = load<f32>(z + o);
      const e0 = load<f32>(w0 + o), e1 = load<f32>(w1 + o), e2 = load<f32>(w2 + o), e3 = load<f32>(w3 + o);
      t0 += e0 * xv; t1 += e1 * xv; t2 += e2 * xv; t3 += e3 * xv;
      q0 += e0 * zv; q1 += e1 * zv; q2 += e2 * zv; q3 += e3 * zv;
    }
    s = f32x4.add(s, f32x4.replace_lane(f32x4.replace_lane(f32x4.replace_lane(f32x4.splat(t0), 1, t1), 2, t2), 3, t3));
    u = f32x4.add(u, f32x4.replace_lane(f32x4.replace_lane(f32x4.replace_lane(f32x4.splat(q0), 1, q1), 2, q2), 3, q3));
  }
  storeLanes(yx, s, nr);
  storeLanes(yz, u, nr);
}

export function matmulF32(w: usize, x: usize, y: usize, rows: i32, k: i32, T: i32, ldy: i32): void {
  const rb = <usize>k << 2;
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
        f32Tile4x2(w0, w1, w2, w3, xt, xt + rb, k, yt, yt + yb, nr);
      }
      if (t < t1) f32Tile4x1(w0, w1, w2, w3, x + <usize>t * rb, k, yr + <usize>t * yb, nr);
    }
  }
}

// ---------------------------------------------------------------------------------------- F16

/**
 * Might a lane of these f16 vectors be inf or NaN? Tests the exponent field of the OR of the 4
 * vectors: never misses one, and weights below 2.0 in magnitude (exponent field <= 0b01111)
 * never raise a false alarm (a false alarm only costs the exact slow path).
 */
@inline function mayBeInfNan(h0: v128, h1: v128, h2: v128, h3: v128): bool {
  const e = kv(K_F16_EXP);
  return v128.any_true(i16x8.eq(v128.and(v128.or(v128.or(h0, h1), v128.or(h2, h3)), e), e));
}

@inline function lo(h: v128): v128 {
  return f16ExtToF32(i32x4.extend_low_i16x8_s(h));
}
@inline function hi(h: v128): v128 {
  return f16ExtToF32(i32x4.extend_high_i16x8_s(h));
}

function f16Tile4x1(w0: usize, w1: usize, w2: usize, w3: usize, x: usize, k: i32, yp: usize, nr: i32): void {
  // one accumulator per row (the conversion work hides the dependency chain; 8 spilled)
  let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
  const end8 = <usize>(k & ~7) << 1; // weight bytes
  let o: usize = 0;
  for (; o < end8; o += 16) {
    const xa = v128.load(x + (o << 1));
    const xb = v128.load(x + (o << 1), 16);
    const h0 = v128.load(w0 + o);
    const h1 = v128.load(w1 + o);
    const h2 = v128.load(w2 + o);
    const h3 = v128.load(w3 + o);
    if (!mayBeInfNan(h0, h1, h2, h3)) {
      a0 = madd(lo(h0), xa, a0);
      a0 = madd(hi(h0), xb, a0);
      a1 = madd(lo(h1), xa, a1);
      a1 = madd(hi(h1), xb, a1);
      a2 = madd(lo(h2), xa, a2);
      a2 = madd(hi(h2), xb, a2);
      a3 = madd(lo(h3), xa, a3);
      a3 = madd(hi(h3), xb, a3);
    } else {
      a0 = madd(f16x8Lo(h0), xa, a0);
      a0 = madd(f16x8Hi(h0), xb, a0);
      a1 = madd(f16x8Lo(h1), xa, a1);
      a1 = madd(f16x8Hi(h1), xb, a1);
      a2 = madd(f16x8Lo(h2), xa, a2);
      a2 = madd(f16x8Hi(h2), xb, a2);
      a3 = madd(f16x8Lo(h3), xa, a3);
      a3 = madd(f16x8Hi(h3), xb, a3);
    }
  }
  let s = hsum4(a0, a1, a2, a3);
  if (k & 7) {
    let t0: f32 = 0, t1: f32 = 0, t2: f32 = 0, t3: f32 = 0;
    const end = <usize>k << 1;
    for (; o < end; o += 2) {
      const xv = load<f32>(x + (o << 1));
      t0 += f16ToF32(load<u16>(w0 + o)) * xv;
      t1 += f16ToF32(load<u16>(w1 + o)) * xv;
      t2 += f16ToF32(load<u16>(w2 + o)) * xv;
      t3 += f16ToF32(load<u16>(w3 + o)) * xv;
    }
    s = f32x4.add(s, f32x4.replace_lane(f32x4.replace_lane(f32x4.replace_lane(f32x4.splat(t0), 1, t1), 2, t2), 3, t3));
  }
  storeLanes(yp, s, nr);
}

function f16Tile4x2(
  w0: usize, w1: usize, w2: usize, w3: usize, x: usize, z: usize, k: i32, yx: usize, yz: usize, nr: i32,
): void {
  let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
  let c0 = f32x4.splat(0), c1 = f32x4.splat(0), c2 = f32x4.splat(0), c3 = f32x4.splat(0);
  const end8 = <usize>(k & ~7) << 1;
  let o: usize = 0;
  for (; o < end8; o += 16) {
    const xo = o << 1;
    const h0 = v128.load(w0 + o);
    const h1 = v128.load(w1 + o);
    const h2 = v128.load(w2 + o);
    const h3 = v128.load(w3 + o);
    let l0: v128, l1: v128, l2: v128, l3: v128, g0: v128, g1: v128, g2: v128, g3: v128;
    if (!mayBeInfNan(h0, h1, h2, h3)) {
      l0 = lo(h0); l1 = lo(h1); l2 = lo(h2); l3 = lo(h3);
      g0 = hi(h0); g1 = hi(h1); g2 = hi(h2); g3 = hi(h3);
    } else {
      l0 = f16x8Lo(h0); l1 = f16x8Lo(h1); l2 = f16x8Lo(h2); l3 = f16x8Lo(h3);
      g0 = f16x8Hi(h0); g1 = f16x8Hi(h1); g2 = f16x8Hi(h2); g3 = f16x8Hi(h3);
    }
    const xa = v128.load(x + xo);
    const za = v128.load(z + xo);
    a0 = madd(l0, xa, a0);
    c0 = madd(l0, za, c0);
    a1 = madd(l1, xa, a1);
    c1 = madd(l1, za, c1);
    a2 = madd(l2, xa, a2);
    c2 = madd(l2, za, c2);
    a3 = madd(l3, xa, a3);
    c3 = madd(l3, za, c3);
    const xb = v128.load(x + xo, 16);
    const zb = v128.load(z + xo, 16);
    a0 = madd(g0, xb, a0);
    c0 = madd(g0, zb, c0);
    a1 = madd(g1, xb, a1);
    c1 = madd(g1, zb, c1);
    a2 = madd(g2, xb, a2);
    c2 = madd(g2, zb, c2);
    a3 = madd(g3, xb, a3);
    c3 = madd(g3, zb, c3);
  }
  let s = hsum4(a0, a1, a2, a3);
  let u = hsum4(c0, c1, c2, c3);
  if (k & 7) {
    let t0: f32 = 0, t1: f32 = 0, t2: f32 = 0, t3: f32 = 0;
    let q0: f32 = 0, q1: f32 = 0, q2: f32 = 0, q3: f32 = 0;
    const end = <usize>k << 1;
    for (; o < end; o += 2) {
      const xv = load<f32>(x + (o << 1));
      const zv = load<f32>(z + (o << 1));
      const e0 = f16ToF32(load<u16>(w0 + o)), e1 = f16ToF32(load<u16>(w1 + o));
      const e2 = f16ToF32(load<u16>(w2 + o)), e3 = f16ToF32(load<u16>(w3 + o));
      t0 += e0 * xv; t1 += e1 * xv; t2 += e2 * xv; t3 += e3 * xv;
      q0 += e0 * zv; q1 += e1 * zv; q2 += e2 * zv; q3 += e3 * zv;
    }
    s = f32x4.add(s, f32x4.replace_lane(f32x4.replace_lane(f32x4.replace_lane(f32x4.splat(t0), 1, t1), 2, t2), 3, t3));
    u = f32x4.add(u, f32x4.replace_lane(f32x4.replace_lane(f32x4.replace_lane(f32x4.splat(q0), 1, q1), 2, q2), 3, q3));
  }
  storeLanes(yx, s, nr);
  storeLanes(yz, u, nr);
}

/** F16 weights (2k bytes per row) x f32 activations (f16-rounded, 4k bytes per row). */
export function matmulF16(w: usize, x: usize, y: usize, rows: i32, k: i32, T: i32, ldy: i32): void {
  const rb = <usize>k << 1;
  const xb = <usize>k << 2;
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
        f16Tile4x2(w0, w1, w2, w3, xt, xt + xb, k, yt, yt + yb, nr);
      }
      if (t < t1) f16Tile4x1(w0, w1, w2, w3, x + <usize>t * xb, k, yr + <usize>t * yb, nr);
    }
  }
}
