/**
 * The training loop on small configs: loss goes down, same seed gives the same curve, a resumed
 * run continues exactly, and checkpoints load in the inference engine with the same logits.
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { openModelFile } from "../../src/formats/index.js";
import { Engine } from "../../src/runtime/engine.js";
import { tokenizerFor } from "../../src/runtime/model-tokenizer.js";
import type { Tokenizer } from "../../src/tokenizer/index.js";
import { readOptimizerState, readParams, writeModelGguf, writeOptimizerState } from "../../src/train/checkpoint.js";
import { TokenData } from "../../src/train/data.js";
import { refMatmul } from "../../src/train/ops/matmul.js";
import { DEFAULT_ADAMW } from "../../src/train/ops/optim.js";
import type { TrainShape } from "../../src/train/ops/llama-train.js";
import { type LogEntry, Trainer, type TrainOptions } from "../../src/train/trainer.js";
import { SlimError } from "../../src/errors.js";
import { SHARED, STORIES_GGUF } from "../helpers/slimlm.js";

const SHAPE: TrainShape = { arch: "llama", vocabSize: 512, dim: 32, nLayers: 2, nHeads: 4, nKvHeads: 2, ffnDim: 64, normEps: 1e-5, ropeTheta: 10000, tiedEmbeddings: true };
const OPTS: TrainOptions = { steps: 30, batch: 4, ctx: 32, accum: 1, lr: 3e-3, warmupSteps: 5, minLrRatio: 0.1, clip: 1, seed: 3, evalEvery: 10, evalBatches: 2, adamw: DEFAULT_ADAMW };

describe("training loop", () => {
  let dir: string;
  let tok: Tokenizer;
  let data: TokenData;
  let tokenizerMeta: import("../../src/formats/metadata.js").Metadata;
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "slimlm-train-"));
    const f = openModelFile(STORIES_GGUF);
    tok = tokenizerFor(f);
    tokenizerMeta = f.metadata;
    f.weights.close();
    const text = fs.readFileSync(path.join(SHARED, "data/tinystories_valid_head.txt"), "utf8").slice(0, 60000);
    const file = path.join(dir, "data.txt");
    fs.writeFileSync(file, text);
    data = TokenData.fromFile(file, tok, { heldOutFraction: 0.1, minTokens: OPTS.batch * (OPTS.ctx + 1) });
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  function train(steps: number, seed = OPTS.seed, init?: (t: Trainer) => void): { trainer: Trainer; log: LogEntry[] } {
    const trainer = new Trainer(SHAPE, data, { ...OPTS, steps, seed }, refMatmul);
    initParams(trainer, 11);
    init?.(trainer);
    const log: LogEntry[] = [];
    trainer.run((e) => log.push(e));
    return { trainer, log };
  }

  it("the loss goes down and held-out loss is reported", () => {
    const { log } = train(30);
    const first = log.slice(0, 3).reduce((s, e) => s + e.loss, 0) / 3;
    const last = log.slice(-3).reduce((s, e) => s + e.loss, 0) / 3;
    assert.ok(last < first - 0.5, `loss ${first.toFixed(3)} -> ${last.toFixed(3)}`);
    assert.equal(log.filter((e) => e.heldOutLoss !== undefined).length, 3);
    assert.ok(log.every((e) => Number.isFinite(e.tokensPerSecond) && e.gradNorm > 0));
  });

  it("same seed, same data: same loss curve; another seed differs", () => {
    const a = train(6).log.map((e) => e.loss);
    const b = train(6).log.map((e) => e.loss);
    const c = train(6, 4).log.map((e) => e.loss);
    assert.deepEqual(a, b);
    assert.notDeepEqual(a, c);
  });

  it("resumes from a checkpoint and its optimizer state exactly where it stopped", () => {
    const straight = train(10);
    const first = train(5);
    const ckpt = path.join(dir, "ckpt.gguf");
    const info = { shape: SHAPE, contextLength: OPTS.ctx, name: "test", tokenizer: tokenizerMeta };
    writeModelGguf(ckpt, info, first.trainer.model.specs, first.trainer.model.params);
    writeOptimizerState(`${ckpt}.opt`, { seed: OPTS.seed }, first.trainer.model.params, first.trainer.opt);
    const state = readOptimizerState(`${ckpt}.opt`);
    const resumed = train(10, OPTS.seed, (t) => {
      t.model.params.set(state.params);
      t.opt.m.set(state.m);
      t.opt.v.set(state.v);
      t.opt.step = state.header.step as number;
    });
    assert.deepEqual([...first.log, ...resumed.log].map((e) => e.loss), straight.log.map((e) => e.loss));
    assert.deepEqual(resumed.trainer.model.params, straight.trainer.model.params);
  });

  it("a checkpoint loads in the inference engine with the training forward's logits", async () => {
    const { trainer } = train(3);
    const ckpt = path.join(dir, "infer.gguf");
    writeModelGguf(ckpt, { shape: SHAPE, contextLength: 64, name: "test", tokenizer: tokenizerMeta }, trainer.model.specs, trainer.model.params);
    // the GGUF's weights read back equal the training params
    const f = openModelFile(ckpt);
    const back = new Float32Array(trainer.model.numParams);
    readParams(f.weights, trainer.model.specs, back);
    f.weights.close();
    assert.deepEqual(back, trainer.model.params);
    const ids = data.heldOut.subarray(0, OPTS.ctx);
    const batch = new Int32Array(OPTS.batch * OPTS.ctx);
    batch.set(ids);
    const trainLogits = trainer.model.forward(batch).subarray(0, OPTS.ctx * SHAPE.vocabSize);
    const engine = await Engine.load(ckpt, { threads: 2, contextSize: 64, maxOutputRows: 64 });
    try {
      const inferLogits = engine.evaluateAll(engine.newSequence(), [...ids]);
      let maxDiff = 0;
      let scale = 0;
      for (let i = 0; i < inferLogits.length; i++) {
        maxDiff = Math.max(maxDiff, Math.abs(inferLogits[i]! - trainLogits[i]!));
        scale = Math.max(scale, Math.abs(trainLogits[i]!));
      }
      assert.ok(maxDiff / scale < 1e-4, `max diff ${maxDiff} of ${scale}`);
    } finally {
      await engine.close();
    }
  });

  it("bad input fails before training starts", () => {
    const empty = path.join(dir, "empty.txt");
    fs.writeFileSync(empty, "  \n");
    const small = path.join(dir, "small.txt");
    fs.writeFileSync(small, "Once upon a time.");
    const opts = { heldOutFraction: 0.1, minTokens: 4 * 33 };
    assert.throws(() => TokenData.fromFile(path.join(dir, "missing.txt"), tok, opts), SlimError);
    assert.throws(() => TokenData.fromFile(empty, tok, opts), /empty/);
    assert.throws(() => TokenData.fromFile(small, tok, opts), /smaller than one batch/);
    const huge: TrainShape = { ...SHAPE, dim: 8192, nLayers: 200, ffnDim: 32768, nHeads: 64, nKvHeads: 64 };
    assert.throws(() => new Trainer(huge, data, OPTS, refMatmul), /do not fit in memory/);
  });
});

/** Small random init (deterministic): N(0, 0.02)-ish matrices, unit norms. */
export function initParams(t: Trainer, seed: number): void {
  let s = seed >>> 0;
  const next = (): number => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32 - 0.5;
  };
  for (const p of t.model.specs) {
    const v = t.model.params.subarray(p.offset, p.offset + p.size);
    if (p.shape.length === 1) v.fill(1);
    else for (let i = 0; i < v.length; i++) v[i] = next() * 0.1;
  }
}
