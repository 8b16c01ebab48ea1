/**
 * Loader for test/fixtures/tensor/golden-blocks.json, generated once (not at test time) by a
 * throwaway C harness linking llama.cpp commit 80fb11a's ggml/src/ggml-quants.c
 * (quantize_row_*_ref, dequantize_row_*), ggml/src/ggml-cpu/quants.c (the *_generic vec_dot
 * functions) and ggml-impl.h (fp16/bf16), built with gcc 12 -O2 -ffp-contract=off on x86-64.
 * Inputs are deterministic synthetic rows of 256 floats (the test-quantize-fns cosine, gaussian
 * noise, per-block edge cases, wide scale ranges, exact rounding ties) plus random block bytes.
 */

import { readFileSync } from "node:fs";

export interface GoldenType {
  blockSize: number;
  typeSize: number;
  /** row name -> base64 quantized bytes */
  quant: Record<string, string>;
  /** row name -> FNV-1a-32 (hex) of the f32 bytes of dequantize(quant[row]) */
  dequant: Record<string, string>;
  /** base64 random (finite-scale) block bytes and their dequantization (base64 f32) */
  randomBytes: string;
  dequantRandom: string;
  /** "<weight row>|<activation>" -> f32 bits (hex) of the vec_dot result */
  dot?: Record<string, string>;
}

export interface Golden {
  n: number;
  inputs: Record<string, string>;
  f16ToF32TableFnv: string;
  /** [f32 bits, f16 bits, bf16 bits] (hex) */
  f32ToF16: [string, string, string][];
  f32ToF16Sweep: { stride: number; count: number; f16: string; bf16: string };
  /** vec_dot type name -> activation name -> base64 bytes */
  activations: Record<string, Record<string, string>>;
  types: Record<string, GoldenType>;
}

export const golden: Golden = JSON.parse(
  readFileSync(new URL("../../../test/fixtures/tensor/golden-blocks.json", import.meta.url), "utf8"),
) as Golden;

export function bytesOf(b64: string): Uint8Array {
  const buf = Buffer.from(b64, "base64");
  // copy into a fresh, aligned ArrayBuffer
  return new Uint8Array(buf);
}

export function floatsOf(b64: string): Float32Array {
  const u = bytesOf(b64);
  return new Float32Array(u.buffer, u.byteOffset, u.length / 4);
}

export function fnv1a(bytes: Uint8Array): string {
  let h = 2166136261;
  for (const b of bytes) h = Math.imul(h ^ b, 16777619) >>> 0;
  return h.toString(16).padStart(8, "0");
}

export function f32Bits(x: number): number {
  return new Uint32Array(new Float32Array([x]).buffer)[0] ?? 0;
}

export function bitsF32(u: number): number {
  return new Float32Array(new Uint32Array([u]).buffer)[0] ?? 0;
}

export function hex(bytes: Uint8Array, from: number, len: number): string {
  return Buffer.from(bytes.subarray(from, from + len)).toString("hex");
}
