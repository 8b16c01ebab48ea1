/**
 * The SSE wire format, byte for byte as OpenAI's: role chunk, content deltas, finish chunk,
 * optional usage chunk, [DONE]; an engine error mid-stream sends an error chunk then [DONE].
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import OpenAI from "openai";
import type { Batch } from "../../src/runtime/backend/batch.js";
import { MODEL_NAME, type TestServer, assertOpenAiError, getText, postJson, sseData, startTestServer, streamText } from "./helpers.js";

interface Chunk {
  id: string;
  object: string;
  created: number;
  model: string;
  system_fingerprint: string;
  choices: { index: number; delta?: { role?: string; content?: string }; text?: string; logprobs: unknown; finish_reason: string | null }[];
  usage?: unknown;
}

describe("SSE format", () => {
  let srv: TestServer;
  before(async () => {
    srv = await startTestServer();
  });
  after(() => srv.close());

  it("chat: role chunk, content deltas, finish chunk, usage chunk, [DONE]; every chunk carries id/created/model/fingerprint", async () => {
    const r = await postJson(srv.url, "/v1/chat/completions", { messages: [{ role: "user", content: "Hi" }], max_tokens: 12, temperature: 0, stream: true, stream_options: { include_usage: true } });
    assert.equal(r.status, 200);
    assert.match(r.headers["content-type"]!, /^text\/event-stream/);
    assert.equal(r.headers["cache-control"], "no-cache");
    assert.equal(r.headers["content-encoding"], undefined, "uncompressed");
    const data = sseData(r.body);
    assert.equal(data.at(-1), "[DONE]");
    const chunks = data.slice(0, -1).map((d) => JSON.parse(d) as Chunk);
    const first = chunks[0]!;
    for (const c of chunks) {
      assert.equal(c.id, first.id);
      assert.match(c.id, /^chatcmpl-/);
      assert.equal(c.object, "chat.completion.chunk");
      assert.equal(c.created, first.created);
      assert.equal(c.model, MODEL_NAME);
      assert.equal(typeof c.system_fingerprint, "string");
      assert.ok("usage" in c, "usage on every chunk with include_usage");
    }
    assert.deepEqual(first.choices, [{ index: 0, delta: { role: "assistant", content: "" }, logprobs: null, finish_reason: null }]);
    assert.equal(first.usage, null);
    const usageChunk = chunks.at(-1)!;
    assert.deepEqual(usageChunk.choices, []);
    const whole = await postJson(srv.url, "/v1/chat/completions", { messages: [{ role: "user", content: "Hi" }], max_tokens: 12, temperature: 0 });
    const wholeBody = JSON.parse(whole.body) as { usage: { prompt_tokens: number }; choices: { message: { content: string } }[] };
    const P = wholeBody.usage.prompt_tokens;
    assert.deepEqual(usageChunk.usage, { prompt_tokens: P, completion_tokens: 12, total_tokens: P + 12, prompt_tokens_details: { cached_tokens: 0 } });
    const finish = chunks.at(-2)!;
    assert.deepEqual(finish.choices, [{ index: 0, delta: {}, logprobs: null, finish_reason: "length" }]);
    const deltas = chunks.slice(1, -2);
    assert.ok(deltas.length >= 1);
    for (const d of deltas) {
      assert.equal(d.choices.length, 1);
      assert.equal(d.choices[0]!.finish_reason, null);
      assert.equal(typeof d.choices[0]!.delta!.content, "string");
      assert.equal(d.choices[0]!.delta!.role, undefined, "the role only in the first chunk");
      assert.equal(d.usage, null);
    }
    assert.equal(streamText(data), wholeBody.choices[0]!.message.content);
  });

  it("without include_usage: no usage field at all; completions stream text chunks", async () => {
    const r = await postJson(srv.url, "/v1/completions", { prompt: "Once upon a time", max_tokens: 6, temperature: 0, stream: true });
    const data = sseData(r.body);
    assert.equal(data.at(-1), "[DONE]");
    const chunks = data.slice(0, -1).map((d) => JSON.parse(d) as Chunk);
    for (const c of chunks) {
      assert.ok(!("usage" in c));
      assert.equal(c.object, "text_completion");
      assert.match(c.id, /^cmpl-/);
    }
    assert.equal(chunks.at(-1)!.choices[0]!.finish_reason, "length");
    assert.equal(streamText(data), ", there was a little g");
  });

  it("end of sequence: finish_reason stop (EOS forced with logit_bias after a few tokens)", async () => {
    // stories260K's greedy runs never reach EOS (id 2): bias it in
    const eos = String(srv.serving.tokenizer.eosId);
    const r = await postJson(srv.url, "/v1/completions", { prompt: "Once upon a time", max_tokens: 50, temperature: 0, stream: true, logit_bias: { [eos]: 100 }, stream_options: { include_usage: true } });
    const chunks = sseData(r.body)
      .slice(0, -1)
      .map((d) => JSON.parse(d) as Chunk);
    assert.equal(chunks.at(-2)!.choices[0]!.finish_reason, "stop");
    assert.equal((chunks.at(-1)!.usage as { completion_tokens: number }).completion_tokens, 0);
    const whole = await postJson(srv.url, "/v1/completions", { prompt: "Once upon a time", max_tokens: 50, temperature: 0, logit_bias: { [eos]: 100 } });
    const o = JSON.parse(whole.body) as { choices: { text: string; finish_reason: string }[] };
    assert.deepEqual(o.choices.map((c) => [c.text, c.finish_reason]), [["", "stop"]]);
    // ignore_eos (vLLM/llama.cpp extension): EOS does not end the request
    const on = await postJson(srv.url, "/v1/completions", { prompt: "Once upon a time", max_tokens: 7, temperature: 0, logit_bias: { [eos]: 100 }, ignore_eos: true });
    const p = JSON.parse(on.body) as { choices: { finish_reason: string }[]; usage: { completion_tokens: number } };
    assert.equal(p.choices[0]!.finish_reason, "length");
    assert.equal(p.usage.completion_tokens, 7);
  });

  it("errors before the stream starts are plain JSON responses with a status", async () => {
    const r = await postJson(srv.url, "/v1/chat/completions", { messages: [], stream: true });
    assert.equal(r.status, 400);
    assert.match(r.headers["content-type"]!, /application\/json/);
    assertOpenAiError(r.body);
  });
});

/** Make the engine's 8th forward pass from now throw. */
function injectFailure(srv: TestServer, at = 8): void {
  const engine = srv.serving.engine;
  const forward = engine.forward.bind(engine);
  let calls = 0;
  engine.forward = (b: Batch): Float32Array => {
    if (++calls === at) throw new Error("injected failure");
    return forward(b);
  };
}

describe("engine failure mid-stream", () => {
  it("sends the error as a chunk, then [DONE]; health turns 503 and new requests get 503", async () => {
    const srv = await startTestServer();
    try {
      injectFailure(srv);
      const r = await postJson(srv.url, "/v1/chat/completions", { messages: [{ role: "user", content: "Hi" }], max_tokens: 50, temperature: 0, stream: true });
      assert.equal(r.status, 200);
      const data = sseData(r.body);
      assert.equal(data.at(-1), "[DONE]");
      const e = assertOpenAiError(data.at(-2)!);
      assert.match(e.message, /injected failure/);
      assert.equal(e.type, "server_error");
      const before = data.slice(0, -2).map((d) => JSON.parse(d) as Chunk);
      assert.equal(before[0]!.choices[0]!.delta!.role, "assistant");
      assert.ok(before.length >= 3, "content came before the failure");
      assert.ok(before.every((c) => c.choices.every((ch) => ch.finish_reason === null)), "no finish_reason");

      const health = await getText(`${srv.url}/health`);
      assert.equal(health.status, 503);
      assert.deepEqual(JSON.parse(health.body), { status: "failed" });
      assert.equal(health.headers["retry-after"], "1");
      const next = await postJson(srv.url, "/v1/completions", { prompt: "x", max_tokens: 2 });
      assert.equal(next.status, 503);
      assertOpenAiError(next.body);
    } finally {
      await srv.close();
    }
  });

  it("the openai SDK throws an APIError from the stream after the deltas it got", async () => {
    const srv = await startTestServer();
    try {
      injectFailure(srv);
      const client = new OpenAI({ baseURL: `${srv.url}/v1`, apiKey: "x", maxRetries: 0 });
      const stream = await client.chat.completions.create({ model: MODEL_NAME, messages: [{ role: "user", content: "Hi" }], max_tokens: 50, temperature: 0, stream: true });
      let text = "";
      await assert.rejects(
        (async () => {
          for await (const ch of stream) text += ch.choices[0]?.delta.content ?? "";
        })(),
        (e: unknown) => e instanceof OpenAI.APIError && /injected failure/.test(e.message),
      );
      assert.ok(text.length > 0);
    } finally {
      await srv.close();
    }
  });
});
