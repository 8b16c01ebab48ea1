/**
 * Dynamic and static batching serve the same greedy text as running alone, in batches of at most
 * --max-batch; prefix caching: a multi-turn chat's second turn reuses the first turn's KV blocks
 * (usage.prompt_tokens_details.cached_tokens, slimlm:prefix_cache_hits_total), per cache salt,
 * and not at all with prefixCaching off.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { BatchingPolicy } from "../../src/scheduler/scheduler.js";
import { type TestServer, postJson, scrape, startTestServer } from "./helpers.js";

interface Completion {
  choices: { text?: string; message?: { content: string }; finish_reason: string }[];
  usage: { prompt_tokens: number; completion_tokens: number; prompt_tokens_details: { cached_tokens: number } };
}

async function complete(url: string, path: string, body: unknown): Promise<Completion> {
  const r = await postJson(url, path, body);
  assert.equal(r.status, 200, r.body);
  return JSON.parse(r.body) as Completion;
}

/** stories260K: 5 layers x 4 KV heads x 8 dims x (K and V) x 4 bytes. */
const BYTES_PER_POSITION = 5 * 4 * 8 * 2 * 4;

const text = (c: Completion): string => c.choices[0]!.text ?? c.choices[0]!.message!.content;

for (const policy of ["dynamic", "static"] as BatchingPolicy[]) {
  describe(`${policy} batching`, () => {
    let srv: TestServer;
    before(async () => {
      srv = await startTestServer({ policy, maxBatch: 4, maxQueueDelayMs: 30 });
    });
    after(() => srv.close());

    it("10 concurrent requests: each gets its text from running alone; batches of 2..4", async () => {
      const reqs = Array.from({ length: 10 }, (_, i) => ({ prompt: `The ${["dog", "cat", "sun", "boat", "bird"][i % 5]} ${i}`, max_tokens: 10 + 3 * i, temperature: 0 }));
      const alone: string[] = [];
      for (const r of reqs) alone.push(text(await complete(srv.url, "/v1/completions", r)));
      const before = await scrape(srv.url);
      let maxRunning = 0;
      const watch = setInterval(() => (maxRunning = Math.max(maxRunning, srv.serving.numRunning)), 1);
      const together = await Promise.all(reqs.map((r) => complete(srv.url, "/v1/completions", r)));
      clearInterval(watch);
      together.forEach((c, i) => {
        assert.equal(text(c), alone[i], `request ${i}`);
        assert.equal(c.usage.completion_tokens, reqs[i]!.max_tokens);
      });
      assert.ok(maxRunning <= 4, `at most --max-batch running (${maxRunning})`);
      const m = await scrape(srv.url);
      const steps = m.get("slimlm:batch_size_count")! - before.get("slimlm:batch_size_count")!;
      const sum = m.get("slimlm:batch_size_sum")! - before.get("slimlm:batch_size_sum")!;
      const le4 = 'slimlm:batch_size_bucket{le="4",model_name="stories260K"}';
      assert.equal(m.get(le4)! - before.get(le4)!, steps, "no batch above 4");
      assert.ok(sum / steps > 1.5, `mean batch ${(sum / steps).toFixed(2)}`);
    });

    it("streams and chat work the same way", async () => {
      const body = { messages: [{ role: "user", content: "Hi" }], max_tokens: 8, temperature: 0 };
      const whole = await complete(srv.url, "/v1/chat/completions", body);
      const r = await postJson(srv.url, "/v1/chat/completions", { ...body, stream: true });
      assert.equal(r.status, 200);
      assert.ok(r.body.endsWith("data: [DONE]\n\n"));
      let t = "";
      for (const line of r.body.split("\n\n")) {
        if (!line.startsWith("data: {")) continue;
        const o = JSON.parse(line.slice(6)) as { choices: { delta: { content?: string } }[] };
        t += o.choices[0]?.delta.content ?? "";
      }
      assert.equal(t, text(whole));
    });
  });
}

describe("prefix caching", () => {
  let srv: TestServer;
  let off: TestServer;
  before(async () => {
    srv = await startTestServer();
    off = await startTestServer({ prefixCaching: false });
  });
  after(async () => {
    await srv.close();
    await off.close();
  });

  const system = { role: "system", content: "You are a storyteller. You tell short stories about animals who live in a big green forest near a river." };

  /** Two turns of a chat; the second resends the first with the reply. */
  async function twoTurns(url: string, salt?: string): Promise<[Completion, Completion]> {
    const extra = salt === undefined ? {} : { cache_salt: salt };
    const turn1 = [system, { role: "user", content: "Tell me about the fox." }];
    const a = await complete(url, "/v1/chat/completions", { messages: turn1, max_tokens: 40, temperature: 0, ...extra });
    const turn2 = [...turn1, { role: "assistant", content: text(a) }, { role: "user", content: "And the owl?" }];
    const b = await complete(url, "/v1/chat/completions", { messages: turn2, max_tokens: 20, temperature: 0, ...extra });
    return [a, b];
  }

  it("the second turn reuses the first turn's blocks: cached_tokens and prefix_cache_hits_total", async () => {
    const m0 = await scrape(srv.url);
    const [a, b] = await twoTurns(srv.url);
    const m1 = await scrape(srv.url);
    const B = srv.serving.engine.pool.blockSize;
    assert.equal(a.usage.prompt_tokens_details.cached_tokens, 0, "first turn: nothing cached");
    const cached = b.usage.prompt_tokens_details.cached_tokens;
    assert.ok(cached > 0, "second turn: cached prompt tokens");
    // the first turn's prompt and reply are all in the cache, up to the last partial block
    const firstTurn = a.usage.prompt_tokens + a.usage.completion_tokens;
    assert.ok(cached >= Math.floor((firstTurn - 1) / B) * B - B, `cached ${cached} of ${firstTurn} first-turn positions`);
    const hits = m1.get("slimlm:prefix_cache_hits_total")! - (m0.get("slimlm:prefix_cache_hits_total") ?? 0);
    const queries = m1.get("slimlm:prefix_cache_queries_total")! - (m0.get("slimlm:prefix_cache_queries_total") ?? 0);
    assert.equal(hits, cached);
    assert.equal(queries, a.usage.prompt_tokens + b.usage.prompt_tokens);
    // the streamed usage reports it too
    const turn2 = [system, { role: "user", content: "Tell me about the fox." }, { role: "assistant", content: text(a) }, { role: "user", content: "And the owl?" }];
    const r = await postJson(srv.url, "/v1/chat/completions", { messages: turn2, max_tokens: 20, temperature: 0, stream: true, stream_options: { include_usage: true } });
    const usage = JSON.parse(r.body.split("\n\n").at(-3)!.slice(6)) as { usage: Completion["usage"] };
    assert.ok(usage.usage.prompt_tokens_details.cached_tokens >= cached);
  });

  it("a different cache_salt does not share blocks; the same salt does", async () => {
    const [, b1] = await twoTurns(srv.url, "tenant-a");
    assert.ok(b1.usage.prompt_tokens_details.cached_tokens > 0);
    const turn1 = [system, { role: "user", content: "Tell me about the fox." }];
    const other = await complete(srv.url, "/v1/chat/completions", { messages: turn1, max_tokens: 5, temperature: 0, cache_salt: "tenant-b" });
    assert.equal(other.usage.prompt_tokens_details.cached_tokens, 0);
    const same = await complete(srv.url, "/v1/chat/completions", { messages: turn1, max_tokens: 5, temperature: 0, cache_salt: "tenant-a" });
    assert.ok(same.usage.prompt_tokens_details.cached_tokens > 0);
  });

  it("prefixCaching off: no cached tokens, the same text", async () => {
    const [a, b] = await twoTurns(off.url);
    const [a2, b2] = await twoTurns(srv.url);
    assert.equal(b.usage.prompt_tokens_details.cached_tokens, 0);
    assert.equal(text(a), text(a2));
    assert.equal(text(b), text(b2), "cached blocks give the same text as recomputing them");
    const m = await scrape(off.url);
    assert.equal(m.get("slimlm:prefix_cache_hits_total") ?? 0, 0);
  });
});

describe("preemption and chunked prefill", () => {
  let srv: TestServer;
  before(async () => {
    // room for 2 full contexts of 256 positions: 8 requests of ~210 positions must take turns
    srv = await startTestServer({ contextSize: 256, maxBatch: 8, maxBatchTokens: 32, kvMemoryBytes: 2 * 256 * BYTES_PER_POSITION });
  });
  after(() => srv.close());

  it("requests preempted when the KV cache runs out resume and give the text they give alone", async () => {
    const reqs = Array.from({ length: 8 }, (_, i) => ({ prompt: `Once upon a time, ${["a dog", "a cat", "the sun", "a boat"][i % 4]} ${i}`, max_tokens: 200, temperature: 0 }));
    const alone: string[] = [];
    for (const r of reqs.slice(0, 4)) alone.push(text(await complete(srv.url, "/v1/completions", r)));
    const m0 = await scrape(srv.url);
    const together = await Promise.all(reqs.map((r) => complete(srv.url, "/v1/completions", r)));
    together.slice(0, 4).forEach((c, i) => assert.equal(text(c), alone[i], `request ${i}`));
    const m1 = await scrape(srv.url);
    const preempted = (m1.get("slimlm:num_preemptions_total") ?? 0) - (m0.get("slimlm:num_preemptions_total") ?? 0);
    assert.ok(preempted > 0, "some requests were preempted");
    assert.equal(srv.serving.engine.pool.usedBlocks, 0);
  });

  it("a prompt longer than the token budget is prefilled in chunks while others decode", async () => {
    const long = { prompt: "Lily and Ben went to the park. ".repeat(12), max_tokens: 20, temperature: 0 };
    const short = { prompt: "The dog", max_tokens: 60, temperature: 0 };
    const aloneLong = text(await complete(srv.url, "/v1/completions", long));
    const aloneShort = text(await complete(srv.url, "/v1/completions", short));
    const [s, l] = await Promise.all([complete(srv.url, "/v1/completions", short), new Promise((r) => setTimeout(r, 20)).then(() => complete(srv.url, "/v1/completions", long))]);
    assert.ok(l.usage.prompt_tokens > 32 * 3, `${l.usage.prompt_tokens} prompt tokens in chunks of 32`);
    assert.equal(text(l), aloneLong);
    assert.equal(text(s), aloneShort);
  });
});
