/**
 * IEEE binary16 (f16) and bfloat16 (bf16) <-> binary32 (f32) conversion, bit-exact with ggml
 * (llama.cpp ggml/src/ggml-impl.h):
 *
 * - f16 -> f32: exact (every f16 is an f32). NaNs keep their payload and are quieted (bit 22
 *   set), which is what both `ggml_compute_fp16_to_fp32` (its float multiply quiets sNaN) and
 *   F16C `_cvtsh_ss` produce. Done with a 65536-entry table built at module load (256 KiB).
 * - f32 -> f16: round to nearest, ties to even; overflow (|x| >= 65520) to ±inf; results below
 *   2^-14 become f16 subnormals (no flush to zero); NaN -> sign | 0x7E00, exactly as
 *   `ggml_compute_fp32_to_fp16`. NOTE: F16C `_cvtss_sh(x, 0)` agrees on every non-NaN input but
 *   keeps the top 10 payload bits of a NaN; ggml-quants.c (block scales) uses the ggml form.
 * - bf16 -> f32: the bf16 bits are the high half of the f32 bits.
 * - f32 -> bf16: `ggml_compute_fp32_to_bf16`: round to nearest even on the bits (so overflow
 *   rounds to ±inf and subnormals are kept), NaN -> (bits >> 16) | 0x40 (forced quiet).
 *
 * Scalar functions take and return JS numbers (an f32 value in, the 16-bit pattern out, or the
 * reverse). A JS number argument to an f32 -> x conversion is first rounded to f32. NOTE: NaN
 * payloads do not survive a trip through a JS number (engines may canonicalize them); use the
 * `*Bits` variants when the exact NaN bits matter.
 */

// Module-level scratch for bit casts (no allocation per call).
const castF32 = new Float32Array(1);
const castU32 = new Uint32Array(castF32.buffer);

/** f32 bit patterns of every f16, indexed by the f16 bits. */
const F16_F32_BITS = new Uint32Array(65536);
/** The same table seen as floats. */
const F16_F32 = new Float32Array(F16_F32_BITS.buffer);

for (let h = 0; h < 65536; h++) {
  const sign = (h & 0x8000) << 16;
  const exp = (h >>> 10) & 0x1f;
  let man = h & 0x3ff;
  let bits: number;
  if (exp === 0) {
    if (man === 0) {
      bits = sign;
    } else {
      // Subnormal: man * 2^-24. Normalize so the leading one lands on bit 10.
      let e = 113; // f32 exponent field of 2^-14
      while ((man & 0x400) === 0) {
        man <<= 1;
        e--;
      }
      bits = sign | (e << 23) | ((man & 0x3ff) << 13);
    }
  } else if (exp === 31) {
    bits = sign | 0x7f800000 | (man << 13) | (man !== 0 ? 0x400000 : 0);
  } else {
    bits = sign | ((exp + 112) << 23) | (man << 13);
  }
  F16_F32_BITS[h] = bits >>> 0;
}

/** f16 bits (0..65535) -> the f32 value. */
export function f16ToF32(h: number): number {
  return F16_F32[h & 0xffff];
}

/** f16 bits -> f32 bits (unsigned), exact including NaN payloads. */
export function f16BitsToF32Bits(h: number): number {
  return F16_F32_BITS[h & 0xffff];
}

/** f32 bits (as an unsigned or signed 32-bit integer) -> f16 bits, as ggml_compute_fp32_to_fp16. */
export function f32BitsToF16(w: number): number {
  const sign = (w >>> 16) & 0x8000;
  const a = w & 0x7fffffff;
  if (a > 0x7f800000) return sign | 0x7e00; // NaN
  if (a >= 0x477ff000) return sign | 0x7c00; // >= 65520 (halfway 65504..65536, ties to even = inf), inf
  if (a >= 0x38800000) {
    // Normal f16: rebias the exponent (127 -> 15) and round the 13 dropped mantissa bits to
    // nearest even; a carry out of the mantissa correctly bumps the exponent.
    return sign | ((a + 0xfff + ((a >>> 13) & 1) - 0x38000000) >>> 13);
  }
  const e = a >>> 23;
  if (e < 102) return sign; // < 2^-25 (exactly 2^-25 ties to even = 0 too, handled below)
  // f16 subnormal: value / 2^-24 = m * 2^(e - 126) with m the 24-bit significand.
  const m = (a & 0x7fffff) | 0x800000;
  const shift = 126 - e; // 14..24
  let h = m >>> shift;
  const rem = m & ((1 << shift) - 1);
  const half = 1 << (shift - 1);
  if (rem > half || (rem === half && (h & 1) !== 0)) h++;
  return sign | h; // h may reach 0x400, the smallest normal: the encoding is still right
}

/** f32 value -> f16 bits (round to nearest even, ggml_compute_fp32_to_fp16). */
export function f32ToF16(x: number): number {
  castF32[0] = x;
  return f32BitsToF16(castU32[0]);
}

/** bf16 bits -> f32 value. */
export function bf16ToF32(h: number): number {
  castU32[0] = (h & 0xffff) << 16;
  return castF32[0];
}

/** f32 bits -> bf16 bits, as ggml_compute_fp32_to_bf16. */
export function f32BitsToBf16(w: number): number {
  const u = w >>> 0;
  if ((u & 0x7fffffff) > 0x7f800000) return ((u >>> 16) | 64) & 0xffff; // NaN: force quiet
  // NOTE: u + 0x8000 stays below 2^32 for every non-NaN u (max 0xff800000), so no wrap.
  return ((u + 0x7fff + ((u >>> 16) & 1)) >>> 16) & 0xffff;
}

/** f32 value -> bf16 bits (round to nearest even, ggml_compute_fp32_to_bf16). */
export function f32ToBf16(x: number): number {
  castF32[0] = x;
  return f32BitsToBf16(castU32[0]);
}

/** Reads `n` little-endian f16 values from `src` (any byteOffset) into `dst[0..n)`. */
export function f16ToF32Row(src: Uint8Array, dst: Float32Array, n: number): void {
  for (let i = 0, o = 0; i < n; i++, o += 2) {
    dst[i] = F16_F32[src[o] | (src[o + 1] << 8)];
  }
}

/** Writes `n` values of `src` as little-endian f16 into `dst` (2n bytes, any byteOffset). */
export function f32ToF16Row(src: Float32Array, dst: Uint8Array, n: number): void {
  for (let i = 0, o = 0; i < n; i++, o += 2) {
    castF32[0] = src[i];
    const h = f32BitsToF16(castU32[0]);
    dst[o] = h & 0xff;
    dst[o + 1] = h >>> 8;
  }
}

/** Reads `n` little-endian bf16 values from `src` (any byteOffset) into `dst[0..n)`. */
export function bf16ToF32Row(src: Uint8Array, dst: Float32Array, n: number): void {
  for (let i = 0, o = 0; i < n; i++, o += 2) {
    castU32[0] = (src[o] << 16) | (src[o + 1] << 24);
    dst[i] = castF32[0];
  }
}

/** Writes `n` values of `src` as little-endian bf16 into `dst` (2n bytes, any byteOffset). */
export function f32ToBf16Row(src: Float32Array, dst: Uint8Array, n: number): void {
  for (let i = 0, o = 0; i < n; i++, o += 2) {
    castF32[0] = src[i];
    const h = f32BitsToBf16(castU32[0]);
    dst[o] = h & 0xff;
    dst[o + 1] = h >>> 8;
  }
}
