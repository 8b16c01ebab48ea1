/**
 * Under load: 16 concurrent streaming clients (each gets what it gets alone; batches > 1 on
 * /metrics), clients that disconnect mid-stream (slot and KV blocks back within 1 s), a full
 * queue (429 with Retry-After; the server keeps serving).
 */
import assert from "node:assert/strict";
import http from "node:http";
import { after, before, describe, it } from "node:test";
import { type TestServer, assertOpenAiError, getText, postJson, scrape, startTestServer, streamRequest, streamText, waitFor } from "./helpers.js";

const WORDS = ["dog", "cat", "ball", "tree", "sun", "boat", "bird", "cake", "girl", "boy", "fish", "park", "toy", "car", "moon", "frog"];

describe("concurrency and disconnects", () => {
  let srv: TestServer;
  before(async () => {
    srv = await startTestServer({ maxBatch: 16 });
  });
  after(() => srv.close());

  it("16 concurrent streaming clients each get their sequential greedy result; batches > 1", async () => {
    const reqs = WORDS.map((w, i) =>
      i % 2 === 0
        ? { path: "/v1/chat/completions", body: { messages: [{ role: "user", content: `Tell me about the ${w}.` }], max_tokens: 24 + i, temperature: 0 } }
        : { path: "/v1/completions", body: { prompt: `The ${w} was`, max_tokens: 24 + i, temperature: 0 } },
    );
    const alone: string[] = [];
    for (const r of reqs) {
      const res = await streamRequest(srv.url, r.path, { ...r.body, stream: true });
      assert.equal(res.status, 200);
      alone.push(streamText(res.data));
    }
    const before = await scrape(srv.url);
    const together = await Promise.all(reqs.map((r) => streamRequest(srv.url, r.path, { ...r.body, stream: true })));
    together.forEach((res, i) => {
      assert.equal(res.status, 200);
      assert.equal(res.data.at(-1), "[DONE]");
      assert.equal(streamText(res.data), alone[i], `client ${i}`);
    });
    const m = await scrape(srv.url);
    const key = (le: string) => `slimlm:batch_size_bucket{le="${le}",model_name="stories260K"}`;
    const steps = m.get("slimlm:batch_size_count")! - before.get("slimlm:batch_size_count")!;
    const single = m.get(key("1"))! - before.get(key("1"))!;
    const upTo8 = m.get(key("8"))! - before.get(key("8"))!;
    assert.ok(steps > 0 && single < steps, `some forward passes batch more than one sequence (${single} of ${steps} single)`);
    assert.ok(upTo8 < steps, "some batches hold more than 8 sequences");
    const sum = m.get("slimlm:batch_size_sum")! - before.get("slimlm:batch_size_sum")!;
    assert.ok(sum / steps > 4, `mean batch ${sum / steps}`);
    assert.equal(m.get("slimlm:num_requests_running"), 0);
    assert.equal(m.get("slimlm:num_requests_waiting"), 0);
    const ok = (x: Map<string, number>, route: string) => x.get(`slimlm:http_requests_total{model_name="stories260K",handler="${route}",method="POST",status="200"}`) ?? 0;
    assert.equal(ok(m, "/v1/completions") - ok(before, "/v1/completions"), 8, "each streamed response counted once");
    assert.equal(ok(m, "/v1/chat/completions") - ok(before, "/v1/chat/completions"), 8);
    assert.equal(m.get("slimlm:request_success_total")! - before.get("slimlm:request_success_total")!, 16);
    assert.equal(m.get("slimlm:time_to_first_token_seconds_count")! - before.get("slimlm:time_to_first_token_seconds_count")!, 16);
    assert.equal(m.get("slimlm:e2e_request_latency_seconds_count")! - before.get("slimlm:e2e_request_latency_seconds_count")!, 16);
    const generated = WORDS.reduce((s, _w, i) => s + 24 + i, 0);
    assert.equal(m.get("slimlm:generation_tokens_total")! - before.get("slimlm:generation_tokens_total")!, generated);
    assert.equal(m.get("slimlm:inter_token_latency_seconds_count")! - before.get("slimlm:inter_token_latency_seconds_count")!, generated - 16);
  });

  for (const stream of [true, false]) {
    it(`a client that disconnects mid-${stream ? "stream" : "request"}: slot and KV blocks back within 1 s`, async () => {
      const pool = srv.serving.engine.pool;
      const abortKey = 'slimlm:request_success_total{model_name="stories260K",finished_reason="abort"}';
      const goneKey = 'slimlm:http_requests_total{model_name="stories260K",handler="/v1/completions",method="POST",status="499"}';
      const m0 = await scrape(srv.url);
      const abortsBefore = m0.get(abortKey) ?? 0;
      const goneBefore = m0.get(goneKey);
      const body = JSON.stringify({ prompt: "Once upon a time", max_tokens: 1500, temperature: 0, stream });
      let chunks = 0;
      const req = http.request(`${srv.url}/v1/completions`, { method: "POST", headers: { "content-type": "application/json" }, agent: false }, (res) => {
        res.on("data", () => chunks++);
      });
      req.on("error", () => {});
      req.end(body);
      // streamed: after a few chunks; not streamed: once it runs (nothing arrives before the answer)
      await waitFor(() => (stream ? chunks >= 5 : srv.serving.numRunning === 1 && pool.usedBlocks > 0), 5000, "the request to run");
      assert.equal(srv.serving.numRunning, 1);
      const tCut = performance.now();
      req.destroy();
      await waitFor(
        async () => {
          const m = await scrape(srv.url);
          return m.get("slimlm:num_requests_running") === 0 && m.get("slimlm:kv_cache_usage_perc") === 0 && pool.usedBlocks === 0;
        },
        2000,
        "running 0 and KV usage 0",
      );
      const elapsed = performance.now() - tCut;
      assert.ok(elapsed < 1000, `freed after ${elapsed.toFixed(0)} ms`);
      const m = await scrape(srv.url);
      assert.equal(m.get(abortKey), abortsBefore + 1, "counted as an abort");
      assert.equal(m.get(goneKey), (goneBefore ?? 0) + 1, "counted as HTTP 499");
      // the server goes on
      const ok = await postJson(srv.url, "/v1/completions", { prompt: "Once upon a time", max_tokens: 5, temperature: 0 });
      assert.equal(ok.status, 200);
    });
  }
});

describe("queue full", () => {
  let srv: TestServer;
  before(async () => {
    srv = await startTestServer({ maxBatch: 1, maxQueue: 2 });
  });
  after(() => srv.close());

  it("429 with Retry-After in OpenAI's shape; admitted requests finish; the server goes on", async () => {
    const all = await Promise.all(Array.from({ length: 8 }, (_, i) => postJson(srv.url, "/v1/completions", { prompt: `The ${WORDS[i]}`, max_tokens: 150, temperature: 0 })));
    const ok = all.filter((r) => r.status === 200);
    const full = all.filter((r) => r.status === 429);
    assert.equal(ok.length + full.length, 8, `statuses ${all.map((r) => r.status).join(",")}`);
    assert.ok(ok.length >= 3, "one running and two waiting are admitted");
    assert.ok(full.length >= 1, "the rest are refused");
    for (const r of full) {
      assert.equal(r.headers["retry-after"], "1");
      const e = assertOpenAiError(r.body);
      assert.equal(e.code, "queue_full");
      assert.equal(e.type, "rate_limit_error");
    }
    for (const r of ok) assert.equal((JSON.parse(r.body) as { usage: { completion_tokens: number } }).usage.completion_tokens, 150);
    assert.equal((await getText(`${srv.url}/health`)).status, 200);
    const again = await postJson(srv.url, "/v1/completions", { prompt: "The end", max_tokens: 3 });
    assert.equal(again.status, 200);
    // streaming requests are refused the same way, before any SSE is sent
    const streams = await Promise.all(Array.from({ length: 6 }, () => postJson(srv.url, "/v1/chat/completions", { messages: [{ role: "user", content: "Hi" }], max_tokens: 100, stream: true })));
    const refused = streams.filter((r) => r.status === 429);
    assert.ok(refused.length >= 1);
    for (const r of refused) assert.match(r.headers["content-type"]!, /application\/json/);
  });
});
