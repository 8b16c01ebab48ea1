/**
 * The lane backend: every thread count and both kernel sets compute the same logits; batches of
 * several sequences equal the sequences run one by one; chunked prefill equals one pass.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Engine } from "../../src/runtime/engine.js";
import { STORIES_GGUF, argmax } from "../helpers/slimlm.js";

const PROMPT = [1, 403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315];

function maxRelDiff(a: Float32Array, b: Float32Array): number {
  let scale = 0;
  let diff = 0;
  for (let i = 0; i < a.length; i++) {
    scale = Math.max(scale, Math.abs(a[i]!));
    diff = Math.max(diff, Math.abs(a[i]! - b[i]!));
  }
  return diff / scale;
}

/** Logits after the prompt, then after 3 greedy steps. */
function trace(engine: Engine): Float32Array[] {
  const seq = engine.newSequence();
  const out: Float32Array[] = [];
  let logits = engine.evaluate(seq, PROMPT);
  for (let i = 0; i < 4; i++) {
    out.push(logits.slice());
    if (i < 3) logits = engine.evaluate(seq, [argmax(logits)]);
  }
  seq.release();
  return out;
}

describe("lane backend", () => {
  let reference: Float32Array[];
  before(async () => {
    const e = await Engine.load(STORIES_GGUF, { threads: 1, kernels: "ref", contextSize: 128 });
    reference = trace(e);
    await e.close();
  });

  // 3 lanes: 4 KV heads do not divide evenly (rows split evenly, heads gathered); 5 lanes: one lane holds no KV head.
  for (const [threads, kernels] of [[1, "wasm"], [2, "wasm"], [3, "wasm"], [5, "wasm"], [2, "ref"], [3, "ref"]] as const) {
    it(`${threads} lane(s), ${kernels} kernels: logits match the 1-lane reference`, async () => {
      const e = await Engine.load(STORIES_GGUF, { threads, kernels, contextSize: 128 });
      try {
        const t = trace(e);
        for (let i = 0; i < t.length; i++) assert.ok(maxRelDiff(t[i]!, reference[i]!) < 1e-4, `step ${i}: ${maxRelDiff(t[i]!, reference[i]!)}`);
      } finally {
        await e.close();
      }
    });
  }

  describe("batches", () => {
    let engine: Engine;
    before(async () => {
      engine = await Engine.load(STORIES_GGUF, { threads: 2, contextSize: 128, maxSeqs: 3, maxBatchTokens: 64 });
    });
    after(() => engine.close());

    it("prefill in small chunks equals one pass", async () => {
      const small = await Engine.load(STORIES_GGUF, { threads: 2, contextSize: 128, maxBatchTokens: 5 });
      try {
        const a = small.evaluate(small.newSequence(), PROMPT).slice();
        const b = engine.evaluate(engine.newSequence(), PROMPT).slice();
        assert.ok(maxRelDiff(a, b) < 1e-5);
      } finally {
        await small.close();
      }
    });

    it("three sequences in one forward pass equal each run alone", () => {
      const prompts = [PROMPT.slice(0, 5), PROMPT.slice(0, 9), [1, 300, 301]];
      const alone = prompts.map((p) => {
        const s = engine.newSequence();
        const l = engine.evaluate(s, p).slice();
        s.release();
        return l;
      });
      // all prompts in one batch: tokens of every sequence, one output row per sequence
      const seqs = prompts.map(() => engine.newSequence());
      const tokens: number[] = [];
      const positions: number[] = [];
      const seqOf: number[] = [];
      const outputRows: number[] = [];
      prompts.forEach((p, s) => {
        seqs[s]!.reserve(p.length);
        p.forEach((t, i) => {
          tokens.push(t);
          positions.push(i);
          seqOf.push(s);
        });
        outputRows.push(tokens.length - 1);
      });
      const logits = engine.forward({ tokens, positions, seqOf, blockTables: seqs.map((s) => s.blockTable), outputRows });
      const V = engine.config.vocabSize;
      prompts.forEach((_, s) => assert.ok(maxRelDiff(logits.subarray(s * V, (s + 1) * V), alone[s]!) < 1e-5, `sequence ${s}`));
      for (const s of seqs) s.release();
    });
  });
});
