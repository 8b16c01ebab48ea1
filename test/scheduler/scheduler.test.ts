/**
 * The scheduler with a fake executor: a "model" whose next token is a pure function of the
 * sequence so far, so every policy, chunking and preemption must give each request the same
 * output as running it alone.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { BlockPool } from "../../src/runtime/kv-cache.js";
import { type BatchingPolicy, QueueFullError, Scheduler, type SchedulerConfig, type SchedulerRequest, type Step, type Tracked } from "../../src/scheduler/scheduler.js";

const STOP = 3;

/** The fake model: next token from the whole sequence so far (never STOP unless forced). */
function nextToken(seq: readonly number[]): number {
  let h = seq.length;
  for (const t of seq.slice(-4)) h = (h * 31 + t) % 1000;
  return 10 + (h % 90);
}

/** The fake executor also checks the scheduler's bookkeeping: computed tokens form a prefix. */
class FakeExecutor {
  steps = 0;
  maxBatch = 0;
  tokensPerStep: number[] = [];
  run(step: Step, stopAt: Map<string, number>): number[] {
    this.steps++;
    this.maxBatch = Math.max(this.maxBatch, step.items.length);
    this.tokensPerStep.push(step.items.reduce((s, it) => s + it.count, 0));
    const out: number[] = [];
    for (const it of step.items) {
      const t = it.request;
      assert.equal(it.start, t.numComputed, "chunks continue where the cache ends");
      assert.ok(t.kv!.capacity >= it.start + it.count, "blocks reserved before compute");
      if (!it.sample) continue;
      const seq = t.tokens.slice(0, it.start + it.count);
      out.push(stopAt.get(t.req.id) === t.output.length ? STOP : nextToken(seq));
    }
    return out;
  }
}

function config(policy: BatchingPolicy, over: Partial<SchedulerConfig> = {}): SchedulerConfig {
  return { policy, maxBatch: 8, maxBatchTokens: 64, maxQueue: 100, maxQueueDelayMs: 50, contextSize: 512, ...over };
}

function request(id: string, promptLen: number, maxTokens: number, seed = 0): SchedulerRequest {
  return { id, promptTokens: Array.from({ length: promptLen }, (_, i) => 100 + ((i * 7 + seed * 13) % 400)), maxTokens, stopTokens: new Set([STOP]) };
}

/** What a request generates alone. */
function alone(r: SchedulerRequest, stopAfter?: number): number[] {
  const seq = [...r.promptTokens];
  const out: number[] = [];
  while (out.length < r.maxTokens) {
    if (stopAfter === out.length) break;
    const t = nextToken(seq);
    seq.push(t);
    out.push(t);
  }
  return out;
}

/** Drive the scheduler until idle; `arrivals` adds requests at given steps. */
function drive(s: Scheduler, exec: FakeExecutor, arrivals: Map<number, SchedulerRequest[]>, opts: { stopAt?: Map<string, number>; clock?: () => number } = {}) {
  const done = new Map<string, Tracked>();
  const perStepRunning: number[] = [];
  let now = 0;
  for (let i = 0; i < 10000; i++) {
    for (const r of arrivals.get(i) ?? []) s.add(r, now);
    if (s.idle && [...arrivals.keys()].every((k) => k <= i)) break;
    const step = s.step(now);
    now += opts.clock ? opts.clock() : 10;
    if (step === undefined) continue;
    perStepRunning.push(step.items.length);
    const sampled = exec.run(step, opts.stopAt ?? new Map());
    for (const e of s.update(step, sampled, now)) if (e.finished) done.set(e.request.req.id, e.request);
  }
  assert.ok(s.idle, "all requests finish");
  return { done, perStepRunning };
}

describe("scheduler", () => {
  it("continuous: requests join a running batch and get the same tokens as alone", () => {
    const pool = new BlockPool(64, 16);
    const s = new Scheduler(config("continuous"), pool);
    const exec = new FakeExecutor();
    const reqs = [request("a", 20, 30, 1), request("b", 5, 10, 2), request("c", 40, 25, 3)];
    const { done } = drive(s, exec, new Map([[0, [reqs[0]!]], [3, [reqs[1]!]], [7, [reqs[2]!]]]));
    for (const r of reqs) assert.deepEqual(done.get(r.id)!.output, alone(r));
    assert.ok(exec.maxBatch >= 3, "three sequences shared a step");
    assert.equal(pool.usedBlocks, 0, "every block is back");
  });

  it("long prompts are prefilled in chunks while others keep decoding", () => {
    const s = new Scheduler(config("continuous", { maxBatchTokens: 16 }), new BlockPool(64, 16));
    const exec = new FakeExecutor();
    const short = request("short", 4, 40, 4);
    const long = request("long", 200, 5, 5);
    const { done } = drive(s, exec, new Map([[0, [short]], [2, [long]]]));
    assert.deepEqual(done.get("long")!.output, alone(long));
    assert.deepEqual(done.get("short")!.output, alone(short));
    assert.ok(exec.tokensPerStep.every((n) => n <= 16), "token budget respected");
    // while the long prompt was prefilled (13 chunks), the short request got a token every step
    assert.ok(done.get("short")!.firstTokenAt < done.get("long")!.firstTokenAt);
    assert.ok(exec.steps < 40 + 5, "no step was spent on prefill alone while short decoded");
  });

  it("prefix caching: a shared prefix is computed once", () => {
    const pool = new BlockPool(64, 16);
    const s = new Scheduler(config("continuous"), pool);
    const exec = new FakeExecutor();
    const prefix = Array.from({ length: 70 }, (_, i) => 200 + i);
    const a: SchedulerRequest = { id: "a", promptTokens: [...prefix, 1, 2], maxTokens: 4, stopTokens: new Set() };
    const b: SchedulerRequest = { id: "b", promptTokens: [...prefix, 5, 6, 7], maxTokens: 4, stopTokens: new Set() };
    const { done } = drive(s, exec, new Map([[0, [a]], [20, [b]]]));
    assert.equal(done.get("a")!.cachedPromptTokens, 0);
    assert.equal(done.get("b")!.cachedPromptTokens, 64, "4 full blocks of the 70-token prefix");
    assert.deepEqual(done.get("b")!.output, alone(b));
    assert.equal(pool.hitTokens, 64);
    assert.ok(pool.cachedBlocks >= 4);
    // a prompt that is entirely cached still computes its last token
    const c: SchedulerRequest = { id: "c", promptTokens: prefix.slice(0, 64), maxTokens: 2, stopTokens: new Set() };
    const r = drive(s, exec, new Map([[0, [c]]]));
    assert.equal(r.done.get("c")!.cachedPromptTokens, 48);
    assert.deepEqual(r.done.get("c")!.output, alone(c));
  });

  it("a full KV cache preempts the newest request, which later resumes correctly", () => {
    // 12 blocks of 16 = 192 positions for three requests that need 3 x 100
    const pool = new BlockPool(12, 16);
    const s = new Scheduler(config("continuous"), pool);
    const exec = new FakeExecutor();
    const reqs = [request("a", 30, 70, 6), request("b", 30, 70, 7), request("c", 30, 70, 8)];
    const { done } = drive(s, exec, new Map([[0, reqs]]));
    for (const r of reqs) assert.deepEqual(done.get(r.id)!.output, alone(r));
    assert.ok([...done.values()].some((t) => t.preemptions > 0), "someone was preempted");
    assert.equal(done.get("a")!.preemptions, 0, "the oldest request is never the victim");
    assert.equal(pool.usedBlocks, 0);
  });

  it("stop tokens finish a request without appearing in the output", () => {
    const s = new Scheduler(config("continuous"), new BlockPool(64, 16));
    const r = request("a", 10, 50, 9);
    const { done } = drive(s, new FakeExecutor(), new Map([[0, [r]]]), { stopAt: new Map([["a", 7]]) });
    assert.deepEqual(done.get("a")!.output, alone(r, 7));
    assert.equal(done.get("a")!.finishReason, "stop");
  });

  it("finish (client gone) frees the blocks at once; a full queue refuses", () => {
    const pool = new BlockPool(64, 16);
    const s = new Scheduler(config("continuous", { maxQueue: 2 }), pool);
    s.add(request("a", 40, 100), 0);
    const step = s.step(0)!;
    s.update(step, [], 1);
    assert.ok(pool.usedBlocks > 0);
    s.finish("a", "abort");
    assert.equal(pool.usedBlocks, 0);
    assert.equal(s.numRunning, 0);
    assert.throws(() => s.add(request("e", 500, 100), 0), /context/);
    s.add(request("b", 4, 4), 0);
    s.add(request("c", 4, 4), 0);
    assert.throws(() => s.add(request("d", 4, 4), 0), QueueFullError);
  });

  it("dynamic: waits up to the delay to fill a batch, which runs to completion", () => {
    const s = new Scheduler(config("dynamic", { maxBatch: 4, maxQueueDelayMs: 35 }), new BlockPool(64, 16));
    const exec = new FakeExecutor();
    const reqs = [0, 1, 2, 3, 4, 5].map((i) => request(`r${i}`, 6, 8, i));
    const { done, perStepRunning } = drive(s, exec, new Map([[0, reqs.slice(0, 2)], [1, reqs.slice(2, 3)], [12, reqs.slice(3)]]));
    for (const r of reqs) assert.deepEqual(done.get(r.id)!.output, alone(r));
    // the first batch formed after the delay with 3 requests; nobody joined it
    assert.equal(perStepRunning[0], 3);
    assert.ok(perStepRunning.every((n) => n <= 4));
    assert.ok(done.get("r3")!.scheduledAt >= done.get("r0")!.firstTokenAt + 70, "r3 waited for the first batch to finish");
  });

  it("static: fixed batches of maxBatch, or the rest once input is closed", () => {
    const s = new Scheduler(config("static", { maxBatch: 2, maxQueueDelayMs: 1e9 }), new BlockPool(64, 16));
    const exec = new FakeExecutor();
    s.add(request("a", 4, 3), 0);
    assert.equal(s.step(0), undefined, "one request is not a batch");
    s.add(request("b", 4, 3, 1), 0);
    s.add(request("c", 4, 3, 2), 0);
    const first = s.step(0)!;
    assert.deepEqual(first.items.map((i) => i.request.req.id), ["a", "b"]);
    s.update(first, exec.run(first, new Map()), 1);
    s.closeInput();
    const { done } = drive(s, exec, new Map());
    assert.ok(done.has("c"));
  });
});
