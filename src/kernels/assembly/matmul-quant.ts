// matmul for Q8_0 and Q4_0 weights (packed, src/kernels/packing.ts) against Q8_0 activations.
// y[t*ldy + r] = dot(W[r, :], Xq[t, :]). K-quants: matmul-kquant.ts; T >= 4: gemm-int.ts
// (relaxed Q4_0: gemm-rq.ts).
//
// Integer parts are exact (the same integer sums as ggml's vec_dot); only the f32 scaling and
// the order of the f32 accumulation differ from the src/tensor references:
//   per block: acc[r] += f32(isum[r]) * (dw[r] * dx)
// with the 4 rows of a packed group in the 4 lanes (no horizontal sums).
//
// GEMV (T < 4), per call the activations of each token are first converted into the scratch
// (SCRATCH): dx f32 per block, and
// - Q8_0: x widened to i16. Packed quants are interleaved by 2 bytes, so v128.load8x8_s of 8
//   bytes gives the 4 rows' elements (2j, 2j+1) as i16 and one i32x4.dot_i16x8_s against a splat
//   of the token's (x[2j], x[2j+1]) gives the 4 rows' partial sums. Same code in both builds
//   (faster here than relaxed SIMD's i8 dot, which needs the sign of x moved onto the weights).
// - Q4_0 relaxed: quants interleaved by 4 bytes; the low (high) nibbles of 16 bytes are the 4 rows'
//   elements 4c..4c+3 (16+4c..): i16x8.relaxed_dot_i8x16_i7x16_s(splat(x[4c..4c+3]), nibbles)
//   gives [r0, r0, r1, r1, ...] pair sums (|.| <= 3810, 8 of them summed in i16 per block), the
//   -8 is folded in as -8 * sum(x) (precomputed per block). SIMD128: nibbles widened to i16,
//   i16x8.mul by x widened (products <= 1905, 8 summed per lane), pairs added per block.
//
// NOTE: i32x4.relaxed_dot_i8x16_i7x16_add_s is not used: V8 11.3 (Node 20) miscompiles it on
// x64 (returns 2 * dot and ignores the accumulator; seen with Node 20.20.2).

import { madd, f16x8Lo, f16x8Hi, f16ExtToF32, storeLanes, kv, K_I8_15, scaleKey, scalesNeedExact, SCRATCH } from "./common";
import { rdot16 } from "./qcommon";
import { KIND_Q8_0, KIND_Q4_0, gemmInt, intPassTokens, scaleRegion } from "./gemm-int";
import { gemmRq, rqPassTokens } from "./gemm-rq";

/** [a0+a1, a2+a3, b0+b1, b2+b3] of two pair-form i32x4 (rows 0,1 in a; rows 2,3 in b). */
@inline function combine(a: v128, b: v128): v128 {
  return i32x4.add(v128.shuffle<i32>(a, b, 0, 2, 4, 6), v128.shuffle<i32>(a, b, 1, 3, 5, 7));
}

// ---------------------------------------------------------------------- activation prep (GEMV)

/**
 * Per token t < T of the Q8_0 activations: at SCRATCH + t * tokenBytes: dx f32 [nb], then
 * (wide) x as i16 [32 nb], then (corr) 8 * sum of each block's x as i32 [nb].
 */
@inline function prepTokenBytes(nb: i32): usize {
  return <usize>nb * (4 + 64 + 4);
}

function prepQ8_0(x: usize, nb: i32, T: i32, wide: bool, corr: bool): void {
  const tb = prepTokenBytes(nb);
  for (let t = 0; t < T; t++) {
    const dx = SCRATCH + <usize>t * tb;
    const xw = dx + (<usize>nb << 2);
    const cs = xw + (<usize>nb << 6);
    for (let b = 0; b < nb; b++) {
      const p = x + <usize>b * 34;
      const v0 = v128.load(p, 2);
      const v1 = v128.load(p, 18);
      store<f32>(dx + (<usize>b << 2), f32x4.extract_lane(f16x8Lo(v128.load16_splat(p)), 0));
      if (wide) {
        const o = xw + (<usize>b << 6);
        v128.store(o, i16x8.extend_low_i8x16_s(v0));
        v128.store(o, i16x8.extend_high_i8x16_s(v0), 16);
        v128.store(o, i16x8.extend_low_i8x16_s(v1), 32);
        v128.store(o, i16x8.extend_high_i8x16_s(v1), 48);
      }
      if (corr) {
        const s = i32x4.extadd_pairwise_i16x8_s(i16x8.add(i16x8.extadd_pairwise_i8x16_s(v0), i16x8.extadd_pairwise_i8x16_s(v1)));
        const u = i32x4.add(s, v128.shuffle<i32>(s, s, 2, 3, 0, 1));
        store<i32>(cs + (<usize>b << 2), (i32x4.extract_lane(u, 0) + i32x4.extract_lane(u, 1)) << 3);
      }
    }
    x += <usize>nb * 34;
  }
}

// ------------------------------------------------------------------------------------- Q8_0

/** Integer sums of one packed Q8_0 block (128 B at q) with widened x (64 B at xw). */
@inline function q8Block(q: usize, xw: usize): v128 {
  let a = i32x4.dot_i16x8_s(v128.load8x8_s(q), v128.load32_splat(xw));
  let b = i32x4.dot_i16x8_s(v128.load8x8_s(q, 8), v128.load32_splat(xw, 4));
  for (let j: usize = 16; j < 128; j += 16) {
    a = i32x4.add(a, i32x4.dot_i16x8_s(v128.load8x8_s(q + j), v128.load32_splat(xw + (j >> 1))));
    b = i32x4.add(b, i32x4.dot_i16x8_s(v128.load8x8_s(q + j, 8), v128.load32_splat(xw + (j >> 1), 4)));
  }
  return i32x4.add(a, b);
}

/**
 * May a scale in the group's scale region (nb blocks x 4 f16 at g) be inf/NaN or subnormal (or
 * zero)? Then the GEMV uses the exact f16 conversion (f16x8Lo/Hi: inf/NaN, and no subnormal
 * multiply operand, which costs a microcode assist per multiply on x64); otherwise the fast one
 * (4 ops per 4 scales).
 */
@inline function scalesSpecial(g: usize, nb: i32): bool {
  let mx = i16x8.splat(0);
  const end = g + (<usize>nb << 3);
  let p = g;
  for (; p + 16 <= end; p += 16) mx = i16x8.max_u(mx, scaleKey(v128.load(p)));
  if (p < end) mx = i16x8.max_u(mx, scaleKey(v128.load64_zero(p)));
  return scalesNeedExact(mx);
}

/** Lanes 0..3 / 4..7 of 8 f16 -> f32x4, exact when `exact` (inf/NaN too), else finite only. */
@inline function h2fLo(h: v128, exact: bool): v128 {
  return exact ? f16x8Lo(h) : f16ExtToF32(i32x4.extend_low_i16x8_s(h));
}
@inline function h2fHi(h: v128, exact: bool): v128 {
  return exact ? f16x8Hi(h) : f16ExtToF32(i32x4.extend_high_i16x8_s(h));
}

/** One packed Q8_0 group (g) . one token's prepared activations (dx, xw) -> 4 rows. */
@inline function q8GemvBody(g: usize, nb: i32, dx: usize, xw: usize, exact: bool): v128 {
  let acc = f32x4.splat(0);
  let q = g + scaleRegion(nb);
  let b = 0;
  // two blocks per step: their 8 scales are one 16-byte load
  for (; b + 2 <= nb; b += 2) {
    const h = v128.load(g + (<usize>b << 3));
    const s0 = q8Block(q, xw);
    const s1 = q8Block(q + 128, xw + 64);
    acc = madd(f32x4.convert_i32x4_s(s0), f32x4.mul(h2fLo(h, exact), v128.load32_splat(dx)), acc);
    acc = madd(f32x4.convert_i32x4_s(s1), f32x4.mul(h2fHi(h, exact), v128.load32_splat(dx, 4)), acc);
    q += 256;
    xw += 128;
    dx += 8;
  }
  if (b < nb) {
    const s0 = q8Block(q, xw);
    acc = madd(f32x4.convert_i32x4_s(s0), f32x4.mul(h2fLo(v128.load64_zero(g + (<usize>b << 3)), exact), v128.load32_splat(dx)), acc);
  }
  return acc;
}

function q8GemvFast(g: usize, nb: i32, dx: usize, xw: usize): v128 {
  return q8GemvBody(g, nb, dx, xw, false);
}
function q8GemvExact(g: usize, nb: i32, dx: usize, xw: usize): v128 {
  return q8GemvBody(g, nb, dx, xw, true);
}

export function matmulQ8_0(w: usize, x: usize, y: usize, rows: i32, k: i32, T: i32, ldy: i32): void {
  const nb = k >> 5;
  if (T >= 4 && intPassTokens(KIND_Q8_0, k, T) > 0) {
    gemmInt(KIND_Q8_0, w, x, y, rows, k, T, ldy);
    return;
  }
  const gb = scaleRegion(nb) + (<usize>nb << 7);
  const yb = <usize>ldy << 2;
  const tb = prepTokenBytes(nb);
  // NOTE: T < 4 here unless the scratch is too small for a GEMM tile (then per token in chunks)
  for (let t0 = 0; t0 < T; t0 += 4) {
    const nt = min(4, T - t0);
    prepQ8_0(x + <usize>t0 * nb * 34, nb, nt, true, false);
    let g = w;
    for (let r = 0; r < rows; r += 4) {
      const nr = min(rows - r, 4);
      const yr = y + (<usize>r << 2) + <usize>t0 * yb;
      const exact = scalesSpecial(g, nb);
      for (let t = 0; t < nt; t++) {
        const dx = SCRATCH + <usize>t * tb;
        const xw = dx + (<usize>nb << 2);
        storeLanes(yr + <usize>t * yb, exact ? q8GemvExact(g, nb, dx, xw) : q8GemvFast(g, nb, dx, xw), nr);
      }
      g += gb;
    }
  }
}

// ------------------------------------------------------------------------------------- Q4_0

/** relaxed: integer sums of one packed Q4_0 block (64 B at q) with the Q8_0 activation block xp. */
@inline function q4BlockR(q: usize, xp: usize): v128 {
  const m = kv(K_I8_15);
  let h = i16x8.splat(0);
  let g = i16x8.splat(0);
  for (let c: usize = 0; c < 16; c += 8) {
    const v0 = v128.load(q + (c << 2));
    const v1 = v128.load(q + (c << 2), 16);
    h = i16x8.add(h, rdot16(v128.load32_splat(xp + c, 2), v128.and(v0, m)));
    g = i16x8.add(g, rdot16(v128.load32_splat(xp + c, 18), v128.and(i16x8.shr_u(v0, 4), m)));
    h = i16x8.add(h, rdot16(v128.load32_splat(xp + c, 6), v128.and(v1, m)));
    g = i16x8.add(g, rdot16(v128.load32_splat(xp + c, 22), v128.and(i16x8.shr_u(v1, 4), m)));
  }
  return i32x4.extadd_pairwise_i16x8_s(i16x8.add(h, g));
}

/** SIMD128: integer sums of one packed Q4_0 block with widened x (64 B at xw), -8 not applied. */
@inline function q4BlockS(q: usize, xw: usize): v128 {
  const m = kv(K_I8_15);
  let a = i16x8.splat(0);
  let b = i16x8.splat(0);
  for (let c: usize = 0; c < 16; c += 4) {
    const v = v128.load(q + (c << 2));
    const lo = v128.and(v, m);
    const hi = v128.and(i16x8.shr_u(v, 4), m);
    const xl = v128.load64_splat(xw + (c << 1));
    const xh = v128.load64_splat(xw + (c << 1), 32);
    a = i16x8.add(a, i16x8.add(i16x8.mul(i16x8.extend_low_i8x16_u(lo), xl), i16x8.mul(i16x8.extend_low_i8x16_u(hi), xh)));
    b = i16x8.add(b, i16x8.add(i16x8.mul(i16x8.extend_high_i8x16_u(lo), xl), i16x8.mul(i16x8.extend_high_i8x16_u(hi), xh)));
  }
  return combine(i32x4.extadd_pairwise_i16x8_s(a), i32x4.extadd_pairwise_i16x8_s(b));
}

@inline function q4Block(q: usize, xp: usize, xw: usize, cs: usize): v128 {
  const s = ASC_FEATURE_RELAXED_SIMD ? q4BlockR(q, xp) : q4BlockS(q, xw);
  return i32x4.sub(s, v128.load32_splat(cs));
}

/** One packed Q4_0 group . one token (xp: its Q8_0 blocks; dx, xw, cs: prepared) -> 4 rows. */
@inline function q4GemvBody(g: usize, nb: i32, xp: usize, dx: usize, xw: usize, cs: usize, exact: bool): v128 {
  let acc = f32x4.splat(0);
  let q = g + scaleRegion(nb);
  let b = 0;
  for (; b + 2 <= nb; b += 2) {
    const h = v128.load(g + (<usize>b << 3));
    const s0 = q4Block(q, xp, xw, cs);
    const s1 = q4Block(q + 64, xp + 34, xw + 64, cs + 4);
    acc = madd(f32x4.convert_i32x4_s(s0), f32x4.mul(h2fLo(h, exact), v128.load32_splat(dx)), acc);
    acc = madd(f32x4.convert_i32x4_s(s1), f32x4.mul(h2fHi(h, exact), v128.load32_splat(dx, 4)), acc);
    q += 128;
    xp += 68;
    xw += 128;
    cs += 8;
    dx += 8;
  }
  if (b < nb) {
    const s0 = q4Block(q, xp, xw, cs);
    acc = madd(f32x4.convert_i32x4_s(s0), f32x4.mul(h2fLo(v128.load64_zero(g + (<usize>b << 3)), exact), v128.load32_splat(dx)), acc);
  }
  return acc;
}

function q4GemvFast(g: usize, nb: i32, xp: usize, dx: usize, xw: usize, cs: usize): v128 {
  return q4GemvBody(g, nb, xp, dx, xw, cs, false);
}
function q4GemvExact(g: usize, nb: i32, xp: usize, dx: usize, xw: usize, cs: usize): v128 {
  return q4GemvBody(g, nb, xp, dx, xw, cs, true);
}

export function matmulQ4_0(w: usize, x: usize, y: usize, rows: i32, k: i32, T: i32, ldy: i32): void {
  const nb = k >> 5;
  if (T >= 4 && ASC_FEATURE_RELAXED_SIMD && rqPassTokens(KIND_Q4_0, k, T) > 0) {
    gemmRq(KIND_Q4_0, w, x, y, rows, k, T, ldy);
    return;
  }
  if (T >= 4 && intPassTokens(KIND_Q4_0, k, T) > 0) {
    gemmInt(KIND_Q4_0, w, x, y, rows, k, T, ldy);
    return;
  }
  const gb = scaleRegion(nb) + (<usize>nb << 6);
  const yb = <usize>ldy << 2;
  const xb = <usize>nb * 34;
  const tb = prepTokenBytes(nb);
  for (let t0 = 0; t0 < T; t0 += 4) {
    const nt = min(4, T - t0);
    const x0 = x + <usize>t0 * xb;
    prepQ8_0(x0, nb, nt, !ASC_FEATURE_RELAXED_SIMD, true);
    let g = w;
    for (let r = 0; r < rows; r += 4) {
      const nr = min(rows - r, 4);
      const yr = y + (<usize>r << 2) + <usize>t0 * yb;
      const exact = scalesSpecial(g, nb);
      for (let t = 0; t < nt; t++) {
        const dx = SCRATCH + <usize>t * tb;
        const xw = dx + (<usize>nb << 2);
        const xt = x0 + <usize>t * xb;
        const cs = xw + (<usize>nb << 6);
        storeLanes(yr + <usize>t * yb, exact ? q4GemvExact(g, nb, xt, dx, xw, cs) : q4GemvFast(g, nb, xt, dx, xw, cs), nr);
      }
      g += gb;
    }
  }
}
