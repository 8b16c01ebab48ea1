/**
 * Perplexity and KL divergence (src/eval): llama-perplexity's windows and scoring, checked
 * against llama.cpp's own next-token probabilities (node-llama-cpp) on stories260K.
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { UsageError } from "../../src/errors.js";
import { dataTokens, evaluatePerplexity, windowsOf } from "../../src/eval/perplexity.js";
import { percentile } from "../../src/eval/logits.js";
import { Engine } from "../../src/runtime/engine.js";
import { loadLlamaCpp } from "../helpers/llama-cpp.js";
import { SHARED, STORIES_GGUF } from "../helpers/slimlm.js";

const CTX = 64;

describe("perplexity on stories260K", () => {
  let engine: Engine;
  let text: string;
  before(async () => {
    engine = await Engine.load(STORIES_GGUF, { threads: 2, contextSize: CTX, maxBatchTokens: CTX, maxOutputRows: CTX });
    text = fs.readFileSync(path.join(SHARED, "data/tinystories_valid_head.txt"), "utf8").slice(0, 20000);
  });
  after(() => engine.close());

  it("windows: BOS first, non-overlapping, the second half scored", () => {
    const tokens = dataTokens(engine.tokenizer, text, 1000);
    assert.equal(tokens.length, 1000);
    assert.equal(tokens[0], engine.tokenizer.bosId);
    const w = windowsOf(engine.tokenizer, tokens, CTX);
    assert.equal(w.length, Math.floor(1000 / CTX));
    assert.ok(w.every((x) => x.length === CTX && x[0] === engine.tokenizer.bosId));
    assert.deepEqual(w[1]!.slice(1), tokens.slice(CTX + 1, 2 * CTX));
    const r = evaluatePerplexity(engine, text, { ctx: CTX, maxTokens: 1000 });
    assert.equal(r.windows, 15);
    assert.equal(r.tokens, 15 * (CTX - CTX / 2 - 1));
    assert.equal(r.data_tokens, 1000);
    assert.ok(Math.abs(Math.log(r.perplexity) - r.nll) < 1e-12);
    assert.ok(r.perplexity > 2 && r.perplexity < 8, String(r.perplexity));
  });

  it("the mean NLL of a window equals llama.cpp's -log p(next token)", async () => {
    const win = windowsOf(engine.tokenizer, dataTokens(engine.tokenizer, text, CTX), CTX)[0]!;
    const first = CTX / 2;
    const ref = await loadLlamaCpp(STORIES_GGUF, { contextSize: 128 });
    try {
      const dist = await ref.teacherForced(win, first + 1);
      let nll = 0;
      for (let j = 0; j < CTX - first - 1; j++) {
        const p = dist[j]!.probs.get(win[first + j + 1]!) ?? 0;
        nll -= Math.log(p);
      }
      nll /= CTX - first - 1;
      const ours = evaluatePerplexity(engine, text, { ctx: CTX, maxTokens: CTX });
      assert.equal(ours.tokens, CTX - first - 1);
      assert.ok(Math.abs(ours.nll - nll) < 2e-4, `ours ${ours.nll}, llama.cpp ${nll}`);
    } finally {
      await ref.dispose();
    }
  });

  it("against itself: KLD 0, top-1 agreement 1, perplexity ratio 1", async () => {
    const same = await Engine.load(STORIES_GGUF, { threads: 1, contextSize: CTX, maxBatchTokens: CTX, maxOutputRows: CTX });
    try {
      const r = evaluatePerplexity(engine, text, { ctx: CTX, maxTokens: 640 }, same);
      const k = r.reference!;
      assert.ok(k.kld_mean < 1e-9 && k.kld_p99 < 1e-9, String(k.kld_mean));
      assert.equal(k.top1_agreement, 1);
      assert.ok(Math.abs(k.ppl_ratio - 1) < 1e-9);
      assert.ok(Math.abs(k.reference_perplexity - r.perplexity) < 1e-6);
    } finally {
      await same.close();
    }
  });

  it("too little data and a reference with another tokenizer are clear errors", async () => {
    assert.throws(() => evaluatePerplexity(engine, "Once upon a time", { ctx: CTX }), (e: unknown) => e instanceof UsageError && /not enough data for one window/.test(e.message));
    const other = await Engine.load(path.join(SHARED, "models/llama-2-tiny-random.gguf"), { threads: 1, contextSize: CTX, maxBatchTokens: CTX, maxOutputRows: CTX });
    try {
      assert.throws(() => evaluatePerplexity(engine, text, { ctx: CTX, maxTokens: 640 }, other), (e: unknown) => e instanceof UsageError && /different tokenizers/.test(e.message));
    } finally {
      await other.close();
    }
  });

  it("Engine.evaluateAll: every row equals the logits of token-by-token evaluation, across chunks", async () => {
    // Small batches and output capacity, so the 40 tokens run in several chunks.
    const e = await Engine.load(STORIES_GGUF, { threads: 2, contextSize: 64, maxBatchTokens: 16, maxOutputRows: 8 });
    try {
      const ids = dataTokens(e.tokenizer, text, 40);
      const V = e.config.vocabSize;
      const s1 = e.newSequence();
      const all = e.evaluateAll(s1, ids, 21);
      assert.equal(all.length, (40 - 21) * V);
      assert.equal(s1.length, 40);
      s1.release();
      const s2 = e.newSequence();
      for (let i = 0; i < 40; i++) {
        const row = e.evaluate(s2, [ids[i]!]);
        if (i < 21) continue;
        const got = all.subarray((i - 21) * V, (i - 20) * V);
        let max = 0;
        for (let v = 0; v < V; v++) max = Math.max(max, Math.abs(got[v]! - row[v]!));
        assert.ok(max < 1e-4, `row ${i}: max difference ${max}`);
      }
      s2.release();
    } finally {
      await e.close();
    }
  });

  it("percentile interpolates like llama-perplexity", () => {
    const v = Float64Array.from([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    assert.equal(percentile(v, 0.99), 9.9);
    assert.equal(percentile(v, 0.5), 5);
    assert.equal(percentile(v, 0), 0);
    assert.equal(percentile(v, 1), 10);
  });
});
