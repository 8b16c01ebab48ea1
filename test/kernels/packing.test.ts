/**
 * Packed weight layouts (src/kernels/packing.ts): sizes, round trips (packRows then unpackRow
 * gives the GGUF bytes back) for every computed type and awkward row counts and k, zero padding,
 * unaligned views, and spot checks of the documented byte positions.
 */

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { COMPUTED_TYPES, PACK_ROWS, packRows, packedBytes, packedGroupBytes, unpackRow, wasmInterleaver } from "../../src/kernels/index.js";
import { GgmlType, ggmlTypeName } from "../../src/tensor/ggml-type.js";
import { getFormat } from "../../src/tensor/registry.js";
import { rowBytes } from "../../src/tensor/format.js";
import { q5_0ToQ8_0 } from "../../src/runtime/backend/load.js";
import { gaussian, rng } from "./helpers.js";

function kValues(type: GgmlType): number[] {
  const bs = getFormat(type).blockSize;
  if (bs === 256) return [256, 512, 768, 1536];
  if (bs === 32) return [32, 64, 96, 576, 160];
  return [1, 2, 3, 7, 8, 13, 576];
}

const ROWS = [1, 2, 3, 4, 5, 7, 8, 17, 33, 255];

function randomRows(type: GgmlType, rows: number, k: number, seed: number): Uint8Array {
  const r = rng(seed);
  const out = new Uint8Array(rows * rowBytes(getFormat(type), k));
  for (let i = 0; i < out.length; i++) out[i] = 1 + Math.floor(r() * 255); // never 0: padding shows
  return out;
}

const round16 = (n: number): number => Math.ceil(n / 16) * 16;

describe("packing", () => {
  it("packedBytes: whole groups of 4 rows, groups multiples of 16 bytes", () => {
    for (const type of COMPUTED_TYPES) {
      const f = getFormat(type);
      for (const k of kValues(type)) {
        const gb = packedGroupBytes(type, k);
        assert.equal(gb % 16, 0, `${f.name} k=${k}`);
        assert.ok(gb >= PACK_ROWS * rowBytes(f, k) && gb < PACK_ROWS * rowBytes(f, k) + 16, `${f.name} k=${k}: ${gb}`);
        for (const rows of ROWS) assert.equal(packedBytes(type, rows, k), Math.ceil(rows / 4) * gb);
      }
    }
    assert.equal(packedGroupBytes(GgmlType.F32, 7), 7 * 16);
    assert.equal(packedGroupBytes(GgmlType.F16, 7), round16(7 * 8));
    assert.equal(packedGroupBytes(GgmlType.Q8_0, 96), 32 + 3 * 128);
    assert.equal(packedGroupBytes(GgmlType.Q4_0, 576), 144 + 18 * 64);
    assert.equal(packedGroupBytes(GgmlType.Q4_K, 512), 2 * 576);
    assert.equal(packedGroupBytes(GgmlType.Q6_K, 768), 32 + 3 * 832);
    assert.equal(packedBytes(GgmlType.Q8_0, 0, 64), 0);
  });

  for (const type of COMPUTED_TYPES) {
    it(`${ggmlTypeName(type)}: unpackRow(packRows(rows)) gives every GGUF row back; padding is zero`, () => {
      const f = getFormat(type);
      let seed = 1000 * type;
      for (const k of kValues(type)) {
        for (const rows of ROWS) {
          const rb = rowBytes(f, k);
          const src = randomRows(type, rows, k, ++seed);
          const packed = new Uint8Array(packedBytes(type, rows, k)).fill(0xee);
          packRows(type, src, rows, k, packed);
          const row = new Uint8Array(rb);
          for (let r = 0; r < rows; r++) {
            unpackRow(type, packed, r, k, row);
            assert.deepEqual(row, src.subarray(r * rb, (r + 1) * rb), `${f.name} k=${k} rows=${rows}: row ${r}`);
          }
          // rows of the last group past `rows` unpack to zeros
          for (let r = rows; r < Math.ceil(rows / 4) * 4; r++) {
            unpackRow(type, packed, r, k, row);
            assert.ok(row.every((b) => b === 0), `${f.name} k=${k} rows=${rows}: padding row ${r}`);
          }
          // every byte is either some row's byte or zero padding: the multiset of non-zero bytes matches
          let nonZero = 0;
          for (const b of packed) if (b !== 0) nonZero++;
          let srcNonZero = 0;
          for (const b of src) if (b !== 0) srcNonZero++;
          assert.equal(nonZero, srcNonZero, `${f.name} k=${k} rows=${rows}: stray bytes in the packed slice`);
        }
      }
    });
  }

  it("works on unaligned views (odd byteOffsets) and inside a larger buffer", () => {
    for (const type of COMPUTED_TYPES) {
      const f = getFormat(type);
      const k = kValues(type)[1]!;
      const rows = 9;
      const rb = rowBytes(f, k);
      const src = randomRows(type, rows, k, 77 + type);
      const srcBuf = new Uint8Array(src.length + 3);
      srcBuf.set(src, 1);
      const n = packedBytes(type, rows, k);
      const aligned = new Uint8Array(n);
      packRows(type, src, rows, k, aligned);
      const dstBuf = new Uint8Array(n + 10).fill(0x55);
      packRows(type, srcBuf.subarray(1, 1 + src.length), rows, k, dstBuf.subarray(3, 3 + n));
      assert.deepEqual(dstBuf.subarray(3, 3 + n), aligned, `${f.name}: odd offsets`);
      assert.ok(dstBuf.subarray(0, 3).every((b) => b === 0x55) && dstBuf.subarray(3 + n).every((b) => b === 0x55), `${f.name}: wrote outside dst`);
      const row = new Uint8Array(rb + 1);
      unpackRow(type, dstBuf.subarray(3, 3 + n), 6, k, row.subarray(1));
      assert.deepEqual(row.subarray(1), src.subarray(6 * rb, 7 * rb));
    }
  });

  it("puts bytes where packing.ts documents them", () => {
    // F32: element i of row r at 16 i + 4 r
    const k = 5;
    const f32 = new Float32Array(3 * k).map((_, i) => i + 1);
    const p32 = new Uint8Array(packedBytes(GgmlType.F32, 3, k));
    packRows(GgmlType.F32, new Uint8Array(f32.buffer), 3, k, p32);
    const v32 = new Float32Array(p32.buffer);
    assert.equal(v32[(16 * 2 + 4 * 1) / 4], f32[1 * k + 2]);
    assert.equal(v32[(16 * 4 + 4 * 3) / 4], 0);
    // Q8_0, k = 64 (nb = 2, S = 16): d of block 1, row 2 at 8 + 4; qs byte 5 of block 1, row 3 at 16 + 128 + 8*2 + 2*3 + 1
    const q8 = getFormat(GgmlType.Q8_0);
    const src = new Uint8Array(4 * rowBytes(q8, 64)).map((_, i) => (i % 251) + 1);
    const pq = new Uint8Array(packedBytes(GgmlType.Q8_0, 4, 64));
    packRows(GgmlType.Q8_0, src, 4, 64, pq);
    const rb = rowBytes(q8, 64);
    assert.equal(pq[8 + 4], src[2 * rb + 34]);
    assert.equal(pq[16 + 128 + 16 + 6 + 1], src[3 * rb + 34 + 2 + 5]);
    // Q4_K: qs byte 37 of superblock 0, row 1 at 64 + 16 * 9 + 4 + 1
    const q4k = getFormat(GgmlType.Q4_K);
    const sk = new Uint8Array(4 * rowBytes(q4k, 256)).map((_, i) => (i % 253) + 1);
    const pk = new Uint8Array(packedBytes(GgmlType.Q4_K, 4, 256));
    packRows(GgmlType.Q4_K, sk, 4, 256, pk);
    assert.equal(pk[64 + 16 * 9 + 4 + 1], sk[144 + 16 + 37]);
  });

  it("Q5_0 rows convert exactly to Q8_0 at load (same values, so the same integer dots)", () => {
    const q5 = getFormat(GgmlType.Q5_0);
    const q8 = getFormat(GgmlType.Q8_0);
    const n = 32 * 40;
    const src = new Uint8Array(rowBytes(q5, n));
    q5.quantizeRowRef!(gaussian(rng(3), n, 2), src, n);
    const dst = new Uint8Array(rowBytes(q8, n));
    q5_0ToQ8_0(src, dst, n / 32);
    const a = new Float32Array(n);
    const b = new Float32Array(n);
    q5.dequantizeRow(src, a, n);
    q8.dequantizeRow(dst, b, n);
    assert.deepEqual(b, a);
    for (let i = 0; i < n / 32; i++) for (let j = 2; j < 34; j++) assert.ok(((dst[i * 34 + j]! << 24) >> 24) >= -16 && ((dst[i * 34 + j]! << 24) >> 24) <= 15);
  });

  it("the WebAssembly interleave (loader fast path) packs exactly like the TypeScript one", () => {
    const memory = new WebAssembly.Memory({ initial: 256, maximum: 1024, shared: true });
    const fast = wasmInterleaver(memory);
    assert.ok(fast !== undefined, "kernel module missing: run npm run build");
    const u8 = new Uint8Array(memory.buffer);
    for (const type of COMPUTED_TYPES) {
      const f = getFormat(type);
      for (const k of kValues(type)) {
        for (const rows of [1, 4, 5, 8, 13]) {
          const rb = rowBytes(f, k);
          const src = randomRows(type, rows, k, 500 + rows + type);
          const want = new Uint8Array(packedBytes(type, rows, k));
          packRows(type, src, rows, k, want);
          const s0 = 1 << 16;
          const d0 = s0 + ((rows * rb + 63) & ~63) + 16;
          u8.set(src, s0);
          u8.fill(0xee, d0, d0 + want.length);
          packRows(type, u8.subarray(s0, s0 + rows * rb), rows, k, u8.subarray(d0, d0 + want.length), fast);
          assert.deepEqual(u8.subarray(d0, d0 + want.length), want, `${f.name} k=${k} rows=${rows}`);
        }
      }
    }
  });
});
