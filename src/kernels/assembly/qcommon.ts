// Helpers shared by the quantized matmul kernels (matmul-quant.ts, matmul-kquant.ts, gemm-*.ts).

/**
 * i16x8.relaxed_dot_i8x16_i7x16_s(x, q7): pair sums of x (i8) times q7, whose lanes must be
 * 0..127 (our quants, or |x|). On x64 V8 this is one pmaddubsw (q7 as the unsigned operand).
 */
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
