/**
 * Random-weight models with the exact shapes of real ones (for speed measurements and for tests
 * against llama.cpp). Weights are deterministic for a seed; every 2-D weight is stored in the
 * requested type (llama.cpp's fallback when a row length does not fit the type's block), norms in
 * F32. The tokenizer is either copied from another model's metadata or a synthetic
 * SentencePiece-style vocabulary of the right size (byte tokens plus made-up pieces).
 */
import { UsageError } from "../errors.js";
import { writeGguf, type GgufWriterTensor } from "../formats/gguf/index.js";
import { GgufValueType, Metadata } from "../formats/metadata.js";
import { GgmlType, ggmlTypeName } from "../tensor/ggml-type.js";
import { getFormat } from "../tensor/registry.js";
import { Rng } from "../runtime/sampler.js";

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
  readonly onProgress?: (done: number, total: number, tensor: string) => void;
}

interface PlannedTensor {
  readonly name: string;
  readonly dims: readonly [number] | readonly [number, number];
  /** Standard deviation of the uniform random values (0: all ones). */
  readonly std: number;
  readonly values?: Float32Array;
}

/** Write a random-weight GGUF; returns the tensors' types. */
export function synthesize(o: SynthOptions): { fileSize: number; types: Record<string, number> } {
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
  const tensors: GgufWriterTensor[] = plan.map((p, index) => {
    const is2d = p.dims.length === 2 && !p.name.endsWith(".bias");
    const type = is2d ? fallbackType(o.type, p.dims[0]) : GgmlType.F32;
    const key = ggmlTypeName(type);
    types[key] = (types[key] ?? 0) + 1;
    return {
      name: p.name,
      type,
      dims: p.dims,
      data: (write: (chunk: Uint8Array) => void) => {
        writeRandomTensor(p, type, (o.seed * 1000003 + index) >>> 0, write);
        o.onProgress?.(index + 1, plan.length, p.name);
      },
    };
  });
  const r = writeGguf(o.out, meta, tensors);
  return { fileSize: r.fileSize, types };
}

function writeRandomTensor(p: PlannedTensor, type: GgmlType, seed: number, write: (chunk: Uint8Array) => void): void {
  const fmt = getFormat(type);
  const cols = p.dims[0];
  const rows = p.dims.length === 2 ? p.dims[1] : 1;
  const rowBytes = (cols / fmt.blockSize) * fmt.typeSize;
  const rowsPerChunk = Math.max(1, Math.floor((4 << 20) / (cols * 4)));
  const rng = new Rng(seed);
  const a = p.std * Math.sqrt(3); // uniform(-a, a) has standard deviation std
  const src = new Float32Array(rowsPerChunk * cols);
  const out = new Uint8Array(rowsPerChunk * rowBytes);
  const quantize = fmt.quantizeRowRef;
  if (quantize === undefined) throw new UsageError(`cannot write ${fmt.name} tensors`);
  for (let r = 0; r < rows; r += rowsPerChunk) {
    const n = Math.min(rowsPerChunk, rows - r);
    for (let i = 0; i < n * cols; i++) src[i] = p.values ? p.values[i]! : p.std === 0 ? 1 : (2 * rng.next() - 1) * a;
    for (let i = 0; i < n; i++) quantize(src.subarray(i * cols, (i + 1) * cols), out.subarray(i * rowBytes, (i + 1) * rowBytes), cols);
    write(out.subarray(0, n * rowBytes));
  }
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
