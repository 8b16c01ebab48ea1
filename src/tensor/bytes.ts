/**
 * Little-endian field access on byte views with any byteOffset (unaligned, SharedArrayBuffer).
 * GGUF data is little-endian whatever the host; these helpers assemble bytes explicitly, so
 * they neither depend on host endianness nor allocate (module-level scratch for bit casts).
 */

import { f16ToF32, f32BitsToF16 } from "./f16.js";

const castF32 = new Float32Array(1);
const castU32 = new Uint32Array(castF32.buffer);

/** Unsigned 16-bit at `o`. */
export function readU16(b: Uint8Array, o: number): number {
  return b[o] | (b[o + 1] << 8);
}

/** Signed 16-bit at `o`. */
export function readI16(b: Uint8Array, o: number): number {
  return ((b[o] | (b[o + 1] << 8)) << 16) >> 16;
}

/** Unsigned 32-bit at `o`. */
export function readU32(b: Uint8Array, o: number): number {
  return (b[o] | (b[o + 1] << 8) | (b[o + 2] << 16) | (b[o + 3] << 24)) >>> 0;
}

/** f16 at `o`, as an f32 value. */
export function readF16(b: Uint8Array, o: number): number {
  return f16ToF32(b[o] | (b[o + 1] << 8));
}

/** f32 at `o`. */
export function readF32(b: Uint8Array, o: number): number {
  castU32[0] = b[o] | (b[o + 1] << 8) | (b[o + 2] << 16) | (b[o + 3] << 24);
  return castF32[0];
}

/** 16 bits at `o` (the value's low 16 bits; signed or unsigned alike). */
export function writeU16(b: Uint8Array, o: number, v: number): void {
  b[o] = v & 0xff;
  b[o + 1] = (v >>> 8) & 0xff;
}

/** 32 bits at `o`. */
export function writeU32(b: Uint8Array, o: number, v: number): void {
  b[o] = v & 0xff;
  b[o + 1] = (v >>> 8) & 0xff;
  b[o + 2] = (v >>> 16) & 0xff;
  b[o + 3] = (v >>> 24) & 0xff;
}

/** `x` rounded to f16 (ggml_compute_fp32_to_fp16) at `o`. */
export function writeF16(b: Uint8Array, o: number, x: number): void {
  castF32[0] = x;
  const h = f32BitsToF16(castU32[0]);
  b[o] = h & 0xff;
  b[o + 1] = h >>> 8;
}

/** `x` rounded to f32 at `o`. */
export function writeF32(b: Uint8Array, o: number, x: number): void {
  castF32[0] = x;
  const w = castU32[0];
  b[o] = w & 0xff;
  b[o + 1] = (w >>> 8) & 0xff;
  b[o + 2] = (w >>> 16) & 0xff;
  b[o + 3] = w >>> 24;
}
