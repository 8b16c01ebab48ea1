/**
 * AdamW (decoupled weight decay), a warmup + cosine learning-rate schedule, and global-norm
 * gradient clipping, over flat parameter/gradient arrays.
 */
import type { Floats } from "./tensor-ops.js";

export interface AdamWConfig {
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  readonly weightDecay: number;
}

export const DEFAULT_ADAMW: AdamWConfig = { beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1 };

export class AdamW {
  /** First and second moment estimates, one per parameter. */
  readonly m: Float32Array;
  readonly v: Float32Array;
  /** Updates applied so far (bias correction uses it). */
  step = 0;

  constructor(
    readonly numParams: number,
    readonly config: AdamWConfig = DEFAULT_ADAMW,
    /** [offset, size] ranges that get weight decay (matrices, not norms). */
    readonly decayRanges: readonly (readonly [number, number])[] = [[0, numParams]],
  ) {
    this.m = new Float32Array(numParams);
    this.v = new Float32Array(numParams);
  }

  update(params: Floats, grads: Floats, lr: number): void {
    const { beta1, beta2, eps, weightDecay } = this.config;
    this.step++;
    const bc1 = 1 - Math.pow(beta1, this.step);
    const bc2 = 1 - Math.pow(beta2, this.step);
    const m = this.m;
    const v = this.v;
    for (let i = 0; i < this.numParams; i++) {
      const g = grads[i]!;
      m[i] = beta1 * m[i]! + (1 - beta1) * g;
      v[i] = beta2 * v[i]! + (1 - beta2) * g * g;
      params[i] -= (lr * (m[i]! / bc1)) / (Math.sqrt(v[i]! / bc2) + eps);
    }
    if (weightDecay > 0) {
      const f = 1 - lr * weightDecay;
      for (const [o, n] of this.decayRanges) for (let i = o; i < o + n; i++) params[i] *= f;
    }
  }
}

export interface Schedule {
  readonly lr: number;
  readonly warmupSteps: number;
  readonly totalSteps: number;
  /** Final learning rate as a fraction of `lr`. */
  readonly minLrRatio: number;
}

/** Linear warmup to `lr`, then cosine decay to `lr * minLrRatio` at `totalSteps`. `step` counts from 0. */
export function learningRate(s: Schedule, step: number): number {
  if (step < s.warmupSteps) return (s.lr * (step + 1)) / s.warmupSteps;
  const span = Math.max(1, s.totalSteps - s.warmupSteps);
  const p = Math.min(1, (step - s.warmupSteps) / span);
  const min = s.lr * s.minLrRatio;
  return min + 0.5 * (s.lr - min) * (1 + Math.cos(Math.PI * p));
}

/** Scale gradients so their global L2 norm is at most maxNorm; returns the norm before clipping. */
export function clipGradNorm(grads: Floats, maxNorm: number): number {
  let ss = 0;
  for (let i = 0; i < grads.length; i++) ss += grads[i]! * grads[i]!;
  const norm = Math.sqrt(ss);
  if (maxNorm > 0 && norm > maxNorm) {
    const f = maxNorm / (norm + 1e-12);
    for (let i = 0; i < grads.length; i++) grads[i] *= f;
  }
  return norm;
}
