/**
 * One conformance suite, run over every KernelSet implementation (ref, wasm-simd, wasm-relaxed
 * when the runtime has relaxed SIMD). Each kernel is checked against an oracle written here from
 * the src/tensor references (and, for the fast sets, against the ref kernels too), on random data
 * with awkward sizes, aliasing and pointers that are not 16-byte aligned where the API allows.
 *
 * Tolerances (stated per kernel below):
 * - quantizeActivations: byte-identical to src/tensor (quantizeRowRef; f32 -> f16 -> f32 for F16).
 * - matmul (weights packed with src/kernels/packing.ts, as the runtime stores them):
 *   |y - oracle| <= 1e-5 * sum_i |w_i x_i| (matmulMagnitude; Q4_K counts |d sc q| and
 *   |dmin m| separately), oracle = dequantize both GGUF rows, dot in f64. This also checks the ref
 *   (the oracle of every other test) against an independent computation. Integer kernels have
 *   exact integer sums, so only the final f32 scaling and accumulation order differ.
 * - readBytes: the XOR of little-endian words, computed here.
 * - rmsnorm: 4e-6 relative to the ref (f64 sum order), 1e-5 relative to an f64 formula.
 * - rope, add, addBias: bit-identical (same f32 operations), untouched elements unchanged.
 * - attention: 1e-5 * sum_j p_j |v_j| against an f64 oracle over a contiguous copy of K/V.
 * - swiglu: 4e-6 relative (+1e-30 absolute) against silu(g)*u in f64.
 */

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { COMPUTED_TYPES, activationRowBytes, matmulMagnitude, packRows, packedBytes } from "../../src/kernels/index.js";
import { KV_TYPES, type KvType, attentionScratchBytes, kvRowBytes, kvTypeFits } from "../../src/kernels/kernel-set.js";
import { GgmlType, ggmlTypeName } from "../../src/tensor/ggml-type.js";
import { getFormat } from "../../src/tensor/registry.js";
import { rowBytes } from "../../src/tensor/format.js";
import { f16ToF32Row, f32ToF16, f32ToF16Row } from "../../src/tensor/f16.js";
import { Arena, allImpls, at, gaussian, laneMemory, rng, type Impl } from "./helpers.js";

const memory = laneMemory();
const arena = new Arena(memory);
const impls = await allImpls(memory);
const ref: Impl = impls[0] ?? assert.fail("no ref kernels");

const fr = Math.fround;

// ------------------------------------------------------------------------------ data builders

/** Weight rows of `type`: quantized from gaussian floats, or random bytes with sane f16 scales. */
function makeWeights(type: GgmlType, rows: number, k: number, seed: number, mode: "quantized" | "random"): Uint8Array {
  const f = getFormat(type);
  const rb = rowBytes(f, k);
  const out = new Uint8Array(rows * rb);
  const r = rng(seed);
  if (mode === "quantized" || type === GgmlType.F32 || type === GgmlType.F16) {
    const q = f.quantizeRowRef;
    assert.ok(q !== undefined);
    for (let i = 0; i < rows; i++) q(gaussian(r, k, 0.5), out.subarray(i * rb, (i + 1) * rb), k);
    return out;
  }
  for (let i = 0; i < out.length; i++) out[i] = Math.floor(r() * 256);
  const putF16 = (o: number, v: number): void => {
    const h = f32ToF16(v);
    out[o] = h & 0xff;
    out[o + 1] = h >> 8;
  };
  const scale = (): number => (r() < 0.1 ? -1 : 1) * (0.001 + 0.05 * r());
  const nb = (rows * k) / f.blockSize;
  for (let b = 0; b < nb; b++) {
    const o = b * f.typeSize;
    switch (type) {
      case GgmlType.Q8_0:
        putF16(o, scale());
        // NOTE: -128 never comes out of ggml's Q8_0 quantizers (see matmul-quant.ts)
        for (let j = 2; j < 34; j++) if (out[o + j] === 0x80) out[o + j] = 0x81;
        break;
      case GgmlType.Q4_0:
        putF16(o, scale());
        break;
      case GgmlType.Q4_K:
        putF16(o, scale() / 8);
        putF16(o + 2, scale() / 8);
        break;
      case GgmlType.Q6_K:
        putF16(o + 208, scale() / 8);
        break;
      default:
        assert.fail(`no random mode for ${f.name}`);
    }
  }
  return out;
}

/** The f32 values the vecDot of `type` sees for activation rows at xq (dequantized). */
function dequantActivations(type: GgmlType, xq: number, k: number, T: number): Float32Array[] {
  const xb = activationRowBytes(type, k);
  const rows: Float32Array[] = [];
  for (let t = 0; t < T; t++) {
    if (type === GgmlType.F32 || type === GgmlType.F16) {
      rows.push(arena.readF32(xq + t * xb, k));
    } else {
      const act = getFormat(type === GgmlType.Q8_0 || type === GgmlType.Q4_0 ? GgmlType.Q8_0 : GgmlType.Q8_K);
      const d = new Float32Array(k);
      act.dequantizeRow(arena.readBytes(xq + t * xb, xb), d, k);
      rows.push(d);
    }
  }
  return rows;
}

function kValues(type: GgmlType): number[] {
  const bs = getFormat(type).blockSize;
  if (bs === 256) return [256, 512, 768];
  if (bs === 32) return [32, 64, 256, 512, 768];
  return [0, 1, 7, 13, 32, 64, 100, 256, 512, 768];
}

// rows x tokens: decode (T < 4, GEMV paths) and prefill (T >= 4, GEMM paths) with partial
// groups of 4 rows, partial token tiles, and the GEMM's 8-row tiles with a 4-row tail (12) or a
// partial second group (5, 7, 255)
const SHAPES: readonly [rows: number, T: number][] = [
  [1, 1],
  [3, 2],
  [5, 3],
  [17, 5],
  [33, 16],
  [255, 1],
  [255, 37],
  [4, 3],
  [5, 100],
  [17, 37],
  [12, 9],
  [7, 4],
];

/** GGUF rows packed into the arena (misaligned by `misalign`): returns the pointer. */
function putPacked(type: GgmlType, wBytes: Uint8Array, rows: number, k: number, misalign: number): number {
  const packed = new Uint8Array(packedBytes(type, rows, k));
  packRows(type, wBytes, rows, k, packed);
  const w = arena.alloc(packed.length, misalign);
  arena.writeBytes(w, packed);
  return w;
}

// ------------------------------------------------------------------------------------- suites

for (const impl of impls) {
  describe(`kernels conformance: ${impl.name}`, () => {
    it("quantizeActivations is byte-identical to src/tensor (F32, F16, Q8_0, Q8_K), incl. in place", () => {
      quantizeCases(impl);
    });

    for (const type of COMPUTED_TYPES) {
      it(`matmul ${ggmlTypeName(type)} matches dequantize-then-f64-dot within 1e-5 of sum|w x|`, () => {
        matmulCases(impl, type);
      });
    }

    it("matmul over several token passes (T above the kernel's token block) matches too", () => {
      // the kernels process ~1 MiB of activation rows per pass over the weights
      for (const type of [GgmlType.F32, GgmlType.F16]) matmulCases(impl, type, [[32768, 9, 37]]);
      for (const type of [GgmlType.Q8_0, GgmlType.Q4_0]) matmulCases(impl, type, [[16384, 9, 70]]);
      for (const type of [GgmlType.Q4_K, GgmlType.Q6_K]) matmulCases(impl, type, [[16384, 5, 70]]);
    });

    it("F16 decode over long rows (k > 2048, whole groups of 4 rows) matches too", () => {
      matmulCases(impl, GgmlType.F16, [[5632, 8, 1], [4099, 12, 1], [2049, 4, 1], [6000, 9, 1]]);
    });

    it("matmul with T = 1, 2, 3 (decode) and 4, 7, 8, 9 (smallest GEMM tiles) on every type", () => {
      for (const type of COMPUTED_TYPES) {
        const k = getFormat(type).blockSize === 256 ? 512 : getFormat(type).blockSize === 32 ? 96 : 21;
        matmulCases(impl, type, [1, 2, 3, 4, 7, 8, 9].map((T): [number, number, number] => [k, 6, T]));
      }
    });

    it("readBytes is the XOR of the little-endian words (any length, any alignment)", () => {
      readBytesCases(impl);
    });

    it("matmul f16 with inf/NaN/large/subnormal weights propagates like the f64 oracle", () => {
      f16SpecialCases(impl);
    });

    it("matmul Q8_0/Q4_0/Q4_K/Q6_K with inf/NaN, subnormal and zero block scales matches the f64 oracle (non-finite rows: the ref)", () => {
      quantSpecialScaleCases(impl);
    });

    it("rmsnorm matches ggml's formula (f64 sum of f32 squares), in place and misaligned", () => {
      rmsnormCases(impl);
    });

    it("rope (normal and neox, partial rotation) is bit-identical to the scalar f32 formula", () => {
      ropeCases(impl);
    });

    it("attention over paged f32/f16/q8_0 KV with GQA 1/2/3/4/8 matches an f64 softmax within 1e-5; storeKv is byte-identical to the tensor references", () => {
      attentionCases(impl);
      storeKvCases(impl);
    });

    it("swiglu is within 4e-6 relative of silu(g)*u in f64, incl. aliasing", () => {
      swigluCases(impl);
    });

    it("add and addBias are exact, incl. aliasing and strided rows", () => {
      addCases(impl);
    });
  });
}

// ------------------------------------------------------------------------ quantizeActivations

function expectedActivations(type: GgmlType, x: Float32Array, k: number, T: number): Uint8Array {
  const xb = activationRowBytes(type, k);
  const out = new Uint8Array(T * xb);
  for (let t = 0; t < T; t++) {
    const src = x.subarray(t * k, (t + 1) * k);
    const dst = out.subarray(t * xb, (t + 1) * xb);
    switch (type) {
      case GgmlType.F32:
        dst.set(new Uint8Array(src.slice().buffer));
        break;
      case GgmlType.F16: {
        const h = new Uint8Array(2 * k);
        f32ToF16Row(src, h, k);
        const back = new Float32Array(k);
        f16ToF32Row(h, back, k);
        dst.set(new Uint8Array(back.buffer));
        break;
      }
      default: {
        const act = getFormat(type === GgmlType.Q8_0 ? GgmlType.Q8_0 : GgmlType.Q8_K);
        const q = act.quantizeRowRef;
        assert.ok(q !== undefined);
        q(src, dst, k);
      }
    }
  }
  return out;
}

/** Values that exercise rounding edges: ties, f16 subnormals/overflow, zero blocks, sign of max. */
function specialActivations(type: GgmlType, k: number, r: () => number): Float32Array {
  const x = gaussian(r, k);
  const put = (i: number, v: number): void => {
    if (i < k) x[i] = v;
  };
  if (type === GgmlType.F16) {
    const specials = [0, -0, 65504, 65519, 65520, -70000, Infinity, -Infinity, 1e-8, -3e-8, 2 ** -25, 3 * 2 ** -25, 6.1e-5, 1 + 2 ** -11, 1 + 3 * 2 ** -11, NaN, 5.96e-8, 1e-40];
    specials.forEach((v, i) => put(i * 3, v));
  } else if (type === GgmlType.Q8_0 && k >= 64) {
    // block 0: amax 127 -> d = 1, id = 1: x.5 values are exact ties (roundf: away from zero)
    for (let j = 0; j < 32; j++) x[j] = (j % 2 === 0 ? 1 : -1) * (j + 0.5);
    x[31] = 127;
    // block 1: all zero
    for (let j = 32; j < 64; j++) x[j] = 0;
  } else if (type === GgmlType.Q4_K) {
    // Q8_K block 0: max |x| = 127 first as -127 (iscale = 1): x.5 ties to even
    for (let j = 0; j < 256; j++) x[j] = (j % 7) - 3 + 0.5;
    x[5] = -127;
    x[200] = 127;
    if (k >= 512) for (let j = 256; j < 512; j++) x[j] = 0;
  }
  return x;
}

function quantizeCases(impl: Impl): void {
  const r = rng(11);
  const types = [GgmlType.F32, GgmlType.F16, GgmlType.Q8_0, GgmlType.Q4_K];
  for (const type of types) {
    for (const k of type === GgmlType.Q4_K ? [256, 512, 768] : type === GgmlType.Q8_0 ? [32, 64, 96, 768] : [1, 5, 8, 13, 64, 100]) {
      for (const T of [1, 2, 5]) {
        for (const mode of ["separate", "inplace"] as const) {
          arena.reset();
          const x = new Float32Array(T * k);
          for (let t = 0; t < T; t++) x.set(t === 0 ? specialActivations(type, k, r) : gaussian(r, k, 3), t * k);
          const expected = expectedActivations(type, x, k, T);
          const xp = arena.f32(x, 4);
          const dst = mode === "inplace" ? xp : arena.alloc(expected.length, type === GgmlType.F32 || type === GgmlType.F16 ? 8 : 3);
          impl.kernels.quantizeActivations(type, xp, dst, k, T);
          const got = arena.readBytes(dst, expected.length);
          const label = `${impl.name} quantizeActivations(${ggmlTypeName(type)}) k=${k} T=${T} ${mode}`;
          for (let i = 0; i < expected.length; i++) {
            if (got[i] !== expected[i]) assert.fail(`${label}: byte ${i}: got ${got[i]}, expected ${expected[i]}`);
          }
        }
      }
    }
  }
}

// ------------------------------------------------------------------------------------- matmul

function matmulCases(impl: Impl, type: GgmlType, cases?: readonly [k: number, rows: number, T: number][]): void {
  const f = getFormat(type);
  let seed = 100 * type + (cases === undefined ? 0 : 50);
  const all = cases ?? kValues(type).flatMap((k) => SHAPES.map(([rows, T]): [number, number, number] => [k, rows, T]));
  for (const [k, rows, T] of all) {
    {
      seed++;
      arena.reset();
      const r = rng(seed);
      const mode = seed % 2 === 0 ? "quantized" : "random";
      const wBytes = makeWeights(type, rows, k, seed, mode);
      const w = putPacked(type, wBytes, rows, k, seed % 3 === 0 ? 0 : type === GgmlType.F32 ? 4 : 2);
      const x = arena.f32(gaussian(r, T * k), 4);
      const xb = activationRowBytes(type, k);
      const xq = arena.alloc(T * xb, type === GgmlType.F32 || type === GgmlType.F16 ? 8 : 5);
      ref.kernels.quantizeActivations(type, x, xq, k, T);
      // y: [T][ldy] with the outputs in columns 1..rows (the lane's columns); the rest must stay
      const ldy = rows + 3;
      const SENTINEL = 1234.5;
      const yBase = arena.f32(new Float32Array(T * ldy).fill(SENTINEL), 4);
      const y = yBase + 4;
      impl.kernels.matmul(type, w, xq, y, rows, k, T, ldy);
      const got = arena.readF32(yBase, T * ldy);

      // oracle: dequantized rows, f64 dot
      const xs = dequantActivations(type, xq, k, T);
      const mag = matmulMagnitude(memory, type, w, xq, rows, k, T);
      const wr = new Float32Array(k);
      const rb = rowBytes(f, k);
      const label = `${impl.name} matmul(${f.name}) rows=${rows} k=${k} T=${T} (${mode} weights)`;
      const expected = new Float64Array(T * rows);
      for (let rr = 0; rr < rows; rr++) {
        f.dequantizeRow(wBytes.subarray(rr * rb, (rr + 1) * rb), wr, k);
        for (let t = 0; t < T; t++) {
          const xr = xs[t];
          assert.ok(xr !== undefined);
          let d = 0;
          for (let i = 0; i < k; i++) d += at(wr, i) * at(xr, i);
          expected[t * rows + rr] = d;
        }
      }
      for (let t = 0; t < T; t++) {
        for (let c = 0; c < ldy; c++) {
          const v = at(got, t * ldy + c);
          if (c === 0 || c > rows) {
            if (v !== SENTINEL) assert.fail(`${label}: wrote outside its columns at t=${t} col=${c - 1}`);
            continue;
          }
          const i = t * rows + c - 1;
          const e = at(expected, i);
          const tol = 1e-5 * at(mag, i) + 1e-30;
          if (!(Math.abs(v - e) <= tol)) {
            assert.fail(`${label}: y[t=${t}][r=${c - 1}] = ${v}, oracle ${e}, |diff| ${Math.abs(v - e)} > ${tol}`);
          }
        }
      }
      // fast sets: also against the ref kernels on the same inputs
      if (impl !== ref) {
        const y2 = arena.alloc(4 * T * ldy, 0);
        ref.kernels.matmul(type, w, xq, y2, rows, k, T, ldy);
        const want = arena.readF32(y2, T * ldy);
        for (let t = 0; t < T; t++) {
          for (let rr = 0; rr < rows; rr++) {
            const v = at(got, t * ldy + rr + 1);
            const e = at(want, t * ldy + rr);
            const tol = 1e-5 * at(mag, t * rows + rr) + 1e-30;
            if (!(Math.abs(v - e) <= tol)) assert.fail(`${label}: vs ref kernels y[${t}][${rr}] ${v} vs ${e}`);
          }
        }
      }
    }
  }
}

/** F16 weights exercising the conversion's slow path (exponent field all ones) and its false alarms. */
function f16SpecialCases(impl: Impl): void {
  const r = rng(21);
  // [k, rows, T]: the GEMV (T < 4) and GEMM paths, long rows too
  for (const [k, rows, T] of [[37, 6, 3], [64, 6, 3], [4100, 8, 1]] as const) {
    arena.reset();
    const wf = gaussian(r, rows * k, 0.5);
    wf[3] = Infinity; // row 0
    wf[k + 9] = NaN; // row 1
    for (let i = 0; i < k; i += 3) wf[2 * k + i] = 3 + 1000 * r(); // row 2: large values (false alarms)
    wf[2 * k + 1] = 65504;
    wf[4 * k - 1] = -Infinity; // row 3, in the scalar tail when k = 37 (or 4100)
    for (let i = 0; i < k; i++) wf[4 * k + i] = (i % 5) * 2 ** -24; // row 4: f16 subnormals
    const wb = new Uint8Array(2 * rows * k);
    f32ToF16Row(wf, wb, rows * k);
    const w = putPacked(GgmlType.F16, wb, rows, k, 2);
    const xv = gaussian(r, T * k);
    if (T > 1) xv[k + 2] = 40000; // token 1: |x| >= 2^15, the GEMV's unscaled path (see matmul-float.ts)
    if (T > 2) xv[2 * k + 5] = Infinity; // token 2: inf activations stay on the scaled path
    const x = arena.f32(xv, 4);
    const xq = arena.alloc(4 * T * k, 8);
    ref.kernels.quantizeActivations(GgmlType.F16, x, xq, k, T);
    const y = arena.f32(new Float32Array(T * rows), 4);
    impl.kernels.matmul(GgmlType.F16, w, xq, y, rows, k, T, rows);
    const got = arena.readF32(y, T * rows);
    const wd = new Float32Array(rows * k);
    f16ToF32Row(wb, wd, rows * k);
    const xs = dequantActivations(GgmlType.F16, xq, k, T);
    for (let t = 0; t < T; t++) {
      const xr = xs[t];
      assert.ok(xr !== undefined);
      for (let rr = 0; rr < rows; rr++) {
        let e = 0;
        let m = 0;
        for (let i = 0; i < k; i++) {
          e += at(wd, rr * k + i) * at(xr, i);
          m += Math.abs(at(wd, rr * k + i) * at(xr, i));
        }
        const v = at(got, t * rows + rr);
        const label = `${impl.name} f16 specials k=${k} t=${t} row ${rr}: got ${v}, oracle ${e}`;
        if (Number.isNaN(e)) assert.ok(Number.isNaN(v), label);
        else if (!Number.isFinite(e)) assert.equal(v, e, label);
        else assert.ok(Math.abs(v - e) <= 1e-5 * m + 1e-30, label);
      }
    }
  }
}

// ---------------------------------------------------------------------------------- readBytes

function readBytesCases(impl: Impl): void {
  const r = rng(17);
  arena.reset();
  const n = 70000;
  const p = arena.alloc(n + 64, 0);
  const data = new Uint8Array(n + 64);
  for (let i = 0; i < data.length; i++) data[i] = Math.floor(r() * 256);
  arena.writeBytes(p, data);
  for (const off of [0, 1, 3, 16]) {
    for (const len of [0, 1, 2, 3, 4, 5, 7, 127, 128, 129, 255, 1000, 4099, 65536 + 13]) {
      let want = 0;
      for (let i = 0; i < len; i++) want ^= at(data, off + i) << (8 * (i % 4));
      assert.equal(impl.kernels.readBytes(p + off, len), want | 0, `${impl.name} readBytes(+${off}, ${len})`);
    }
  }
}

/** Quantized weights where one block of one row has an inf scale and another a NaN scale. */
function quantSpecialScaleCases(impl: Impl): void {
  for (const type of [GgmlType.Q8_0, GgmlType.Q4_0, GgmlType.Q4_K, GgmlType.Q6_K]) {
    const f = getFormat(type);
    const k = f.blockSize === 256 ? 512 : 128;
    const rows = 7;
    const wBytes = makeWeights(type, rows, k, 31 + type, "quantized");
    const rb = rowBytes(f, k);
    const scaleAt = type === GgmlType.Q6_K ? 208 : 0;
    const put = (row: number, block: number, h: number): void => {
      const o = row * rb + block * f.typeSize + scaleAt;
      wBytes[o] = h & 0xff;
      wBytes[o + 1] = h >> 8;
    };
    put(1, 1, 0x7c00); // +inf
    put(5, 0, 0x7e01); // NaN
    // subnormal and zero scales (finite rows: the f64 oracle), which take the exact conversion too
    put(2, 0, 0x0123);
    put(3, 1, 0x8005);
    put(4, 0, 0x0000);
    if (type === GgmlType.Q4_K) {
      wBytes[6 * rb + 2] = 0x07; // row 6, superblock 0: subnormal dmin
      wBytes[6 * rb + 3] = 0x00;
    }
    for (const T of [1, 2, 5]) {
      arena.reset();
      const w = putPacked(type, wBytes, rows, k, 0);
      const x = arena.f32(gaussian(rng(7 + T), T * k), 4);
      const xq = arena.alloc(T * activationRowBytes(type, k), 5);
      ref.kernels.quantizeActivations(type, x, xq, k, T);
      const y = arena.f32(new Float32Array(T * rows), 4);
      impl.kernels.matmul(type, w, xq, y, rows, k, T, rows);
      const got = arena.readF32(y, T * rows);
      // ggml's vec_dot scales integer sums: an inf scale gives +-inf (or NaN), not the NaN of
      // inf * 0 in a dequantized dot; so the non-finite rows follow the ref kernels (src/tensor
      // vecDot), the finite ones the f64 oracle.
      const y2 = arena.f32(new Float32Array(T * rows), 4);
      ref.kernels.matmul(type, w, xq, y2, rows, k, T, rows);
      const want = arena.readF32(y2, T * rows);
      const xs = dequantActivations(type, xq, k, T);
      const wr = new Float32Array(k);
      for (let r = 0; r < rows; r++) {
        f.dequantizeRow(wBytes.subarray(r * rb, (r + 1) * rb), wr, k);
        for (let t = 0; t < T; t++) {
          const xr = xs[t];
          assert.ok(xr !== undefined);
          let e = 0;
          let m = 0;
          for (let i = 0; i < k; i++) {
            e += at(wr, i) * at(xr, i);
            m += Math.abs(at(wr, i) * at(xr, i));
          }
          const v = at(got, t * rows + r);
          const rv = at(want, t * rows + r);
          const label = `${impl.name} ${f.name} special scales T=${T} row ${r}: got ${v}, ref ${rv}, oracle ${e}`;
          if (r === 1 || r === 5) {
            // NOTE: ref NaN may come from one of several partial sums (inf * 0); our kernels sum
            // in another grouping (Q4_K: one integer sum per superblock gives -inf): non-finite.
            assert.ok(!Number.isFinite(rv) && !Number.isFinite(v), label);
            if (!Number.isNaN(rv)) assert.equal(v, rv, label);
          } else {
            assert.ok(Math.abs(v - e) <= 1e-5 * m + 1e-30, label);
          }
        }
      }
    }
  }
}

// ------------------------------------------------------------------------------------ rmsnorm

function rmsnormCases(impl: Impl): void {
  const r = rng(7);
  for (const n of [1, 3, 4, 8, 17, 64, 768, 4099]) {
    for (const T of [1, 3]) {
      for (const inplace of [false, true]) {
        arena.reset();
        const eps = n % 2 === 0 ? 1e-5 : 1e-6;
        const xv = gaussian(r, T * n, 2);
        const wv = gaussian(r, n);
        const x = arena.f32(xv, 4);
        const w = arena.f32(wv, 8);
        const out = inplace ? x : arena.f32(new Float32Array(T * n), 12);
        impl.kernels.rmsnorm(x, w, out, n, T, eps);
        const got = arena.readF32(out, T * n);
        const label = `${impl.name} rmsnorm n=${n} T=${T}${inplace ? " in place" : ""}`;
        for (let t = 0; t < T; t++) {
          let sum = 0;
          for (let i = 0; i < n; i++) sum += fr(at(xv, t * n + i) * at(xv, t * n + i));
          const scaleF = fr(1 / fr(Math.sqrt(fr(fr(sum / n) + fr(eps)))));
          const scaleExact = 1 / Math.sqrt(sum / n + fr(eps));
          for (let i = 0; i < n; i++) {
            const v = at(got, t * n + i);
            const ggml = fr(fr(at(xv, t * n + i) * scaleF) * at(wv, i));
            const exact = at(xv, t * n + i) * scaleExact * at(wv, i);
            if (!(Math.abs(v - ggml) <= 4e-6 * Math.abs(ggml) + 1e-30)) assert.fail(`${label}: [${t}][${i}] ${v} vs ggml ${ggml}`);
            if (!(Math.abs(v - exact) <= 1e-5 * Math.abs(exact) + 1e-30)) assert.fail(`${label}: [${t}][${i}] ${v} vs exact ${exact}`);
          }
        }
      }
    }
  }
}

// --------------------------------------------------------------------------------------- rope

function ropeCases(impl: Impl): void {
  const r = rng(5);
  const configs: [headDim: number, nRot: number][] = [
    [64, 64],
    [64, 32],
    [10, 6],
    [128, 128],
    [8, 2],
    [12, 12],
  ];
  for (const [headDim, nRot] of configs) {
    for (const nHeads of [1, 3, 5]) {
      for (const T of [1, 3]) {
        for (const neox of [false, true]) {
          arena.reset();
          const rowStride = nHeads * headDim + 5;
          const xv = gaussian(r, T * rowStride);
          const cs = new Float32Array(T * nRot);
          for (let i = 0; i < cs.length; i += 2) {
            const th = 100 * r();
            cs[i] = Math.cos(th);
            cs[i + 1] = Math.sin(th);
          }
          const x = arena.f32(xv, 4);
          const csp = arena.f32(cs, 8);
          impl.kernels.rope(x, csp, T, nHeads, headDim, nRot, rowStride, neox);
          const got = arena.readF32(x, T * rowStride);
          const want = xv.slice();
          const half = nRot / 2;
          for (let t = 0; t < T; t++) {
            for (let h = 0; h < nHeads; h++) {
              const p = t * rowStride + h * headDim;
              for (let i = 0; i < half; i++) {
                const c = at(cs, t * nRot + 2 * i);
                const s = at(cs, t * nRot + 2 * i + 1);
                const i0 = neox ? p + i : p + 2 * i;
                const i1 = neox ? p + i + half : p + 2 * i + 1;
                const x0 = at(xv, i0);
                const x1 = at(xv, i1);
                want[i0] = fr(fr(x0 * c) - fr(x1 * s));
                want[i1] = fr(fr(x0 * s) + fr(x1 * c));
              }
            }
          }
          const label = `${impl.name} rope headDim=${headDim} nRot=${nRot} nHeads=${nHeads} T=${T} neox=${neox}`;
          for (let i = 0; i < want.length; i++) {
            if (!Object.is(at(got, i), at(want, i))) assert.fail(`${label}: element ${i}: ${at(got, i)} vs ${at(want, i)}`);
          }
        }
      }
    }
  }
}

// ---------------------------------------------------------------------------------- attention

function attentionCases(impl: Impl): void {
  const r = rng(3);
  const heads: [nHeads: number, nKvHeads: number][] = [
    [2, 2],
    [4, 2],
    [6, 2],
    [4, 1],
    [8, 1],
  ];
  let c = 0;
  for (const kvType of KV_TYPES) {
  for (const [nHeads, nKvHeads] of heads) {
    for (const headDim of [64, 20, 6]) {
      if (!kvTypeFits(kvType, headDim) || (kvType !== "f32" && nHeads === 6)) continue;
      for (const blockSize of [16, 5]) {
        for (const nKeys of [1, 5, 16, 17, 100]) {
          c++;
          if (headDim === 6 && c % 2 === 0) continue; // keep the suite quick
          arena.reset();
          const nUsed = Math.ceil(nKeys / blockSize);
          const poolBlocks = nUsed + 3;
          // non-contiguous, shuffled block ids
          const ids = Array.from({ length: poolBlocks }, (_, i) => i);
          for (let i = ids.length - 1; i > 0; i--) {
            const j = Math.floor(r() * (i + 1));
            const a = at(ids, i);
            ids[i] = at(ids, j);
            ids[j] = a;
          }
          const table = new Int32Array(ids.slice(0, nUsed));
          const poolFloats = poolBlocks * nKvHeads * blockSize * headDim;
          // K and V as the cache holds them (encoded rows by the tensor references) and as f32
          const [kBytes, kv] = encodeKvRows(gaussian(r, poolFloats), headDim, kvType);
          const [vBytes, vv] = encodeKvRows(gaussian(r, poolFloats), headDim, kvType);
          const qv = gaussian(r, nHeads * headDim, 2);
          const q = arena.f32(qv, 4);
          const kp = arena.bytes(kBytes, 8);
          const vp = arena.bytes(vBytes, 12);
          const bt = arena.alloc(4 * table.length, 4);
          new Int32Array(memory.buffer, bt, table.length).set(table);
          const out = arena.f32(new Float32Array(nHeads * headDim), 4);
          const scratch = arena.alloc(attentionScratchBytes(nKeys, headDim, kvType), 8);
          const scale = 1 / Math.sqrt(headDim);
          impl.kernels.attention(q, out, kp, vp, bt, nKeys, nHeads, nKvHeads, headDim, blockSize, scale, scratch, kvType);
          const got = arena.readF32(out, nHeads * headDim);

          // oracle: gather this sequence's K and V contiguously, softmax in f64
          const group = nHeads / nKvHeads;
          const label = `${impl.name} attention kv ${kvType} heads=${nHeads}/${nKvHeads} headDim=${headDim} blockSize=${blockSize} nKeys=${nKeys}`;
          for (let h = 0; h < nHeads; h++) {
            const g = Math.floor(h / group);
            const pos = (j: number): number =>
              (at(table, Math.floor(j / blockSize)) * nKvHeads * blockSize + g * blockSize + (j % blockSize)) * headDim;
            const s = new Float64Array(nKeys);
            let max = -Infinity;
            for (let j = 0; j < nKeys; j++) {
              let d = 0;
              for (let i = 0; i < headDim; i++) d += at(qv, h * headDim + i) * at(kv, pos(j) + i);
              s[j] = d * fr(scale);
              max = Math.max(max, at(s, j));
            }
            let sum = 0;
            for (let j = 0; j < nKeys; j++) {
              s[j] = Math.exp(at(s, j) - max);
              sum += at(s, j);
            }
            for (let i = 0; i < headDim; i++) {
              let o = 0;
              let m = 0;
              for (let j = 0; j < nKeys; j++) {
                o += (at(s, j) / sum) * at(vv, pos(j) + i);
                m += (at(s, j) / sum) * Math.abs(at(vv, pos(j) + i));
              }
              const v = at(got, h * headDim + i);
              if (!(Math.abs(v - o) <= 1e-5 * m + 1e-30)) assert.fail(`${label}: out[${h}][${i}] ${v} vs ${o} (mag ${m})`);
            }
          }
        }
      }
    }
  }
  }
}

/** Rows of headDim f32 -> the cache's bytes for `kvType` (tensor references) and their f32 values. */
function encodeKvRows(x: Float32Array, headDim: number, kvType: KvType): [Uint8Array, Float32Array] {
  if (kvType === "f32") return [new Uint8Array(x.buffer.slice(0)), x];
  const rb = kvRowBytes(kvType, headDim);
  const rows = x.length / headDim;
  const bytes = new Uint8Array(rows * rb);
  const back = new Float32Array(x.length);
  const f = getFormat(kvType === "f16" ? GgmlType.F16 : GgmlType.Q8_0);
  for (let i = 0; i < rows; i++) {
    const src = x.subarray(i * headDim, (i + 1) * headDim);
    const dst = bytes.subarray(i * rb, (i + 1) * rb);
    if (kvType === "f16") f32ToF16Row(src, dst, headDim);
    else f.quantizeRowRef!(src, dst, headDim);
    f.dequantizeRow(dst, back.subarray(i * headDim, (i + 1) * headDim), headDim);
  }
  return [bytes, back];
}

function storeKvCases(impl: Impl): void {
  const r = rng(21);
  for (const kvType of KV_TYPES) {
    for (const n of [32, 64, 128, 20, 6]) {
      if (!kvTypeFits(kvType, n)) continue;
      arena.reset();
      const x = gaussian(r, n, 3);
      if (n >= 32) [0, -0, 65504, 65520, -1e6, 1e-8, -6e-5, Infinity, NaN].forEach((v, i) => kvType === "f16" && (x[i] = v));
      const xp = arena.f32(x, 4);
      const rb = kvRowBytes(kvType, n);
      const dst = arena.alloc(rb + 8, 4);
      new Uint8Array(memory.buffer, dst, rb + 8).fill(0xa5);
      impl.kernels.storeKv(kvType, xp, dst, n);
      const got = new Uint8Array(memory.buffer, dst, rb + 8).slice();
      const [want] = encodeKvRows(x, n, kvType);
      for (let i = 0; i < rb; i++) if (got[i] !== want[i]) assert.fail(`${impl.name} storeKv ${kvType} n=${n}: byte ${i}: ${got[i]} vs ${want[i]}`);
      for (let i = rb; i < rb + 8; i++) assert.equal(got[i], 0xa5, `${impl.name} storeKv ${kvType} n=${n}: wrote past the row`);
    }
  }
}

// ------------------------------------------------------------------------------------- swiglu

function swigluCases(impl: Impl): void {
  const r = rng(9);
  const specials = [0, -0, 1e-30, -1e-30, 1e-3, -1e-3, 1, -1, 20, -20, 87, -87, 88, -88, 89, -89, 100, -100, 1e4, -1e4];
  for (const n of [1, 7, 8, 9, 33, 1000]) {
    for (const alias of ["none", "gate", "up"] as const) {
      arena.reset();
      const g = gaussian(r, n, 4);
      specials.forEach((v, i) => {
        if (i < n && n > 8) g[i] = v;
      });
      const u = gaussian(r, n);
      const gp = arena.f32(g, 4);
      const up = arena.f32(u, 8);
      const out = alias === "gate" ? gp : alias === "up" ? up : arena.f32(new Float32Array(n), 12);
      impl.kernels.swiglu(gp, up, out, n);
      const got = arena.readF32(out, n);
      for (let i = 0; i < n; i++) {
        const gi = at(g, i);
        const e = (gi / (1 + Math.exp(-gi))) * at(u, i);
        const v = at(got, i);
        if (!(Math.abs(v - e) <= 4e-6 * Math.abs(e) + 1e-30)) {
          assert.fail(`${impl.name} swiglu n=${n} alias=${alias}: [${i}] g=${gi} u=${at(u, i)}: ${v} vs ${e}`);
        }
      }
    }
  }
}

// -------------------------------------------------------------------------------- add/addBias

function addCases(impl: Impl): void {
  const r = rng(13);
  for (const n of [1, 7, 8, 9, 1000]) {
    for (const alias of ["none", "a", "b"] as const) {
      arena.reset();
      const a = gaussian(r, n);
      const b = gaussian(r, n);
      const ap = arena.f32(a, 4);
      const bp = arena.f32(b, 8);
      const out = alias === "a" ? ap : alias === "b" ? bp : arena.f32(new Float32Array(n), 12);
      impl.kernels.add(ap, bp, out, n);
      const got = arena.readF32(out, n);
      for (let i = 0; i < n; i++) {
        if (!Object.is(at(got, i), fr(at(a, i) + at(b, i)))) assert.fail(`${impl.name} add n=${n} alias=${alias}: [${i}]`);
      }
    }
  }
  for (const n of [1, 7, 64]) {
    for (const T of [1, 3]) {
      arena.reset();
      const rowStride = n + 3;
      const x = gaussian(r, T * rowStride);
      const bias = gaussian(r, n);
      const xp = arena.f32(x, 4);
      const bp = arena.f32(bias, 8);
      impl.kernels.addBias(xp, bp, n, T, rowStride);
      const got = arena.readF32(xp, T * rowStride);
      for (let i = 0; i < got.length; i++) {
        const c = i % rowStride;
        const want = c < n ? fr(at(x, i) + at(bias, c)) : at(x, i);
        if (!Object.is(at(got, i), want)) assert.fail(`${impl.name} addBias n=${n} T=${T}: element ${i}`);
      }
    }
  }
}
