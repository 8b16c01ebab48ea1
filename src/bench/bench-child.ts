/**
 * A measuring child process of `slimlm bench`: loads one engine, runs the job, replies over IPC
 * and exits, so each engine's peak RSS is its own.
 */
import { SlimError } from "../errors.js";
import { Engine } from "../runtime/engine.js";
import { GREEDY, Sampler } from "../runtime/sampler.js";
import type { BenchJob, BenchReply, BenchRun } from "./bench-protocol.js";

const WARMUP_PROMPT = 32;
const WARMUP_DECODE = 4;

function peakRssMb(): number {
  return round((process.resourceUsage().maxRSS * 1024) / 1e6); // NOTE: maxRSS is in KiB
}

function round(x: number): number {
  return Math.round(x * 100) / 100;
}

/** llama.cpp's names of our KV types. */
const PEER_KV = { f32: "F32", f16: "F16", q8_0: "Q8_0" } as const;

function run(prefillMs: number, ttftMs: number, decodeMs: number, job: BenchJob): BenchRun {
  return {
    prefill_ms: round(prefillMs),
    prefill_tok_s: round((job.prompt.length * 1000) / prefillMs),
    ttft_ms: round(ttftMs),
    decode_ms: round(decodeMs),
    decode_tok_s: job.decode > 0 ? round((job.decode * 1000) / decodeMs) : 0,
  };
}

async function benchSlimlm(job: BenchJob): Promise<BenchReply> {
  const t0 = performance.now();
  const engine = await Engine.load(job.model, {
    threads: job.threads,
    contextSize: job.contextSize,
    maxBatchTokens: job.batchSize,
    ...(job.kvType === undefined ? {} : { kvType: job.kvType }),
  });
  const loadMs = performance.now() - t0;
  try {
    const sampler = new Sampler(GREEDY);
    const decodeRun = (n: number): number => {
      const seq = engine.newSequence();
      try {
        let id = sampler.sample(engine.evaluate(seq, job.prompt.slice(0, 1)));
        const t = performance.now();
        for (let i = 0; i < n; i++) id = sampler.sample(engine.evaluate(seq, [id]));
        return performance.now() - t;
      } finally {
        seq.release();
      }
    };
    // warm-up (JIT tiers, page faults in the activation buffers); not timed
    const w = engine.newSequence();
    engine.evaluate(w, job.prompt.slice(0, WARMUP_PROMPT));
    w.release();
    decodeRun(WARMUP_DECODE);

    const runs: BenchRun[] = [];
    for (let r = 0; r < job.repeat; r++) {
      const seq = engine.newSequence();
      let prefillMs: number;
      let ttftMs: number;
      try {
        const a = performance.now();
        const logits = engine.evaluate(seq, job.prompt);
        const b = performance.now();
        sampler.sample(logits);
        const c = performance.now();
        prefillMs = b - a;
        ttftMs = c - a;
      } finally {
        seq.release();
      }
      runs.push(run(prefillMs, ttftMs, decodeRun(job.decode), job));
    }
    return { ok: true, runs, peak_rss_mb: peakRssMb(), load_ms: round(loadMs), kernels: engine.backend.kernelName };
  } finally {
    await engine.close();
  }
}

async function benchLlamaCpp(job: BenchJob): Promise<BenchReply> {
  let nlc: typeof import("node-llama-cpp");
  try {
    nlc = await import("node-llama-cpp");
  } catch (e) {
    return { ok: false, missing: true, message: e instanceof Error ? e.message : String(e) };
  }
  const t0 = performance.now();
  const llama = await nlc.getLlama({ gpu: false, build: "never", skipDownload: true, logLevel: nlc.LlamaLogLevel.error, progressLogs: false });
  const model = await llama.loadModel({ modelPath: job.model, gpuLayers: 0 });
  const context = await model.createContext({
    contextSize: job.contextSize,
    batchSize: job.batchSize,
    // NOTE: a bare number is a hint that node-llama-cpp may lower; min pins it.
    threads: { ideal: job.threads, min: job.threads },
    ...(job.kvType === undefined ? {} : { experimentalKvCacheKeyType: PEER_KV[job.kvType], experimentalKvCacheValueType: PEER_KV[job.kvType] }),
  });
  const seq = context.getSequence();
  const loadMs = performance.now() - t0;
  type Token = Parameters<typeof seq.evaluateWithoutGeneratingNewTokens>[0][number];
  const prompt = job.prompt.map((t) => t as Token);
  try {
    const decodeRun = async (n: number): Promise<number> => {
      await seq.clearHistory();
      let t = 0;
      let got = -1;
      for await (const _ of seq.evaluate(prompt.slice(0, 1), { temperature: 0 })) {
        if (++got === 0) t = performance.now();
        if (got >= n) break;
      }
      return performance.now() - t;
    };
    await seq.clearHistory();
    await seq.evaluateWithoutGeneratingNewTokens(prompt.slice(0, WARMUP_PROMPT));
    await decodeRun(WARMUP_DECODE);

    const runs: BenchRun[] = [];
    for (let r = 0; r < job.repeat; r++) {
      await seq.clearHistory();
      const a = performance.now();
      await seq.evaluateWithoutGeneratingNewTokens(prompt);
      const prefillMs = performance.now() - a;
      await seq.clearHistory();
      const b = performance.now();
      for await (const _ of seq.evaluate(prompt, { temperature: 0 })) break;
      const ttftMs = performance.now() - b;
      runs.push(run(prefillMs, ttftMs, await decodeRun(job.decode), job));
    }
    const gpu = llama.gpu === false ? "cpu" : String(llama.gpu);
    return { ok: true, runs, peak_rss_mb: peakRssMb(), load_ms: round(loadMs), kernels: `llama.cpp ${llama.buildType} ${gpu}` };
  } finally {
    await context.dispose();
    await model.dispose();
    await llama.dispose();
  }
}

process.once("message", (job: BenchJob) => {
  const work = job.engine === "slimlm" ? benchSlimlm(job) : benchLlamaCpp(job);
  work
    .catch((e: unknown): BenchReply => ({
      ok: false,
      missing: false,
      message: e instanceof Error ? e.message : String(e),
      ...(e instanceof SlimError ? { code: e.code } : {}),
    }))
    .then((reply) => process.send!(reply, () => process.exit(0)));
});
