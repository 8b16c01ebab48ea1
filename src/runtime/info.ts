/** A model file's summary without loading its weights (the `info` command). */
import { openModelFile } from "../formats/index.js";
import type { ModelFile } from "../formats/weights.js";
import { resolveModel } from "../models/index.js";
import type { LlamaConfig } from "../models/config.js";
import { KV_TYPES, computeTypeFor, type KvType, kvRowBytes, kvTypeFits } from "../kernels/kernel-set.js";
import { ggmlTypeName } from "../tensor/ggml-type.js";
import { getFormat } from "../tensor/registry.js";
import { tokenizerFor } from "./model-tokenizer.js";
import { kvHeadsStored } from "./backend/plan.js";

export interface ModelInfo {
  readonly path: string;
  readonly format: "gguf" | "hf";
  readonly architecture: string;
  readonly name: string | undefined;
  readonly parameters: number;
  /** Tensor count and parameter count per tensor type. */
  readonly tensor_types: Record<string, { tensors: number; parameters: number }>;
  readonly file_size: number;
  /**
   * Weight bytes streamed per generated token (every matrix except the embedding lookup), in the
   * type the kernels compute it in (Q5_0 as Q8_0, other non-computed types as F32).
   */
  readonly bytes_per_token: number;
  readonly context_length: number;
  readonly vocab_size: number;
  readonly tokenizer: string;
  /**
   * KV cache memory per `--kv-type` (null where the head size does not allow it): bytes per
   * position (K and V of every layer) and for one sequence of the model's full context.
   */
  readonly kv_cache: Record<KvType, { bytes_per_position: number; bytes_at_context: number } | null>;
  readonly config: LlamaConfig;
}

/**
 * KV cache bytes for `positions` positions (K and V rows of every layer and KV head). With
 * `threads`, what the engine allocates on that many lanes: a KV head on a lane boundary (3 heads
 * on 2 lanes) is cached by both (kvHeadRanges).
 */
export function kvCacheBytes(config: LlamaConfig, kvType: KvType, positions: number, threads?: number): number {
  const heads = threads === undefined ? config.nKvHeads : kvHeadsStored(config.nKvHeads, threads);
  return positions * config.nLayers * heads * 2 * kvRowBytes(kvType, config.headDim);
}

export function describeModel(path: string): ModelInfo {
  const file = openModelFile(path);
  try {
    return summarize(file);
  } finally {
    file.weights.close();
  }
}

export function summarize(file: ModelFile): ModelInfo {
  const embd = file.weights.get("token_embd.weight");
  const { config } = resolveModel(file.metadata, embd?.dims[1]);
  const tok = tokenizerFor(file);
  const types: Record<string, { tensors: number; parameters: number }> = {};
  let parameters = 0;
  let streamed = 0;
  const tied = file.weights.get("output.weight") === undefined;
  for (const t of file.weights.tensors) {
    const n = t.dims.reduce((a, b) => a * b, 1);
    parameters += n;
    const name = ggmlTypeName(t.type);
    const e = (types[name] ??= { tensors: 0, parameters: 0 });
    e.tensors++;
    e.parameters += n;
    const isMatrix = t.dims.length === 2 && t.name !== "rope_freqs.weight";
    const lookupOnly = t.name === "token_embd.weight" && !tied;
    if (isMatrix && !lookupOnly) {
      const f = getFormat(computeTypeFor(t.type));
      streamed += t.type === computeTypeFor(t.type) ? t.nbytes : (n / f.blockSize) * f.typeSize;
    }
  }
  return {
    path: file.path,
    format: file.kind,
    architecture: config.arch,
    name: file.metadata.optString("general.name"),
    parameters,
    tensor_types: types,
    file_size: file.fileSize,
    bytes_per_token: streamed,
    context_length: config.contextLength,
    vocab_size: config.vocabSize,
    tokenizer: tok.kind === "spm" ? "sentencepiece-bpe" : "byte-level-bpe",
    kv_cache: Object.fromEntries(
      KV_TYPES.map((t) => [
        t,
        kvTypeFits(t, config.headDim) ? { bytes_per_position: kvCacheBytes(config, t, 1), bytes_at_context: kvCacheBytes(config, t, config.contextLength) } : null,
      ]),
    ) as ModelInfo["kv_cache"],
    config,
  };
}
