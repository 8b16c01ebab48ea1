/**
 * Every backward op against central finite differences, in float64, and the whole model's
 * gradients on a tiny configuration (GQA, tied and untied, llama and qwen2 RoPE, CE and KL).
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Attention } from "../../src/train/ops/attention.js";
import { refMatmul } from "../../src/train/ops/matmul.js";
import { TrainableLlama, type TrainShape } from "../../src/train/ops/llama-train.js";
import {
  crossEntropy,
  klDivergence,
  rmsnormBackward,
  rmsnormForward,
  rope,
  ropeTable,
  swigluBackward,
  swigluForward,
} from "../../src/train/ops/tensor-ops.js";

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32 - 0.5;
  };
}

function randn(n: number, r: () => number, scale = 1): Float64Array {
  return Float64Array.from({ length: n }, () => r() * 2 * scale);
}

/**
 * Check d(sum(out * w))/d(in) for every input element: `run` maps inputs to outputs, `grad`
 * writes input gradients given dOut = w.
 */
function check(inputs: Float64Array[], run: (ins: Float64Array[]) => Float64Array, grad: (ins: Float64Array[], dOut: Float64Array) => Float64Array[], tol = 1e-6): void {
  const r = rng(99);
  const out0 = run(inputs);
  const w = randn(out0.length, r);
  const loss = (): number => run(inputs).reduce((s, v, i) => s + v * w[i]!, 0);
  const analytic = grad(inputs, w);
  const eps = 1e-6;
  inputs.forEach((x, k) => {
    for (let i = 0; i < x.length; i++) {
      const old = x[i]!;
      x[i] = old + eps;
      const lp = loss();
      x[i] = old - eps;
      const lm = loss();
      x[i] = old;
      const num = (lp - lm) / (2 * eps);
      const an = analytic[k]![i]!;
      assert.ok(Math.abs(num - an) <= tol * Math.max(1, Math.abs(num)), `input ${k}[${i}]: numeric ${num} analytic ${an}`);
    }
  });
}

describe("backward ops vs finite differences (float64)", () => {
  const r = rng(1);

  it("matmul: abT, ab, aTb", () => {
    const [M, N, K] = [3, 4, 5];
    const a = randn(M * K, r);
    const b = randn(N * K, r);
    // y = a b^T ; dA = dY b ; dB = dY^T a
    check([a, b], ([a, b]) => {
      const c = new Float64Array(M * N);
      refMatmul.abT(c, a!, b!, M, N, K, false);
      return c;
    }, ([a, b], dY) => {
      const da = new Float64Array(M * K);
      const db = new Float64Array(N * K);
      refMatmul.ab(da, dY, b!, M, K, N, false);
      refMatmul.aTb(db, dY, a!, N, K, M, false);
      return [da, db];
    });
  });

  it("rmsnorm", () => {
    const [N, D] = [3, 6];
    const x = randn(N * D, r);
    const w = randn(D, r);
    const rstd = new Float64Array(N);
    check([x, w], ([x, w]) => {
      const out = new Float64Array(N * D);
      rmsnormForward(out, rstd, x!, w!, N, D, 1e-5);
      return out;
    }, ([x, w], dY) => {
      const dx = new Float64Array(N * D);
      const dw = new Float64Array(D);
      rmsnormForward(new Float64Array(N * D), rstd, x!, w!, N, D, 1e-5);
      rmsnormBackward(dx, dw, dY, x!, w!, rstd, N, D);
      return [dx, dw];
    });
  });

  it("swiglu", () => {
    const n = 20;
    const g = randn(n, r, 3);
    const u = randn(n, r);
    check([g, u], ([g, u]) => {
      const out = new Float64Array(n);
      swigluForward(out, g!, u!, n);
      return out;
    }, ([g, u], dY) => {
      const dg = new Float64Array(n);
      const du = new Float64Array(n);
      swigluBackward(dg, du, dY, g!, u!, n);
      return [dg, du];
    });
  });

  for (const neox of [false, true]) {
    it(`rope (${neox ? "neox" : "normal"} pairs, partial rotation)`, () => {
      const [B, T, H, hd, nRot] = [2, 5, 2, 8, 6];
      const tbl = ropeTable(T, nRot, 10000);
      const x = randn(B * T * H * hd, r);
      check([x], ([x]) => {
        const y = Float64Array.from(x!);
        rope(y, B, T, H, hd, nRot, neox, tbl);
        return y;
      }, (_ins, dY) => {
        const dx = Float64Array.from(dY);
        rope(dx, B, T, H, hd, nRot, neox, tbl, true);
        return [dx];
      });
    });
  }

  it("causal grouped-query attention", () => {
    const s = { B: 2, T: 5, H: 4, Hk: 2, hd: 3, scale: 0.4 };
    const attn = new Attention(s, refMatmul, (n) => new Float64Array(n));
    const q = randn(s.B * s.T * s.H * s.hd, r);
    const k = randn(s.B * s.T * s.Hk * s.hd, r);
    const v = randn(s.B * s.T * s.Hk * s.hd, r);
    const probs = new Float64Array(s.B * s.H * s.T * s.T);
    check([q, k, v], ([q, k, v]) => {
      const out = new Float64Array(q!.length);
      attn.forward(out, probs, q!, k!, v!);
      return out;
    }, ([q, k, v], dY) => {
      attn.forward(new Float64Array(q!.length), probs, q!, k!, v!);
      const dq = new Float64Array(q!.length);
      const dk = new Float64Array(k!.length);
      const dv = new Float64Array(v!.length);
      attn.backward(dq, dk, dv, dY, probs, q!, k!, v!);
      return [dq, dk, dv];
    });
  });

  it("cross-entropy and temperature-scaled KL divergence", () => {
    const [N, V] = [3, 7];
    const z = randn(N * V, r, 2);
    const teacher = randn(N * V, r, 2);
    const targets = [1, 6, 0];
    const fd = (f: () => number, x: Float64Array, i: number): number => {
      const old = x[i]!;
      x[i] = old + 1e-6;
      const a = f();
      x[i] = old - 1e-6;
      const b = f();
      x[i] = old;
      return (a - b) / 2e-6;
    };
    const dz = new Float64Array(N * V);
    const loss = (): number => crossEntropy(new Float64Array(N * V), z, targets, N, V, 0.3) * 0.3 + klDivergence(new Float64Array(N * V), z, teacher, N, V, 2.5, 0.7) * 0.7;
    crossEntropy(dz, z, targets, N, V, 0.3);
    klDivergence(dz, z, teacher, N, V, 2.5, 0.7);
    for (let i = 0; i < N * V; i++) assert.ok(Math.abs(fd(loss, z, i) - dz[i]!) < 1e-7, `logit ${i}`);
  });
});

describe("whole model gradients vs finite differences (float64, tiny config)", () => {
  const base: TrainShape = { arch: "llama", vocabSize: 11, dim: 8, nLayers: 2, nHeads: 4, nKvHeads: 2, ffnDim: 12, normEps: 1e-5, ropeTheta: 10000, tiedEmbeddings: false };
  for (const [label, shape, distill] of [
    ["llama, untied, CE", base, false],
    ["llama, tied, CE + KL", { ...base, tiedEmbeddings: true }, true],
    ["qwen2 rope, CE + KL", { ...base, arch: "qwen2", nKvHeads: 1 }, true],
  ] as const) {
    it(label, () => {
      const [B, T] = [2, 4];
      const m = new TrainableLlama(shape, B, T, refMatmul, (n) => new Float64Array(n));
      const r = rng(7);
      m.params.set(randn(m.numParams, r, 0.5));
      const ids = Array.from({ length: B * T }, (_, i) => (i * 5 + 3) % shape.vocabSize);
      const targets = Array.from({ length: B * T }, (_, i) => (i * 7 + 1) % shape.vocabSize);
      const teacher = distill ? { logits: randn(B * T * shape.vocabSize, r, 2), alpha: 0.6, temperature: 2 } : undefined;
      const spec = { targets, ...(teacher === undefined ? {} : { teacher }) };
      const lossAt = (): number => {
        m.forward(ids);
        m.zeroGrads();
        return m.backward(spec).loss;
      };
      lossAt();
      const analytic = Float64Array.from(m.grads);
      // every parameter of a tiny model
      let worst = 0;
      for (let i = 0; i < m.numParams; i++) {
        const old = m.params[i]!;
        m.params[i] = old + 1e-5;
        const a = lossAt();
        m.params[i] = old - 1e-5;
        const b = lossAt();
        m.params[i] = old;
        const num = (a - b) / 2e-5;
        const err = Math.abs(num - analytic[i]!) / Math.max(1e-3, Math.abs(num) + Math.abs(analytic[i]!));
        worst = Math.max(worst, err);
        assert.ok(err < 1e-5, `param ${i}: numeric ${num}, analytic ${analytic[i]}`);
      }
      assert.ok(m.numParams > 500);
    });
  }
});
