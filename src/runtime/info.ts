/** A model file's summary without loading its weights (the `info` command). */
import { openModelFile } from "../formats/index.js";
import type { ModelFile } from "../formats/weights.js";
import { resolveModel } from "../models/index.js";
import type { LlamaConfig } from "../models/config.js";
import { COMPUTED_TYPES } from "../kernels/kernel-set.js";
import { ggmlTypeName } from "../tensor/ggml-type.js";
import { tokenizerFor } from "./model-tokenizer.js";

export interface ModelInfo {
  readonly path: string;
  readonly format: "gguf" | "hf";
  readonly architecture: string;
  readonly name: string | undefined;
  readonly parameters: number;
  /** Tensor count and parameter count per tensor type. */
  readonly tensor_types: Record<string, { tensors: number; parameters: number }>;
  readonly file_size: number;
  /** Weight bytes streamed per generated token (every matrix except the embedding lookup). */
  readonly bytes_per_token: number;
  readonly context_length: number;
  readonly vocab_size: number;
  readonly tokenizer: string;
  readonly config: LlamaConfig;
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
    if (isMatrix && !lookupOnly) streamed += COMPUTED_TYPES.includes(t.type) ? t.nbytes : n * 4;
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
    config,
  };
}
