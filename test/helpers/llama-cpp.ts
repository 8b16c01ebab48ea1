/**
 * node-llama-cpp 3.21.1 as a live oracle, configured the way our comparisons need it:
 * F32 KV cache and no flash attention (then llama.cpp's greedy output matches an independent
 * float64 forward on stories260K exactly), fixed threads, no context shift.
 */
import { getLlama, type Llama, type LlamaContext, type LlamaContextSequence, type LlamaModel } from "node-llama-cpp";

let llamaPromise: Promise<Llama> | undefined;

function llama(): Promise<Llama> {
  llamaPromise ??= getLlama({ gpu: false, build: "never", skipDownload: true, logLevel: "error" as never, progressLogs: false });
  return llamaPromise;
}

export interface LlamaCppModel {
  readonly model: LlamaModel;
  tokenize(text: string, special?: boolean): number[];
  /** Greedy continuation of `promptIds` for `n` tokens (EOS does not stop it). */
  greedy(promptIds: readonly number[], n: number): Promise<number[]>;
  /**
   * Feed `ids` and, at every position from `from` on, return llama.cpp's argmax next token and its
   * top-2 probabilities (to tell near-ties from bugs).
   */
  teacherForced(ids: readonly number[], from: number): Promise<{ argmax: number; p1: number; p2: number; probs: Map<number, number> }[]>;
  dispose(): Promise<void>;
}

/** `kvType` (default F32): llama.cpp's KV cache type; Q8_0 V needs flash attention, which is then on. */
export async function loadLlamaCpp(modelPath: string, opts: { contextSize?: number; threads?: number; kvType?: "F32" | "F16" | "Q8_0" } = {}): Promise<LlamaCppModel> {
  const l = await llama();
  const model = await l.loadModel({ modelPath, gpuLayers: 0 });
  const context: LlamaContext = await model.createContext({
    contextSize: opts.contextSize ?? 512,
    threads: opts.threads ?? 1,
    flashAttention: opts.kvType === "Q8_0",
    experimentalKvCacheKeyType: opts.kvType ?? "F32",
    experimentalKvCacheValueType: opts.kvType ?? "F32",
  });
  const seq: LlamaContextSequence = context.getSequence({ contextShift: { size: 0 } as never });
  return {
    model,
    tokenize: (text, special = false) => model.tokenize(text, special).map(Number),
    async greedy(promptIds, n) {
      await seq.clearHistory();
      const out: number[] = [];
      for await (const t of seq.evaluate(promptIds.map((x) => x as never), { temperature: 0 })) {
        out.push(Number(t));
        if (out.length >= n) break;
      }
      return out;
    },
    async teacherForced(ids, from) {
      await seq.clearHistory();
      const input = ids.map((t, i) => (i >= from - 1 ? ([t, { generateNext: { probabilities: true } }] as const) : t));
      const res = await seq.controlledEvaluate(input as never);
      const out: { argmax: number; p1: number; p2: number; probs: Map<number, number> }[] = [];
      for (let i = from - 1; i < ids.length; i++) {
        const probs = res[i]?.next.probabilities;
        if (probs === undefined) throw new Error(`no probabilities at ${i}`);
        const it = probs.entries();
        const a = it.next().value as [number, number];
        const b = it.next().value as [number, number] | undefined;
        out.push({ argmax: Number(a[0]), p1: a[1], p2: b?.[1] ?? 0, probs: probs as Map<number, number> });
      }
      return out;
    },
    async dispose() {
      await context.dispose();
      await model.dispose();
    },
  };
}
