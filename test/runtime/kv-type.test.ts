/**
 * KV cache precision (`--kv-type`): f16 and q8_0 rows cut the cache's memory and stay close to the
 * f32 cache; llama.cpp with the same cache type agrees on the next token (teacher-forced), and a
 * head size that q8_0 cannot hold is refused with a clear error.
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { type SynthShape, synthesize } from "../../src/bench/synth.js";
import { UsageError } from "../../src/errors.js";
import { openGguf } from "../../src/formats/gguf/index.js";
import type { KvType } from "../../src/kernels/kernel-set.js";
import { Engine } from "../../src/runtime/engine.js";
import { describeModel } from "../../src/runtime/info.js";
import { GgmlType } from "../../src/tensor/ggml-type.js";
import { loadLlamaCpp } from "../helpers/llama-cpp.js";
import { SHARED, STORIES_GGUF, greedyIds, teacherForcedArgmax } from "../helpers/slimlm.js";

/** SmolLM2-like grouped-query heads of 64 (q8_0 rows hold them), 2 layers, random weights. */
const SHAPE: SynthShape = {
  arch: "llama", contextLength: 2048, rmsEps: 1e-5, vocabSize: 32000, dim: 576, nLayers: 2, nHeads: 9, nKvHeads: 3, ffnDim: 1536,
  ropeTheta: 100000, tiedEmbeddings: true, qkvBias: false,
};
const PROMPT = "Once upon a time, in a small village by the sea, there lived an old fisherman who";

describe("KV cache precision", () => {
  let dir: string;
  let model: string;
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "slimlm-kv-"));
    model = path.join(dir, "gqa-f32.gguf");
    const vocab = openGguf(path.join(SHARED, "models/llama-2-tiny-random.gguf"));
    try {
      synthesize({ shape: SHAPE, type: GgmlType.F32, seed: 11, out: model, tokenizerFrom: vocab.metadata });
    } finally {
      vocab.weights.close();
    }
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("info reports the cache's size per type (f16 half of f32, q8_0 34/128 of it)", () => {
    const kv = describeModel(model).kv_cache;
    const f32 = kv.f32!.bytes_per_position;
    assert.equal(f32, 2 * 2 * 3 * 64 * 4); // layers x {K,V} x KV heads x head size x 4 bytes
    assert.equal(kv.f16!.bytes_per_position, f32 / 2);
    assert.equal(kv.q8_0!.bytes_per_position, (f32 * 34) / 128);
    assert.equal(describeModel(STORIES_GGUF).kv_cache.q8_0, null); // heads of 8
  });

  it("each type's lane pools shrink by its row size", async () => {
    const sizes: number[] = [];
    for (const kvType of ["f32", "f16", "q8_0"] as const) {
      const e = await Engine.load(model, { threads: 1, contextSize: 256, kvType });
      try {
        const lane = e.backend.plan.lanes[0]!;
        assert.equal(e.kvType, kvType);
        sizes.push(lane.vCache[0]! - lane.kCache[0]!); // one K pool (the V pool follows it)
      } finally {
        await e.close();
      }
    }
    assert.equal(sizes[1], sizes[0]! / 2);
    assert.ok(Math.abs(sizes[2]! - (sizes[0]! * 34) / 128) < 64, `q8_0 pool ${sizes[2]} vs f32 ${sizes[0]}`);
  });

  for (const [kvType, peer] of [["f16", "F16"], ["q8_0", "Q8_0"]] as const) {
    it(`${kvType}: >= 95% teacher-forced top-1 agreement with the f32 cache and with llama.cpp's ${peer} cache`, async () => {
      const f32 = await Engine.load(model, { threads: 2, contextSize: 256 });
      const low = await Engine.load(model, { threads: 2, contextSize: 256, kvType: kvType as KvType });
      const ref = await loadLlamaCpp(model, { contextSize: 256, kvType: peer });
      try {
        const promptIds = [1, ...ref.tokenize(PROMPT)];
        const ids = [...promptIds, ...greedyIds(f32, promptIds, 64)];
        const base = teacherForcedArgmax(f32, ids, promptIds.length);
        const ours = teacherForcedArgmax(low, ids, promptIds.length);
        const theirs = (await ref.teacherForced(ids, promptIds.length)).map((t) => t.argmax);
        const rate = (a: number[], b: number[]): number => a.filter((x, i) => x === b[i]).length / a.length;
        console.log(`kv ${kvType}: top-1 agreement ${(rate(ours, base) * 100).toFixed(1)}% with the f32 cache, ${(rate(ours, theirs) * 100).toFixed(1)}% with llama.cpp ${peer}`);
        assert.ok(rate(ours, base) >= 0.95, `vs f32 cache: ${(rate(ours, base) * 100).toFixed(1)}%`);
        assert.ok(rate(ours, theirs) >= 0.95, `vs llama.cpp ${peer}: ${(rate(ours, theirs) * 100).toFixed(1)}%`);
      } finally {
        await f32.close();
        await low.close();
        await ref.dispose();
      }
    });
  }

  it("stories260K with an f16 cache: the same greedy text as with f32", async () => {
    const f32 = await Engine.load(STORIES_GGUF, { threads: 1 });
    const f16 = await Engine.load(STORIES_GGUF, { threads: 1, kvType: "f16" });
    try {
      const prompt = f32.tokenizer.encode("Once upon a time", { addSpecial: true });
      assert.deepEqual(greedyIds(f16, prompt, 100), greedyIds(f32, prompt, 100));
    } finally {
      await f32.close();
      await f16.close();
    }
  });

  it("q8_0 on heads that are not whole 32-value blocks is a UsageError naming the head size", async () => {
    await assert.rejects(Engine.load(STORIES_GGUF, { threads: 1, kvType: "q8_0" }), (e: unknown) => e instanceof UsageError && /multiple of 32/.test(e.message) && /got 8/.test(e.message));
  });
});
