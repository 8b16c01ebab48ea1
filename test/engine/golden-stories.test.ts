/**
 * stories260K against llama.cpp (node-llama-cpp 3.21.1, F32 KV cache, no flash attention) in the
 * same run: greedy 200-token continuations from the same prompt ids must be identical, for the
 * GGUF file and for the Hugging Face copy, at 1 and 2 threads.
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { Engine } from "../../src/runtime/engine.js";
import { type LlamaCppModel, loadLlamaCpp } from "../helpers/llama-cpp.js";
import { SHARED, STORIES_GGUF, STORIES_HF, greedyIds } from "../helpers/slimlm.js";

const PROMPTS = [
  "Once upon a time",
  "The little dog",
  "Lily and Tom went to the park",
  "One day, a bird",
  "She was very happy because",
  "Tim had a red ball. He",
];
const STEPS = 200;

interface Golden {
  bos_only: { prompt_ids: number[]; generated_ids: number[] };
  once_upon_a_time: { prompt_ids: number[]; generated_ids: number[] };
}

describe("stories260K: token-exact with llama.cpp", () => {
  let ref: LlamaCppModel;
  const expected = new Map<string, { promptIds: number[]; ids: number[] }>();

  before(async () => {
    ref = await loadLlamaCpp(STORIES_GGUF, { contextSize: 512 });
    for (const p of PROMPTS) {
      const promptIds = [1, ...ref.tokenize(p)];
      expected.set(p, { promptIds, ids: await ref.greedy(promptIds, STEPS) });
    }
  });
  after(async () => ref?.dispose());

  for (const threads of [1, 2]) {
    it(`GGUF, ${threads} thread(s): ${PROMPTS.length} prompts x ${STEPS} greedy tokens`, async () => {
      const engine = await Engine.load(STORIES_GGUF, { threads, contextSize: 512 });
      try {
        for (const p of PROMPTS) {
          const e = expected.get(p)!;
          assert.deepEqual(engine.tokenizer.encode(p, { addSpecial: true }), e.promptIds, `prompt ids of ${JSON.stringify(p)}`);
          assert.deepEqual(greedyIds(engine, e.promptIds, STEPS), e.ids, `continuation of ${JSON.stringify(p)}`);
        }
      } finally {
        await engine.close();
      }
    });
  }

  it("Hugging Face folder gives the same tokens", async () => {
    const engine = await Engine.load(STORIES_HF, { threads: 2, contextSize: 512 });
    try {
      for (const p of PROMPTS) {
        const e = expected.get(p)!;
        assert.deepEqual(engine.tokenizer.encode(p, { addSpecial: true }), e.promptIds);
        assert.deepEqual(greedyIds(engine, e.promptIds, STEPS), e.ids, `HF continuation of ${JSON.stringify(p)}`);
      }
    } finally {
      await engine.close();
    }
  });

  it("matches the float64 reference outputs in stories260K.golden.json", async () => {
    const golden = JSON.parse(fs.readFileSync(path.join(SHARED, "models/stories260K.golden.json"), "utf8")) as Golden;
    const engine = await Engine.load(STORIES_GGUF, { threads: 2, contextSize: 512 });
    try {
      for (const g of [golden.bos_only, golden.once_upon_a_time]) {
        assert.deepEqual(greedyIds(engine, g.prompt_ids, g.generated_ids.length), g.generated_ids);
      }
    } finally {
      await engine.close();
    }
  });
});
