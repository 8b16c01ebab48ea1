/**
 * The engine: a model file loaded into a backend, its tokenizer, and a KV block pool.
 * `forward(batch)` is the step API that generation loops and schedulers build on.
 */
import os from "node:os";
import { ResourceError, UsageError } from "../errors.js";
import { openModelFile } from "../formats/index.js";
import type { ModelFile } from "../formats/weights.js";
import { type LlamaConfig, resolveModel } from "../models/index.js";
import type { Tokenizer } from "../tokenizer/index.js";
import { tokenizerFor } from "./model-tokenizer.js";
import { type KernelMode, LaneBackend } from "./backend/index.js";
import type { Batch } from "./backend/batch.js";
import type { KvType } from "../kernels/kernel-set.js";
import type { LoadProgress } from "./backend/load.js";
import { BlockPool, SequenceKv } from "./kv-cache.js";

export interface EngineOptions {
  /** Lanes (threads). Default: the number of cores. */
  readonly threads?: number;
  /** Positions per sequence. Default: the model's, capped by `kvBudgetBytes`. */
  readonly contextSize?: number;
  /** Tokens per forward pass (prefill chunk). Default 512. */
  readonly maxBatchTokens?: number;
  /** Sequences per forward pass. Default 1. */
  readonly maxSeqs?: number;
  /** Rows of logits one forward pass can return (e.g. a whole window for perplexity). Default maxSeqs. */
  readonly maxOutputRows?: number;
  /** Total KV positions over all sequences. Default contextSize * maxSeqs. */
  readonly kvTokens?: number;
  readonly kvBlockSize?: number;
  /** Precision of the KV cache rows (`--kv-type`). Default f32. */
  readonly kvType?: KvType;
  readonly kernels?: KernelMode;
  readonly simd?: "auto" | "on" | "off";
  readonly onProgress?: LoadProgress;
}

const DEFAULT_MAX_CONTEXT = 4096;
const DEFAULT_BATCH = 512;
const DEFAULT_BLOCK = 16;

export class Engine {
  readonly pool: BlockPool;

  private constructor(
    readonly file: ModelFile,
    readonly config: LlamaConfig,
    readonly tokenizer: Tokenizer,
    readonly backend: LaneBackend,
    readonly contextSize: number,
    readonly maxBatchTokens: number,
    readonly threads: number,
  ) {
    this.pool = new BlockPool(backend.plan.kv.nBlocks, backend.plan.kv.blockSize);
    this.pool.copyRows = (src, dst, n) => backend.copyKvRows(src, dst, n);
  }

  static async load(path: string, opts: EngineOptions = {}): Promise<Engine> {
    const file = openModelFile(path);
    try {
      const embd = file.weights.get("token_embd.weight");
      const { family, config } = resolveModel(file.metadata, embd?.dims[1]);
      const tokenizer = tokenizerFor(file);
      if (tokenizer.vocabSize > config.vocabSize) {
        throw new ResourceError("tokenizer and model disagree on the vocabulary", {
          expected: `<= ${config.vocabSize} tokens`,
          got: String(tokenizer.vocabSize),
        });
      }
      const threads = opts.threads ?? os.availableParallelism();
      if (!Number.isInteger(threads) || threads < 1 || threads > 64) {
        throw new UsageError("invalid thread count", { expected: "an integer in [1, 64]", got: String(threads) });
      }
      const contextSize = opts.contextSize ?? Math.min(config.contextLength, DEFAULT_MAX_CONTEXT);
      if (!Number.isInteger(contextSize) || contextSize < 1 || contextSize > 1 << 20) {
        throw new UsageError("invalid context size", { expected: "an integer in [1, 1048576]", got: String(contextSize) });
      }
      const maxBatchTokens = Math.min(opts.maxBatchTokens ?? DEFAULT_BATCH, contextSize);
      const maxSeqs = opts.maxSeqs ?? 1;
      const kvBlockSize = opts.kvBlockSize ?? DEFAULT_BLOCK;
      const backend = await LaneBackend.create(file, family, config, {
        threads,
        capacity: {
          maxTokens: maxBatchTokens,
          maxOutputRows: Math.min(opts.maxOutputRows ?? maxSeqs, maxBatchTokens),
          maxSeqs,
          maxTableEntries: maxSeqs * Math.ceil(contextSize / kvBlockSize),
        },
        kvTokens: opts.kvTokens ?? contextSize * maxSeqs,
        kvBlockSize,
        maxContext: contextSize,
        ...(opts.kvType === undefined ? {} : { kvType: opts.kvType }),
        ...(opts.kernels === undefined ? {} : { kernels: opts.kernels }),
        ...(opts.simd === undefined ? {} : { simd: opts.simd }),
        ...(opts.onProgress === undefined ? {} : { onProgress: opts.onProgress }),
      });
      return new Engine(file, config, tokenizer, backend, contextSize, maxBatchTokens, threads);
    } catch (e) {
      file.weights.close();
      throw e;
    }
  }

  /** Precision of the KV cache rows. */
  get kvType(): KvType {
    return this.backend.plan.kv.kvType;
  }

  newSequence(): SequenceKv {
    return new SequenceKv(this.pool);
  }

  /** One forward pass (see Batch). Logits of the output rows, valid until the next call. */
  forward(batch: Batch): Float32Array {
    return this.backend.forward(batch);
  }

  /**
   * Append `tokens` to a sequence, in chunks of at most maxBatchTokens, and return the logits
   * after the last one ([vocab], valid until the next forward).
   */
  evaluate(seq: SequenceKv, tokens: readonly number[]): Float32Array {
    if (tokens.length === 0) throw new UsageError("nothing to evaluate", { expected: ">= 1 token", got: "0" });
    const end = seq.length + tokens.length;
    if (end > this.contextSize) {
      throw new ResourceError("context is full", {
        expected: `<= ${this.contextSize} positions`,
        got: String(end),
        hint: "use a larger --ctx or a shorter prompt",
      });
    }
    for (const t of tokens) {
      if (!Number.isInteger(t) || t < 0 || t >= this.config.vocabSize) {
        throw new UsageError("token id out of range", { expected: `0..${this.config.vocabSize - 1}`, got: String(t) });
      }
    }
    seq.reserve(end);
    let logits: Float32Array | undefined;
    for (let start = 0; start < tokens.length; start += this.maxBatchTokens) {
      const chunk = tokens.slice(start, start + this.maxBatchTokens);
      const T = chunk.length;
      const positions = Array.from({ length: T }, (_, i) => seq.length + i);
      logits = this.forward({
        tokens: chunk,
        positions,
        seqOf: new Array<number>(T).fill(0),
        blockTables: [seq.blockTable],
        outputRows: [T - 1],
      });
      seq.length += T;
    }
    return logits!;
  }

  /**
   * Append `tokens` to a sequence and return the logits of every one of them: a new array of
   * tokens.length rows of vocabSize floats (row i = the distribution after tokens[0..i]). Runs in
   * chunks of at most min(maxBatchTokens, maxOutputRows) tokens, so load the engine with
   * `maxOutputRows` >= the chunk you want per pass (e.g. the perplexity window).
   * `from` (default 0): rows before it are not returned (their tokens are still evaluated, and
   * chunks that need no rows run with a single output row); the result then has
   * tokens.length - from rows.
   */
  evaluateAll(seq: SequenceKv, tokens: readonly number[], from = 0): Float32Array {
    if (tokens.length === 0) throw new UsageError("nothing to evaluate", { expected: ">= 1 token", got: "0" });
    if (!Number.isInteger(from) || from < 0 || from >= tokens.length) {
      throw new UsageError("invalid first output row", { expected: `an integer in [0, ${tokens.length - 1}]`, got: String(from) });
    }
    const end = seq.length + tokens.length;
    if (end > this.contextSize) {
      throw new ResourceError("context is full", {
        expected: `<= ${this.contextSize} positions`,
        got: String(end),
        hint: "use a larger context or fewer tokens",
      });
    }
    for (const t of tokens) {
      if (!Number.isInteger(t) || t < 0 || t >= this.config.vocabSize) {
        throw new UsageError("token id out of range", { expected: `0..${this.config.vocabSize - 1}`, got: String(t) });
      }
    }
    const V = this.config.vocabSize;
    const out = new Float32Array((tokens.length - from) * V);
    const chunk = Math.max(1, Math.min(this.maxBatchTokens, this.backend.plan.capacity.maxOutputRows));
    seq.reserve(end);
    for (let start = 0; start < tokens.length; ) {
      // Rows before `from` need no logits: run them in batch-sized chunks with one output row,
      // ending exactly at `from`; from there on, chunks are capped by the output-row capacity.
      const T =
        start < from ? Math.min(this.maxBatchTokens, from - start) : Math.min(chunk, tokens.length - start);
      const first = Math.max(from - start, 0);
      const rows: number[] = [];
      if (first >= T) rows.push(T - 1);
      else for (let i = first; i < T; i++) rows.push(i);
      const logits = this.forward({
        tokens: tokens.slice(start, start + T),
        positions: Array.from({ length: T }, (_, i) => seq.length + i),
        seqOf: new Array<number>(T).fill(0),
        blockTables: [seq.blockTable],
        outputRows: rows,
      });
      if (first < T) out.set(logits.subarray(0, (T - first) * V), (start + first - from) * V);
      seq.length += T;
      start += T;
    }
    return out;
  }

  async close(): Promise<void> {
    await this.backend.close();
    this.file.weights.close();
  }
}
