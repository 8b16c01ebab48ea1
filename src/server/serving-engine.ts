/**
 * The serving engine: one Engine (the model on its lanes), one Scheduler (batching policy over
 * the engine's KV block pool) and, per request, a sampler, a streaming detokenizer and stop-string
 * matching. It runs one forward pass per event-loop turn (`setImmediate` between steps), so HTTP
 * I/O, client disconnects and metrics scrapes are served between steps.
 *
 * Typed requests in, events out: no JSON here (the HTTP layer owns that).
 */
import os from "node:os";
import { ResourceError, SlimError, UsageError } from "../errors.js";
import type { Batch } from "../runtime/backend/batch.js";
import { Engine, type EngineOptions } from "../runtime/engine.js";
import { continuationDecoder } from "../runtime/generate.js";
import { describeModel, kvCacheBytes } from "../runtime/info.js";
import { Sampler, type SamplingParams } from "../runtime/sampler.js";
import { StopMatcher } from "../runtime/stop.js";
import type { StreamDecoder } from "../tokenizer/index.js";
import { type BatchingPolicy, type FinishReason, Scheduler, type Step, type TokenEvent, type Tracked } from "../scheduler/scheduler.js";

export interface ServingOptions {
  readonly threads?: number;
  /** Positions per sequence (prompt + completion). Default: the model's, at most 4096. */
  readonly contextSize?: number;
  readonly policy?: BatchingPolicy;
  /** Sequences per forward pass. Default 16. */
  readonly maxBatch?: number;
  /** Tokens per forward pass (prefill chunk budget). Default 256. */
  readonly maxBatchTokens?: number;
  /** Waiting requests (including those about to join the next step) beyond this get "queue full". Default 256, at least 1. */
  readonly maxQueue?: number;
  readonly maxQueueDelayMs?: number;
  /** Bytes for the KV cache. Default: a quarter of free memory, at most maxBatch full contexts. */
  readonly kvMemoryBytes?: number;
  readonly kvBlockSize?: number;
  /** Reuse the KV blocks of prompt prefixes seen before. Default true. */
  readonly prefixCaching?: boolean;
  readonly engine?: Pick<EngineOptions, "kernels" | "simd" | "onProgress" | "kvType">;
}

export interface GenerationRequest {
  readonly promptTokens: readonly number[];
  readonly maxTokens: number;
  readonly sampling: SamplingParams;
  readonly stop: readonly string[];
  /** Return log-probabilities of the chosen token and this many alternatives (0..20); undefined = none. */
  readonly logprobs?: number;
  /** Prefix-cache salt (e.g. per API key). */
  readonly cacheSalt?: string;
  /** Added to the logits of these token ids before sampling (OpenAI's logit_bias). */
  readonly logitBias?: ReadonlyMap<number, number>;
  /** Do not stop at end-of-generation tokens (they become part of the output). */
  readonly ignoreEos?: boolean;
}

export interface TokenLogprob {
  readonly token: number;
  readonly logprob: number;
  readonly top: readonly { token: number; logprob: number }[];
}

export interface Usage {
  readonly promptTokens: number;
  readonly completionTokens: number;
  readonly cachedPromptTokens: number;
}

export interface RequestTimings {
  readonly queueMs: number;
  readonly ttftMs: number;
  readonly e2eMs: number;
  readonly decodeTokS: number;
}

export interface GenerationSink {
  /** New text (possibly empty while a stop string or UTF-8 sequence is pending) for one token. */
  onDelta(text: string, token: number, logprob: TokenLogprob | undefined): void;
  onFinish(reason: FinishReason, usage: Usage, timings: RequestTimings): void;
  /** The engine failed while this request ran. */
  onError(error: Error): void;
}

export interface RequestHandle {
  readonly id: string;
  /** Stop now (client gone): the request's KV blocks return to the pool at once. */
  abort(): void;
}

/** Hooks for metrics; all optional. Times in seconds. */
export interface ServingObserver {
  onStep?(batchSize: number, tokens: number, seconds: number): void;
  onFirstToken?(ttft: number): void;
  onInterToken?(seconds: number): void;
  onFinish?(reason: FinishReason, e: { e2e: number; queue: number; promptTokens: number; completionTokens: number }): void;
  onPreempt?(count: number): void;
}

interface Live {
  readonly tracked: Tracked;
  readonly sampler: Sampler;
  readonly decoder: StreamDecoder;
  readonly stops: StopMatcher;
  readonly sink: GenerationSink;
  readonly logprobs: number | undefined;
  readonly logitBias: ReadonlyMap<number, number> | undefined;
  lastTokenAt: number;
  done: boolean;
}

const NO_STOP_TOKENS: ReadonlySet<number> = new Set();

export type ServingState = "ready" | "draining" | "failed" | "closed";

export class ServingEngine {
  readonly scheduler: Scheduler;
  private readonly live = new Map<string, Live>();
  private nextId = 0;
  private scheduled = false;
  private timer: NodeJS.Timeout | undefined;
  state: ServingState = "ready";
  observer: ServingObserver = {};

  private constructor(
    readonly engine: Engine,
    readonly opts: Required<Pick<ServingOptions, "policy" | "maxBatch" | "maxBatchTokens" | "maxQueue" | "maxQueueDelayMs" | "prefixCaching">>,
  ) {
    this.scheduler = new Scheduler(
      { ...opts, contextSize: engine.contextSize },
      engine.pool,
    );
  }

  static async create(modelPath: string, o: ServingOptions = {}): Promise<ServingEngine> {
    const maxBatch = o.maxBatch ?? 16;
    const maxBatchTokens = o.maxBatchTokens ?? 256;
    const check = (name: string, v: number, min: number, max: number): void => {
      if (!Number.isInteger(v) || v < min || v > max) throw new UsageError(`invalid ${name}`, { expected: `an integer in [${min}, ${max}]`, got: String(v) });
    };
    check("max batch", maxBatch, 1, 1024);
    check("max batch tokens", maxBatchTokens, 1, 65536);
    // NOTE: every request waits at least until the next step, so 0 would refuse everything
    const maxQueue = o.maxQueue ?? 256;
    check("max queue", maxQueue, 1, 1 << 20);
    const maxQueueDelayMs = o.maxQueueDelayMs ?? 20;
    check("max queue delay", maxQueueDelayMs, 0, 3_600_000);
    // Size the KV pool from the memory budget and the model's shapes (read from its metadata).
    const c = describeModel(modelPath).config;
    const contextSize = o.contextSize ?? Math.min(c.contextLength, 4096);
    const threads = o.threads ?? os.availableParallelism();
    const bytesPerPosition = kvCacheBytes(c, o.engine?.kvType ?? "f32", 1, threads);
    const budget = o.kvMemoryBytes ?? Math.min(os.freemem() / 4, bytesPerPosition * contextSize * maxBatch);
    const kvTokens = Math.floor(budget / bytesPerPosition);
    if (kvTokens < contextSize) {
      throw new ResourceError("the KV cache budget does not hold one full context", {
        expected: `>= ${bytesPerPosition * contextSize} bytes (${contextSize} positions)`,
        got: `${Math.floor(budget)} bytes`,
        hint: "raise --kv-memory or lower --ctx",
      });
    }
    const engine = await Engine.load(modelPath, {
      ...o.engine,
      threads,
      contextSize,
      maxBatchTokens,
      maxSeqs: maxBatch,
      maxOutputRows: maxBatch,
      kvTokens,
      ...(o.kvBlockSize === undefined ? {} : { kvBlockSize: o.kvBlockSize }),
    });
    return new ServingEngine(engine, {
      policy: o.policy ?? "continuous",
      maxBatch,
      maxBatchTokens: Math.min(maxBatchTokens, engine.maxBatchTokens),
      maxQueue,
      maxQueueDelayMs,
      prefixCaching: o.prefixCaching ?? true,
    });
  }

  get tokenizer() {
    return this.engine.tokenizer;
  }

  get contextSize(): number {
    return this.engine.contextSize;
  }

  /** Fraction of KV blocks in use by requests (cached but unused blocks count as free). */
  get kvUsage(): number {
    return this.engine.pool.usedBlocks / this.engine.pool.nBlocks;
  }

  /**
   * Queue a generation. Throws UsageError (bad input), ResourceError (does not fit), or
   * QueueFullError; the sink hears about everything after this returns.
   */
  submit(req: GenerationRequest, sink: GenerationSink): RequestHandle {
    if (this.state !== "ready") throw new ResourceError(`the server is ${this.state}`, { hint: "retry on another instance" });
    const V = this.engine.config.vocabSize;
    for (const t of req.promptTokens) {
      if (!Number.isInteger(t) || t < 0 || t >= V) throw new UsageError("prompt token id out of range", { expected: `0..${V - 1}`, got: String(t) });
    }
    for (const [t, b] of req.logitBias ?? []) {
      if (!Number.isInteger(t) || t < 0 || t >= V) throw new UsageError("logit_bias token id out of range", { expected: `0..${V - 1}`, got: String(t) });
      if (!Number.isFinite(b)) throw new UsageError("logit_bias value is not finite", { got: String(b) });
    }
    const sampler = new Sampler(req.sampling);
    for (const t of req.promptTokens) sampler.accept(t);
    const id = `r${this.nextId++}`;
    const tracked = this.scheduler.add(
      { id, promptTokens: req.promptTokens, maxTokens: req.maxTokens, stopTokens: req.ignoreEos === true ? NO_STOP_TOKENS : this.engine.tokenizer.eogIds, ...(req.cacheSalt === undefined ? {} : { cacheSalt: req.cacheSalt }) },
      performance.now(),
    );
    const decoder = continuationDecoder(this.engine.tokenizer, req.promptTokens);
    this.live.set(id, {
      tracked,
      sampler,
      decoder,
      stops: new StopMatcher(req.stop),
      sink,
      logprobs: req.logprobs,
      logitBias: req.logitBias,
      lastTokenAt: 0,
      done: false,
    });
    this.pump();
    return { id, abort: () => this.abort(id) };
  }

  private abort(id: string): void {
    const l = this.live.get(id);
    if (l === undefined || l.done) return;
    this.scheduler.finish(id, "abort");
    this.complete(l, "abort");
  }

  /** Static batching: no more requests are coming, run the last partial batch now. */
  closeInput(): void {
    this.scheduler.closeInput();
    this.pump();
  }

  get numRunning(): number {
    return this.scheduler.numRunning;
  }

  get numWaiting(): number {
    return this.scheduler.numWaiting;
  }

  /** Schedule the next step soon (idempotent). */
  private pump(): void {
    if (this.scheduled || this.state === "failed" || this.state === "closed") return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.runStep();
    });
  }

  private runStep(): void {
    if (this.timer !== undefined) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    const t0 = performance.now();
    const step = this.scheduler.step(t0);
    if (step === undefined) {
      // dynamic/static batching may be waiting for its delay to pass
      if (!this.scheduler.idle) this.timer = setTimeout(() => this.runStep(), Math.max(1, this.opts.maxQueueDelayMs / 4));
      return;
    }
    if (step.preempted.length > 0) this.observer.onPreempt?.(step.preempted.length);
    let sampled: number[];
    let logprobs: (TokenLogprob | undefined)[];
    try {
      [sampled, logprobs] = this.execute(step);
    } catch (e) {
      this.fail(e instanceof Error ? e : new Error(String(e)));
      return;
    }
    const now = performance.now();
    this.observer.onStep?.(step.items.length, step.items.reduce((s, i) => s + i.count, 0), (now - t0) / 1000);
    const events = this.scheduler.update(step, sampled, now);
    events.forEach((e, i) => this.deliver(e, logprobs[i], now));
    if (!this.scheduler.idle) this.pump();
  }

  /** One forward pass over the step; returns the sampled tokens in item order. */
  private execute(step: Step): [number[], (TokenLogprob | undefined)[]] {
    const tokens: number[] = [];
    const positions: number[] = [];
    const seqOf: number[] = [];
    const outputRows: number[] = [];
    const blockTables: number[][] = [];
    step.items.forEach((it, s) => {
      const t = it.request;
      for (let i = 0; i < it.count; i++) {
        tokens.push(t.tokens[it.start + i]!);
        positions.push(it.start + i);
        seqOf.push(s);
      }
      blockTables.push(t.kv!.blockTable);
      if (it.sample) outputRows.push(tokens.length - 1);
    });
    const batch: Batch = { tokens, positions, seqOf, blockTables, outputRows };
    const logits = this.engine.forward(batch);
    const V = this.engine.config.vocabSize;
    const out: number[] = [];
    const lps: (TokenLogprob | undefined)[] = [];
    let row = 0;
    for (const it of step.items) {
      if (!it.sample) continue;
      const l = this.live.get(it.request.req.id)!;
      const r = logits.subarray(row * V, (row + 1) * V);
      row++;
      // NOTE: in place: the engine's logits buffer is ours until the next forward pass.
      if (l.logitBias !== undefined) for (const [t, b] of l.logitBias) r[t] = r[t]! + b;
      const token = l.sampler.sample(r);
      l.sampler.accept(token);
      out.push(token);
      lps.push(l.logprobs === undefined ? undefined : logprobsOf(r, token, l.logprobs));
    }
    return [out, lps];
  }

  private deliver(e: TokenEvent, logprob: TokenLogprob | undefined, now: number): void {
    const l = this.live.get(e.request.req.id);
    if (l === undefined || l.done) return;
    const t = l.tracked;
    if (t.output.length === 1 || (e.finished === "stop" && t.output.length === 0)) {
      this.observer.onFirstToken?.((now - t.arrivedAt) / 1000);
    } else if (l.lastTokenAt > 0) {
      this.observer.onInterToken?.((now - l.lastTokenAt) / 1000);
    }
    l.lastTokenAt = now;
    if (!e.appended) {
      // an end-of-generation token: not part of the text
      this.complete(l, "stop");
      return;
    }
    const r = l.stops.push(l.decoder.push(e.token));
    l.sink.onDelta(r.emit, e.token, logprob);
    if (r.stopped) {
      this.scheduler.finish(t.req.id, "stop");
      this.complete(l, "stop", true);
    } else if (e.finished !== undefined) {
      this.complete(l, e.finished);
    }
  }

  private complete(l: Live, reason: FinishReason, stoppedByString = false): void {
    if (l.done) return;
    l.done = true;
    this.live.delete(l.tracked.req.id);
    if (reason !== "abort" && !stoppedByString) {
      const rest = l.stops.push(l.decoder.flush()).emit + l.stops.flush();
      if (rest.length > 0) l.sink.onDelta(rest, -1, undefined);
    }
    const t = l.tracked;
    const now = performance.now();
    const usage: Usage = {
      promptTokens: t.req.promptTokens.length,
      completionTokens: t.output.length,
      cachedPromptTokens: Math.max(0, t.cachedPromptTokens),
    };
    const decodeS = t.firstTokenAt > 0 ? (now - t.firstTokenAt) / 1000 : 0;
    const timings: RequestTimings = {
      queueMs: t.scheduledAt >= 0 ? t.scheduledAt - t.arrivedAt : now - t.arrivedAt,
      ttftMs: t.firstTokenAt > 0 ? t.firstTokenAt - t.arrivedAt : -1,
      e2eMs: now - t.arrivedAt,
      decodeTokS: decodeS > 0 && t.output.length > 1 ? (t.output.length - 1) / decodeS : 0,
    };
    this.observer.onFinish?.(reason, {
      e2e: timings.e2eMs / 1000,
      queue: timings.queueMs / 1000,
      promptTokens: usage.promptTokens,
      completionTokens: usage.completionTokens,
    });
    l.sink.onFinish(reason, usage, timings);
  }

  private fail(error: Error): void {
    this.state = "failed";
    const wrapped = error instanceof SlimError ? error : new Error(`engine failure: ${error.message}`);
    for (const l of [...this.live.values()]) {
      l.done = true;
      this.scheduler.finish(l.tracked.req.id, "abort");
      l.sink.onError(wrapped);
    }
    this.live.clear();
  }

  /** Stop taking requests; resolves when the running ones finish or `timeoutMs` passes (then aborts them). */
  async drain(timeoutMs: number): Promise<void> {
    if (this.state === "ready") this.state = "draining";
    const deadline = performance.now() + timeoutMs;
    while (this.live.size > 0 && performance.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    for (const l of [...this.live.values()]) this.abort(l.tracked.req.id);
  }

  async close(): Promise<void> {
    if (this.timer !== undefined) clearTimeout(this.timer);
    if (this.state !== "failed") this.state = "closed";
    for (const l of [...this.live.values()]) this.abort(l.tracked.req.id);
    await this.engine.close();
  }
}

/** Log-probability of `token` and the top `n` alternatives, from one row of logits (float64). */
export function logprobsOf(logits: Float32Array, token: number, n: number): TokenLogprob {
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) if (logits[i]! > max) max = logits[i]!;
  let sum = 0;
  for (let i = 0; i < logits.length; i++) sum += Math.exp(logits[i]! - max);
  const lse = max + Math.log(sum);
  const top: { token: number; logprob: number }[] = [];
  if (n > 0) {
    // small insertion-sorted list: n <= 20
    for (let i = 0; i < logits.length; i++) {
      const v = logits[i]!;
      if (top.length === n && v <= top[n - 1]!.logprob) continue;
      let j = Math.min(top.length, n - 1);
      if (top.length < n) top.push({ token: i, logprob: v });
      while (j > 0 && top[j - 1]!.logprob < v) {
        top[j] = top[j - 1]!;
        j--;
      }
      top[j] = { token: i, logprob: v };
    }
    for (const e of top) e.logprob -= lse;
  }
  return { token, logprob: logits[token]! - lse, top };
}
