// Helpers shared by the quantized matmul kernels (matmul-quant.ts, matmul-kquant.ts).

import { f16x8Lo } from "./common";

/** f16 at p0..p3 -> f32x4 [f(p0), f(p1), f(p2), f(p3)]. */
@inline export function f16Gather4(p0: usize, p1: usize, p2: usize, p3: usize): v128 {
  let v = v128.load16_lane(p0, i32x4.splat(0), 0);
  v = v128.load16_lane(p1, v, 1);
  v = v128.load16_lane(p2, v, 2);
  v = v128.load16_lane(p3, v, 3);
  return f16x8Lo(v);
}

/** f16 at p -> f32x4 splat. */
@inline export function f16Splat(p: usize): v128 {
  return f16x8Lo(v128.load16_splat(p));
}

/** [a0+a2, a1+a3, b0+b2, b1+b3]: two i32x4 partial sums packed into one vector. */
@inline export function pack2(a: v128, b: v128): v128 {
  return i32x4.add(v128.shuffle<i32>(a, b, 0, 1, 4, 5), v128.shuffle<i32>(a, b, 2, 3, 6, 7));
}

/** From 4 pack2 results (one per row): per-row totals of the first (lo) or second (hi) operand. */
@inline export function unpackLo(v0: v128, v1: v128, v2: v128, v3: v128): v128 {
  const p = v128.shuffle<i32>(v0, v1, 0, 1, 4, 5);
  const q = v128.shuffle<i32>(v2, v3, 0, 1, 4, 5);
  return i32x4.add(v128.shuffle<i32>(p, q, 0, 2, 4, 6), v128.shuffle<i32>(p, q, 1, 3, 5, 7));
}
@inline export function unpackHi(v0: v128, v1: v128, v2: v128, v3: v128): v128 {
  const p = v128.shuffle<i32>(v0, v1, 2, 3, 6, 7);
  const q = v128.shuffle<i32>(v2, v3, 2, 3, 6, 7);
  return i32x4.add(v128.shuffle<i32>(p, q, 0, 2, 4, 6), v128.shuffle<i32>(p, q, 1, 3, 5, 7));
}

@inline export function rdot16(x: v128, q7: v128): v128 {
  return i16x8.relaxed_dot_i8x16_i7x16_s(x, q7);
}


/** Q8_K (292 B: f32 d @0, i8 qs[256] @4, i16 bsums[16] @260): sums of the 8 sub-blocks of 32 as i16x8 (|sum| <= 4064). */
@inline export function q8kPairSums(xp: usize): v128 {
  return i16x8.narrow_i32x4_s(
    i32x4.extadd_pairwise_i16x8_s(v128.load(xp, 260)),
    i32x4.extadd_pairwise_i16x8_s(v128.load(xp, 276)),
  );
}

/**
 * Of two i16x8 partial-product vectors of tokens A and B, [a0+a4, a1+a5, a2+a6, a3+a7, b0+b4, ...]:
 * dot_i16x8_s of the result with a splat gives [A, A, B, B] partial sums (pack2 layout).
 * NOTE: the sums a[i] + a[i+4] must fit i16 (callers: |.| <= 2 * 2 * 63 * 127 = 32004).
 */
@inline export function mergeAB(a: v128, b: v128): v128 {
  return i16x8.add(v128.shuffle<i32>(a, b, 0, 1, 4, 5), v128.shuffle<i32>(a, b, 2, 3, 6, 7));
}
