import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { DEFAULT_SAMPLING, GREEDY, Rng, Sampler, type SamplingParams } from "../../src/runtime/sampler.js";
import { SlimError } from "../../src/errors.js";

function logitsFrom(values: number[]): Float32Array {
  return Float32Array.from(values);
}

function histogram(p: SamplingParams, logits: Float32Array, n: number): Map<number, number> {
  const s = new Sampler(p);
  const h = new Map<number, number>();
  for (let i = 0; i < n; i++) {
    const t = s.sample(logits);
    h.set(t, (h.get(t) ?? 0) + 1);
  }
  return h;
}

describe("sampler", () => {
  it("greedy picks the argmax (first on ties)", () => {
    const s = new Sampler(GREEDY);
    assert.equal(s.sample(logitsFrom([0.1, 3, -1, 3])), 1);
  });

  it("same seed, same draws; different seed, different draws", () => {
    const logits = logitsFrom(Array.from({ length: 1000 }, (_, i) => Math.sin(i) * 2));
    const p = { ...DEFAULT_SAMPLING, seed: 42, topK: 0, topP: 1, minP: 0 };
    const a = new Sampler(p);
    const b = new Sampler(p);
    const c = new Sampler({ ...p, seed: 43 });
    const ra = Array.from({ length: 50 }, () => a.sample(logits));
    const rb = Array.from({ length: 50 }, () => b.sample(logits));
    const rc = Array.from({ length: 50 }, () => c.sample(logits));
    assert.deepEqual(ra, rb);
    assert.notDeepEqual(ra, rc);
  });

  it("temperature 1 without filters draws from softmax(logits)", () => {
    const logits = logitsFrom([0, Math.log(2), Math.log(3), Math.log(4)]); // p = 0.1 0.2 0.3 0.4
    const h = histogram({ ...DEFAULT_SAMPLING, temperature: 1, topK: 0, topP: 1, minP: 0, seed: 1 }, logits, 20000);
    for (let i = 0; i < 4; i++) assert.ok(Math.abs((h.get(i) ?? 0) / 20000 - (i + 1) / 10) < 0.015, `token ${i}: ${h.get(i)}`);
  });

  it("top-k keeps only the k best", () => {
    const logits = logitsFrom([5, 4, 3, 2, 1, 0]);
    const h = histogram({ ...DEFAULT_SAMPLING, temperature: 5, topK: 2, topP: 1, minP: 0, seed: 3 }, logits, 2000);
    assert.deepEqual([...h.keys()].sort(), [0, 1]);
  });

  it("top-p keeps the smallest prefix reaching p", () => {
    const logits = logitsFrom([Math.log(0.5), Math.log(0.3), Math.log(0.15), Math.log(0.05)]);
    const h = histogram({ ...DEFAULT_SAMPLING, temperature: 1, topK: 0, topP: 0.8, minP: 0, seed: 4 }, logits, 3000);
    assert.deepEqual([...h.keys()].sort(), [0, 1]);
  });

  it("min-p drops tokens below minP * p_max", () => {
    const logits = logitsFrom([Math.log(0.5), Math.log(0.3), Math.log(0.04), Math.log(0.16)]);
    const h = histogram({ ...DEFAULT_SAMPLING, temperature: 1, topK: 0, topP: 1, minP: 0.1, seed: 5 }, logits, 3000);
    assert.deepEqual([...h.keys()].sort(), [0, 1, 3]);
  });

  it("repetition, presence and frequency penalties change greedy choices", () => {
    const logits = logitsFrom([2, 1.9, -1]);
    const rep = new Sampler({ ...GREEDY, repeatPenalty: 1.1 });
    rep.accept(0);
    assert.equal(rep.sample(logits), 1); // 2 / 1.1 < 1.9
    const freq = new Sampler({ ...GREEDY, frequencyPenalty: 0.06 });
    freq.accept(0);
    assert.equal(freq.sample(logits), 0); // 2 - 0.06 > 1.9
    freq.accept(0);
    assert.equal(freq.sample(logits), 1); // 2 - 0.12 < 1.9
    const pres = new Sampler({ ...GREEDY, presencePenalty: 0.2 });
    pres.accept(0);
    pres.accept(0);
    assert.equal(pres.sample(logits), 1);
  });

  it("the penalty window forgets old tokens", () => {
    const s = new Sampler({ ...GREEDY, repeatPenalty: 2, penaltyLastN: 2 });
    s.accept(0);
    s.accept(2);
    s.accept(2);
    assert.equal(s.sample(logitsFrom([2, 1.5, 0])), 0);
  });

  it("rejects out-of-range parameters with a typed error", () => {
    for (const bad of [{ temperature: -1 }, { topP: 0 }, { topP: 1.5 }, { minP: 2 }, { topK: -1 }, { presencePenalty: 3 }, { temperature: NaN }, { seed: -1 }]) {
      assert.throws(() => new Sampler({ ...DEFAULT_SAMPLING, ...bad }), SlimError);
    }
  });

  it("Rng is uniform enough and deterministic", () => {
    const r = new Rng(123);
    let sum = 0;
    for (let i = 0; i < 100000; i++) sum += r.next();
    assert.ok(Math.abs(sum / 100000 - 0.5) < 0.01);
    assert.equal(new Rng(9).next(), new Rng(9).next());
  });
});
