/**
 * `slimlm train` and `slimlm distill` behind the CLI: tokenizer, data, model initialisation
 * (random, from a file, or from the teacher's own layers), the teacher, the loop, checkpoints,
 * resume, and the final report.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { UsageError } from "../errors.js";
import { openModelFile } from "../formats/index.js";
import type { Metadata } from "../formats/metadata.js";
import type { ModelFile } from "../formats/weights.js";
import { evaluatePerplexity } from "../eval/index.js";
import { resolveModel } from "../models/index.js";
import { hfTokenizerMetadata } from "../optimize/hf-tokenizer.js";
import { Engine } from "../runtime/engine.js";
import { generate } from "../runtime/generate.js";
import { tokenizerFor } from "../runtime/model-tokenizer.js";
import { GREEDY, Rng } from "../runtime/sampler.js";
import { bpeMetadata, trainBpe } from "../tokenizer/bpe-trainer.js";
import { type Tokenizer, tokenizerFromMetadata } from "../tokenizer/index.js";
import { GgmlType } from "../tensor/ggml-type.js";
import { type CheckpointInfo, readOptimizerState, readParams, writeModelGguf, writeOptimizerState } from "./checkpoint.js";
import { TokenData } from "./data.js";
import { type TrainShape, trainingFloats } from "./ops/llama-train.js";
import { DEFAULT_ADAMW } from "./ops/optim.js";
import { checkShape, loadShapeConfig } from "./presets.js";
import { type LogEntry, type Teacher, Trainer, type TrainOptions } from "./trainer.js";
import { trainMatmul } from "./matmul-pool.js";

export interface CommonRunOptions {
  readonly data: string;
  readonly out: string;
  readonly steps: number;
  readonly batch: number;
  readonly ctx: number;
  readonly accum: number;
  readonly lr: number;
  readonly warmupSteps?: number;
  readonly minLrRatio: number;
  readonly weightDecay: number;
  readonly clip: number;
  readonly seed: number;
  readonly evalEvery: number;
  readonly evalBatches: number;
  readonly heldOutFraction: number;
  readonly threads: number;
  readonly checkpointEvery: number;
  readonly resume: boolean;
  readonly f16: boolean;
  readonly name?: string;
  readonly onLog: (e: LogEntry) => void;
  readonly onInfo: (line: string) => void;
}

export interface TrainRunOptions extends CommonRunOptions {
  /** Preset name or JSON file. */
  readonly config: string;
  /** Take the tokenizer from this model... */
  readonly tokenizer?: string;
  /** ...or train a byte-level BPE of this size on the data. */
  readonly vocabSize?: number;
}

export interface DistillRunOptions extends CommonRunOptions {
  readonly teacher: string;
  readonly student?: string;
  readonly studentConfig?: string;
  /** Build the student from these teacher layers (DistilBERT's initialisation). */
  readonly keepLayers?: readonly number[];
  readonly alpha: number;
  readonly temperature: number;
}

export interface RunResult {
  readonly out: string;
  readonly fileSize: number;
  readonly parameters: number;
  readonly steps: number;
  readonly seconds: number;
  readonly tokensPerSecond: number;
  readonly finalLoss: number;
  readonly heldOutLoss: number | undefined;
  readonly heldOutPerplexity: number | undefined;
  readonly shape: TrainShape;
}

export interface DistillResult extends RunResult {
  readonly teacher: { readonly parameters: number; readonly fileSize: number; readonly heldOutPerplexity: number; readonly decodeTokS: number };
  readonly student: { readonly parameters: number; readonly fileSize: number; readonly heldOutPerplexity: number; readonly decodeTokS: number };
  /** Mean KL(teacher || student) per held-out token, nats. */
  readonly kl: number;
  readonly top1Agreement: number;
  /** Held-out KL of the student before training (how close its initialisation starts). */
  readonly initialKl: number;
}

function tokenizerMetadataOf(file: ModelFile, warn: (m: string) => void): Metadata {
  return file.kind === "hf" ? hfTokenizerMetadata(file, warn) : file.metadata;
}

/** Shape, read from a model file's metadata. */
function shapeOf(file: ModelFile): TrainShape {
  const { config: c } = resolveModel(file.metadata, file.weights.get("token_embd.weight")?.dims[1]);
  if (c.headDim * c.nHeads !== c.dim || c.rope.nRot !== c.headDim) {
    throw new UsageError("this model's shape cannot be trained here", { expected: "head size = dim / heads, full RoPE", got: `head ${c.headDim}, rope ${c.rope.nRot}` });
  }
  if (file.weights.get("blk.0.attn_q.bias") !== undefined) throw new UsageError("models with attention biases cannot be trained yet", { got: "attn_q.bias" });
  return {
    arch: c.arch === "qwen2" ? "qwen2" : "llama",
    vocabSize: c.vocabSize,
    dim: c.dim,
    nLayers: c.nLayers,
    nHeads: c.nHeads,
    nKvHeads: c.nKvHeads,
    ffnDim: c.ffnDim,
    normEps: c.normEps,
    ropeTheta: c.rope.freqBase,
    tiedEmbeddings: file.weights.get("output.weight") === undefined,
  };
}

/** GPT-2 style init: N(0, 0.02), residual output projections scaled by 1/sqrt(2 layers), norms 1. */
function initRandom(t: Trainer, seed: number): void {
  const rng = new Rng(seed ^ 0x5eed);
  const gauss = (): number => {
    const u = Math.max(rng.next(), 1e-12);
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rng.next());
  };
  const resid = 1 / Math.sqrt(2 * t.model.shape.nLayers);
  for (const p of t.model.specs) {
    const v = t.model.params.subarray(p.offset, p.offset + p.size);
    if (p.shape.length === 1) v.fill(1);
    else {
      const std = 0.02 * (/attn_output|ffn_down/.test(p.name) ? resid : 1);
      for (let i = 0; i < v.length; i++) v[i] = gauss() * std;
    }
  }
}

function trainOptions(o: CommonRunOptions, teacher?: Teacher): TrainOptions {
  for (const [k, v, min] of [["steps", o.steps, 1], ["batch", o.batch, 1], ["ctx", o.ctx, 2], ["accum", o.accum, 1]] as const) {
    if (!Number.isInteger(v) || v < min) throw new UsageError(`invalid --${k}`, { expected: `an integer >= ${min}`, got: String(v) });
  }
  if (!(o.lr > 0 && o.lr < 1)) throw new UsageError("invalid --lr", { expected: "a number in (0, 1)", got: String(o.lr) });
  return {
    steps: o.steps,
    batch: o.batch,
    ctx: o.ctx,
    accum: o.accum,
    lr: o.lr,
    warmupSteps: o.warmupSteps ?? Math.max(1, Math.min(100, Math.floor(o.steps / 10))),
    minLrRatio: o.minLrRatio,
    clip: o.clip,
    seed: o.seed,
    evalEvery: o.evalEvery,
    evalBatches: o.evalBatches,
    adamw: { ...DEFAULT_ADAMW, weightDecay: o.weightDecay },
    ...(teacher === undefined ? {} : { teacher }),
  };
}

/** The loop with checkpoints, resume and the common result. */
async function loop(o: CommonRunOptions, shape: TrainShape, data: TokenData, tokenizer: Metadata, init: (t: Trainer) => void, teacher?: Teacher): Promise<{ result: RunResult; trainer: Trainer }> {
  const opts = trainOptions(o, teacher);
  const matmul = await trainMatmul(o.threads, trainingFloats(shape, o.batch, o.ctx));
  const trainer = new Trainer(shape, data, opts, matmul.matmul, matmul.make);
  try {
    const info: CheckpointInfo = {
      shape,
      contextLength: o.ctx,
      name: o.name ?? "slimlm trained model",
      tokenizer,
      training: { seed: o.seed, steps: o.steps, batch: o.batch, ctx: o.ctx, lr: o.lr },
    };
    const optPath = `${o.out}.opt`;
    if (o.resume && fs.existsSync(optPath)) {
      const st = readOptimizerState(optPath);
      if (st.params.length !== trainer.model.numParams) {
        throw new UsageError("the checkpoint does not match this model", { expected: `${trainer.model.numParams} parameters`, got: String(st.params.length) });
      }
      if (st.header.seed !== o.seed) throw new UsageError("resume with the seed of the run", { expected: String(st.header.seed), got: String(o.seed) });
      trainer.model.params.set(st.params);
      trainer.opt.m.set(st.m);
      trainer.opt.v.set(st.v);
      trainer.opt.step = Number(st.header.step);
      o.onInfo(`resuming from step ${trainer.opt.step} (${optPath})`);
    } else {
      init(trainer);
    }
    const save = (): number => {
      const size = writeModelGguf(o.out, info, trainer.model.specs, trainer.model.params, o.f16 ? GgmlType.F16 : GgmlType.F32);
      writeOptimizerState(optPath, { seed: o.seed, steps: o.steps }, trainer.model.params, trainer.opt);
      return size;
    };
    o.onInfo(`${trainer.model.numParams.toLocaleString("en-US")} parameters; ${data.train.length.toLocaleString("en-US")} training tokens, ${data.heldOut.length.toLocaleString("en-US")} held out; ${matmul.name}`);
    const t0 = performance.now();
    let last: LogEntry | undefined;
    let heldOut: number | undefined;
    const startStep = trainer.opt.step;
    trainer.run(
      (e) => {
        last = e;
        if (e.heldOutLoss !== undefined) heldOut = e.heldOutLoss;
        o.onLog(e);
      },
      () => save(),
      o.checkpointEvery,
    );
    const fileSize = save();
    const seconds = (performance.now() - t0) / 1000;
    return {
      trainer,
      result: {
        out: o.out,
        fileSize,
        parameters: trainer.model.numParams,
        steps: o.steps,
        seconds,
        tokensPerSecond: ((o.steps - startStep) * o.batch * o.ctx * o.accum) / Math.max(seconds, 1e-9),
        finalLoss: last?.loss ?? NaN,
        heldOutLoss: heldOut,
        heldOutPerplexity: heldOut === undefined ? undefined : Math.exp(heldOut),
        shape,
      },
    };
  } finally {
    matmul.close();
  }
}

export async function runTrain(o: TrainRunOptions): Promise<RunResult> {
  // tokenizer: from a model, or trained on the data
  let tokMeta: Metadata;
  let tok: Tokenizer;
  if (o.tokenizer !== undefined) {
    const f = openModelFile(o.tokenizer);
    try {
      tokMeta = tokenizerMetadataOf(f, o.onInfo);
      tok = tokenizerFor(f);
    } finally {
      f.weights.close();
    }
  } else {
    if (o.vocabSize === undefined) throw new UsageError("give --tokenizer <model> or --vocab-size <n>");
    const text = readDataText(o.data);
    const t0 = performance.now();
    const bpe = trainBpe(text, { vocabSize: o.vocabSize });
    tokMeta = bpeMetadata(bpe);
    tok = tokenizerFromMetadata(tokMeta);
    o.onInfo(`trained a byte-level BPE of ${bpe.tokens.length} tokens in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  }
  const cfg = loadShapeConfig(o.config);
  const shape: TrainShape = { ...cfg, vocabSize: cfg.vocabSize ?? tok.vocabSize };
  if (shape.vocabSize < tok.vocabSize) {
    throw new UsageError("the config's vocabulary is smaller than the tokenizer's", { expected: `>= ${tok.vocabSize}`, got: String(shape.vocabSize) });
  }
  checkShape(shape);
  const data = TokenData.fromFile(o.data, tok, { heldOutFraction: o.heldOutFraction, minTokens: o.batch * (o.ctx + 1) });
  return (await loop(o, shape, data, tokMeta, (t) => initRandom(t, o.seed))).result;
}

function readDataText(path: string): string {
  try {
    const text = fs.readFileSync(path, "utf8");
    if (text.trim().length === 0) throw new UsageError("the data file is empty", { got: path });
    return text;
  } catch (e) {
    if (e instanceof UsageError) throw e;
    throw new UsageError(`cannot read the data file ${path}`, { got: e instanceof Error ? e.message : String(e) });
  }
}

/** A teacher on the inference engine: logits for B sequences of T tokens from position 0. */
function engineTeacher(engine: Engine, alpha: number, temperature: number): Teacher {
  return {
    alpha,
    temperature,
    logits(inputs, B, T) {
      const V = engine.config.vocabSize;
      const out = new Float32Array(B * T * V);
      for (let b = 0; b < B; b++) {
        const seq = engine.newSequence();
        try {
          out.set(engine.evaluateAll(seq, [...inputs.subarray(b * T, (b + 1) * T)]), b * T * V);
        } finally {
          seq.release();
        }
      }
      return out;
    },
  };
}

export async function runDistill(o: DistillRunOptions): Promise<DistillResult> {
  const modes = [o.student !== undefined, o.studentConfig !== undefined, o.keepLayers !== undefined].filter(Boolean).length;
  if (modes !== 1) throw new UsageError("choose exactly one student", { expected: "--student, --student-config or --student-from-teacher --keep-layers" });
  if (!(o.alpha >= 0 && o.alpha <= 1)) throw new UsageError("invalid --alpha", { expected: "a number in [0, 1]", got: String(o.alpha) });
  if (!(o.temperature > 0 && o.temperature <= 100)) throw new UsageError("invalid --temperature", { expected: "a number in (0, 100]", got: String(o.temperature) });
  const tf = openModelFile(o.teacher);
  let teacherShape: TrainShape;
  let tokMeta: Metadata;
  let tok: Tokenizer;
  try {
    teacherShape = shapeOf(tf);
    tokMeta = tokenizerMetadataOf(tf, o.onInfo);
    tok = tokenizerFor(tf);
  } finally {
    tf.weights.close();
  }
  // the student's shape and initialisation
  let shape: TrainShape;
  let init: (t: Trainer) => void;
  if (o.student !== undefined) {
    const sf = openModelFile(o.student);
    try {
      shape = shapeOf(sf);
      const st = tokenizerFor(sf);
      if (st.vocabSize !== tok.vocabSize || [0, 1, 2, tok.vocabSize - 1].some((i) => st.tokenText(i) !== tok.tokenText(i))) {
        throw new UsageError("the student's vocabulary differs from the teacher's", { expected: `${tok.vocabSize} tokens like the teacher's`, got: `${st.vocabSize} tokens` });
      }
    } finally {
      sf.weights.close();
    }
    const path = o.student;
    init = (t) => {
      const f = openModelFile(path);
      try {
        readParams(f.weights, t.model.specs, t.model.params);
      } finally {
        f.weights.close();
      }
    };
  } else if (o.studentConfig !== undefined) {
    const cfg = loadShapeConfig(o.studentConfig);
    if (cfg.vocabSize !== undefined && cfg.vocabSize !== teacherShape.vocabSize) {
      throw new UsageError("the student's vocabulary differs from the teacher's", { expected: String(teacherShape.vocabSize), got: String(cfg.vocabSize) });
    }
    shape = { ...cfg, vocabSize: teacherShape.vocabSize };
    init = (t) => initRandom(t, o.seed);
  } else {
    const keep = o.keepLayers!;
    if (keep.length === 0 || keep.some((l) => !Number.isInteger(l) || l < 0 || l >= teacherShape.nLayers) || new Set(keep).size !== keep.length) {
      throw new UsageError("invalid --keep-layers", { expected: `distinct layer numbers in [0, ${teacherShape.nLayers - 1}]`, got: keep.join(",") });
    }
    shape = { ...teacherShape, nLayers: keep.length };
    const teacherPath = o.teacher;
    init = (t) => {
      const f = openModelFile(teacherPath);
      try {
        readParams(f.weights, t.model.specs, t.model.params, {
          rename: (name) => name.replace(/^blk\.(\d+)\./, (_, i: string) => `blk.${keep[Number(i)]}.`),
        });
      } finally {
        f.weights.close();
      }
    };
  }
  checkShape(shape);
  const data = TokenData.fromFile(o.data, tok, { heldOutFraction: o.heldOutFraction, minTokens: o.batch * (o.ctx + 1) });
  if (data.heldOutText.length === 0) throw new UsageError("no held-out text", { hint: "use a larger data file or --held-out" });
  const teacher = await Engine.load(o.teacher, { threads: o.threads, contextSize: o.ctx, maxOutputRows: o.ctx, maxBatchTokens: o.ctx });
  try {
    const ppl = async (path: string): Promise<{ ppl: number; kl: number; top1: number; decode: number }> => {
      const e = await Engine.load(path, { threads: o.threads, contextSize: o.ctx, maxOutputRows: o.ctx, maxBatchTokens: o.ctx });
      try {
        const r = evaluatePerplexity(e, data.heldOutText, { ctx: o.ctx, maxTokens: 32 * o.ctx }, path === o.teacher ? undefined : teacher);
        const g = generate(e, "", { maxTokens: Math.min(64, o.ctx - 2), sampling: GREEDY });
        return { ppl: r.perplexity, kl: r.reference?.kld_mean ?? 0, top1: r.reference?.top1_agreement ?? 1, decode: g.timings.decode_tok_s };
      } finally {
        await e.close();
      }
    };
    // the student's starting point, for the record
    let initialKl = NaN;
    // NOTE: in the temp folder, not beside the output (a crash must not leave it there)
    const probe = path.join(os.tmpdir(), `slimlm-init-${process.pid}-${path.basename(o.out)}`);
    const { result } = await loop(o, shape, data, tokMeta, (t) => {
      init(t);
      writeModelGguf(probe, { shape, contextLength: o.ctx, name: "init", tokenizer: tokMeta }, t.model.specs, t.model.params);
    }, engineTeacher(teacher, o.alpha, o.temperature));
    if (fs.existsSync(probe)) {
      initialKl = (await ppl(probe)).kl;
      fs.rmSync(probe, { force: true });
    }
    const s = await ppl(o.out);
    const t = await ppl(o.teacher);
    const teacherFile = openModelFile(o.teacher);
    const teacherParams = teacherFile.weights.tensors.reduce((a, x) => a + x.dims.reduce((p, d) => p * d, 1), 0);
    teacherFile.weights.close();
    return {
      ...result,
      teacher: { parameters: teacherParams, fileSize: fileSizeOf(o.teacher), heldOutPerplexity: t.ppl, decodeTokS: t.decode },
      student: { parameters: result.parameters, fileSize: result.fileSize, heldOutPerplexity: s.ppl, decodeTokS: s.decode },
      kl: s.kl,
      top1Agreement: s.top1,
      initialKl,
    };
  } finally {
    await teacher.close();
  }
}

function fileSizeOf(path: string): number {
  const st = fs.statSync(path);
  if (!st.isDirectory()) return st.size;
  return fs.readdirSync(path).reduce((s, f) => s + fs.statSync(`${path}/${f}`).size, 0);
}

