/** The SLIMLM_VALIDATE_KERNELS=1 wrapper: passes correct kernels, catches wrong ones. */

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { InternalError } from "../../src/errors.js";
import {
  activationRowBytes,
  createKernels,
  createRefKernels,
  instantiateKernels,
  loadKernelModule,
  packRows,
  packedBytes,
  validatingKernels,
  type KernelSet,
} from "../../src/kernels/index.js";
import { GgmlType } from "../../src/tensor/ggml-type.js";
import { getFormat } from "../../src/tensor/registry.js";
import { rowBytes } from "../../src/tensor/format.js";
import { Arena, gaussian, laneMemory, rng } from "./helpers.js";

const memory = laneMemory();
const arena = new Arena(memory);
const { module } = await loadKernelModule({ relaxed: "off" });
const fast = instantiateKernels(module, memory);
const ref = createRefKernels(memory);

/** A Q4_0 matmul problem in memory: rows x k weights, T activation rows already quantized. */
function q4Problem(rows: number, k: number, T: number) {
  arena.reset();
  const r = rng(1);
  const f = getFormat(GgmlType.Q4_0);
  const rb = rowBytes(f, k);
  const wb = new Uint8Array(rows * rb);
  const q = f.quantizeRowRef;
  assert.ok(q !== undefined);
  for (let i = 0; i < rows; i++) q(gaussian(r, k), wb.subarray(i * rb, (i + 1) * rb), k);
  const packed = new Uint8Array(packedBytes(GgmlType.Q4_0, rows, k));
  packRows(GgmlType.Q4_0, wb, rows, k, packed);
  const w = arena.alloc(packed.length, 1);
  arena.writeBytes(w, packed);
  const x = arena.f32(gaussian(r, T * k));
  const xq = arena.alloc(T * activationRowBytes(GgmlType.Q4_0, k), 3);
  ref.quantizeActivations(GgmlType.Q4_0, x, xq, k, T);
  const ldy = rows + 2;
  const y = arena.f32(new Float32Array(T * ldy).fill(7), 4);
  return { w, x, xq, y, ldy };
}

function expectKernelError(fn: () => void, pattern: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof InternalError, `expected InternalError, got ${String(e)}`);
    assert.match(e.message, pattern);
    assert.match(e.message, /max abs diff/);
    assert.match(e.message, /first mismatch/);
    return true;
  });
}

describe("validating kernels", () => {
  it("accepts the wasm kernels and leaves the fast result in memory", () => {
    const v = validatingKernels(fast, ref, memory);
    const rows = 33;
    const k = 256;
    const T = 3;
    const p = q4Problem(rows, k, T);
    v.matmul(GgmlType.Q4_0, p.w, p.xq, p.y, rows, k, T, p.ldy);
    const viaWrapper = arena.readBytes(p.y, 4 * T * p.ldy);
    fast.matmul(GgmlType.Q4_0, p.w, p.xq, p.y, rows, k, T, p.ldy);
    assert.deepEqual(viaWrapper, arena.readBytes(p.y, 4 * T * p.ldy));

    // the other kernels pass too
    const r = rng(2);
    const n = 67;
    const a = arena.f32(gaussian(r, 2 * n), 4);
    const b = arena.f32(gaussian(r, n), 8);
    const out = arena.f32(new Float32Array(2 * n), 12);
    v.quantizeActivations(GgmlType.F16, a, out, n, 2);
    v.rmsnorm(a, b, out, n, 2, 1e-5);
    v.swiglu(a, b, out, n);
    v.add(a, b, out, n);
    v.addBias(a, b, n - 5, 2, n);
    const cs = arena.f32(new Float32Array(2 * 16).fill(0.6), 4);
    v.rope(a, cs, 2, 2, 32, 16, n, true);
    const kv = arena.f32(gaussian(r, 4 * 2 * 8 * 16), 4);
    const bt = arena.alloc(16, 4);
    new Int32Array(memory.buffer, bt, 4).set([3, 0, 2, 1]);
    const att = arena.f32(new Float32Array(4 * 16), 4);
    const scratch = arena.f32(new Float32Array(30), 4);
    v.attention(a, att, kv, kv, bt, 30, 4, 2, 16, 8, 0.25, scratch, "f32");
  });

  it("throws InternalError naming the kernel when a matmul output is wrong", () => {
    const rows = 17;
    const k = 512;
    const T = 2;
    const p = q4Problem(rows, k, T);
    const broken: KernelSet = {
      ...fast,
      name: "broken",
      matmul(type, w, xq, y, r, kk, t, ldy) {
        fast.matmul(type, w, xq, y, r, kk, t, ldy);
        const f = new Float32Array(memory.buffer, y, t * ldy);
        f[ldy + 5] = (f[ldy + 5] ?? 0) + 0.5; // token 1, row 5: off by ~1% of sum|w x|
      },
    };
    const v = validatingKernels(broken, ref, memory);
    expectKernelError(() => v.matmul(GgmlType.Q4_0, p.w, p.xq, p.y, rows, k, T, p.ldy), /broken\.matmul\(q4_0.*element 24 of region 0/);
    // the (wrong) fast result is what stays in memory
    const y = new Float32Array(memory.buffer, p.y, T * p.ldy);
    const again = arena.f32(new Float32Array(T * p.ldy).fill(7), 4);
    broken.matmul(GgmlType.Q4_0, p.w, p.xq, again, rows, k, T, p.ldy);
    assert.deepEqual(y.slice(), new Float32Array(memory.buffer, again, T * p.ldy).slice());
  });

  it("catches writes outside the declared outputs", () => {
    const rows = 5;
    const k = 64;
    const T = 2;
    const p = q4Problem(rows, k, T);
    const stray: KernelSet = {
      ...fast,
      name: "stray",
      matmul(type, w, xq, y, r, kk, t, ldy) {
        fast.matmul(type, w, xq, y, r, kk, t, ldy);
        new Float32Array(memory.buffer, y, ldy)[r] = 0; // column `rows` of token 0: another lane's
      },
    };
    expectKernelError(
      () => validatingKernels(stray, ref, memory).matmul(GgmlType.Q4_0, p.w, p.xq, p.y, rows, k, T, p.ldy),
      /not an output but the fast kernel changed it/,
    );
  });

  it("compares quantizeActivations byte for byte", () => {
    arena.reset();
    const k = 256;
    const x = arena.f32(gaussian(rng(4), k));
    const dst = arena.alloc(activationRowBytes(GgmlType.Q6_K, k), 1);
    const flip: KernelSet = {
      ...fast,
      name: "flip",
      quantizeActivations(type, xp, d, kk, T) {
        fast.quantizeActivations(type, xp, d, kk, T);
        const b = new Uint8Array(memory.buffer, d + 100, 1);
        b[0] = ((b[0] ?? 0) + 1) & 0xff;
      },
    };
    expectKernelError(
      () => validatingKernels(flip, ref, memory).quantizeActivations(GgmlType.Q6_K, x, dst, k, 1),
      /flip\.quantizeActivations\(q6_k.*byte 100/,
    );
  });

  it("catches a wrong GQA head mapping in attention", () => {
    arena.reset();
    const r = rng(5);
    const nHeads = 4;
    const nKv = 2;
    const hd = 16;
    const bs = 4;
    const nKeys = 10;
    const q = arena.f32(gaussian(r, nHeads * hd));
    const kc = arena.f32(gaussian(r, 3 * nKv * bs * hd));
    const vc = arena.f32(gaussian(r, 3 * nKv * bs * hd));
    const bt = arena.alloc(12, 4);
    new Int32Array(memory.buffer, bt, 3).set([2, 0, 1]);
    const out = arena.f32(new Float32Array(nHeads * hd));
    const scratch = arena.f32(new Float32Array(nKeys));
    const wrong: KernelSet = {
      ...fast,
      name: "wrong-gqa",
      attention(qq, o, k, v, b, n, nh, nkv, d, bsz, s, sc, kt) {
        // bug: query head h reads KV head h % nKv (interleaved instead of grouped), emulated
        // by running the real kernel head by head on a shifted pool with a 1-head stride
        for (let h = 0; h < nh; h++) {
          const kOff = (h % nkv) * bsz * d * 4;
          fast.attention(qq + h * d * 4, o + h * d * 4, k + kOff, v + kOff, b, n, 1, 1, d, bsz, s, sc, kt);
        }
      },
    };
    expectKernelError(
      () => validatingKernels(wrong, ref, memory).attention(q, out, kc, vc, bt, nKeys, nHeads, nKv, hd, bs, 0.25, scratch, "f32"),
      /wrong-gqa\.attention/,
    );
  });

  it("createKernels wraps the wasm kernels only when SLIMLM_VALIDATE_KERNELS=1", () => {
    const saved = process.env.SLIMLM_VALIDATE_KERNELS;
    try {
      delete process.env.SLIMLM_VALIDATE_KERNELS;
      assert.equal(createKernels(module, memory).name, "wasm-simd");
      process.env.SLIMLM_VALIDATE_KERNELS = "1";
      assert.equal(createKernels(module, memory).name, "validated(wasm-simd)");
    } finally {
      if (saved === undefined) delete process.env.SLIMLM_VALIDATE_KERNELS;
      else process.env.SLIMLM_VALIDATE_KERNELS = saved;
    }
  });
});
