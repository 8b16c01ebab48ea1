/**
 * Random-weight models with the exact shapes of real ones (for speed measurements and for tests
 * against llama.cpp). Weights are deterministic for a seed; every 2-D weight is stored in the
 * requested type (llama.cpp's fallback when a row length does not fit the type's block), norms in
 * F32. The tokenizer is either copied from another model's metadata or a synthetic
 * SentencePiece-style vocabulary of the right size (byte tokens plus made-up pieces).
 */
import os from "node:os";
import { UsageError, assert } from "../errors.js";
import { AtomicFileWriter } from "../formats/file-writer.js";
import { encodeGgufHeader, writeGguf, type GgufWriterTensor } from "../formats/gguf/index.js";
import { GgufValueType, Metadata } from "../formats/metadata.js";
import { GgmlType, ggmlTypeName } from "../tensor/ggml-type.js";
import { getFormat } from "../tensor/registry.js";
import { Rng } from "../runtime/sampler.js";
import { QuantizePool, quantizeRows } from "./quantize-pool.js";

export interface SynthShape {
  readonly arch: "llama" | "qwen2";
  readonly dim: number;
  readonly nLayers: number;
  readonly nHeads: number;
  readonly nKvHeads: number;
  readonly ffnDim: number;
  readonly vocabSize: number;
  readonly contextLength: number;
  readonly ropeTheta: number;
  readonly rmsEps: number;
  readonly tiedEmbeddings: boolean;
  readonly qkvBias: boolean;
  /** Llama 3.x rope scaling (written as rope_freqs.weight, as llama.cpp's converter does). */
  readonly llama3Rope?: { factor: number; lowFreqFactor: number; highFreqFactor: number; originalContext: number };
}

export const PRESETS: Readonly<Record<string, SynthShape>> = {
  /** For tests: ~2 M parameters, every row length a multiple of 256 (all block formats fit). */
  tiny: { arch: "llama", dim: 256, nLayers: 2, nHeads: 8, nKvHeads: 2, ffnDim: 768, vocabSize: 1024, contextLength: 2048, ropeTheta: 10000, rmsEps: 1e-5, tiedEmbeddings: false, qkvBias: false },
  "smollm2-135m": { arch: "llama", dim: 576, nLayers: 30, nHeads: 9, nKvHeads: 3, ffnDim: 1536, vocabSize: 49152, contextLength: 8192, ropeTheta: 100000, rmsEps: 1e-5, tiedEmbeddings: true, qkvBias: false },
  "qwen2.5-0.5b": { arch: "qwen2", dim: 896, nLayers: 24, nHeads: 14, nKvHeads: 2, ffnDim: 4864, vocabSize: 151936, contextLength: 32768, ropeTheta: 1000000, rmsEps: 1e-6, tiedEmbeddings: true, qkvBias: true },
  "tinyllama-1.1b": { arch: "llama", dim: 2048, nLayers: 22, nHeads: 32, nKvHeads: 4, ffnDim: 5632, vocabSize: 32000, contextLength: 2048, ropeTheta: 10000, rmsEps: 1e-5, tiedEmbeddings: false, qkvBias: false },
  "llama-3.2-1b": {
    arch: "llama", dim: 2048, nLayers: 16, nHeads: 32, nKvHeads: 8, ffnDim: 8192, vocabSize: 128256, contextLength: 131072, ropeTheta: 500000, rmsEps: 1e-5, tiedEmbeddings: true, qkvBias: false,
    llama3Rope: { factor: 32, lowFreqFactor: 1, highFreqFactor: 4, originalContext: 8192 },
  },
  "llama-2-7b": { arch: "llama", dim: 4096, nLayers: 32, nHeads: 32, nKvHeads: 32, ffnDim: 11008, vocabSize: 32000, contextLength: 4096, ropeTheta: 10000, rmsEps: 1e-5, tiedEmbeddings: false, qkvBias: false },
};

export function getPreset(name: string): SynthShape {
  const p = PRESETS[name];
  if (p === undefined) {
    throw new UsageError(`unknown preset "${name}"`, { expected: Object.keys(PRESETS).join(", "), got: name });
  }
  return p;
}

/** Weight types `synth` writes (the ones our kernels compute directly). */
export const SYNTH_TYPES: Readonly<Record<string, GgmlType>> = {
  f32: GgmlType.F32,
  f16: GgmlType.F16,
  q8_0: GgmlType.Q8_0,
  q4_0: GgmlType.Q4_0,
  q4_k: GgmlType.Q4_K,
  q6_k: GgmlType.Q6_K,
};

export function parseSynthType(name: string): GgmlType {
  const t = SYNTH_TYPES[name.toLowerCase()];
  if (t === undefined) throw new UsageError(`unknown weight type "${name}"`, { expected: Object.keys(SYNTH_TYPES).join(", "), got: name });
  return t;
}

/** llama.cpp's fallback when a row length is not a multiple of the type's block (llama-quant.cpp). */
export function fallbackType(type: GgmlType, rowLength: number): GgmlType {
  const fits = (t: GgmlType): boolean => rowLength % getFormat(t).blockSize === 0;
  if (fits(type)) return type;
  const next: Partial<Record<GgmlType, GgmlType>> = {
    [GgmlType.Q2_K]: GgmlType.Q4_0,
    [GgmlType.Q3_K]: GgmlType.Q4_0,
    [GgmlType.Q4_K]: GgmlType.Q5_0,
    [GgmlType.Q5_K]: GgmlType.Q5_1,
    [GgmlType.Q6_K]: GgmlType.Q8_0,
  };
  const f = next[type];
  return f !== undefined && fits(f) ? f : GgmlType.F16;
}

export interface SynthOptions {
  readonly shape: SynthShape;
  readonly type: GgmlType;
  readonly seed: number;
  readonly out: string;
  readonly name?: string;
  /** Copy `tokenizer.*` keys from this metadata (its vocabulary size wins) instead of a synthetic vocabulary. */
  readonly tokenizerFrom?: Metadata;
  /** `done` and `total` count weight values (not bytes); `tensor` is the tensor being written. */
  readonly onProgress?: (done: number, total: number, tensor: string) => void;
}

export interface SynthResult {
  readonly fileSize: number;
  readonly parameters: number;
  /** Tensor count per type name ("q4_k": 154, "f32": 45). */
  readonly types: Record<string, number>;
}

interface PlannedTensor {
  readonly name: string;
  readonly dims: readonly [number] | readonly [number, number];
  /** Standard deviation of the uniform random values (0: all ones). */
  readonly std: number;
  readonly values?: Float32Array;
}

interface TypedTensor extends PlannedTensor {
  readonly type: GgmlType;
  /** Seed of this tensor's random stream. */
  readonly seed: number;
  readonly cols: number;
  readonly rows: number;
  readonly rowBytes: number;
}

interface SynthPlan {
  readonly meta: Metadata;
  readonly tensors: readonly TypedTensor[];
  readonly types: Record<string, number>;
  readonly parameters: number;
}

function planSynth(o: SynthOptions): SynthPlan {
  const s = o.shape;
  const meta = new Metadata(o.out);
  const vocab = o.tokenizerFrom ? copyTokenizer(o.tokenizerFrom, meta) : synthVocab(s.vocabSize, meta);
  const a = s.arch;
  const hd = s.dim / s.nHeads;
  meta.set("general.architecture", GgufValueType.STRING, a);
  meta.set("general.name", GgufValueType.STRING, o.name ?? `slimlm synth ${a}`);
  meta.set("general.file_type", GgufValueType.UINT32, fileTypeId(o.type));
  meta.set(`${a}.context_length`, GgufValueType.UINT32, s.contextLength);
  meta.set(`${a}.embedding_length`, GgufValueType.UINT32, s.dim);
  meta.set(`${a}.block_count`, GgufValueType.UINT32, s.nLayers);
  meta.set(`${a}.feed_forward_length`, GgufValueType.UINT32, s.ffnDim);
  meta.set(`${a}.attention.head_count`, GgufValueType.UINT32, s.nHeads);
  meta.set(`${a}.attention.head_count_kv`, GgufValueType.UINT32, s.nKvHeads);
  meta.set(`${a}.rope.freq_base`, GgufValueType.FLOAT32, s.ropeTheta);
  meta.set(`${a}.rope.dimension_count`, GgufValueType.UINT32, hd);
  meta.set(`${a}.attention.layer_norm_rms_epsilon`, GgufValueType.FLOAT32, s.rmsEps);
  meta.set(`${a}.vocab_size`, GgufValueType.UINT32, vocab);

  const D = s.dim;
  const kv = s.nKvHeads * hd;
  const plan: PlannedTensor[] = [{ name: "token_embd.weight", dims: [D, vocab], std: 1 }];
  if (s.llama3Rope) plan.push({ name: "rope_freqs.weight", dims: [hd / 2], std: 0, values: llama3RopeFactors(hd, s.ropeTheta, s.llama3Rope) });
  for (let l = 0; l < s.nLayers; l++) {
    const b = `blk.${l}`;
    plan.push(
      { name: `${b}.attn_norm.weight`, dims: [D], std: 0 },
      { name: `${b}.attn_q.weight`, dims: [D, D], std: 1 / Math.sqrt(D) },
      { name: `${b}.attn_k.weight`, dims: [D, kv], std: 1 / Math.sqrt(D) },
      { name: `${b}.attn_v.weight`, dims: [D, kv], std: 1 / Math.sqrt(D) },
    );
    if (s.qkvBias) {
      plan.push(
        { name: `${b}.attn_q.bias`, dims: [D], std: 0.1 },
        { name: `${b}.attn_k.bias`, dims: [kv], std: 0.1 },
        { name: `${b}.attn_v.bias`, dims: [kv], std: 0.1 },
      );
    }
    plan.push(
      { name: `${b}.attn_output.weight`, dims: [D, D], std: 1 / Math.sqrt(D) },
      { name: `${b}.ffn_norm.weight`, dims: [D], std: 0 },
      { name: `${b}.ffn_gate.weight`, dims: [D, s.ffnDim], std: 1 / Math.sqrt(D) },
      { name: `${b}.ffn_up.weight`, dims: [D, s.ffnDim], std: 1 / Math.sqrt(D) },
      { name: `${b}.ffn_down.weight`, dims: [s.ffnDim, D], std: 1 / Math.sqrt(s.ffnDim) },
    );
  }
  plan.push({ name: "output_norm.weight", dims: [D], std: 0 });
  // NOTE: a wider output spread gives peaked next-token distributions, so greedy comparisons
  // between engines are not decided by float rounding at near-ties.
  if (!s.tiedEmbeddings) plan.push({ name: "output.weight", dims: [D, vocab], std: 8 / Math.sqrt(D) });

  const types: Record<string, number> = {};
  let parameters = 0;
  const tensors = plan.map((p, index): TypedTensor => {
    const is2d = p.dims.length === 2 && !p.name.endsWith(".bias");
    const type = is2d ? fallbackType(o.type, p.dims[0]) : GgmlType.F32;
    const key = ggmlTypeName(type);
    types[key] = (types[key] ?? 0) + 1;
    const cols = p.dims[0];
    const rows = p.dims.length === 2 ? p.dims[1] : 1;
    parameters += cols * rows;
    const fmt = getFormat(type);
    if (fmt.quantizeRowRef === undefined) throw new UsageError(`cannot write ${fmt.name} tensors`);
    return { ...p, type, seed: (o.seed * 1000003 + index) >>> 0, cols, rows, rowBytes: (cols / fmt.blockSize) * fmt.typeSize };
  });
  return { meta, tensors, types, parameters };
}

/**
 * One tensor's values in chunks of whole rows (~4 MiB of f32 each): the tensor's random stream
 * in order, so the values do not depend on how the chunks are processed. `reuse` recycles one
 * buffer (the caller must consume each chunk before asking for the next).
 */
function* valueChunks(t: TypedTensor, reuse: boolean): Generator<{ values: Float32Array; rows: number; last: boolean }> {
  const { cols, rows } = t;
  const rowsPerChunk = Math.max(1, Math.floor((4 << 20) / (cols * 4)));
  const rng = new Rng(t.seed);
  const a = t.std * Math.sqrt(3); // uniform(-a, a) has standard deviation std
  let buf = reuse ? new Float32Array(Math.min(rowsPerChunk, rows) * cols) : undefined;
  for (let r = 0; r < rows; r += rowsPerChunk) {
    const n = Math.min(rowsPerChunk, rows - r);
    const src = buf !== undefined ? buf.subarray(0, n * cols) : new Float32Array(n * cols);
    if (t.values !== undefined) src.set(t.values.subarray(r * cols, (r + n) * cols));
    else if (t.std === 0) src.fill(1);
    else for (let i = 0; i < n * cols; i++) src[i] = (2 * rng.next() - 1) * a;
    yield { values: src, rows: n, last: r + n >= rows };
    if (!reuse) buf = undefined;
  }
}

/**
 * Write a random-weight GGUF on this thread (slow for K-quants: ~3 M values/s). Same bytes as
 * `synthesizeParallel` for the same options.
 */
export function synthesize(o: SynthOptions): SynthResult {
  const plan = planSynth(o);
  const total = plan.parameters;
  let done = 0;
  const tensors: GgufWriterTensor[] = plan.tensors.map((t) => ({
    name: t.name,
    type: t.type,
    dims: t.dims,
    data: (write: (chunk: Uint8Array) => void) => {
      const out = new Uint8Array(Math.max(1, Math.floor((4 << 20) / (t.cols * 4))) * t.rowBytes);
      for (const c of valueChunks(t, true)) {
        write(quantizeRows(t.type, c.values, c.rows, t.cols, out));
        done += c.rows * t.cols;
        o.onProgress?.(done, total, t.name);
      }
    },
  }));
  const r = writeGguf(o.out, plan.meta, tensors);
  return { fileSize: r.fileSize, parameters: plan.parameters, types: plan.types };
}

/**
 * Write a random-weight GGUF, quantizing on `threads` worker threads (default: the cores) while
 * this thread draws the random values and writes the file in order. The bytes depend only on the
 * options, not on the thread count.
 */
export async function synthesizeParallel(o: SynthOptions & { readonly threads?: number }): Promise<SynthResult> {
  const threads = o.threads ?? os.availableParallelism();
  if (!Number.isInteger(threads) || threads < 1 || threads > 256) {
    throw new UsageError("invalid thread count", { expected: "an integer in [1, 256]", got: String(threads) });
  }
  const plan = planSynth(o);
  const header = encodeGgufHeader(plan.meta, plan.tensors);
  const total = plan.parameters;
  const out = AtomicFileWriter.create(o.out);
  const pool = new QuantizePool(threads);
  try {
    out.write(header.bytes);
    interface Piece {
      readonly bytes: Promise<Uint8Array>;
      readonly values: number;
      readonly tensor: number;
      readonly last: boolean;
    }
    const queue: Piece[] = [];
    // NOTE: enough chunks in flight to keep every worker busy while the writer waits for the
    // oldest one; each holds ~4 MiB of f32 values plus its quantized bytes.
    const maxInFlight = 2 * threads + 2;
    let done = 0;
    const drainOne = async (): Promise<void> => {
      const p = queue.shift()!;
      const t = plan.tensors[p.tensor]!;
      out.write(await p.bytes);
      done += p.values;
      o.onProgress?.(done, total, t.name);
      if (p.last) {
        const i = p.tensor;
        const expectedEnd = header.dataOffset + header.offsets[i]! + header.nbytes[i]!;
        assert(out.written === expectedEnd, () => `synth: tensor ${t.name} ends at ${out.written}, expected ${expectedEnd}`);
        const padded = i + 1 < plan.tensors.length ? header.dataOffset + header.offsets[i + 1]! : header.fileSize;
        out.zeros(padded - expectedEnd);
      }
    };
    for (let i = 0; i < plan.tensors.length; i++) {
      const t = plan.tensors[i]!;
      // F32 tensors are a copy: no worker needed.
      for (const c of valueChunks(t, false)) {
        const bytes =
          t.type === GgmlType.F32
            ? Promise.resolve(new Uint8Array(c.values.buffer, c.values.byteOffset, c.values.byteLength))
            : pool.quantize(t.type, c.values, c.rows, t.cols);
        bytes.catch(() => undefined); // awaited in order below; a failure surfaces there
        queue.push({ bytes, values: c.rows * t.cols, tensor: i, last: c.last });
        while (queue.length >= maxInFlight) await drainOne();
      }
    }
    while (queue.length > 0) await drainOne();
    assert(out.written === header.fileSize, "synth: file size");
    out.commit();
  } catch (e) {
    out.abort();
    throw e;
  } finally {
    await pool.close();
  }
  return { fileSize: header.fileSize, parameters: plan.parameters, types: plan.types };
}

/** convert_hf_to_gguf.py's LlamaModel rope factors for "llama3" scaling. */
export function llama3RopeFactors(headDim: number, base: number, r: NonNullable<SynthShape["llama3Rope"]>): Float32Array {
  const lowWavelen = r.originalContext / r.lowFreqFactor;
  const highWavelen = r.originalContext / r.highFreqFactor;
  const out = new Float32Array(headDim / 2);
  for (let i = 0; i < headDim / 2; i++) {
    const freq = 1 / Math.pow(base, (2 * i) / headDim);
    const wavelen = (2 * Math.PI) / freq;
    if (wavelen < highWavelen) out[i] = 1;
    else if (wavelen > lowWavelen) out[i] = r.factor;
    else {
      const smooth = (r.originalContext / wavelen - r.lowFreqFactor) / (r.highFreqFactor - r.lowFreqFactor);
      out[i] = 1 / ((1 - smooth) / r.factor + smooth);
    }
  }
  return out;
}

/** llama.cpp's `general.file_type` (enum llama_ftype) for an all-`type` file. */
function fileTypeId(t: GgmlType): number {
  const ids: Partial<Record<GgmlType, number>> = {
    [GgmlType.F32]: 0, [GgmlType.F16]: 1, [GgmlType.Q4_0]: 2, [GgmlType.Q4_1]: 3, [GgmlType.Q8_0]: 7,
    [GgmlType.Q5_0]: 8, [GgmlType.Q5_1]: 9, [GgmlType.Q2_K]: 10, [GgmlType.Q3_K]: 12, [GgmlType.Q4_K]: 15,
    [GgmlType.Q5_K]: 17, [GgmlType.Q6_K]: 18, [GgmlType.BF16]: 32,
  };
  return ids[t] ?? 0;
}

function copyTokenizer(from: Metadata, to: Metadata): number {
  for (const [k, e] of from.entries) if (k.startsWith("tokenizer.")) to.entries.set(k, e);
  return from.stringArray("tokenizer.ggml.tokens").length;
}

/**
 * A SentencePiece-style vocabulary of exactly `n` tokens: <unk>, <s>, </s>, the 256 byte
 * tokens, then distinct made-up pieces with decreasing scores.
 */
function synthVocab(n: number, meta: Metadata): number {
  const tokens = ["<unk>", "<s>", "</s>"];
  const types = [2, 3, 3]; // unknown, control, control
  for (let b = 0; b < 256; b++) {
    tokens.push(`<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`);
    types.push(6); // byte
  }
  const letters = "etaoinshrdlucmfwypvbgkjqxz";
  const seen = new Set(tokens);
  for (let i = 0; tokens.length < n; i++) {
    // bijective base-26 words: e, t, ..., ee, et, ... ; alternate with a leading "▁"
    let k = Math.floor(i / 2) + 1;
    let w = "";
    while (k > 0) {
      k--;
      w = letters[k % 26] + w;
      k = Math.floor(k / 26);
    }
    const piece = i % 2 === 0 ? `▁${w}` : w;
    if (seen.has(piece)) continue;
    seen.add(piece);
    tokens.push(piece);
    types.push(1);
  }
  meta.set("tokenizer.ggml.model", GgufValueType.STRING, "llama");
  meta.set("tokenizer.ggml.tokens", GgufValueType.ARRAY, tokens, GgufValueType.STRING);
  meta.set("tokenizer.ggml.scores", GgufValueType.ARRAY, tokens.map((_, i) => (i < 259 ? 0 : -(i - 259))), GgufValueType.FLOAT32);
  meta.set("tokenizer.ggml.token_type", GgufValueType.ARRAY, types, GgufValueType.INT32);
  meta.set("tokenizer.ggml.bos_token_id", GgufValueType.UINT32, 1);
  meta.set("tokenizer.ggml.eos_token_id", GgufValueType.UINT32, 2);
  meta.set("tokenizer.ggml.unknown_token_id", GgufValueType.UINT32, 0);
  meta.set("tokenizer.ggml.add_bos_token", GgufValueType.BOOL, true);
  return n;
}
