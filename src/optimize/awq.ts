/**
 * Activation-aware per-channel scaling in the spirit of AWQ (Lin et al. 2023): the weights that
 * share one input x (q/k/v after attn_norm, gate/up after ffn_norm, down after silu(gate)*up) are
 * quantized as W diag(s) while their input becomes x / s, which is exact when 1/s is folded into
 * the preceding operation (the norm weight, or ffn_up's rows). Channels with large activations get
 * s > 1, i.e. relatively more precision.
 *
 * s_c = mean|x_c|^alpha, normalised by sqrt(max(s) min(s)); alpha is searched per group on a
 * grid, minimising the squared error of the group's outputs sum_t ||Q(W diag(s)) (x_t / s) - W x_t||^2
 * over sampled calibration tokens and rows, with each weight quantized to its planned type by
 * the same (importance-weighted) quantizer as the final pass. alpha = 0 (s = 1, no scaling) is on
 * the grid, so the chosen scales never do worse than plain quantization on these samples.
 */
import type { WeightSource } from "../formats/weights.js";
import type { GgmlType } from "../tensor/ggml-type.js";
import { getFormat } from "../tensor/registry.js";
import { readRowsF32, rowShape } from "./tensor-rows.js";
import type { AwqChoice } from "./transforms.js";
import { quantizeRow } from "./weighted.js";

export interface AwqGroup {
  /** e.g. "blk.3.attn_norm": what 1/s is folded into. */
  readonly name: string;
  /** The weights sharing the input. */
  readonly weights: readonly string[];
  readonly fold: { readonly norm?: string; readonly rowsOf?: string };
}

/** Candidate exponents. */
export const AWQ_GRID: readonly number[] = [0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1];
/** Rows sampled per weight for the search (evenly spaced). */
export const AWQ_ROWS = 64;

export interface AwqResult {
  readonly report: AwqChoice;
  /** The chosen scales, or undefined when alpha = 0 wins. */
  readonly scales: Float32Array | undefined;
}

/**
 * Search alpha for one group. `x`: `nTok` sampled input rows of `cols` values; `meanAbs`: mean |x|
 * per column over all calibration tokens; `importance`: the group's input importances (mean x^2)
 * or undefined for round-to-nearest quantization.
 */
export function searchAwq(
  weights: WeightSource,
  group: AwqGroup,
  types: readonly GgmlType[],
  x: Float32Array,
  nTok: number,
  cols: number,
  meanAbs: Float64Array,
  importance: Float32Array | undefined,
): AwqResult {
  const mats = group.weights.map((name, i) => sampleRows(weights, name, cols, types[i]!));
  // Reference outputs W x_t of the sampled rows.
  const ref = mats.map((m) => {
    const y = new Float64Array(m.n * nTok);
    for (let r = 0; r < m.n; r++) for (let t = 0; t < nTok; t++) y[r * nTok + t] = dot(m.w, r * cols, x, t * cols, cols);
    return y;
  });
  const xs = new Float32Array(nTok * cols);
  const qw = importance === undefined ? null : new Float32Array(cols);
  const w = new Float32Array(cols);
  const wq = new Float32Array(cols);
  let best = { alpha: 0, loss: Infinity, s: undefined as Float32Array | undefined };
  let lossBefore = NaN;
  for (const alpha of AWQ_GRID) {
    const s = scalesFor(meanAbs, alpha);
    for (let t = 0; t < nTok; t++) for (let c = 0; c < cols; c++) xs[t * cols + c] = x[t * cols + c]! / s[c]!;
    if (qw !== null && importance !== undefined) for (let c = 0; c < cols; c++) qw[c] = importance[c]! / (s[c]! * s[c]!);
    let loss = 0;
    mats.forEach((m, i) => {
      const f = getFormat(m.type);
      const q = new Uint8Array((cols / f.blockSize) * f.typeSize);
      for (let r = 0; r < m.n; r++) {
        for (let c = 0; c < cols; c++) w[c] = m.w[r * cols + c]! * s[c]!;
        quantizeRow(m.type, w, q, cols, qw);
        f.dequantizeRow(q, wq, cols);
        const yr = ref[i]!;
        for (let t = 0; t < nTok; t++) {
          const d = dot(wq, 0, xs, t * cols, cols) - yr[r * nTok + t]!;
          loss += d * d;
        }
      }
    });
    if (alpha === 0) lossBefore = loss;
    if (loss < best.loss) best = { alpha, loss, s: alpha === 0 ? undefined : s };
  }
  return {
    report: { group: group.name, weights: group.weights, alpha: best.alpha, lossBefore, lossAfter: best.loss },
    scales: best.s,
  };
}

/** s_c = max(meanAbs_c, 1e-4)^alpha / sqrt(max s * min s) (all ones for alpha = 0). */
export function scalesFor(meanAbs: Float64Array, alpha: number): Float32Array {
  const s = new Float32Array(meanAbs.length);
  if (alpha === 0) return s.fill(1);
  let max = 0;
  let min = Infinity;
  for (let c = 0; c < s.length; c++) {
    const v = Math.pow(Math.max(meanAbs[c]!, 1e-4), alpha);
    s[c] = v;
    if (v > max) max = v;
    if (v < min) min = v;
  }
  const norm = Math.sqrt(max * min);
  for (let c = 0; c < s.length; c++) s[c] = s[c]! / norm;
  return s;
}

function dot(a: Float32Array, ao: number, b: Float32Array, bo: number, n: number): number {
  let s = 0;
  for (let i = 0; i < n; i++) s += a[ao + i]! * b[bo + i]!;
  return s;
}

interface SampledRows {
  readonly type: GgmlType;
  readonly n: number;
  /** n rows of cols values. */
  readonly w: Float32Array;
}

/** Up to AWQ_ROWS evenly spaced rows of a weight, as f32. */
function sampleRows(weights: WeightSource, name: string, cols: number, type: GgmlType): SampledRows {
  const info = weights.get(name)!;
  const { rows } = rowShape(info);
  const n = Math.min(rows, AWQ_ROWS);
  const w = new Float32Array(n * cols);
  let scratch: Uint8Array = new Uint8Array(0);
  for (let i = 0; i < n; i++) {
    const r = Math.floor((i * rows) / n);
    scratch = readRowsF32(weights, info, r, 1, w.subarray(i * cols, (i + 1) * cols), scratch);
  }
  return { type, n, w };
}
