/**
 * The training loop: gradient accumulation over micro-batches, global-norm clipping, AdamW with a
 * warmup + cosine schedule, periodic held-out evaluation, progress callbacks, checkpoints.
 * Deterministic: the same seed and data give the same loss curve, and a resumed run continues it.
 */
import os from "node:os";
import { ResourceError } from "../errors.js";
import type { TokenData } from "./data.js";
import { type LossSpec, type TrainShape, TrainableLlama } from "./ops/llama-train.js";
import type { Matmul } from "./ops/matmul.js";
import { AdamW, type AdamWConfig, clipGradNorm, learningRate } from "./ops/optim.js";
import { crossEntropy } from "./ops/tensor-ops.js";

export interface Teacher {
  /** Logits [B*T, V] of the teacher on B sequences of T tokens (each from position 0). */
  logits(inputs: Int32Array, B: number, T: number): Float32Array;
  readonly alpha: number;
  readonly temperature: number;
}

export interface TrainOptions {
  readonly steps: number;
  readonly batch: number;
  readonly ctx: number;
  readonly accum: number;
  readonly lr: number;
  readonly warmupSteps: number;
  readonly minLrRatio: number;
  readonly clip: number;
  readonly seed: number;
  readonly evalEvery: number;
  readonly evalBatches: number;
  readonly adamw: AdamWConfig;
  readonly teacher?: Teacher;
}

export interface LogEntry {
  readonly step: number;
  readonly loss: number;
  readonly ce: number;
  readonly kl: number | undefined;
  readonly lr: number;
  readonly gradNorm: number;
  readonly heldOutLoss: number | undefined;
  readonly tokensPerSecond: number;
  readonly elapsedSeconds: number;
  readonly etaSeconds: number;
}

/** Bytes a training run holds (params, grads, moments, activations kept for backward). */
export function trainingBytes(s: TrainShape, B: number, T: number): number {
  const N = B * T;
  const hd = s.dim / s.nHeads;
  const params =
    s.vocabSize * s.dim * (s.tiedEmbeddings ? 1 : 2) +
    s.nLayers * (2 * s.dim + s.dim * s.nHeads * hd * 2 + 2 * s.dim * s.nKvHeads * hd + 3 * s.dim * s.ffnDim) +
    s.dim;
  const perLayer = N * (4 * s.dim + 2 * s.nHeads * hd + 2 * s.nKvHeads * hd + 3 * s.ffnDim + 2) + B * s.nHeads * T * T;
  const other = N * (3 * s.vocabSize + 4 * s.dim + 3 * s.ffnDim);
  return 4 * (4 * params + s.nLayers * perLayer + other);
}

/** Refuse, before any work, a run that cannot fit in this machine's memory. */
export function checkFits(s: TrainShape, B: number, T: number): void {
  const need = trainingBytes(s, B, T);
  const have = os.totalmem() * 0.8;
  if (need > have) {
    throw new ResourceError("the model and batch do not fit in memory", {
      expected: `<= ${(have / 2 ** 30).toFixed(1)} GiB`,
      got: `${(need / 2 ** 30).toFixed(1)} GiB for batch ${B} x ctx ${T}`,
      hint: "use a smaller --batch, --ctx or model",
    });
  }
}

export class Trainer {
  readonly model: TrainableLlama<Float32Array>;
  readonly opt: AdamW;
  private readonly evalSet: { inputs: Int32Array; targets: Int32Array }[];

  constructor(
    shape: TrainShape,
    readonly data: TokenData,
    readonly o: TrainOptions,
    matmul: Matmul,
    make: (n: number) => Float32Array = (n) => new Float32Array(n),
  ) {
    checkFits(shape, o.batch, o.ctx);
    this.model = new TrainableLlama(shape, o.batch, o.ctx, matmul, make);
    const decay = this.model.specs.filter((p) => p.decay).map((p) => [p.offset, p.size] as const);
    this.opt = new AdamW(this.model.numParams, o.adamw, decay);
    this.evalSet = data.heldOutBatches(o.batch, o.ctx, o.evalBatches);
  }

  /** Mean cross-entropy on the held-out batches (nats per token), or undefined without any. */
  heldOutLoss(): number | undefined {
    if (this.evalSet.length === 0) return undefined;
    const V = this.model.shape.vocabSize;
    const N = this.o.batch * this.o.ctx;
    const scratch = new Float32Array(N * V);
    let sum = 0;
    for (const b of this.evalSet) {
      const logits = this.model.forward(b.inputs);
      sum += crossEntropy(scratch, logits, b.targets, N, V);
    }
    return sum / this.evalSet.length;
  }

  /** Run steps [opt.step, o.steps), calling `log` after each step and `checkpoint` when asked. */
  run(log: (e: LogEntry) => void, checkpoint?: (step: number) => void, checkpointEvery = 0): void {
    const o = this.o;
    const m = this.model;
    const tokensPerStep = o.batch * o.ctx * o.accum;
    const t0 = performance.now();
    const first = this.opt.step;
    for (let step = first; step < o.steps; step++) {
      m.zeroGrads();
      let loss = 0;
      let ce = 0;
      let kl = 0;
      for (let micro = 0; micro < o.accum; micro++) {
        const { inputs, targets } = this.data.batch(o.seed, step, micro, o.batch, o.ctx);
        m.forward(inputs);
        const spec: LossSpec = o.teacher === undefined
          ? { targets }
          : { targets, teacher: { logits: o.teacher.logits(inputs, o.batch, o.ctx), alpha: o.teacher.alpha, temperature: o.teacher.temperature } };
        const r = m.backward(spec);
        loss += r.loss / o.accum;
        ce += r.ce / o.accum;
        kl += (r.kl ?? 0) / o.accum;
      }
      if (o.accum > 1) for (let i = 0; i < m.numParams; i++) m.grads[i] = m.grads[i]! / o.accum;
      const gradNorm = clipGradNorm(m.grads, o.clip);
      const lr = learningRate({ lr: o.lr, warmupSteps: o.warmupSteps, totalSteps: o.steps, minLrRatio: o.minLrRatio }, step);
      this.opt.update(m.params, m.grads, lr);
      const done = step + 1;
      const elapsed = (performance.now() - t0) / 1000;
      const rate = ((done - first) * tokensPerStep) / Math.max(elapsed, 1e-9);
      const evalNow = o.evalEvery > 0 && (done % o.evalEvery === 0 || done === o.steps);
      log({
        step: done,
        loss,
        ce,
        kl: o.teacher === undefined ? undefined : kl,
        lr,
        gradNorm,
        heldOutLoss: evalNow ? this.heldOutLoss() : undefined,
        tokensPerSecond: rate,
        elapsedSeconds: elapsed,
        etaSeconds: ((o.steps - done) * tokensPerStep) / Math.max(rate, 1e-9),
      });
      if (checkpoint !== undefined && checkpointEvery > 0 && done % checkpointEvery === 0 && done < o.steps) checkpoint(done);
    }
  }
}
