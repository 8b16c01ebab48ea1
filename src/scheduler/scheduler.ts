/**
 * Batching policies over a shared KV block pool. The scheduler never runs a model: each `step()`
 * says which tokens of which requests the executor computes next, and `update()` takes the
 * sampled tokens back (vLLM v1 style: no prefill/decode phases, only computed tokens catching up
 * with known tokens).
 *
 * Policies:
 * - continuous: iteration-level scheduling. Running requests first (a decode token each, or the
 *   next prefill chunk), then waiting requests join while the token budget (`maxBatchTokens`) and
 *   the sequence budget (`maxBatch`) allow; long prompts are prefilled in chunks so streaming
 *   users are not stalled; finished requests leave at once.
 * - dynamic: requests wait up to `maxQueueDelayMs` to fill a batch of `maxBatch`, which then runs
 *   to completion before the next batch forms (Triton's dynamic batcher).
 * - static: fixed batches of `maxBatch`, formed when that many are waiting (or after the delay,
 *   or when the input is closed), run to completion (offline jobs).
 *
 * When the pool runs out of blocks, the newest running request is preempted: its blocks are
 * freed and it goes back to the front of the queue, to be recomputed later (its tokens so far are
 * kept, so it continues where it stopped).
 */
import { ResourceError } from "../errors.js";
import { type BlockPool, SequenceKv } from "../runtime/kv-cache.js";

export type BatchingPolicy = "continuous" | "dynamic" | "static";
export type FinishReason = "stop" | "length" | "abort";

export interface SchedulerConfig {
  readonly policy: BatchingPolicy;
  /** Sequences per step. */
  readonly maxBatch: number;
  /** Tokens per step (prefill chunk budget). */
  readonly maxBatchTokens: number;
  /** Waiting requests beyond this are refused (QueueFullError). */
  readonly maxQueue: number;
  /** dynamic/static: how long the oldest request may wait for a batch to fill. */
  readonly maxQueueDelayMs: number;
  /** Positions per sequence (prompt + generated). */
  readonly contextSize: number;
  /** Reuse cached KV blocks of equal prefixes. Default true. */
  readonly prefixCaching?: boolean;
}

export interface SchedulerRequest {
  readonly id: string;
  readonly promptTokens: readonly number[];
  /** New tokens to generate at most. */
  readonly maxTokens: number;
  /** Tokens that end generation (not included in the output). */
  readonly stopTokens: ReadonlySet<number>;
  /** Prefix-cache salt (per tenant). */
  readonly cacheSalt?: string;
}

/** A request as the scheduler tracks it. */
export class Tracked {
  status: "waiting" | "running" | "finished" = "waiting";
  /** Prompt plus generated tokens. */
  readonly tokens: number[];
  /** Tokens whose keys and values are in the cache. */
  numComputed = 0;
  readonly output: number[] = [];
  kv: SequenceKv | undefined;
  /** Prompt tokens found in the prefix cache the first time the request was scheduled. */
  cachedPromptTokens = -1;
  preemptions = 0;
  finishReason: FinishReason | undefined;
  /** Milliseconds: added, first scheduled, first token. */
  readonly arrivedAt: number;
  scheduledAt = -1;
  firstTokenAt = -1;

  constructor(
    readonly req: SchedulerRequest,
    now: number,
    readonly seq: number,
  ) {
    this.tokens = [...req.promptTokens];
    this.arrivedAt = now;
  }
}

export interface StepItem {
  readonly request: Tracked;
  /** Tokens to compute now: request.tokens[start, start + count). */
  readonly start: number;
  readonly count: number;
  /** This chunk reaches the last known token: sample the next one. */
  readonly sample: boolean;
}

export interface Step {
  readonly items: readonly StepItem[];
  /** Requests preempted while forming this step. */
  readonly preempted: readonly Tracked[];
}

export interface TokenEvent {
  readonly request: Tracked;
  readonly token: number;
  /** false for a stop token: it ends the request and is not part of the output. */
  readonly appended: boolean;
  /** Set when this token finished the request ("stop" tokens are not appended to the output). */
  readonly finished: FinishReason | undefined;
}

export class QueueFullError extends ResourceError {
  override readonly code = "queue_full";
}

export class Scheduler {
  private readonly waiting: Tracked[] = [];
  private readonly running: Tracked[] = [];
  private readonly byId = new Map<string, Tracked>();
  private nextSeq = 0;
  /** dynamic/static: the batch being run to completion (members stay until they finish). */
  private readonly cohort = new Set<Tracked>();
  /** static: no more requests will come (flush the last partial batch). */
  private inputClosed = false;

  constructor(
    readonly config: SchedulerConfig,
    readonly pool: BlockPool,
  ) {}

  get numWaiting(): number {
    return this.waiting.length;
  }

  get numRunning(): number {
    return this.running.length;
  }

  get idle(): boolean {
    return this.waiting.length === 0 && this.running.length === 0;
  }

  get(id: string): Tracked | undefined {
    return this.byId.get(id);
  }

  /** Queue a request. Throws QueueFullError, or ResourceError if it can never fit. */
  add(req: SchedulerRequest, now: number): Tracked {
    const c = this.config;
    if (this.waiting.length >= c.maxQueue) {
      throw new QueueFullError("too many requests waiting", { expected: `<= ${c.maxQueue} queued`, got: String(this.waiting.length + 1), hint: "retry later" });
    }
    const need = req.promptTokens.length + req.maxTokens;
    if (req.promptTokens.length === 0 || need > c.contextSize) {
      throw new ResourceError("prompt plus max tokens exceed the context", { expected: `<= ${c.contextSize} tokens`, got: String(need) });
    }
    if (Math.ceil(need / this.pool.blockSize) > this.pool.nBlocks) {
      throw new ResourceError("request larger than the whole KV cache", { expected: `<= ${this.pool.nBlocks * this.pool.blockSize} positions`, got: String(need) });
    }
    if (this.byId.has(req.id)) throw new ResourceError(`duplicate request id ${req.id}`);
    const t = new Tracked(req, now, this.nextSeq++);
    this.waiting.push(t);
    this.byId.set(req.id, t);
    return t;
  }

  /** Finish a request now (client gone, stop string seen...): its blocks return at once. */
  finish(id: string, reason: FinishReason): Tracked | undefined {
    const t = this.byId.get(id);
    if (t === undefined || t.status === "finished") return undefined;
    this.retire(t, reason);
    return t;
  }

  /** static: no more input is coming; run the last partial batch. */
  closeInput(): void {
    this.inputClosed = true;
  }

  /** The work of the next forward pass, or undefined when there is nothing to do yet. */
  step(now: number): Step | undefined {
    const c = this.config;
    if (c.policy !== "continuous" && this.cohort.size === 0 && this.cohortReady(now)) {
      for (const t of this.waiting.slice(0, c.maxBatch)) this.cohort.add(t);
    }
    const items: StepItem[] = [];
    const preempted: Tracked[] = [];
    let budget = c.maxBatchTokens;

    // 1. running requests, oldest first: a decode token each, or their next prefill chunk
    for (let i = 0; i < this.running.length && budget > 0; ) {
      const t = this.running[i]!;
      const count = Math.min(t.tokens.length - t.numComputed, budget);
      if (this.reserve(t, t.numComputed + count, preempted)) {
        items.push({ request: t, start: t.numComputed, count, sample: t.numComputed + count === t.tokens.length });
        budget -= count;
        i++;
      }
      // else t itself was preempted (it was the newest): the list shrank, stay at i
    }

    // 2. waiting requests join: continuous always, dynamic/static only members of the batch
    //    being formed. Nothing joins in a step that had to preempt.
    while (budget > 0 && preempted.length === 0 && this.waiting.length > 0 && this.running.length < c.maxBatch) {
      const t = this.waiting[0]!;
      if (c.policy !== "continuous" && !this.cohort.has(t)) break;
      if (t.kv === undefined) {
        t.kv = new SequenceKv(this.pool, t.req.cacheSalt);
        t.numComputed = c.prefixCaching === false ? 0 : t.kv.adoptCachedPrefix(t.tokens);
        if (t.cachedPromptTokens < 0) t.cachedPromptTokens = Math.min(t.numComputed, t.req.promptTokens.length);
      }
      // as much of the next chunk as the free blocks hold
      const room = t.kv.capacity + this.pool.freeBlocks * this.pool.blockSize - t.numComputed;
      const count = Math.min(t.tokens.length - t.numComputed, budget, room);
      if (count <= 0) {
        // do not hold cached blocks while waiting for room
        t.kv.release();
        t.kv = undefined;
        t.numComputed = 0;
        break;
      }
      t.kv.reserve(t.numComputed + count);
      this.waiting.shift();
      t.status = "running";
      if (t.scheduledAt < 0) t.scheduledAt = now;
      this.running.push(t);
      items.push({ request: t, start: t.numComputed, count, sample: t.numComputed + count === t.tokens.length });
      budget -= count;
    }
    if (items.length === 0 && preempted.length === 0) return undefined;
    return { items, preempted };
  }

  /**
   * Record a step's results: `sampled[i]` is the token sampled for the i-th item with
   * `sample: true` (in item order). Returns one event per sampled token.
   */
  update(step: Step, sampled: readonly number[], now: number): TokenEvent[] {
    const events: TokenEvent[] = [];
    let s = 0;
    for (const it of step.items) {
      const t = it.request;
      if (t.status !== "running") continue; // finished (aborted) while the step ran
      t.numComputed = it.start + it.count;
      t.kv!.length = t.numComputed;
      t.kv!.commitFullBlocks(t.tokens);
      if (!it.sample) continue;
      const token = sampled[s++]!;
      if (t.firstTokenAt < 0) t.firstTokenAt = now;
      let finished: FinishReason | undefined;
      if (t.req.stopTokens.has(token)) finished = "stop";
      else {
        t.tokens.push(token);
        t.output.push(token);
        if (t.output.length >= t.req.maxTokens || t.tokens.length >= this.config.contextSize) finished = "length";
      }
      events.push({ request: t, token, appended: finished !== "stop", finished });
      if (finished !== undefined) this.retire(t, finished);
    }
    return events;
  }

  private cohortReady(now: number): boolean {
    const c = this.config;
    if (this.waiting.length === 0) return false;
    if (this.waiting.length >= c.maxBatch || this.inputClosed) return true;
    return now - this.waiting[0]!.arrivedAt >= c.maxQueueDelayMs;
  }

  /** Make room for positions [0, n) of t, preempting the newest running requests if needed. */
  private reserve(t: Tracked, n: number, preempted: Tracked[]): boolean {
    while (!t.kv!.tryReserve(n)) {
      const victim = this.running[this.running.length - 1]!;
      this.preempt(victim);
      preempted.push(victim);
      if (victim === t) return false;
    }
    return true;
  }

  private preempt(t: Tracked): void {
    const i = this.running.indexOf(t);
    if (i >= 0) this.running.splice(i, 1);
    t.kv?.release();
    t.kv = undefined;
    t.numComputed = 0;
    t.status = "waiting";
    t.preemptions++;
    this.waiting.unshift(t);
  }

  private retire(t: Tracked, reason: FinishReason): void {
    const wi = this.waiting.indexOf(t);
    if (wi >= 0) this.waiting.splice(wi, 1);
    const ri = this.running.indexOf(t);
    if (ri >= 0) this.running.splice(ri, 1);
    t.kv?.release();
    t.kv = undefined;
    t.status = "finished";
    t.finishReason = reason;
    this.byId.delete(t.req.id);
    this.cohort.delete(t);
  }
}
