/**
 * Random-weight models with real grouped-query shapes, written by our GGUF writer, against
 * llama.cpp (node-llama-cpp 3.21.1, F32 KV, no flash attention) in the same run.
 *
 * - F32 and F16: greedy tokens identical for 64 steps.
 * - Quantized: llama.cpp rounds activations to 8 bits as we do, so teacher-forced top-1 agreement
 *   must be >= 95%; every disagreement is reported with llama.cpp's probability gap.
 * The vocabulary is the 32000-token Llama 2 one copied from llama-2-tiny-random.gguf.
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { type SynthShape, synthesize } from "../../src/bench/synth.js";
import { openGguf } from "../../src/formats/gguf/index.js";
import type { Metadata } from "../../src/formats/metadata.js";
import { Engine } from "../../src/runtime/engine.js";
import { GgmlType, ggmlTypeName } from "../../src/tensor/ggml-type.js";
import { loadLlamaCpp } from "../helpers/llama-cpp.js";
import { SHARED, greedyIds, teacherForcedArgmax } from "../helpers/slimlm.js";

const BASE = { contextLength: 2048, rmsEps: 1e-5, vocabSize: 32000 } as const;
/** SmolLM2-135M's attention and FFN shapes (dim 576, 9 heads, 3 KV heads, FFN 1536), 4 layers. */
const SMOLLM2_GQA: SynthShape = { ...BASE, arch: "llama", dim: 576, nLayers: 4, nHeads: 9, nKvHeads: 3, ffnDim: 1536, ropeTheta: 100000, tiedEmbeddings: true, qkvBias: false };
/** Qwen2: q/k/v biases and NEOX RoPE. */
const QWEN2_MINI: SynthShape = { ...BASE, arch: "qwen2", dim: 256, nLayers: 2, nHeads: 8, nKvHeads: 2, ffnDim: 512, ropeTheta: 1000000, rmsEps: 1e-6, tiedEmbeddings: true, qkvBias: true };
/** Llama 3 rope scaling (rope_freqs.weight), untied output; row lengths fit the K-quants. */
const LLAMA3_MINI: SynthShape = {
  ...BASE, arch: "llama", dim: 256, nLayers: 2, nHeads: 8, nKvHeads: 2, ffnDim: 768, ropeTheta: 500000, tiedEmbeddings: false, qkvBias: false,
  llama3Rope: { factor: 32, lowFreqFactor: 1, highFreqFactor: 4, originalContext: 256 },
};

const PROMPT = "Once upon a time, in a small village by the sea, there lived an old fisherman who";
const STEPS = 64;

describe("random-weight models vs llama.cpp", () => {
  let dir: string;
  let vocab: Metadata;
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "slimlm-synth-"));
    const f = openGguf(path.join(SHARED, "models/llama-2-tiny-random.gguf"));
    vocab = f.metadata;
    f.weights.close();
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  async function compare(name: string, shape: SynthShape, type: GgmlType, mode: "greedy" | "teacher", threads = 2): Promise<void> {
    const file = path.join(dir, `${name}-${ggmlTypeName(type)}.gguf`);
    synthesize({ shape, type, seed: 7, out: file, tokenizerFrom: vocab });
    const ref = await loadLlamaCpp(file, { contextSize: 256 });
    const engine = await Engine.load(file, { threads, contextSize: 256 });
    try {
      const promptIds = [1, ...ref.tokenize(PROMPT)];
      assert.deepEqual(engine.tokenizer.encode(PROMPT, { addSpecial: true }), promptIds);
      const expected = await ref.greedy(promptIds, STEPS);
      if (mode === "greedy") {
        assert.deepEqual(greedyIds(engine, promptIds, STEPS), expected);
        return;
      }
      const ids = [...promptIds, ...expected];
      const theirs = await ref.teacherForced(ids, promptIds.length);
      const ours = teacherForcedArgmax(engine, ids, promptIds.length);
      let agree = 0;
      const report: string[] = [];
      for (let i = 0; i < ours.length; i++) {
        const t = theirs[i]!;
        if (ours[i] === t.argmax) agree++;
        else report.push(`step ${i}: llama.cpp ${t.argmax} (p=${t.p1.toFixed(4)}), ours ${ours[i]} (llama.cpp p=${(t.probs.get(ours[i]!) ?? 0).toFixed(4)})`);
      }
      const rate = agree / ours.length;
      if (report.length > 0) console.log(`${name} ${ggmlTypeName(type)}: ${(rate * 100).toFixed(1)}% top-1 agreement; ${report.join("; ")}`);
      assert.ok(rate >= 0.95, `top-1 agreement ${(rate * 100).toFixed(1)}% < 95%`);
    } finally {
      await engine.close();
      await ref.dispose();
      fs.rmSync(file, { force: true });
    }
  }

  it("SmolLM2-135M shapes, F32: 64 greedy tokens identical", () => compare("smollm2", SMOLLM2_GQA, GgmlType.F32, "greedy"));
  it("SmolLM2-135M shapes, F16: 64 greedy tokens identical", () => compare("smollm2", SMOLLM2_GQA, GgmlType.F16, "greedy"));
  it("SmolLM2-135M shapes, Q8_0: >= 95% teacher-forced top-1 agreement", () => compare("smollm2", SMOLLM2_GQA, GgmlType.Q8_0, "teacher"));
  it("SmolLM2-135M shapes, Q4_0: >= 95% teacher-forced top-1 agreement", () => compare("smollm2", SMOLLM2_GQA, GgmlType.Q4_0, "teacher"));
  it("SmolLM2-135M shapes, F32, 1 thread", () => compare("smollm2", SMOLLM2_GQA, GgmlType.F32, "greedy", 1));
  it("Qwen2 (QKV bias, NEOX RoPE), F32: identical", () => compare("qwen2", QWEN2_MINI, GgmlType.F32, "greedy"));
  it("Llama 3 rope scaling, F32: identical", () => compare("llama3", LLAMA3_MINI, GgmlType.F32, "greedy"));
  for (const t of [GgmlType.Q4_K, GgmlType.Q6_K, GgmlType.BF16, GgmlType.Q4_1, GgmlType.Q5_0, GgmlType.Q5_1, GgmlType.Q2_K, GgmlType.Q3_K, GgmlType.Q5_K]) {
    it(`every weight type: ${ggmlTypeName(t)} >= 95% teacher-forced agreement`, () => compare("llama3", LLAMA3_MINI, t, "teacher"));
  }
});
