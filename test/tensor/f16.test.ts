/**
 * f16/bf16 conversion: exhaustive over all 65536 16-bit patterns, rounding edge cases, and a
 * strided sweep over the f32 bit space checked against ggml's conversion (checksums from the C
 * oracle, see fixture.ts; the full 2^32 sweep was checked once offline: same checksum).
 */

import { test } from "node:test";
import assert from "node:assert/strict";
import {
  bf16ToF32,
  bf16ToF32Row,
  f16BitsToF32Bits,
  f16ToF32,
  f16ToF32Row,
  f32BitsToBf16,
  f32BitsToF16,
  f32ToBf16,
  f32ToBf16Row,
  f32ToF16,
  f32ToF16Row,
} from "../../src/tensor/f16.js";
import { bitsF32, f32Bits, fnv1a, golden } from "./fixture.js";

/** The value of an f16 pattern from the IEEE definition (independent of the table). */
function halfValue(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m === 0 ? s * Infinity : NaN;
  return s * 2 ** (e - 15) * (1 + m / 1024);
}

test("f16 -> f32: all 65536 patterns", () => {
  for (let h = 0; h < 65536; h++) {
    const v = f16ToF32(h);
    const bits = f16BitsToF32Bits(h);
    const want = halfValue(h);
    if (Number.isNaN(want)) {
      assert.ok(Number.isNaN(v), `h=${h.toString(16)}`);
      // payload kept, quiet bit set (as ggml's multiply and F16C do)
      assert.equal(bits, (((h & 0x8000) << 16) | 0x7fc00000 | ((h & 0x3ff) << 13)) >>> 0, `h=${h.toString(16)}`);
    } else {
      assert.ok(Object.is(v, want), `h=${h.toString(16)}: want ${want} got ${v}`);
      assert.equal(bits, f32Bits(want), `h=${h.toString(16)}`);
    }
  }
});

test("f16 -> f32 table matches ggml_compute_fp16_to_fp32 bit for bit (checksum)", () => {
  const all = new Uint32Array(65536);
  for (let h = 0; h < 65536; h++) all[h] = f16BitsToF32Bits(h);
  assert.equal(fnv1a(new Uint8Array(all.buffer)), golden.f16ToF32TableFnv);
});

test("f16 round trip: f32ToF16(f16ToF32(h)) === h for every non-NaN h; NaN -> sign|0x7e00", () => {
  for (let h = 0; h < 65536; h++) {
    const back = f32BitsToF16(f16BitsToF32Bits(h));
    if ((h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0) assert.equal(back, (h & 0x8000) | 0x7e00);
    else assert.equal(back, h, `h=${h.toString(16)}`);
  }
});

test("bf16 <-> f32: all 65536 patterns", () => {
  for (let h = 0; h < 65536; h++) {
    const v = bf16ToF32(h);
    const isNaN = (h & 0x7f80) === 0x7f80 && (h & 0x7f) !== 0;
    if (isNaN) {
      assert.ok(Number.isNaN(v));
      assert.equal(f32BitsToBf16(h << 16), h | 0x40, "NaN forced quiet, payload kept");
    } else {
      assert.equal(f32Bits(v), (h << 16) >>> 0);
      assert.equal(f32ToBf16(v), h, `h=${h.toString(16)}`);
    }
  }
});

test("f32 -> f16 rounding edge cases", () => {
  const cases: [number, number][] = [
    [0, 0x0000],
    [-0, 0x8000],
    [1, 0x3c00],
    [65504, 0x7bff], // largest finite
    [65519.996, 0x7bff], // below the halfway point 65520
    [65520, 0x7c00], // halfway to 65536: ties to even = inf
    [1e6, 0x7c00],
    [-1e6, 0xfc00],
    [Infinity, 0x7c00],
    [-Infinity, 0xfc00],
    [1 + 2 ** -11, 0x3c00], // tie between 1 and 1+2^-10: even (1)
    [1 + 3 * 2 ** -11, 0x3c02], // tie between 0x3c01 and 0x3c02: even (0x3c02)
    [1 + 2 ** -11 + 2 ** -23, 0x3c01], // just above the tie
    [2 ** -14, 0x0400], // smallest normal
    [2 ** -24, 0x0001], // smallest subnormal
    [2 ** -25, 0x0000], // half the smallest subnormal: tie to even (0)
    [2 ** -25 * (1 + 2 ** -23), 0x0001], // just above: rounds up
    [1.5 * 2 ** -24, 0x0002], // tie between 1 and 2 subnormal units: even (2)
    [2.5 * 2 ** -24, 0x0002], // tie between 2 and 3: even (2)
    [1023.5 * 2 ** -24, 0x0400], // tie between the largest subnormal and the smallest normal
    [2 ** -26, 0x0000],
    [-(2 ** -24), 0x8001],
    [NaN, 0x7e00],
  ];
  for (const [x, want] of cases) {
    assert.equal(f32ToF16(x), want, `f32ToF16(${x}) = 0x${f32ToF16(x).toString(16)}, want 0x${want.toString(16)}`);
  }
});

test("f32 -> f16 / bf16 on ggml-oracle edge cases (specials, random, near the f16 range)", () => {
  assert.ok(golden.f32ToF16.length > 400);
  for (const [u, h, b] of golden.f32ToF16) {
    const w = parseInt(u, 16);
    assert.equal(f32BitsToF16(w), parseInt(h, 16), `f16 of 0x${u}`);
    assert.equal(f32BitsToBf16(w), parseInt(b, 16), `bf16 of 0x${u}`);
    if ((w & 0x7fffffff) <= 0x7f800000) {
      // via a JS number too (non-NaN only: NaN payloads do not survive JS numbers)
      assert.equal(f32ToF16(bitsF32(w)), parseInt(h, 16), `f16 of 0x${u} via number`);
      assert.equal(f32ToBf16(bitsF32(w)), parseInt(b, 16), `bf16 of 0x${u} via number`);
    }
  }
});

test("f32 -> f16 / bf16 strided sweep over all f32 bit patterns matches ggml (checksum)", () => {
  const { stride, count, f16, bf16 } = golden.f32ToF16Sweep;
  let h1 = 2166136261;
  let h2 = 2166136261;
  let c = 0;
  for (let u = 0; u < 0x100000000; u += stride) {
    h1 = Math.imul(h1 ^ f32BitsToF16(u), 16777619) >>> 0;
    h2 = Math.imul(h2 ^ f32BitsToBf16(u), 16777619) >>> 0;
    c++;
  }
  assert.equal(c, count);
  assert.equal(h1.toString(16).padStart(8, "0"), f16);
  assert.equal(h2.toString(16).padStart(8, "0"), bf16);
});

test("row conversions on unaligned and SharedArrayBuffer views", () => {
  const n = 1001;
  const src = new Float32Array(n);
  for (let i = 0; i < n; i++) src[i] = Math.fround(Math.sin(i) * 10 ** ((i % 13) - 6));
  for (const shared of [false, true]) {
    for (const off of [0, 1, 3]) {
      const buf = shared ? new SharedArrayBuffer(2 * n + 8) : new ArrayBuffer(2 * n + 8);
      const bytes = new Uint8Array(buf, off, 2 * n);
      const back = new Float32Array(n);
      f32ToF16Row(src, bytes, n);
      f16ToF32Row(bytes, back, n);
      for (let i = 0; i < n; i++) {
        const h = (bytes[2 * i] ?? 0) | ((bytes[2 * i + 1] ?? 0) << 8);
        assert.equal(h, f32ToF16(src[i] ?? 0));
        assert.equal(back[i], f16ToF32(h));
      }
      f32ToBf16Row(src, bytes, n);
      bf16ToF32Row(bytes, back, n);
      for (let i = 0; i < n; i++) {
        const h = (bytes[2 * i] ?? 0) | ((bytes[2 * i + 1] ?? 0) << 8);
        assert.equal(h, f32ToBf16(src[i] ?? 0));
        assert.equal(back[i], bf16ToF32(h));
      }
    }
  }
});
