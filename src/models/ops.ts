/**
 * What a model file sees of the machine: named weights and activation buffers declared once
 * (`WeightSpace`), then a forward pass written against `Ops`.
 *
 * A model never learns how many threads run it, where a weight lives, or how it is stored: the
 * runtime splits matrices by rows across lanes, gathers a vector when an op needs all of it, and
 * converts or quantizes as the file requires. Read src/models/llama.ts for an example.
 */

/** A weight matrix of `rows` rows of `cols` elements (GGUF dims [cols, rows]). */
export interface Weight {
  readonly id: number;
  readonly name: string;
  readonly rows: number;
  readonly cols: number;
}

/** A small vector held whole by every lane (norm weights). */
export interface Vec {
  readonly id: number;
  readonly name: string;
  readonly length: number;
}

/** An activation buffer of up to `maxRows` rows (tokens) of `width` floats. */
export interface Act {
  readonly id: number;
  readonly name: string;
  readonly width: number;
}

export interface MatrixOptions {
  /**
   * Rows are only ever split between lanes in multiples of `shardUnit` (e.g. one attention head,
   * so a lane owns whole heads). Default: a small multiple that suits the kernels.
   */
  readonly shardUnit?: number;
  /** A bias vector of `rows` elements added to the product (e.g. Qwen2's q/k/v bias). */
  readonly bias?: string;
  /** Expected [cols, rows]; a mismatch is a model-format error naming the tensor. */
  readonly shape: readonly [number, number];
}

export interface KvCacheShape {
  readonly nLayers: number;
  /** Query heads (a multiple of nKvHeads). */
  readonly nHeads: number;
  readonly nKvHeads: number;
  readonly headDim: number;
}

/** Declaration-time view of the weights; names are GGUF tensor names. */
export interface WeightSpace {
  has(name: string): boolean;
  matrix(name: string, opts: MatrixOptions): Weight;
  vector(name: string, length: number): Vec;
  /** Read a small tensor (e.g. rope frequency factors) as f32 values at declaration time. */
  readSmall(name: string, length: number): Float32Array;
  /**
   * An activation buffer with one row per batch token, or (`perOutputRow`) one row per output
   * row only, e.g. the logits.
   */
  activation(name: string, width: number, opts?: { perOutputRow?: boolean }): Act;
  kvCache(shape: KvCacheShape): void;
}

/** RoPE settings of a model (llama.cpp `ggml_rope_ext` with ext_factor 0). */
export interface RopeSpec {
  /** Heads in the tensor being rotated (all lanes together). */
  readonly nHeads: number;
  readonly headDim: number;
  /** Dimensions rotated per head (<= headDim, even). */
  readonly nRot: number;
  /** false: pairs (2i, 2i+1) (llama.cpp "normal"); true: pairs (i, i + nRot/2) ("neox"). */
  readonly neox: boolean;
  readonly freqBase: number;
  /** 1 / linear scaling factor. */
  readonly freqScale: number;
  /** Llama 3 style per-pair divisors of the frequency (nRot / 2 values), or undefined. */
  readonly freqFactors: Float32Array | undefined;
}

export interface AttentionSpec {
  readonly layer: number;
  readonly nHeads: number;
  readonly nKvHeads: number;
  readonly headDim: number;
  readonly scale: number;
}

/**
 * The forward-pass operations. Each op reads `rows` rows of its inputs, where `rows` is the
 * number of rows last written to that buffer (`embed` writes one row per batch token).
 */
export interface Ops {
  /** out[t] = table[token_t] for every batch token. */
  embed(out: Act, table: Weight): void;
  /** out[t] = x[t] / rms(x[t]) * w. */
  rmsnorm(out: Act, x: Act, w: Vec, eps: number): void;
  /** out[t] = w . x[t] (+ bias). out.width must equal w.rows, x.width w.cols. */
  matmul(out: Act, x: Act, w: Weight): void;
  /** Rotate q or k in place by each token's position. */
  rope(x: Act, spec: RopeSpec): void;
  /**
   * Store k and v of every batch token in the KV cache at its position, then
   * out[t] = softmax(scale * q[t] . K^T over the token's sequence, positions <= its own) . V.
   */
  attention(out: Act, q: Act, k: Act, v: Act, spec: AttentionSpec): void;
  /** out = silu(gate) * up. */
  swiglu(out: Act, gate: Act, up: Act): void;
  /** out = a + b. */
  add(out: Act, a: Act, b: Act): void;
  /** Keep only the rows that produce logits (the batch's output rows); returns how many. */
  selectOutputRows(x: Act): number;
  /** Hand the logits in `x` (one row per output row) to the caller. */
  output(x: Act): void;
}

/** A model family: declare weights once, then run forward passes. */
export interface ModelFamily<Config, Model> {
  readonly name: string;
  declare(config: Config, ws: WeightSpace): Model;
  forward(model: Model, ops: Ops): void;
}
