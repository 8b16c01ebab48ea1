/**
 * Block format tables, registry errors, round-trip error and dot-product accuracy on the
 * synthetic data of llama.cpp's tests/test-quantize-fns.cpp, and byte views at odd offsets and
 * on SharedArrayBuffers.
 */

import { test } from "node:test";
import assert from "node:assert/strict";
import { UnsupportedError, UsageError } from "../../src/errors.js";
import type { BlockFormat } from "../../src/tensor/format.js";
import { rowBytes } from "../../src/tensor/format.js";
import { GgmlType, ggmlTypeName } from "../../src/tensor/ggml-type.js";
import { FORMATS, getFormat, tensorBytes } from "../../src/tensor/registry.js";
import * as bf16 from "../../src/tensor/formats/bf16.js";
import * as f16 from "../../src/tensor/formats/f16.js";
import * as f32 from "../../src/tensor/formats/f32.js";
import * as q2_k from "../../src/tensor/formats/q2_k.js";
import * as q3_k from "../../src/tensor/formats/q3_k.js";
import * as q4_0 from "../../src/tensor/formats/q4_0.js";
import * as q4_1 from "../../src/tensor/formats/q4_1.js";
import * as q4_k from "../../src/tensor/formats/q4_k.js";
import * as q5_0 from "../../src/tensor/formats/q5_0.js";
import * as q5_1 from "../../src/tensor/formats/q5_1.js";
import * as q5_k from "../../src/tensor/formats/q5_k.js";
import * as q6_k from "../../src/tensor/formats/q6_k.js";
import * as q8_0 from "../../src/tensor/formats/q8_0.js";
import * as q8_1 from "../../src/tensor/formats/q8_1.js";
import * as q8_k from "../../src/tensor/formats/q8_k.js";

/** ggml-common.h static_asserts: [type, block size, bytes per block, vec_dot_type]. */
const GGML_TABLE: [GgmlType, number, number, GgmlType | undefined][] = [
  [GgmlType.F32, 1, 4, GgmlType.F32],
  [GgmlType.F16, 1, 2, GgmlType.F16],
  [GgmlType.BF16, 1, 2, GgmlType.BF16],
  [GgmlType.Q4_0, 32, 2 + 16, GgmlType.Q8_0],
  [GgmlType.Q4_1, 32, 2 * 2 + 16, GgmlType.Q8_1],
  [GgmlType.Q5_0, 32, 2 + 4 + 16, GgmlType.Q8_0],
  [GgmlType.Q5_1, 32, 2 * 2 + 4 + 16, GgmlType.Q8_1],
  [GgmlType.Q8_0, 32, 2 + 32, GgmlType.Q8_0],
  [GgmlType.Q8_1, 32, 2 * 2 + 32, undefined],
  [GgmlType.Q2_K, 256, 2 * 2 + 256 / 16 + 256 / 4, GgmlType.Q8_K],
  [GgmlType.Q3_K, 256, 2 + 256 / 4 + 256 / 8 + 12, GgmlType.Q8_K],
  [GgmlType.Q4_K, 256, 2 * 2 + 12 + 256 / 2, GgmlType.Q8_K],
  [GgmlType.Q5_K, 256, 2 * 2 + 12 + 256 / 2 + 256 / 8, GgmlType.Q8_K],
  [GgmlType.Q6_K, 256, 2 + 256 / 16 + (3 * 256) / 4, GgmlType.Q8_K],
  [GgmlType.Q8_K, 256, 4 + 256 + (256 / 16) * 2, undefined],
];

const ALL = [...FORMATS.values()];

test("format table matches ggml's block sizes, type sizes and vec_dot types", () => {
  assert.equal(FORMATS.size, GGML_TABLE.length);
  for (const [type, bs, ts, vdt] of GGML_TABLE) {
    const f = FORMATS.get(type);
    assert.ok(f !== undefined, `${ggmlTypeName(type)} registered`);
    assert.equal(f.type, type);
    assert.equal(f.name, ggmlTypeName(type));
    assert.equal(f.blockSize, bs, `${f.name} block size`);
    assert.equal(f.typeSize, ts, `${f.name} type size`);
    assert.equal(f.vecDotType, vdt, `${f.name} vec_dot_type`);
    assert.equal(f.vecDot === undefined, vdt === undefined, `${f.name} vecDot presence`);
    assert.ok(f.quantizeRowRef !== undefined, `${f.name} quantizeRowRef`);
    if (vdt !== undefined) assert.ok(FORMATS.has(vdt), `${f.name}: vec_dot type ${ggmlTypeName(vdt)} registered`);
  }
  for (const [type, f] of FORMATS) {
    assert.equal(type, f.type);
    assert.ok(
      GGML_TABLE.some(([t]) => t === type),
      `${f.name} is in the ggml table`,
    );
  }
});

test("every format module's BLOCK_SIZE/TYPE_SIZE match its registered format", () => {
  const modules: [{ BLOCK_SIZE: number; TYPE_SIZE: number }, GgmlType][] = [
    [f32, GgmlType.F32],
    [f16, GgmlType.F16],
    [bf16, GgmlType.BF16],
    [q4_0, GgmlType.Q4_0],
    [q4_1, GgmlType.Q4_1],
    [q5_0, GgmlType.Q5_0],
    [q5_1, GgmlType.Q5_1],
    [q8_0, GgmlType.Q8_0],
    [q8_1, GgmlType.Q8_1],
    [q2_k, GgmlType.Q2_K],
    [q3_k, GgmlType.Q3_K],
    [q4_k, GgmlType.Q4_K],
    [q5_k, GgmlType.Q5_K],
    [q6_k, GgmlType.Q6_K],
    [q8_k, GgmlType.Q8_K],
  ];
  assert.equal(modules.length, FORMATS.size);
  for (const [m, t] of modules) {
    const f = getFormat(t);
    assert.equal(m.BLOCK_SIZE, f.blockSize, f.name);
    assert.equal(m.TYPE_SIZE, f.typeSize, f.name);
  }
});

test("getFormat: supported ids return the format, others throw UnsupportedError with name and hint", () => {
  assert.equal(getFormat(GgmlType.Q4_0), FORMATS.get(GgmlType.Q4_0));
  for (const t of [GgmlType.IQ2_XXS, GgmlType.IQ4_NL, GgmlType.TQ1_0, GgmlType.I8]) {
    assert.throws(
      () => getFormat(t, "blk.0.ffn_down.weight"),
      (e: unknown) =>
        e instanceof UnsupportedError &&
        e.message.includes(ggmlTypeName(t)) &&
        e.message.includes("blk.0.ffn_down.weight") &&
        e.hint !== undefined,
    );
  }
  assert.throws(
    () => getFormat(99),
    (e: unknown) => e instanceof UnsupportedError && e.message.includes("99") && e.message.includes("unknown"),
  );
});

test("tensorBytes: checked sizes, whole blocks only", () => {
  assert.equal(tensorBytes(GgmlType.Q4_0, [4096, 32]), (4096 / 32) * 18 * 32);
  assert.equal(tensorBytes(GgmlType.F32, [7, 3, 2]), 7 * 3 * 2 * 4);
  assert.equal(tensorBytes(GgmlType.F16, []), 2);
  assert.equal(tensorBytes(GgmlType.Q8_0, [64, 0]), 0);
  assert.throws(
    () => tensorBytes(GgmlType.Q4_0, [33, 2], "tok_embd"),
    (e: unknown) => e instanceof UnsupportedError && /multiple of the q4_0 block size 32/.test(e.message) && e.message.includes("tok_embd"),
  );
  assert.throws(() => tensorBytes(GgmlType.Q8_0, [-32]), UsageError);
  assert.throws(() => tensorBytes(GgmlType.Q8_0, [32.5]), UsageError);
  assert.throws(() => tensorBytes(GgmlType.F32, [2 ** 26, 2 ** 26, 2 ** 4]), UnsupportedError);
  assert.throws(() => tensorBytes(GgmlType.IQ2_XS, [256]), UnsupportedError);
  for (const f of ALL) assert.equal(tensorBytes(f.type, [f.blockSize * 3, 2]), rowBytes(f, f.blockSize * 3) * 2);
});

// ---- test-quantize-fns.cpp
const TEST_SIZE = 32 * 128;
function generateData(offset: number, n: number): Float32Array {
  const d = new Float32Array(n);
  for (let i = 0; i < n; i++) d[i] = 0.1 + 2 * Math.cos(i + offset);
  return d;
}
/** test-quantize-fns' "rmse": sqrt(sum of squared differences) / n. */
function arrayRmse(a: Float32Array, b: Float32Array): number {
  let sum = 0;
  for (let i = 0; i < a.length; i++) {
    const d = (a[i] ?? 0) - (b[i] ?? 0);
    sum += d * d;
  }
  return Math.sqrt(sum) / a.length;
}
function dot(a: Float32Array, b: Float32Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += (a[i] ?? 0) * (b[i] ?? 0);
  return s;
}
function quantize(f: BlockFormat, x: Float32Array): Uint8Array {
  const q = new Uint8Array(rowBytes(f, x.length));
  const qf = f.quantizeRowRef;
  assert.ok(qf !== undefined);
  qf(x, q, x.length);
  return q;
}
function dequantize(f: BlockFormat, q: Uint8Array, n: number): Float32Array {
  const y = new Float32Array(n);
  f.dequantizeRow(q, y, n);
  return y;
}

const MAX_TOTAL_ERROR: Partial<Record<GgmlType, number>> = {
  [GgmlType.Q2_K]: 0.0075,
  [GgmlType.Q3_K]: 0.004,
};
const MAX_DOT_ERROR: Partial<Record<GgmlType, number>> = { [GgmlType.Q2_K]: 0.04 };

test("round trip error on test-quantize-fns data is within ggml's thresholds", () => {
  const data = generateData(0, TEST_SIZE);
  const lines: string[] = [];
  for (const f of ALL) {
    const err = arrayRmse(data, dequantize(f, quantize(f, data), TEST_SIZE));
    const max = MAX_TOTAL_ERROR[f.type] ?? 0.002;
    lines.push(`${f.name.padEnd(5)} total quantization error ${err.toFixed(6)} (max ${max})`);
    assert.ok(err < max, `${f.name}: ${err} >= ${max}`);
  }
  console.log(lines.join("\n"));
});

test("vecDot: close to the float dot of the unquantized data (ggml thresholds) and to the dequantized dot", () => {
  const a = generateData(0, TEST_SIZE);
  const b = generateData(1, TEST_SIZE);
  const exact = dot(a, b);
  const lines: string[] = [];
  for (const f of ALL) {
    const vecDot = f.vecDot;
    if (vecDot === undefined || f.vecDotType === undefined) continue;
    const xf = getFormat(f.vecDotType);
    const w = quantize(f, a);
    const x = quantize(xf, b);
    const got = vecDot(TEST_SIZE, w, x);
    const err = Math.abs(got - exact) / TEST_SIZE;
    const max = MAX_DOT_ERROR[f.type] ?? 0.02;
    // Same quantized operands in double: only f32 rounding of per-block terms may differ.
    const wd = dequantize(f, w, TEST_SIZE);
    const xd = dequantize(xf, x, TEST_SIZE);
    let scale = 0;
    for (let i = 0; i < TEST_SIZE; i++) scale += Math.abs((wd[i] ?? 0) * (xd[i] ?? 0));
    const viaDequant = dot(wd, xd);
    const rel = Math.abs(got - viaDequant) / scale;
    lines.push(`${f.name.padEnd(5)} dot product error ${err.toFixed(6)} (max ${max}); vs dequantized dot: ${rel.toExponential(2)} of sum|w*x|`);
    assert.ok(err < max, `${f.name}: dot error ${err}`);
    // NOTE: Q8_1 carries s = d*sum(q) rounded to f16, which the _1 dot products use for the min
    // term: up to 2^-11 relative of that term, hence the looser bound there.
    const tol = f.vecDotType === GgmlType.Q8_1 ? 1e-4 : 1e-6;
    assert.ok(rel < tol, `${f.name}: vecDot ${got} vs dequantized dot ${viaDequant}`);
  }
  console.log(lines.join("\n"));
});

test("all zero rows quantize to zero and dequantize to zero", () => {
  for (const f of ALL) {
    const n = f.blockSize * 2 === 2 ? 64 : f.blockSize * 2;
    const y = dequantize(f, quantize(f, new Float32Array(n)), n);
    assert.ok(y.every((v) => v === 0), f.name);
  }
});

// ---- views
function pseudoRandom(n: number, seed: number): Float32Array {
  const x = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    x[i] = ((s / 2 ** 32) * 2 - 1) * (1 + ((i >> 5) % 7));
  }
  return x;
}

test("unaligned byteOffset and SharedArrayBuffer views give identical results", () => {
  for (const f of ALL) {
    const n = Math.max(f.blockSize, 32) * 3;
    const src = pseudoRandom(n, 7 + f.type);
    const ref = quantize(f, src);
    const refDeq = dequantize(f, ref, n);
    const refDot = (() => {
      if (f.vecDot === undefined || f.vecDotType === undefined) return undefined;
      return f.vecDot(n, ref, quantize(getFormat(f.vecDotType), pseudoRandom(n, 99)));
    })();
    for (const shared of [false, true]) {
      for (const off of [1, 2, 3, 5]) {
        const Buf = shared ? SharedArrayBuffer : ArrayBuffer;
        const q = new Uint8Array(new Buf(ref.length + 16), off, ref.length);
        const qf = f.quantizeRowRef;
        assert.ok(qf !== undefined);
        // source floats on a SharedArrayBuffer at a non-zero (aligned) offset too
        const srcShared = new Float32Array(new Buf(4 * n + 8), 4, n);
        srcShared.set(src);
        qf(srcShared, q, n);
        assert.deepEqual(new Uint8Array(q), ref, `${f.name} quantize at offset ${off} shared=${shared}`);
        const y = new Float32Array(new Buf(4 * n + 8), 8, n);
        f.dequantizeRow(q, y, n);
        assert.deepEqual(new Float32Array(y), refDeq, `${f.name} dequantize at offset ${off}`);
        if (refDot !== undefined && f.vecDot !== undefined && f.vecDotType !== undefined) {
          const xRef = quantize(getFormat(f.vecDotType), pseudoRandom(n, 99));
          const x = new Uint8Array(new Buf(xRef.length + 16), off + 2, xRef.length);
          x.set(xRef);
          assert.equal(f.vecDot(n, q, x), refDot, `${f.name} vecDot at offset ${off}`);
        }
      }
    }
  }
});

test("routines leave bytes and floats outside the row untouched", () => {
  for (const f of ALL) {
    const n = f.blockSize * 2;
    const bytes = rowBytes(f, n);
    const q = new Uint8Array(bytes + 20).fill(0xee);
    const qf = f.quantizeRowRef;
    assert.ok(qf !== undefined);
    qf(pseudoRandom(n, 3), q.subarray(10, 10 + bytes), n);
    assert.ok(q.subarray(0, 10).every((v) => v === 0xee) && q.subarray(10 + bytes).every((v) => v === 0xee), f.name);
    const y = new Float32Array(n + 8).fill(42);
    f.dequantizeRow(q.subarray(10, 10 + bytes), y.subarray(4, 4 + n), n);
    assert.ok(y.subarray(0, 4).every((v) => v === 42) && y.subarray(4 + n).every((v) => v === 42), f.name);
  }
});
