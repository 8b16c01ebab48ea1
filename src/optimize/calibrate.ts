/**
 * Calibration: run the model over a text with our engine, and from the input rows of every
 * matrix product (the engine's matmul observer, lane 0):
 *
 * 1. the importance matrix (llama.cpp imatrix): mean x^2 of each input column per weight, which
 *    the weighted quantizers (weighted.ts) use to minimise the activation-weighted error;
 * 2. for 4-bit types, activation-aware per-channel scales in the spirit of AWQ (awq.ts), searched
 *    per layer on a sample of the calibration activations and folded exactly into the preceding
 *    operation.
 */
import { UsageError } from "../errors.js";
import { dataTokens, windowsOf } from "../eval/perplexity.js";
import { openModelFile } from "../formats/index.js";
import { resolveModel } from "../models/index.js";
import { Engine } from "../runtime/engine.js";
import { tokenizerFor } from "../runtime/model-tokenizer.js";
import type { Tokenizer } from "../tokenizer/index.js";
import { type AwqGroup, searchAwq } from "./awq.js";
import { Imatrix } from "./imatrix.js";
import { GgmlType } from "../tensor/ggml-type.js";
import { type FileTypeSpec, isFourBit, isQuantized } from "./quant-types.js";
import type { TensorPlan } from "./recipe.js";
import type { AwqChoice, CalibrationResult, TensorTransform } from "./transforms.js";

export interface CalibrationOptions {
  /** Calibration text (--calib). Either this or `imatrixIn`. */
  readonly text?: string;
  /** Its file name, recorded in a saved importance matrix. */
  readonly source?: string;
  /** Use at most this many tokens (--calib-tokens). */
  readonly maxTokens?: number;
  /** Window size (default: min(512, the model's context)). */
  readonly ctx?: number;
  /** Activation-aware scaling; default: on for 4-bit types. */
  readonly awq?: boolean;
  /** Load the importance matrix from this file instead of computing it (no AWQ then). */
  readonly imatrixIn?: string;
  /** Save the importance matrix (of the unscaled model) here. */
  readonly imatrixOut?: string;
  readonly threads?: number;
}

/** Tokens per forward pass during calibration. */
const CALIB_BATCH = 128;

/** Activation rows kept per AWQ group for the scale search. */
export const AWQ_SAMPLE_TOKENS = 256;

/** Names of the weights the engine reads each group's input for. */
interface GroupSampler {
  readonly group: AwqGroup;
  readonly cols: number;
  readonly samples: Float32Array;
  readonly sumAbs: Float64Array;
  n: number;
}

export async function calibrate(
  input: string,
  plans: readonly TensorPlan[],
  spec: FileTypeSpec,
  o: CalibrationOptions,
  onProgress?: (phase: string, done: number, total: number) => void,
  warn?: (m: string) => void,
): Promise<CalibrationResult> {
  if (o.text === undefined) {
    if (o.imatrixIn === undefined) throw new UsageError("calibration needs a text or an importance matrix");
    const m = Imatrix.load(o.imatrixIn);
    const importance = new Map<string, Float32Array>();
    for (const p of plans) {
      const imp = p.quantizable && p.name !== "token_embd.weight" ? m.importance(p.name) : undefined;
      if (imp !== undefined && imp.length === p.dims[0]) importance.set(p.name, imp);
    }
    if (importance.size === 0) warn?.(`the importance matrix ${o.imatrixIn} matches no weight of this model`);
    const tokens = Math.max(0, ...[...m.entries.values()].map((e) => e.count));
    return { importance, transforms: new Map(), tokens, awq: [] };
  }
  const planByName = new Map(plans.map((p) => [p.name, p]));
  const probe = openModelFile(input);
  let tokenizer: Tokenizer;
  let modelCtx: number;
  try {
    tokenizer = tokenizerFor(probe);
    modelCtx = resolveModel(probe.metadata, probe.weights.get("token_embd.weight")?.dims[1]).config.contextLength;
  } finally {
    probe.weights.close();
  }
  const tokens = dataTokens(tokenizer, o.text, o.maxTokens);
  if (tokens.length < 2) {
    throw new UsageError("the calibration text is too short", {
      expected: "at least 2 tokens",
      got: `${tokens.length} token${tokens.length === 1 ? "" : "s"}`,
      hint: "pass a text file of a few thousand words with --calib",
    });
  }
  // Windows of ctx tokens starting with BOS, as llama-imatrix; a short text is one shorter window.
  const ctx = Math.max(2, Math.min(o.ctx ?? 512, modelCtx, tokens.length));
  const windows = windowsOf(tokenizer, tokens, ctx);

  // Windows run in batches of at most CALIB_BATCH tokens (all of them output rows: the logits
  // buffer is batch x vocabulary floats per lane).
  const batch = Math.min(ctx, CALIB_BATCH);
  const engine = await Engine.load(input, { threads: o.threads ?? 1, contextSize: ctx, maxBatchTokens: batch, maxOutputRows: batch });
  const total = windows.length * ctx;
  const awq = (o.awq ?? isFourBit(spec)) && total > 0;
  const samplers = new Map<string, GroupSampler>();
  if (awq) {
    for (const g of awqGroups(engine.config.nLayers, planByName)) {
      const first = planByName.get(g.weights[0]!)!;
      const cols = first.dims[0]!;
      samplers.set(g.weights[0]!, { group: g, cols, samples: new Float32Array(AWQ_SAMPLE_TOKENS * cols), sumAbs: new Float64Array(cols), n: 0 });
    }
  }
  const stride = Math.max(1, Math.floor(total / AWQ_SAMPLE_TOKENS));
  const imatrix = new Imatrix(o.source === undefined ? [] : [o.source], windows.length, ctx);
  let base = 0;
  engine.backend.setMatmulObserver((w, x, rows) => {
    imatrix.add(w.name, x, rows, w.cols);
    const s = samplers.get(w.name);
    if (s === undefined) return;
    const C = s.cols;
    for (let t = 0; t < rows; t++) {
      const o2 = t * C;
      for (let c = 0; c < C; c++) s.sumAbs[c] = s.sumAbs[c]! + Math.abs(x[o2 + c]!);
      if ((base + t) % stride === 0 && s.n < AWQ_SAMPLE_TOKENS) {
        s.samples.set(x.subarray(o2, o2 + C), s.n * C);
        s.n++;
      }
    }
  });
  try {
    windows.forEach((win, i) => {
      const seq = engine.newSequence();
      try {
        seq.reserve(win.length);
        for (let start = 0; start < win.length; start += batch) {
          const T = Math.min(batch, win.length - start);
          // NOTE: every row is an output row, so the last layer's feed-forward sees all tokens too.
          engine.forward({
            tokens: win.slice(start, start + T),
            positions: Array.from({ length: T }, (_, p) => start + p),
            seqOf: new Array<number>(T).fill(0),
            blockTables: [seq.blockTable],
            outputRows: Array.from({ length: T }, (_, p) => p),
          });
          seq.length += T;
          base += T;
        }
      } finally {
        seq.release();
      }
      onProgress?.("calibrating", i + 1, windows.length);
    });
  } finally {
    engine.backend.setMatmulObserver(undefined);
    await engine.close();
  }
  if (o.imatrixOut !== undefined) imatrix.save(o.imatrixOut);

  const importance = new Map<string, Float32Array>();
  for (const p of plans) {
    // NOTE: like llama.cpp, no importance for the token embedding (a lookup table; when tied it
    // is observed as the output product only).
    const imp = p.quantizable && p.name !== "token_embd.weight" ? imatrix.importance(p.name) : undefined;
    if (imp !== undefined) importance.set(p.name, imp);
  }
  const transforms = new Map<string, TensorTransform>();
  const choices: AwqChoice[] = [];
  if (awq) {
    const file = openModelFile(input);
    try {
      let done = 0;
      for (const s of samplers.values()) {
        const types = s.group.weights.map((n) => planByName.get(n)!.to);
        // Float and 8-bit weights lose too little to gain from scaling.
        if (!types.some((t) => isQuantized(t) && t !== GgmlType.Q8_0)) {
          onProgress?.("awq", ++done, samplers.size);
          continue;
        }
        const meanAbs = Float64Array.from(s.sumAbs, (v) => v / total);
        const choice = searchAwq(file.weights, s.group, types, s.samples.subarray(0, s.n * s.cols), s.n, s.cols, meanAbs, importance.get(s.group.weights[0]!));
        choices.push(choice.report);
        if (choice.scales !== undefined) foldScales(s.group, choice.scales, transforms, importance);
        onProgress?.("awq", ++done, samplers.size);
      }
    } finally {
      file.weights.close();
    }
  }
  return { importance, transforms, tokens: total, awq: choices };
}

/** The AWQ groups of a Llama-family model whose weights are all present and 2-D. */
function awqGroups(nLayers: number, plans: ReadonlyMap<string, TensorPlan>): AwqGroup[] {
  const groups: AwqGroup[] = [];
  const ok = (names: readonly string[]): boolean => names.every((n) => plans.get(n)?.quantizable === true);
  for (let l = 0; l < nLayers; l++) {
    const b = `blk.${l}`;
    const qkv = [`${b}.attn_q.weight`, `${b}.attn_k.weight`, `${b}.attn_v.weight`];
    if (ok(qkv) && plans.has(`${b}.attn_norm.weight`)) groups.push({ name: `${b}.attn_norm`, weights: qkv, fold: { norm: `${b}.attn_norm.weight` } });
    const gu = [`${b}.ffn_gate.weight`, `${b}.ffn_up.weight`];
    if (ok(gu) && plans.has(`${b}.ffn_norm.weight`)) groups.push({ name: `${b}.ffn_norm`, weights: gu, fold: { norm: `${b}.ffn_norm.weight` } });
    // ffn_down's input is silu(gate) * up: scaling up's rows by 1/s scales it exactly (no bias).
    const down = [`${b}.ffn_down.weight`];
    if (ok(down) && ok([`${b}.ffn_up.weight`]) && !plans.has(`${b}.ffn_up.bias`)) {
      groups.push({ name: `${b}.ffn_up`, weights: down, fold: { rowsOf: `${b}.ffn_up.weight` } });
    }
  }
  return groups;
}

/** Record W' = W diag(s) for the group's weights and the inverse scaling of the preceding op. */
function foldScales(g: AwqGroup, s: Float32Array, transforms: Map<string, TensorTransform>, importance: Map<string, Float32Array>): void {
  const merge = (name: string, t: TensorTransform): void => {
    transforms.set(name, { ...transforms.get(name), ...t });
  };
  for (const w of g.weights) {
    merge(w, { colScale: s });
    const imp = importance.get(w);
    // The scaled weight sees inputs x / s: its column importances shrink by s^2.
    if (imp !== undefined) importance.set(w, Float32Array.from(imp, (v, c) => v / (s[c]! * s[c]!)));
  }
  if (g.fold.norm !== undefined) merge(g.fold.norm, { divide: s });
  if (g.fold.rowsOf !== undefined) merge(g.fold.rowsOf, { rowScale: Float32Array.from(s, (v) => 1 / v) });
}
