/**
 * Calibration on stories260K: importance matrix + activation-aware scaling must beat plain
 * round-to-nearest (a small version of the BENCHMARKS.md claim: calibrated on one part of
 * TinyStories, evaluated on another), the scaling must fold exactly, and the output must not
 * depend on the thread count.
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { evaluatePerplexity } from "../../src/eval/perplexity.js";
import { calibrate } from "../../src/optimize/calibrate.js";
import { Imatrix } from "../../src/optimize/imatrix.js";
import { fileTypeSpec } from "../../src/optimize/quant-types.js";
import { planQuantization, quantizeModel } from "../../src/optimize/quantize.js";
import { Engine } from "../../src/runtime/engine.js";
import { SHARED, STORIES_GGUF } from "../helpers/slimlm.js";

const CTX = 128;

describe("calibrated quantization (stories260K)", () => {
  let dir: string;
  let calibText: string;
  let evalText: string;
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "slimlm-calib-"));
    const text = fs.readFileSync(path.join(SHARED, "data/tinystories_valid_head.txt"), "utf8");
    // Disjoint parts: evaluate on the head, calibrate on text from the middle of the file.
    evalText = text.slice(0, 40000);
    calibText = text.slice(400000, 440000);
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  async function kld(file: string): Promise<number> {
    const opts = { threads: 2, contextSize: CTX, maxBatchTokens: CTX, maxOutputRows: CTX };
    const model = await Engine.load(file, opts);
    const ref = await Engine.load(STORIES_GGUF, opts);
    try {
      return evaluatePerplexity(model, evalText, { ctx: CTX, maxTokens: 4096 }, ref).reference!.kld_mean;
    } finally {
      await model.close();
      await ref.close();
    }
  }

  it("q4_0: calibrated mean KLD at least 10% below round-to-nearest; AWQ never worse on its samples", async () => {
    const plain = path.join(dir, "plain.gguf");
    const cal = path.join(dir, "cal.gguf");
    await quantizeModel({ input: STORIES_GGUF, output: plain, spec: fileTypeSpec("q4_0"), threads: 2 });
    const r = await quantizeModel({ input: STORIES_GGUF, output: cal, spec: fileTypeSpec("q4_0"), threads: 2, calibration: { text: calibText, maxTokens: 4096 } });
    assert.ok(r.calibration !== undefined && r.calibration.tokens >= 2048);
    assert.ok(r.tensors.some((t) => t.calibrated));
    assert.ok(r.calibration.awq.length > 0);
    for (const a of r.calibration.awq) assert.ok(a.lossAfter <= a.lossBefore, a.group);
    const [kPlain, kCal] = [await kld(plain), await kld(cal)];
    console.log(`q4_0 mean KLD: round-to-nearest ${kPlain.toFixed(5)}, calibrated ${kCal.toFixed(5)} (${((1 - kCal / kPlain) * 100).toFixed(1)}% lower)`);
    assert.ok(kCal <= 0.9 * kPlain, `calibrated ${kCal} vs plain ${kPlain}`);
  });

  it("activation-aware scales fold exactly: an F32 file with the scales applied computes the same logits", async () => {
    const spec = fileTypeSpec("q4_0");
    const plans = planQuantization(STORIES_GGUF, { spec, calibration: { text: calibText } });
    const result = await calibrate(STORIES_GGUF, plans, spec, { text: calibText, maxTokens: 2048, threads: 2 });
    assert.ok(result.transforms.size > 0, "some scales chosen");
    assert.ok([...result.transforms.keys()].some((n) => n.endsWith("_norm.weight")));
    const folded = path.join(dir, "folded-f32.gguf");
    await quantizeModel({ input: STORIES_GGUF, output: folded, spec: fileTypeSpec("f32"), calibrated: result, threads: 2 });
    const a = await Engine.load(STORIES_GGUF, { threads: 1, contextSize: 64 });
    const b = await Engine.load(folded, { threads: 1, contextSize: 64 });
    try {
      const ids = a.tokenizer.encode(evalText.slice(0, 200), { addSpecial: true }).slice(0, 40);
      const sa = a.newSequence();
      const sb = b.newSequence();
      const la = a.evaluateAll(sa, ids);
      const lb = b.evaluateAll(sb, ids);
      let max = 0;
      let scale = 0;
      for (let i = 0; i < la.length; i++) {
        max = Math.max(max, Math.abs(la[i]! - lb[i]!));
        scale = Math.max(scale, Math.abs(la[i]!));
      }
      assert.ok(max <= 1e-4 * scale, `max logit difference ${max} (logits up to ${scale})`);
      sa.release();
      sb.release();
    } finally {
      await a.close();
      await b.close();
    }
  });

  it("the same bytes with 1 and 2 threads (calibrated q4_k_m)", async () => {
    const outs = [1, 2].map((t) => path.join(dir, `t${t}.gguf`));
    for (const [i, out] of outs.entries()) {
      await quantizeModel({ input: STORIES_GGUF, output: out, spec: fileTypeSpec("q4_k_m"), threads: i + 1, calibration: { text: calibText, maxTokens: 2048 } });
    }
    assert.ok(fs.readFileSync(outs[0]!).equals(fs.readFileSync(outs[1]!)));
  });

  it("a saved importance matrix reproduces the calibrated weights (llama.cpp GGUF imatrix format)", async () => {
    const im = path.join(dir, "imatrix.gguf");
    const a = path.join(dir, "a.gguf");
    const b = path.join(dir, "b.gguf");
    const spec = fileTypeSpec("q5_0");
    await quantizeModel({ input: STORIES_GGUF, output: a, spec, threads: 2, calibration: { text: calibText, maxTokens: 2048, imatrixOut: im, awq: false } });
    const m = Imatrix.load(im);
    assert.ok(m.entries.has("blk.0.attn_q.weight") && m.entries.has("output.weight"));
    assert.equal(m.entries.get("blk.0.ffn_down.weight")!.sumSq.length, 172);
    await quantizeModel({ input: STORIES_GGUF, output: b, spec, threads: 2, calibration: { imatrixIn: im } });
    assert.ok(fs.readFileSync(a).equals(fs.readFileSync(b)));
  });
});
