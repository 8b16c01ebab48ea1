/**
 * Bit-exactness against llama.cpp. The golden data was generated once from llama.cpp commit
 * 80fb11a's ggml-quants.c / ggml-cpu/quants.c by a throwaway C harness that is not part of the
 * repository (details in fixture.ts). Checked here:
 * quantizeRowRef bytes, dequantizeRow f32 bits and vecDot f32 bits for every format we
 * implement, on the same inputs the C oracle saw.
 */

import { test } from "node:test";
import assert from "node:assert/strict";
import { FORMATS } from "../../src/tensor/registry.js";
import type { BlockFormat } from "../../src/tensor/format.js";
import { bitsF32, bytesOf, f32Bits, floatsOf, fnv1a, golden, hex } from "./fixture.js";

const n = golden.n;

function byName(name: string): BlockFormat | undefined {
  for (const f of FORMATS.values()) if (f.name === name) return f;
  return undefined;
}

function input(row: string): Float32Array {
  const s = golden.inputs[row];
  assert.ok(s !== undefined, `fixture input ${row}`);
  return floatsOf(s);
}

for (const [name, g] of Object.entries(golden.types)) {
  const f = byName(name);
  if (f === undefined) {
    test(`golden ${name}: not implemented`, { skip: true }, () => {});
    continue;
  }

  test(`golden ${name}: block and type size match ggml`, () => {
    assert.equal(f.blockSize, g.blockSize);
    assert.equal(f.typeSize, g.typeSize);
  });

  test(`golden ${name}: quantizeRowRef is bit-exact with quantize_row_${name}_ref`, () => {
    const quantize = f.quantizeRowRef;
    assert.ok(quantize !== undefined);
    for (const [row, b64] of Object.entries(g.quant)) {
      const want = bytesOf(b64);
      const got = new Uint8Array(want.length).fill(0xa5); // garbage: every byte must be written
      quantize(input(row), got, n);
      const i = want.findIndex((v, k) => v !== got[k]);
      assert.equal(i, -1, `${name} row ${row}: first differing byte ${i}: want ${hex(want, i, 8)} got ${hex(got, i, 8)}`);
    }
  });

  test(`golden ${name}: dequantizeRow is bit-exact with dequantize_row_${name}`, () => {
    const out = new Float32Array(n);
    for (const [row, want] of Object.entries(g.dequant)) {
      const q = g.quant[row];
      assert.ok(q !== undefined);
      f.dequantizeRow(bytesOf(q), out, n);
      assert.equal(fnv1a(new Uint8Array(out.buffer)), want, `${name} row ${row}: dequantized values differ`);
    }
    f.dequantizeRow(bytesOf(g.randomBytes), out, n);
    const want = floatsOf(g.dequantRandom);
    for (let i = 0; i < n; i++) {
      assert.equal(f32Bits(out[i] ?? NaN), f32Bits(want[i] ?? NaN), `${name} random bytes: element ${i}: want ${want[i]} got ${out[i]}`);
    }
  });

  const dots = g.dot;
  if (dots !== undefined) {
    test(`golden ${name}: vecDot is bit-exact with ggml's generic vec_dot`, () => {
      const vecDot = f.vecDot;
      const vt = f.vecDotType;
      assert.ok(vecDot !== undefined && vt !== undefined);
      const xf = FORMATS.get(vt);
      assert.ok(xf !== undefined);
      const acts = golden.activations[xf.name];
      assert.ok(acts !== undefined);
      for (const [key, wantHex] of Object.entries(dots)) {
        const [wRow = "", xRow = ""] = key.split("|");
        const wq = wRow === "random" ? g.randomBytes : g.quant[wRow];
        const xq = acts[xRow];
        assert.ok(wq !== undefined && xq !== undefined, key);
        const got: number = vecDot(n, bytesOf(wq), bytesOf(xq));
        const want = bitsF32(parseInt(wantHex, 16));
        assert.equal(f32Bits(got), f32Bits(want), `${name} dot ${key}: want ${want} got ${got}`);
      }
    });
  }
}

test("golden: activations quantized by our vecDotType quantizers match ggml", () => {
  for (const [name, acts] of Object.entries(golden.activations)) {
    const f = byName(name);
    if (f === undefined || f.quantizeRowRef === undefined) continue;
    for (const [row, b64] of Object.entries(acts)) {
      if (row === "random") continue;
      const want = bytesOf(b64);
      const got = new Uint8Array(want.length);
      f.quantizeRowRef(input(row), got, n);
      assert.deepEqual(got, want, `${name} ${row}`);
    }
  }
});
