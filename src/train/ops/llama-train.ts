/**
 * A trainable Llama-family model: parameters and gradients in one flat array each (views per
 * tensor, GGUF names and row-major [out, in] layouts as in a GGUF file), forward over a batch of
 * whole sequences keeping what backward needs, and backward.
 *
 * Legend: B sequences of T tokens, N = B*T rows, D dim, H/Hk heads, hd head size, F FFN size,
 * V vocabulary. Shapes in comments are [rows, cols].
 */
import { Attention } from "./attention.js";
import type { Matmul } from "./matmul.js";
import {
  type Floats,
  crossEntropy,
  embedBackward,
  embedForward,
  klDivergence,
  rmsnormBackward,
  rmsnormForward,
  rope,
  ropeTable,
  swigluBackward,
  swigluForward,
} from "./tensor-ops.js";

export interface TrainShape {
  readonly arch: "llama" | "qwen2";
  readonly vocabSize: number;
  readonly dim: number;
  readonly nLayers: number;
  readonly nHeads: number;
  readonly nKvHeads: number;
  readonly ffnDim: number;
  readonly normEps: number;
  readonly ropeTheta: number;
  readonly tiedEmbeddings: boolean;
}

export interface ParamSpec {
  readonly name: string;
  /** [rows, cols] for matrices, [n] for vectors. */
  readonly shape: readonly number[];
  readonly offset: number;
  readonly size: number;
  /** Matrices decay; norms do not. */
  readonly decay: boolean;
}

/** The parameter layout of a shape (same order every time: checkpoints rely on it). */
export function paramSpecs(s: TrainShape): ParamSpec[] {
  const hd = s.dim / s.nHeads;
  const specs: ParamSpec[] = [];
  let offset = 0;
  const add = (name: string, shape: number[], decay: boolean): void => {
    const size = shape.reduce((a, b) => a * b, 1);
    specs.push({ name, shape, offset, size, decay });
    offset += size;
  };
  add("token_embd.weight", [s.vocabSize, s.dim], true);
  for (let l = 0; l < s.nLayers; l++) {
    const b = `blk.${l}`;
    add(`${b}.attn_norm.weight`, [s.dim], false);
    add(`${b}.attn_q.weight`, [s.nHeads * hd, s.dim], true);
    add(`${b}.attn_k.weight`, [s.nKvHeads * hd, s.dim], true);
    add(`${b}.attn_v.weight`, [s.nKvHeads * hd, s.dim], true);
    add(`${b}.attn_output.weight`, [s.dim, s.nHeads * hd], true);
    add(`${b}.ffn_norm.weight`, [s.dim], false);
    add(`${b}.ffn_gate.weight`, [s.ffnDim, s.dim], true);
    add(`${b}.ffn_up.weight`, [s.ffnDim, s.dim], true);
    add(`${b}.ffn_down.weight`, [s.dim, s.ffnDim], true);
  }
  add("output_norm.weight", [s.dim], false);
  if (!s.tiedEmbeddings) add("output.weight", [s.vocabSize, s.dim], true);
  return specs;
}

interface LayerViews<A extends Floats> {
  attnNorm: A;
  wq: A;
  wk: A;
  wv: A;
  wo: A;
  ffnNorm: A;
  wGate: A;
  wUp: A;
  wDown: A;
}

interface Views<A extends Floats> {
  tokEmbd: A;
  layers: LayerViews<A>[];
  outputNorm: A;
  output: A;
}

function views<A extends Floats>(s: TrainShape, specs: readonly ParamSpec[], flat: A): Views<A> {
  const get = (name: string): A => {
    const p = specs.find((x) => x.name === name);
    if (p === undefined) throw new Error(`no parameter ${name}`);
    return flat.subarray(p.offset, p.offset + p.size) as A;
  };
  const layers: LayerViews<A>[] = [];
  for (let l = 0; l < s.nLayers; l++) {
    const b = `blk.${l}`;
    layers.push({
      attnNorm: get(`${b}.attn_norm.weight`),
      wq: get(`${b}.attn_q.weight`),
      wk: get(`${b}.attn_k.weight`),
      wv: get(`${b}.attn_v.weight`),
      wo: get(`${b}.attn_output.weight`),
      ffnNorm: get(`${b}.ffn_norm.weight`),
      wGate: get(`${b}.ffn_gate.weight`),
      wUp: get(`${b}.ffn_up.weight`),
      wDown: get(`${b}.ffn_down.weight`),
    });
  }
  const tokEmbd = get("token_embd.weight");
  return { tokEmbd, layers, outputNorm: get("output_norm.weight"), output: s.tiedEmbeddings ? tokEmbd : get("output.weight") };
}

/** Per-layer activations kept from forward for backward. */
interface LayerCache<A extends Floats> {
  xIn: A; //    [N, D]
  xn1: A; //    [N, D]
  rstd1: A; //  [N]
  q: A; //      [N, H*hd] after RoPE
  k: A; //      [N, Hk*hd] after RoPE
  v: A; //      [N, Hk*hd]
  probs: A; //  [B, H, T, T]
  att: A; //    [N, H*hd]
  xMid: A; //   [N, D]
  xn2: A; //    [N, D]
  rstd2: A; //  [N]
  g: A; //      [N, F]
  u: A; //      [N, F]
  h: A; //      [N, F]
}

export interface LossSpec {
  /** Next-token targets, one per row (N). */
  readonly targets: ArrayLike<number>;
  /** Teacher logits [N, V] for distillation, with their weight and temperature. */
  readonly teacher?: { readonly logits: Floats; readonly alpha: number; readonly temperature: number };
}

export interface LossResult {
  /** The optimised loss: alpha * KL + (1 - alpha) * CE (or CE alone). */
  readonly loss: number;
  readonly ce: number;
  readonly kl: number | undefined;
}

export class TrainableLlama<A extends Floats> {
  readonly specs: ParamSpec[];
  readonly numParams: number;
  readonly params: A;
  readonly grads: A;
  private readonly p: Views<A>;
  private readonly g: Views<A>;
  private readonly caches: LayerCache<A>[] = [];
  private readonly tmp: Record<"xFinal" | "xf" | "rstdF" | "logits" | "dLogits" | "dx" | "dxn" | "dq" | "dk" | "dv" | "datt" | "dF1" | "dF2" | "dF3" | "dxf", A>;
  private readonly attn: Attention;
  private readonly rope: { cos: Float64Array; sin: Float64Array };
  private ids: ArrayLike<number> = [];

  constructor(
    readonly shape: TrainShape,
    /** Sequences per batch and tokens per sequence the buffers are sized for. */
    readonly B: number,
    readonly T: number,
    private readonly mm: Matmul,
    private readonly make: (n: number) => A,
  ) {
    const s = shape;
    this.specs = paramSpecs(s);
    const last = this.specs[this.specs.length - 1]!;
    this.numParams = last.offset + last.size;
    this.params = make(this.numParams);
    this.grads = make(this.numParams);
    this.p = views(s, this.specs, this.params);
    this.g = views(s, this.specs, this.grads);
    const N = B * T;
    const hd = s.dim / s.nHeads;
    const qw = s.nHeads * hd;
    const kw = s.nKvHeads * hd;
    for (let l = 0; l < s.nLayers; l++) {
      this.caches.push({
        xIn: make(N * s.dim),
        xn1: make(N * s.dim),
        rstd1: make(N),
        q: make(N * qw),
        k: make(N * kw),
        v: make(N * kw),
        probs: make(B * s.nHeads * T * T),
        att: make(N * qw),
        xMid: make(N * s.dim),
        xn2: make(N * s.dim),
        rstd2: make(N),
        g: make(N * s.ffnDim),
        u: make(N * s.ffnDim),
        h: make(N * s.ffnDim),
      });
    }
    this.tmp = {
      xFinal: make(N * s.dim),
      xf: make(N * s.dim),
      rstdF: make(N),
      logits: make(N * s.vocabSize),
      dLogits: make(N * s.vocabSize),
      dx: make(N * s.dim),
      dxn: make(N * s.dim),
      dq: make(N * qw),
      dk: make(N * kw),
      dv: make(N * kw),
      datt: make(N * qw),
      dF1: make(N * s.ffnDim),
      dF2: make(N * s.ffnDim),
      dF3: make(N * s.ffnDim),
      dxf: make(N * s.dim),
    };
    this.attn = new Attention({ B, T, H: s.nHeads, Hk: s.nKvHeads, hd, scale: 1 / Math.sqrt(hd) }, mm, make);
    this.rope = ropeTable(T, hd, s.ropeTheta);
  }

  get headDim(): number {
    return this.shape.dim / this.shape.nHeads;
  }

  get neox(): boolean {
    return this.shape.arch === "qwen2";
  }

  /** Logits [N, V] of the last forward. */
  get logits(): A {
    return this.tmp.logits;
  }

  /** Forward over ids [B*T] (each sequence starts at position 0); returns the logits [N, V]. */
  forward(ids: ArrayLike<number>): A {
    const s = this.shape;
    const { B, T, mm } = this;
    const N = B * T;
    const D = s.dim;
    const hd = this.headDim;
    const qw = s.nHeads * hd;
    const kw = s.nKvHeads * hd;
    this.ids = ids;
    let x = this.caches[0]!.xIn;
    embedForward(x, this.p.tokEmbd, ids, D);
    for (let l = 0; l < s.nLayers; l++) {
      const L = this.p.layers[l]!;
      const c = this.caches[l]!;
      if (l > 0) c.xIn.set(x);
      rmsnormForward(c.xn1, c.rstd1, c.xIn, L.attnNorm, N, D, s.normEps); // xn1: [N, D]
      mm.abT(c.q, c.xn1, L.wq, N, qw, D, false); //                          q: [N, H*hd]
      mm.abT(c.k, c.xn1, L.wk, N, kw, D, false); //                          k: [N, Hk*hd]
      mm.abT(c.v, c.xn1, L.wv, N, kw, D, false); //                          v: [N, Hk*hd]
      rope(c.q, B, T, s.nHeads, hd, hd, this.neox, this.rope);
      rope(c.k, B, T, s.nKvHeads, hd, hd, this.neox, this.rope);
      this.attn.forward(c.att, c.probs, c.q, c.k, c.v); //                   att: [N, H*hd]
      mm.abT(c.xMid, c.att, L.wo, N, D, qw, false); //                       xMid = xIn + att Wo^T
      for (let i = 0; i < N * D; i++) c.xMid[i] += c.xIn[i]!;
      rmsnormForward(c.xn2, c.rstd2, c.xMid, L.ffnNorm, N, D, s.normEps); // xn2: [N, D]
      mm.abT(c.g, c.xn2, L.wGate, N, s.ffnDim, D, false); //                 g: [N, F]
      mm.abT(c.u, c.xn2, L.wUp, N, s.ffnDim, D, false); //                   u: [N, F]
      swigluForward(c.h, c.g, c.u, N * s.ffnDim); //                         h = silu(g) u
      x = l + 1 < s.nLayers ? this.caches[l + 1]!.xIn : this.tmp.xFinal;
      mm.abT(x, c.h, L.wDown, N, D, s.ffnDim, false); //                     x = xMid + h Wd^T
      for (let i = 0; i < N * D; i++) x[i] += c.xMid[i]!;
    }
    rmsnormForward(this.tmp.xf, this.tmp.rstdF, this.tmp.xFinal, this.p.outputNorm, N, D, s.normEps);
    mm.abT(this.tmp.logits, this.tmp.xf, this.p.output, N, s.vocabSize, D, false); // logits: [N, V]
    return this.tmp.logits;
  }

  /** Loss of the last forward, and its gradient accumulated into `grads` (call zeroGrads first). */
  backward(spec: LossSpec): LossResult {
    const s = this.shape;
    const { B, T, mm } = this;
    const N = B * T;
    const D = s.dim;
    const V = s.vocabSize;
    const F = s.ffnDim;
    const hd = this.headDim;
    const qw = s.nHeads * hd;
    const kw = s.nKvHeads * hd;
    const t = this.tmp;
    t.dLogits.fill(0);
    const alpha = spec.teacher?.alpha ?? 0;
    const ce = crossEntropy(t.dLogits, t.logits, spec.targets, N, V, 1 - alpha);
    const kl = spec.teacher === undefined ? undefined : klDivergence(t.dLogits, t.logits, spec.teacher.logits, N, V, spec.teacher.temperature, alpha);
    // output projection and final norm
    mm.ab(t.dxf, t.dLogits, this.p.output, N, D, V, false); //           dxf = dLogits W_out
    mm.aTb(this.g.output, t.dLogits, t.xf, V, D, N, true); //           dW_out += dLogits^T xf
    const dx = t.dx;
    dx.fill(0);
    rmsnormBackward(dx, this.g.outputNorm, t.dxf, t.xFinal, this.p.outputNorm, t.rstdF, N, D);
    for (let l = s.nLayers - 1; l >= 0; l--) {
      const L = this.p.layers[l]!;
      const G = this.g.layers[l]!;
      const c = this.caches[l]!;
      // feed-forward: x = xMid + h Wd^T ; dx flows to xMid unchanged
      mm.ab(t.dF1, dx, L.wDown, N, F, D, false); //                      dh = dx Wd
      mm.aTb(G.wDown, dx, c.h, D, F, N, true); //                        dWd += dx^T h
      t.dF2.fill(0);
      t.dF3.fill(0);
      swigluBackward(t.dF2, t.dF3, t.dF1, c.g, c.u, N * F); //           dg, du
      mm.ab(t.dxn, t.dF2, L.wGate, N, D, F, false); //                   dxn2 = dg Wg + du Wu
      mm.ab(t.dxn, t.dF3, L.wUp, N, D, F, true);
      mm.aTb(G.wGate, t.dF2, c.xn2, F, D, N, true);
      mm.aTb(G.wUp, t.dF3, c.xn2, F, D, N, true);
      rmsnormBackward(dx, G.ffnNorm, t.dxn, c.xMid, L.ffnNorm, c.rstd2, N, D); // dx = dxMid
      // attention: xMid = xIn + att Wo^T
      mm.ab(t.datt, dx, L.wo, N, qw, D, false); //                       datt = dxMid Wo
      mm.aTb(G.wo, dx, c.att, D, qw, N, true); //                        dWo += dxMid^T att
      t.dq.fill(0);
      t.dk.fill(0);
      t.dv.fill(0);
      this.attn.backward(t.dq, t.dk, t.dv, t.datt, c.probs, c.q, c.k, c.v);
      rope(t.dq, B, T, s.nHeads, hd, hd, this.neox, this.rope, true);
      rope(t.dk, B, T, s.nKvHeads, hd, hd, this.neox, this.rope, true);
      mm.ab(t.dxn, t.dq, L.wq, N, D, qw, false); //                      dxn1 = dq Wq + dk Wk + dv Wv
      mm.ab(t.dxn, t.dk, L.wk, N, D, kw, true);
      mm.ab(t.dxn, t.dv, L.wv, N, D, kw, true);
      mm.aTb(G.wq, t.dq, c.xn1, qw, D, N, true);
      mm.aTb(G.wk, t.dk, c.xn1, kw, D, N, true);
      mm.aTb(G.wv, t.dv, c.xn1, kw, D, N, true);
      rmsnormBackward(dx, G.attnNorm, t.dxn, c.xIn, L.attnNorm, c.rstd1, N, D); // dx = dxIn
    }
    embedBackward(this.g.tokEmbd, dx, this.ids, D);
    const loss = (1 - alpha) * ce + alpha * (kl ?? 0);
    return { loss, ce, kl };
  }

  zeroGrads(): void {
    this.grads.fill(0);
  }

  /** View of one parameter (or its gradient) by GGUF name. */
  param(name: string, which: "params" | "grads" = "params"): A {
    const p = this.specs.find((x) => x.name === name);
    if (p === undefined) throw new Error(`no parameter ${name}`);
    return (which === "params" ? this.params : this.grads).subarray(p.offset, p.offset + p.size) as A;
  }
}

/** Floats a TrainableLlama of this shape allocates (to size an arena before building it). */
export function trainingFloats(shape: TrainShape, B: number, T: number): number {
  let n = 0;
  const count = (k: number): Float32Array => {
    n += k + 16; // the arena aligns every buffer to 64 bytes
    return new Float32Array(0);
  };
  new TrainableLlama(shape, B, T, { abT() {}, ab() {}, aTb() {} }, count);
  return n;
}
