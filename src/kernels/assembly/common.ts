// Helpers shared by the kernels. Every pointer is a byte offset (usize) into the imported
// memory; nothing here touches memory it is not given.
//
// One source serves two builds: ASC_FEATURE_RELAXED_SIMD is a compile-time constant, so the
// untaken branch of `if (ASC_FEATURE_RELAXED_SIMD)` is never compiled.

/** 2^112: scales an f16 exponent/mantissa placed at f32 bit 13 to its f32 value. */
export const F16_MAGIC: f32 = reinterpret<f32>(0x77800000);

// Vector constants used in hot loops live in the module's static data (the only data it has,
// in the low reserved region; written by every instantiation, always with the same bytes).
// NOTE: V8 11.3 rematerializes a v128.const inside a loop at every use (3 instructions: movq,
// movq, punpcklqdq); a load from a constant address is one (often folded) load instead.
const KONST = memory.data<i32>([
  0x0f0f0f0f, 0x0f0f0f0f, 0x0f0f0f0f, 0x0f0f0f0f, // 0: i8x16 15
  0x08080808, 0x08080808, 0x08080808, 0x08080808, // 1: i8x16 8
  0x000f000f, 0x000f000f, 0x000f000f, 0x000f000f, // 2: i16x8 15
  0x00080008, 0x00080008, 0x00080008, 0x00080008, // 3: i16x8 8
  0x30303030, 0x30303030, 0x30303030, 0x30303030, // 4: i8x16 0x30
  0x8fffe000, 0x8fffe000, 0x8fffe000, 0x8fffe000, // 5: f16 -> f32 field mask
  0x77800000, 0x77800000, 0x77800000, 0x77800000, // 6: f32x4 2^112
  0x7fff7fff, 0x7fff7fff, 0x7fff7fff, 0x7fff7fff, // 7: i16x8 0x7fff
  0x7bff7bff, 0x7bff7bff, 0x7bff7bff, 0x7bff7bff, // 8: i16x8 0x7bff
  0x7f800000, 0x7f800000, 0x7f800000, 0x7f800000, // 9: f32 exponent field
  0x7c007c00, 0x7c007c00, 0x7c007c00, 0x7c007c00, // 10: i16x8 f16 exponent field
  0x8fff8fff, 0x8fff8fff, 0x8fff8fff, 0x8fff8fff, // 11: i16x8 0x8fff (sign and 12 low bits)
  0x00007fff, 0x00007fff, 0x00007fff, 0x00007fff, // 12: i32 0x7fff (f16 exponent and mantissa)
  0x38000000, 0x38000000, 0x38000000, 0x38000000, // 13: i32 (127 - 15) << 23 (f16 -> f32 exponent bias)
  0x33800000, 0x33800000, 0x33800000, 0x33800000, // 14: f32x4 2^-24 (f16 subnormal unit)
  0x00000400, 0x00000400, 0x00000400, 0x00000400, // 15: i32 0x400 (smallest f16 normal, as bits)
  0x80000000, 0x80000000, 0x80000000, 0x80000000, // 16: i32 sign bit
  0x04000400, 0x04000400, 0x04000400, 0x04000400, // 17: i16x8 0x400
  0x78007800, 0x78007800, 0x78007800, 0x78007800, // 18: i16x8 0x7800
], 16);
export const K_I8_15: i32 = 0;
export const K_I8_8: i32 = 1;
export const K_I16_15: i32 = 2;
export const K_I16_8: i32 = 3;
export const K_I8_0X30: i32 = 4;
export const K_F16_FIELDS: i32 = 5;
export const K_F16_MAGIC: i32 = 6;
export const K_I16_7FFF: i32 = 7;
export const K_I16_7BFF: i32 = 8;
export const K_F32_EXP: i32 = 9;
export const K_F16_EXP: i32 = 10;
export const K_I16_8FFF: i32 = 11;
export const K_I32_7FFF: i32 = 12;
export const K_F16_BIAS: i32 = 13;
export const K_F16_SUB_UNIT: i32 = 14;
export const K_I32_400: i32 = 15;
export const K_I32_SIGN: i32 = 16;
export const K_I16_400: i32 = 17;
export const K_I16_7800: i32 = 18;

/** Constant vector `i` of the table above (i must be a compile-time constant). */
@inline export function kv(i: i32): v128 {
  return v128.load(KONST + (<usize>i << 4));
}

/** a * b + c on f32x4 (relaxed build: relaxed_madd, fused or not at the engine's choice). */
@inline export function madd(a: v128, b: v128, c: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) {
    return f32x4.relaxed_madd(a, b, c);
  } else {
    return f32x4.add(f32x4.mul(a, b), c);
  }
}

/** Sum of the 4 lanes of an f32x4, as (a0 + a2) + (a1 + a3). */
@inline export function hsum(a: v128): f32 {
  const s = f32x4.add(a, v128.shuffle<f32>(a, a, 2, 3, 0, 1));
  return f32x4.extract_lane(s, 0) + f32x4.extract_lane(s, 1);
}

/** [hsum(a), hsum(b), hsum(c), hsum(d)] for f32x4 vectors. */
@inline export function hsum4(a: v128, b: v128, c: v128, d: v128): v128 {
  const ab = f32x4.add(v128.shuffle<f32>(a, b, 0, 4, 1, 5), v128.shuffle<f32>(a, b, 2, 6, 3, 7));
  const cd = f32x4.add(v128.shuffle<f32>(c, d, 0, 4, 1, 5), v128.shuffle<f32>(c, d, 2, 6, 3, 7));
  return f32x4.add(v128.shuffle<f32>(ab, cd, 0, 1, 4, 5), v128.shuffle<f32>(ab, cd, 2, 3, 6, 7));
}

/**
 * f16 bit patterns sign-extended to i32 lanes -> f32x4, exact for every finite value (normals
 * and subnormals: (e,m) placed at bit 13, times 2^112). Inf/NaN are NOT handled: see f16Fix.
 * NOTE: an f16 subnormal becomes an f32 subnormal operand of the multiply: a microcode assist on
 * x64 (about 30% slower on a matrix whose scales are all subnormal). Hot paths use this only
 * after checking their scales (scalesSpecial in matmul-quant.ts); f16x8Lo/Hi use the
 * subnormal-safe f16ExtToF32Exact.
 */
@inline export function f16ExtToF32(s: v128): v128 {
  // s = sign-extended f16: bits 31..15 all equal the sign. After << 13 bits 31..28 are the sign
  // and 27..13 are exponent and mantissa; clearing 30..28 leaves a signed f32 2^-112 too small.
  const b = v128.and(i32x4.shl(s, 13), kv(K_F16_FIELDS));
  return f32x4.mul(b, kv(K_F16_MAGIC));
}

/**
 * f16ExtToF32 with no subnormal float operand anywhere: normals by integer rebias ((e,m) << 13
 * plus 112 << 23), subnormals as f32(m) * 2^-24, then the sign. Exact for every finite value.
 */
@inline export function f16ExtToF32Exact(s: v128): v128 {
  const em = v128.and(s, kv(K_I32_7FFF));
  const normal = i32x4.add(i32x4.shl(em, 13), kv(K_F16_BIAS));
  const sub = f32x4.mul(f32x4.convert_i32x4_s(em), kv(K_F16_SUB_UNIT));
  const mag = v128.bitselect(sub, normal, i32x4.lt_s(em, kv(K_I32_400)));
  return v128.or(mag, v128.and(s, kv(K_I32_SIGN)));
}

/**
 * Scale screening for the fast conversion: per f16 lane, (|h| - 0x400) as u16, which is >= 0x7800
 * exactly when h is inf/NaN, zero or subnormal. Fold with i16x8.max_u; `scalesNeedExact` tests the
 * result. (Zero scales take the exact path too: correct, merely slower, and rare.)
 */
@inline export function scaleKey(h: v128): v128 {
  return i16x8.sub(v128.and(h, kv(K_I16_7FFF)), kv(K_I16_400));
}
@inline export function scalesNeedExact(maxKey: v128): bool {
  return v128.any_true(i16x8.ge_u(maxKey, kv(K_I16_7800)));
}

/** Inf/NaN lanes of f16ExtToF32: `m` = all-ones i32 lanes where |h| >= 0x7c00. */
@inline export function f16Fix(f: v128, m: v128): v128 {
  // The scaled value has the right mantissa bits under a too-small exponent; forcing the
  // exponent to all ones gives +-inf (mantissa 0) or a NaN with the f16 payload.
  return v128.or(f, v128.and(m, kv(K_F32_EXP)));
}

/** Lanes 0..3 of 8 f16 values (i16x8) -> f32x4, inf/NaN included (no NaN quieting). */
@inline export function f16x8Lo(h: v128): v128 {
  const m = i16x8.gt_s(v128.and(h, kv(K_I16_7FFF)), kv(K_I16_7BFF));
  return f16Fix(f16ExtToF32Exact(i32x4.extend_low_i16x8_s(h)), i32x4.extend_low_i16x8_s(m));
}

/** Lanes 4..7 of 8 f16 values (i16x8) -> f32x4, inf/NaN included. */
@inline export function f16x8Hi(h: v128): v128 {
  const m = i16x8.gt_s(v128.and(h, kv(K_I16_7FFF)), kv(K_I16_7BFF));
  return f16Fix(f16ExtToF32Exact(i32x4.extend_high_i16x8_s(h)), i32x4.extend_high_i16x8_s(m));
}

/** One f16 (bits) -> f32, exact; NaN payloads kept and quieted like src/tensor/f16.ts. */
@inline export function f16ToF32(h: u32): f32 {
  const em = h & 0x7fff;
  let bits: u32;
  if (em >= 0x7c00) {
    bits = 0x7f800000 | ((em & 0x3ff) << 13) | (em > 0x7c00 ? 0x400000 : 0);
  } else {
    // NOTE: no subnormal float operand (see f16ExtToF32)
    bits = em < 0x400 ? reinterpret<u32>(<f32>em * reinterpret<f32>(0x33800000)) : (em << 13) + 0x38000000;
  }
  return reinterpret<f32>(bits | ((h & 0x8000) << 16));
}

/** f32 -> f16 bits, round to nearest even, as ggml_compute_fp32_to_fp16 / src/tensor/f16.ts. */
export function f32ToF16Bits(x: f32): u32 {
  const w = reinterpret<u32>(x);
  const sign = (w >> 16) & 0x8000;
  const a = w & 0x7fffffff;
  if (a > 0x7f800000) return sign | 0x7e00;
  if (a >= 0x477ff000) return sign | 0x7c00;
  if (a >= 0x38800000) return sign | ((a + 0xfff + ((a >> 13) & 1) - 0x38000000) >> 13);
  // Subnormal f16 (or zero): |x| + 0.5 rounds |x| to a multiple of 2^-24 (ties to even); the
  // low mantissa bits of the sum are then the f16 mantissa.
  const s = reinterpret<f32>(a) + <f32>0.5;
  return sign | (reinterpret<u32>(s) - 0x3f000000);
}

/**
 * f32x4 rounded to f16 precision and back (round to nearest even; overflow to inf, f16
 * subnormals kept; NaN -> sign | 0x7fc00000), bit-identical to f16ToF32(f32ToF16Bits(x)).
 */
@inline export function roundToF16(v: v128): v128 {
  const signMask = i32x4.splat(0x80000000);
  const sign = v128.and(v, signMask);
  const a = v128.andnot(v, signMask);
  // Normal f16 range: round the 13 dropped mantissa bits to nearest even; a carry bumps the exponent.
  const lsb = v128.and(i32x4.shr_u(a, 13), i32x4.splat(1));
  let r = v128.and(i32x4.add(i32x4.add(a, i32x4.splat(0xfff)), lsb), i32x4.splat(0xffffe000));
  // f16 subnormals: multiples of 2^-24.
  const half = f32x4.splat(0.5);
  const s = f32x4.sub(f32x4.add(a, half), half);
  r = v128.bitselect(s, r, i32x4.lt_s(a, i32x4.splat(0x38800000)));
  r = v128.bitselect(i32x4.splat(0x7f800000), r, i32x4.ge_s(a, i32x4.splat(0x477ff000)));
  r = v128.bitselect(i32x4.splat(0x7fc00000), r, i32x4.gt_s(a, i32x4.splat(0x7f800000)));
  return v128.or(r, sign);
}

// Kernel scratch: [SCRATCH, SCRATCH_END) of every lane memory (inside KERNEL_RESERVED_BYTES,
// src/kernels/wasm-kernels.ts), above the static data. A matmul uses it for its converted
// activations and weight panels; nothing survives a call. NOTE: one memory, one thread: the
// kernels of a lane never run concurrently, so one scratch area per memory suffices.
export const SCRATCH: usize = 65536;
export const SCRATCH_END: usize = 4 << 20;
/** 256 bytes of small temporaries (vectors spilled on purpose) below the scratch. */
export const TMP: usize = SCRATCH - 256;

/** Round up to a multiple of 64 bytes (a cache line). */
@inline export function align64(n: usize): usize {
  return (n + 63) & ~<usize>63;
}

/**
 * Transpose a 4x4 block of 32-bit lanes: rows a, b, c, d -> stores column i (a[i], b[i],
 * c[i], d[i]) at p + 16 i.
 */
@inline export function transpose4Store(p: usize, a: v128, b: v128, c: v128, d: v128): void {
  const ab0 = v128.shuffle<i32>(a, b, 0, 4, 1, 5);
  const ab1 = v128.shuffle<i32>(a, b, 2, 6, 3, 7);
  const cd0 = v128.shuffle<i32>(c, d, 0, 4, 1, 5);
  const cd1 = v128.shuffle<i32>(c, d, 2, 6, 3, 7);
  v128.store(p, v128.shuffle<i64>(ab0, cd0, 0, 2));
  v128.store(p, v128.shuffle<i64>(ab0, cd0, 1, 3), 16);
  v128.store(p, v128.shuffle<i64>(ab1, cd1, 0, 2), 32);
  v128.store(p, v128.shuffle<i64>(ab1, cd1, 1, 3), 48);
}

/** Stores lanes 0..n-1 (n in 1..4) of an f32x4 at p. */
@inline export function storeLanes(p: usize, v: v128, n: i32): void {
  if (n >= 4) {
    v128.store(p, v);
  } else {
    store<f32>(p, f32x4.extract_lane(v, 0));
    if (n > 1) store<f32>(p, f32x4.extract_lane(v, 1), 4);
    if (n > 2) store<f32>(p, f32x4.extract_lane(v, 2), 8);
  }
}

/**
 * exp(x) for x <= 0 (f32x4), max error about 1 ulp (Cephes expf polynomial on
 * [-ln2/2, ln2/2], Cody-Waite range reduction; the relaxed build may fuse the multiply-adds).
 * x < -87.33 (result below the smallest normal f32) gives 0; NaN gives NaN.
 */
@inline export function expNeg(x: v128): v128 {
  const lo = f32x4.splat(-87.33654);
  const xc = f32x4.max(x, lo);
  // n = round(x / ln2)
  const n = f32x4.nearest(f32x4.mul(xc, f32x4.splat(1.44269504088896341)));
  // r = x - n ln2 in two steps (C1 has 9 significant bits: n * C1 is exact)
  let r = f32x4.sub(xc, f32x4.mul(n, f32x4.splat(0.693359375)));
  r = f32x4.sub(r, f32x4.mul(n, f32x4.splat(-2.12194440e-4)));
  const z = f32x4.mul(r, r);
  let p = madd(f32x4.splat(1.9875691500e-4), r, f32x4.splat(1.3981999507e-3));
  p = madd(p, r, f32x4.splat(8.3334519073e-3));
  p = madd(p, r, f32x4.splat(4.1665795894e-2));
  p = madd(p, r, f32x4.splat(1.6666665459e-1));
  p = madd(p, r, f32x4.splat(5.0000001201e-1));
  p = f32x4.add(madd(p, z, r), f32x4.splat(1.0));
  // 2^n for n in [-126, 0]: exponent field n + 127
  const pow2n = i32x4.shl(i32x4.add(i32x4.trunc_sat_f32x4_s(n), i32x4.splat(127)), 23);
  const e = f32x4.mul(p, pow2n);
  // below the clamp: 0 (NaN fails the comparison and stays NaN)
  return v128.andnot(e, f32x4.lt(x, lo));
}
