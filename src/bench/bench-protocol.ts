/** What `bench` sends to a measuring child process and what it gets back (JSON over IPC). */
import type { KvType } from "../kernels/kernel-set.js";

export type BenchEngine = "slimlm" | "llama.cpp";

export interface BenchJob {
  readonly engine: BenchEngine;
  readonly model: string;
  readonly threads: number;
  /** Token ids of the prefill prompt (the same ids for both engines). */
  readonly prompt: readonly number[];
  /** Greedy tokens timed after the first one, from a one-token prompt (`prompt[0]`). */
  readonly decode: number;
  readonly repeat: number;
  readonly contextSize: number;
  readonly batchSize: number;
  /** KV cache precision, for both engines; undefined: each engine's default (slimlm f32, llama.cpp f16). */
  readonly kvType?: KvType;
}

/** One repetition. Times in ms, rates in tokens per second. */
export interface BenchRun {
  readonly prefill_ms: number;
  readonly prefill_tok_s: number;
  readonly ttft_ms: number;
  readonly decode_ms: number;
  readonly decode_tok_s: number;
}

export type BenchReply =
  | {
      readonly ok: true;
      readonly runs: readonly BenchRun[];
      /** process.resourceUsage().maxRSS of the child, MB (10^6 bytes). */
      readonly peak_rss_mb: number;
      readonly load_ms: number;
      /** "wasm-relaxed", "wasm-simd" for slimlm; the llama.cpp build for the peer. */
      readonly kernels: string;
    }
  | {
      readonly ok: false;
      /** node-llama-cpp could not be imported. */
      readonly missing: boolean;
      readonly message: string;
      /** The SlimError code when the failure was user-caused (bad model, too large...). */
      readonly code?: string;
    };
