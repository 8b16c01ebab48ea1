/** The load generator (src/bench/serve-load.ts) against an in-process server. */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { percentiles, runServeLoad } from "../../src/bench/serve-load.js";
import { type TestServer, scrape, startTestServer } from "./helpers.js";

describe("serve load generator", () => {
  let srv: TestServer;
  before(async () => {
    srv = await startTestServer({ maxBatch: 8 });
  });
  after(() => srv.close());

  it("percentiles interpolate like numpy", () => {
    assert.deepEqual(percentiles([]), { p50: 0, p90: 0, p99: 0, mean: 0, n: 0 });
    assert.deepEqual(percentiles([5]), { p50: 5, p90: 5, p99: 5, mean: 5, n: 1 });
    const p = percentiles([4, 1, 3, 2, 5, 6, 7, 8, 9, 10]);
    assert.equal(p.p50, 5.5);
    assert.equal(p.p90, 9.1);
    assert.equal(p.p99, 9.91);
    assert.equal(p.mean, 5.5);
  });

  it("closed loop, random workload: every request completes with max_tokens tokens; the server agrees", async () => {
    const m0 = await scrape(srv.url);
    const r = await runServeLoad({ url: srv.url, concurrency: 4, requests: 12, maxTokens: 8, workload: "random" });
    const m1 = await scrape(srv.url);
    assert.equal(r.completed, 12);
    assert.equal(r.errors, 0);
    assert.deepEqual(r.error_kinds, {});
    assert.equal(r.output_tokens, 96);
    assert.equal(m1.get("slimlm:generation_tokens_total")! - (m0.get("slimlm:generation_tokens_total") ?? 0), 96);
    assert.equal(r.prompt_tokens, m1.get("slimlm:prompt_tokens_total")! - (m0.get("slimlm:prompt_tokens_total") ?? 0));
    assert.ok(r.duration_s > 0 && r.requests_per_s > 0 && r.output_tokens_per_s > 0);
    assert.ok(Math.abs(r.output_tokens_per_s - 96 / r.duration_s) < 0.01 * r.output_tokens_per_s + 0.01);
    for (const p of [r.ttft_ms, r.itl_ms, r.e2e_ms]) {
      assert.ok(p.p50 > 0 && p.p50 <= p.p90 && p.p90 <= p.p99, JSON.stringify(p));
    }
    assert.equal(r.ttft_ms.n, 12);
    assert.equal(r.e2e_ms.n, 12);
    assert.ok(r.itl_ms.n > 12 && r.itl_ms.n <= 12 * 7);
    assert.ok(r.ttft_ms.p50 <= r.e2e_ms.p50);
    // through /v1 too, and the same seed gives the same prompts
    const again = await runServeLoad({ url: `${srv.url}/v1`, concurrency: 1, requests: 3, maxTokens: 2 });
    const again2 = await runServeLoad({ url: `${srv.url}/v1/`, concurrency: 1, requests: 3, maxTokens: 2 });
    assert.equal(again.prompt_tokens, again2.prompt_tokens);
  });

  it("chat: later turns resend the history and hit the prefix cache; shared-prefix too", async () => {
    const chat = await runServeLoad({ url: srv.url, concurrency: 2, requests: 8, maxTokens: 16, workload: "chat", turns: 4, seed: 3 });
    assert.equal(chat.completed, 8);
    assert.ok(chat.cached_prompt_tokens > 0, "turns 2+ find their history cached");
    assert.ok(chat.prompt_tokens > 8 * 40, `history grows: ${chat.prompt_tokens} prompt tokens`);
    const shared = await runServeLoad({ url: srv.url, concurrency: 3, requests: 9, maxTokens: 4, workload: "shared-prefix", seed: 4 });
    assert.equal(shared.completed, 9);
    assert.ok(shared.cached_prompt_tokens >= 6 * 300, `the long system prompt is shared: ${shared.cached_prompt_tokens}`);
  });

  it("--rate: Poisson arrivals at about the rate, capped at the concurrency", async () => {
    const t0 = performance.now();
    const r = await runServeLoad({ url: srv.url, concurrency: 2, requests: 10, maxTokens: 4, rate: 40, seed: 9 });
    const s = (performance.now() - t0) / 1000;
    assert.equal(r.completed, 10);
    assert.equal(r.rate, 40);
    assert.ok(s > 0.05, `10 arrivals at 40/s take a while (${s.toFixed(3)} s)`);
  });
});

describe("serve load generator: errors", () => {
  it("refused (429) and unreachable requests are counted by kind, not thrown", async () => {
    const srv = await startTestServer({ maxBatch: 1, maxQueue: 1 });
    try {
      const r = await runServeLoad({ url: srv.url, concurrency: 8, requests: 8, maxTokens: 40 });
      assert.equal(r.completed + r.errors, 8);
      assert.ok((r.error_kinds["http 429"] ?? 0) >= 1, JSON.stringify(r.error_kinds));
      assert.equal(r.output_tokens, r.completed * 40);
    } finally {
      await srv.close();
    }
    const keyed = await startTestServer({ apiKey: "k" });
    try {
      const bad = await runServeLoad({ url: keyed.url, concurrency: 1, requests: 2, maxTokens: 2, apiKey: "wrong" });
      assert.deepEqual(bad.error_kinds, { "http 401": 2 });
      const good = await runServeLoad({ url: keyed.url, concurrency: 1, requests: 2, maxTokens: 2, apiKey: "k" });
      assert.equal(good.completed, 2);
    } finally {
      await keyed.close();
    }
    const dead = await runServeLoad({ url: "http://127.0.0.1:1", concurrency: 2, requests: 3, maxTokens: 2 });
    assert.equal(dead.completed, 0);
    assert.deepEqual(dead.error_kinds, { "network: ECONNREFUSED": 3 });
    await assert.rejects(runServeLoad({ url: "ftp://x", concurrency: 1, requests: 1 }), /invalid --url/);
    await assert.rejects(runServeLoad({ url: "http://x", concurrency: 0, requests: 1 }), /invalid concurrency/);
  });
});
