/**
 * Files written by `slimlm quantize` load in llama.cpp (node-llama-cpp 3.21.1) and slimlm, and
 * both engines predict the same tokens on them: llama.cpp's greedy continuation, teacher-forced
 * through both, >= 95% top-1 agreement (quantized activations make exact equality too strict; see
 * test/engine/golden-synth.test.ts). Models: stories260K, and a random-weight model with
 * SmolLM2-135M's shapes (2 of its 30 layers, tied embeddings, Llama 2 vocabulary).
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { type SynthShape, synthesize } from "../../src/bench/synth.js";
import { openGguf } from "../../src/formats/gguf/index.js";
import { fileTypeSpec } from "../../src/optimize/quant-types.js";
import { quantizeModel } from "../../src/optimize/quantize.js";
import { Engine } from "../../src/runtime/engine.js";
import { GgmlType } from "../../src/tensor/ggml-type.js";
import { loadLlamaCpp } from "../helpers/llama-cpp.js";
import { SHARED, STORIES_GGUF, teacherForcedArgmax } from "../helpers/slimlm.js";

const SMOLLM2_2L: SynthShape = {
  arch: "llama", dim: 576, nLayers: 2, nHeads: 9, nKvHeads: 3, ffnDim: 1536, vocabSize: 32000,
  contextLength: 2048, ropeTheta: 100000, rmsEps: 1e-5, tiedEmbeddings: true, qkvBias: false,
};
const PROMPT = "Once upon a time, in a small village by the sea, there lived an old fisherman who";
const STEPS = 48;

describe("quantized files: llama.cpp and slimlm agree", () => {
  let dir: string;
  let synth: string;
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "slimlm-qinterop-"));
    const f = openGguf(path.join(SHARED, "models/llama-2-tiny-random.gguf"));
    synth = path.join(dir, "smollm2-2l-f32.gguf");
    synthesize({ shape: SMOLLM2_2L, type: GgmlType.F32, seed: 11, out: synth, tokenizerFrom: f.metadata });
    f.weights.close();
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  async function check(label: string, input: string, type: string): Promise<void> {
    const out = path.join(dir, `${label}-${type}.gguf`);
    const report = await quantizeModel({ input, output: out, spec: fileTypeSpec(type), threads: 2 });
    assert.equal(report.type, type);
    const ref = await loadLlamaCpp(out, { contextSize: 256 });
    const engine = await Engine.load(out, { threads: 2, contextSize: 256 });
    try {
      const promptIds = engine.tokenizer.encode(PROMPT, { addSpecial: true });
      assert.deepEqual(ref.tokenize(PROMPT), promptIds.slice(promptIds[0] === engine.tokenizer.bosId ? 1 : 0));
      const expected = await ref.greedy(promptIds, STEPS);
      const ids = [...promptIds, ...expected];
      const theirs = await ref.teacherForced(ids, promptIds.length);
      const ours = teacherForcedArgmax(engine, ids, promptIds.length);
      let agree = 0;
      const report: string[] = [];
      ours.forEach((id, i) => {
        const t = theirs[i]!;
        if (id === t.argmax) agree++;
        else report.push(`step ${i}: llama.cpp ${t.argmax} (p=${t.p1.toFixed(3)}), ours ${id} (llama.cpp p=${(t.probs.get(id) ?? 0).toFixed(3)})`);
      });
      const rate = agree / ours.length;
      if (report.length > 0) console.log(`${label} ${type}: ${(rate * 100).toFixed(1)}% top-1 agreement; ${report.join("; ")}`);
      assert.ok(rate >= 0.95, `${label} ${type}: top-1 agreement ${(rate * 100).toFixed(1)}% < 95%`);
    } finally {
      await engine.close();
      await ref.dispose();
      fs.rmSync(out, { force: true });
    }
  }

  for (const type of ["q8_0", "q4_0", "q4_k_m"]) {
    it(`stories260K ${type}`, () => check("stories260K", STORIES_GGUF, type));
  }
  for (const type of ["q8_0", "q4_0", "q4_k_m"]) {
    it(`SmolLM2-135M shapes (2 layers) ${type}`, () => check("smollm2", synth, type));
  }
});
