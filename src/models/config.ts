import { ModelFormatError, UnsupportedError } from "../errors.js";
import type { Metadata } from "../formats/metadata.js";

/** Hyper-parameters of a Llama-family decoder (llama, mistral, qwen2). */
export interface LlamaConfig {
  /** GGUF `general.architecture`. */
  readonly arch: string;
  readonly vocabSize: number;
  /** Residual stream width (`embedding_length`). */
  readonly dim: number;
  readonly nLayers: number;
  readonly nHeads: number;
  readonly nKvHeads: number;
  readonly headDim: number;
  /** SwiGLU hidden width (`feed_forward_length`). */
  readonly ffnDim: number;
  /** Context length the model was trained for. */
  readonly contextLength: number;
  readonly normEps: number;
  readonly rope: {
    readonly nRot: number;
    readonly neox: boolean;
    readonly freqBase: number;
    readonly freqScale: number;
  };
}

/** Architectures of the Llama family and their RoPE pair layout (llama.cpp `llama_model_rope_type`). */
const LLAMA_FAMILY: Readonly<Record<string, { neox: boolean }>> = {
  llama: { neox: false },
  mistral: { neox: false },
  qwen2: { neox: true },
};

export function isLlamaFamily(arch: string): boolean {
  return Object.hasOwn(LLAMA_FAMILY, arch);
}

const MAX_DIM = 1 << 16;
const MAX_LAYERS = 1024;
const MAX_VOCAB = 1 << 22;

/**
 * Read a LlamaConfig from GGUF-keyed metadata. `vocabFromTensor` is the row count of
 * token_embd.weight, used when the metadata has no vocab size.
 */
export function llamaConfigFromMetadata(meta: Metadata, vocabFromTensor: number | undefined): LlamaConfig {
  const arch = meta.string("general.architecture");
  const family = LLAMA_FAMILY[arch];
  if (family === undefined) {
    throw new UnsupportedError(`architecture "${arch}" is not supported`, {
      expected: Object.keys(LLAMA_FAMILY).join(", "),
      got: arch,
      hint: "slimlm runs Llama-family decoders (Llama 2/3, TinyLlama, SmolLM, Mistral, Qwen2)",
    });
  }
  const k = (name: string): string => `${arch}.${name}`;
  const dim = meta.uint(k("embedding_length"), { min: 1, max: MAX_DIM });
  const nLayers = meta.uint(k("block_count"), { min: 1, max: MAX_LAYERS });
  const nHeads = perLayerConstant(meta, k("attention.head_count"), 1, MAX_DIM);
  const nKvHeads = meta.has(k("attention.head_count_kv"))
    ? perLayerConstant(meta, k("attention.head_count_kv"), 1, MAX_DIM)
    : nHeads;
  if (nHeads % nKvHeads !== 0) {
    throw new ModelFormatError("query heads must be a multiple of KV heads", {
      file: meta.source,
      field: k("attention.head_count_kv"),
      expected: `a divisor of ${nHeads}`,
      got: String(nKvHeads),
    });
  }
  const headDim = meta.uint(k("attention.key_length"), { fallback: Math.floor(dim / nHeads), min: 1, max: 4096 });
  const valueDim = meta.uint(k("attention.value_length"), { fallback: headDim, min: 1, max: 4096 });
  if (valueDim !== headDim) {
    throw new UnsupportedError("key and value head sizes differ", {
      expected: `value_length = ${headDim}`,
      got: String(valueDim),
    });
  }
  const ffnDim = perLayerConstant(meta, k("feed_forward_length"), 1, 1 << 20);
  const vocabSize =
    meta.optUint(k("vocab_size"), { min: 1, max: MAX_VOCAB }) ??
    (meta.has("tokenizer.ggml.tokens") ? meta.stringArray("tokenizer.ggml.tokens").length : vocabFromTensor);
  if (vocabSize === undefined) {
    throw new ModelFormatError("cannot tell the vocabulary size", { file: meta.source, field: k("vocab_size") });
  }
  const nRot = meta.uint(k("rope.dimension_count"), { fallback: headDim, min: 2, max: headDim });
  if (nRot % 2 !== 0) {
    throw new ModelFormatError("rope dimension count must be even", {
      file: meta.source,
      field: k("rope.dimension_count"),
      got: String(nRot),
    });
  }
  const slidingWindow = meta.optUint(k("attention.sliding_window"));
  const contextLength = meta.uint(k("context_length"), { fallback: 2048, min: 1, max: 1 << 24 });
  if (slidingWindow !== undefined && slidingWindow > 0 && slidingWindow < contextLength) {
    throw new UnsupportedError("sliding-window attention is not supported", {
      expected: `no sliding window, or one >= the context (${contextLength})`,
      got: String(slidingWindow),
    });
  }
  return {
    arch,
    vocabSize,
    dim,
    nLayers,
    nHeads,
    nKvHeads,
    headDim,
    ffnDim,
    contextLength,
    normEps: meta.float(k("attention.layer_norm_rms_epsilon"), 1e-5),
    rope: {
      nRot,
      neox: family.neox,
      freqBase: meta.float(k("rope.freq_base"), 10000),
      freqScale: ropeFreqScale(meta, arch),
    },
  };
}

/** Linear RoPE scaling as llama.cpp reads it; yarn and longrope are not supported. */
function ropeFreqScale(meta: Metadata, arch: string): number {
  const type = meta.optString(`${arch}.rope.scaling.type`) ?? "none";
  if (type === "none") return 1;
  if (type !== "linear") {
    throw new UnsupportedError(`rope scaling "${type}" is not supported`, { expected: "none or linear", got: type });
  }
  const factor = meta.optFloat(`${arch}.rope.scaling.factor`) ?? meta.optFloat(`${arch}.rope.scale_linear`) ?? 1;
  if (!(factor > 0)) {
    throw new ModelFormatError("rope scaling factor must be positive", {
      file: meta.source,
      field: `${arch}.rope.scaling.factor`,
      got: String(factor),
    });
  }
  return 1 / factor;
}

/** A hyper-parameter that GGUF may store per layer; we need it equal for all layers. */
function perLayerConstant(meta: Metadata, key: string, min: number, max: number): number {
  const v = meta.get(key);
  if (Array.isArray(v)) {
    const first = v[0];
    if (typeof first !== "number" || !v.every((x) => x === first)) {
      throw new UnsupportedError("per-layer values that differ between layers are not supported", {
        expected: "one value for all layers",
        got: `${key} = [${v.slice(0, 8).join(", ")}${v.length > 8 ? ", …" : ""}]`,
      });
    }
    if (!Number.isInteger(first) || first < min || first > max) {
      throw new ModelFormatError("bad per-layer value", { file: meta.source, field: key, got: String(first) });
    }
    return first;
  }
  return meta.uint(key, { min, max });
}
