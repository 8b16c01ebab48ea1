import type { GgmlType } from "../tensor/ggml-type.js";
import type { Metadata } from "./metadata.js";

/** One tensor as stored in a model file. */
export interface TensorInfo {
  /** GGUF-style name, e.g. "blk.3.attn_q.weight" (Hugging Face names are translated). */
  readonly name: string;
  readonly type: GgmlType;
  /** Dimensions, ne0 first (GGUF order): a matrix of `rows` rows of `len` elements is [len, rows]. */
  readonly dims: readonly number[];
  /** Total bytes of the tensor's data. */
  readonly nbytes: number;
}

/**
 * Where a model's weights come from. Readers validate every size and offset when they open a
 * file; `readInto` then reads bytes of one tensor without ever holding the whole file in memory.
 */
export interface WeightSource {
  readonly path: string;
  readonly tensors: readonly TensorInfo[];
  get(name: string): TensorInfo | undefined;
  /**
   * Read `dst.length` bytes of tensor `name` starting `byteOffset` bytes into its data.
   * `dst` may be a view on a SharedArrayBuffer (a WebAssembly memory).
   */
  readInto(name: string, byteOffset: number, dst: Uint8Array): void;
  close(): void;
}

/** A model file or folder as the format layer sees it: GGUF-keyed metadata plus weights. */
export interface ModelFile {
  readonly path: string;
  /** "gguf" or "hf". */
  readonly kind: "gguf" | "hf";
  /** Bytes on disk (sum over shards for Hugging Face folders). */
  readonly fileSize: number;
  readonly metadata: Metadata;
  readonly weights: WeightSource;
  /** tokenizer.json, parsed, when the model is a Hugging Face folder. */
  readonly tokenizerJson?: unknown;
  /** tokenizer_config.json, parsed, when present. */
  readonly tokenizerConfig?: unknown;
}
