/**
 * The official `openai` SDK, unmodified, against an in-process slimlm server: chat and text
 * completions, streamed and not, include_usage, stop, seed, n, logprobs; greedy output equals
 * `slimlm generate` (the CLI and the runtime's generate()) for the same prompt.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { after, before, describe, it } from "node:test";
import OpenAI from "openai";
import { Engine } from "../../src/runtime/engine.js";
import { generate } from "../../src/runtime/generate.js";
import { GREEDY } from "../../src/runtime/sampler.js";
import { ChatTemplate } from "../../src/server/chat-template.js";
import { MODEL_NAME, STORIES_GGUF, type TestServer, startTestServer } from "./helpers.js";

const BIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../../bin/slimlm.js");
const PROMPTS = ["Once upon a time", "The little dog", "Lily and Ben went to the park", "One day, a big"];

describe("openai SDK", () => {
  let srv: TestServer;
  let client: OpenAI;
  let engine: Engine;
  before(async () => {
    srv = await startTestServer();
    client = new OpenAI({ baseURL: `${srv.url}/v1`, apiKey: "unused", maxRetries: 0 });
    engine = await Engine.load(STORIES_GGUF, { threads: 1 });
  });
  after(async () => {
    await srv.close();
    await engine.close();
  });

  it("models.list: the served model", async () => {
    const models = await client.models.list();
    assert.deepEqual(
      models.data.map((m) => m.id),
      [MODEL_NAME],
    );
    assert.equal(models.data[0]!.object, "model");
  });

  it("completions, greedy: equals `slimlm generate --temperature 0 --json` (subprocess)", async () => {
    const r = spawnSync(process.execPath, [BIN, "generate", STORIES_GGUF, "--prompt", PROMPTS[0]!, "--max-tokens", "48", "--temperature", "0", "--json"], { encoding: "utf8", timeout: 60000 });
    assert.equal(r.status, 0, r.stderr);
    const cli = JSON.parse(r.stdout) as { text: string; tokens: number[]; prompt_tokens: number[] };
    const c = await client.completions.create({ model: MODEL_NAME, prompt: PROMPTS[0]!, max_tokens: 48, temperature: 0 });
    assert.equal(c.object, "text_completion");
    assert.equal(c.choices[0]!.text, cli.text);
    assert.equal(c.choices[0]!.finish_reason, "length");
    assert.deepEqual(c.usage, { prompt_tokens: cli.prompt_tokens.length, completion_tokens: 48, total_tokens: cli.prompt_tokens.length + 48, prompt_tokens_details: { cached_tokens: c.usage!.prompt_tokens_details!.cached_tokens } });
    // token ids too: the same prompt as token ids gives the same text
    const byIds = await client.completions.create({ model: MODEL_NAME, prompt: cli.prompt_tokens, max_tokens: 48, temperature: 0 });
    assert.equal(byIds.choices[0]!.text, cli.text);
  });

  it("completions and chat, greedy: the runtime's generate() tokens on the same prompt ids", async () => {
    const template = new ChatTemplate(engine.tokenizer, engine.file.metadata.optString("tokenizer.chat_template"));
    /** The text of `gen` as a continuation of `prompt` (keeps the space prefix of the first token). */
    const continuation = (prompt: readonly number[], gen: readonly number[]): string => engine.tokenizer.decode([...prompt, ...gen]).slice(engine.tokenizer.decode(prompt).length);
    for (const p of PROMPTS) {
      const want = generate(engine, p, { maxTokens: 40, sampling: GREEDY });
      const c = await client.completions.create({ model: MODEL_NAME, prompt: p, max_tokens: 40, temperature: 0 });
      assert.equal(c.choices[0]!.text, continuation(want.promptTokens, want.tokens), p);
      const messages = [
        { role: "system" as const, content: "You tell stories." },
        { role: "user" as const, content: p },
      ];
      const ids = template.tokenize(messages);
      const wantChat = generate(engine, ids, { maxTokens: 40, sampling: GREEDY });
      const chat = await client.chat.completions.create({ model: MODEL_NAME, messages, max_tokens: 40, temperature: 0 });
      assert.equal(chat.object, "chat.completion");
      assert.equal(chat.choices[0]!.message.role, "assistant");
      assert.equal(chat.choices[0]!.message.content, continuation(ids, wantChat.tokens), p);
      assert.equal(chat.usage!.prompt_tokens, ids.length);
      assert.equal(chat.choices[0]!.finish_reason, wantChat.stopReason === "length" ? "length" : "stop");
    }
  });

  it("streamed equals non-streamed; include_usage adds a final usage chunk", async () => {
    for (const p of PROMPTS.slice(0, 2)) {
      const messages = [{ role: "user" as const, content: p }];
      const whole = await client.chat.completions.create({ model: MODEL_NAME, messages, max_tokens: 30, temperature: 0 });
      const stream = await client.chat.completions.create({ model: MODEL_NAME, messages, max_tokens: 30, temperature: 0, stream: true, stream_options: { include_usage: true } });
      let text = "";
      let finish: string | null = null;
      let usage: OpenAI.CompletionUsage | null | undefined;
      let role: string | undefined;
      let chunks = 0;
      for await (const ch of stream) {
        chunks++;
        assert.equal(ch.object, "chat.completion.chunk");
        if (ch.choices.length === 0) {
          usage = ch.usage;
          continue;
        }
        assert.equal(ch.usage, null, "usage: null on content chunks");
        role ??= ch.choices[0]!.delta.role;
        text += ch.choices[0]!.delta.content ?? "";
        finish = ch.choices[0]!.finish_reason ?? finish;
      }
      assert.ok(chunks > 3);
      assert.equal(role, "assistant");
      assert.equal(text, whole.choices[0]!.message.content);
      assert.equal(finish, whole.choices[0]!.finish_reason);
      assert.equal(usage?.completion_tokens, whole.usage!.completion_tokens);
      assert.equal(usage?.prompt_tokens, whole.usage!.prompt_tokens);

      const cWhole = await client.completions.create({ model: MODEL_NAME, prompt: p, max_tokens: 30, temperature: 0 });
      const cStream = await client.completions.create({ model: MODEL_NAME, prompt: p, max_tokens: 30, temperature: 0, stream: true });
      let cText = "";
      for await (const ch of cStream) cText += ch.choices[0]?.text ?? "";
      assert.equal(cText, cWhole.choices[0]!.text);
    }
  });

  it("stop strings end the text before the stop (finish_reason stop), streamed too", async () => {
    const c = await client.completions.create({ model: MODEL_NAME, prompt: "Once upon a time", max_tokens: 60, temperature: 0, stop: ["Lily"] });
    assert.equal(c.choices[0]!.text, ", there was a little girl named ");
    assert.equal(c.choices[0]!.finish_reason, "stop");
    const s = await client.completions.create({ model: MODEL_NAME, prompt: "Once upon a time", max_tokens: 60, temperature: 0, stop: ["zzz", "Lily"], stream: true });
    let text = "";
    let finish: string | null = null;
    for await (const ch of s) {
      text += ch.choices[0]?.text ?? "";
      finish = ch.choices[0]?.finish_reason ?? finish;
    }
    assert.equal(text, ", there was a little girl named ");
    assert.equal(finish, "stop");
  });

  it("seed: same seed, same text (streamed or not); another seed, another text", async () => {
    const ask = (seed: number) => client.completions.create({ model: MODEL_NAME, prompt: "The cat", max_tokens: 40, temperature: 1, seed });
    const a = await ask(42);
    const b = await ask(42);
    const c = await ask(43);
    assert.equal(a.choices[0]!.text, b.choices[0]!.text);
    assert.notEqual(a.choices[0]!.text, c.choices[0]!.text);
    const s = await client.completions.create({ model: MODEL_NAME, prompt: "The cat", max_tokens: 40, temperature: 1, seed: 42, stream: true });
    let text = "";
    for await (const ch of s) text += ch.choices[0]?.text ?? "";
    assert.equal(text, a.choices[0]!.text);
  });

  it("n: n choices with their indexes; the prompt counts once in usage", async () => {
    const one = await client.chat.completions.create({ model: MODEL_NAME, messages: [{ role: "user", content: "Hi" }], max_tokens: 12, temperature: 1, seed: 5 });
    const r = await client.chat.completions.create({ model: MODEL_NAME, messages: [{ role: "user", content: "Hi" }], max_tokens: 12, temperature: 1, seed: 5, n: 3 });
    assert.deepEqual(
      r.choices.map((c) => c.index),
      [0, 1, 2],
    );
    assert.equal(r.choices[0]!.message.content, one.choices[0]!.message.content, "choice 0 uses the seed itself");
    assert.equal(new Set(r.choices.map((c) => c.message.content)).size, 3, "choices differ");
    assert.equal(r.usage!.prompt_tokens, one.usage!.prompt_tokens);
    assert.equal(r.usage!.completion_tokens, r.choices.length * 12);
    // streamed: every choice gets its role chunk, its deltas and its finish_reason
    const s = await client.chat.completions.create({ model: MODEL_NAME, messages: [{ role: "user", content: "Hi" }], max_tokens: 12, temperature: 1, seed: 5, n: 3, stream: true });
    const texts = ["", "", ""];
    const finishes: (string | null)[] = [null, null, null];
    for await (const ch of s) {
      for (const c of ch.choices) {
        texts[c.index] += c.delta.content ?? "";
        finishes[c.index] = c.finish_reason ?? finishes[c.index]!;
      }
    }
    assert.deepEqual(
      texts,
      r.choices.map((c) => c.message.content),
    );
    assert.deepEqual(finishes, ["length", "length", "length"]);
    // completions with a list of prompts: choices in prompt order
    const multi = await client.completions.create({ model: MODEL_NAME, prompt: [PROMPTS[0]!, PROMPTS[1]!], max_tokens: 10, temperature: 0, n: 2 });
    assert.equal(multi.choices.length, 4);
    assert.equal(multi.choices[0]!.text, multi.choices[1]!.text, "greedy: same text per prompt");
    assert.notEqual(multi.choices[0]!.text, multi.choices[2]!.text);
  });

  it("logprobs: chat top_logprobs and legacy completions logprobs, greedy token first, streamed equal", async () => {
    const chat = await client.chat.completions.create({ model: MODEL_NAME, messages: [{ role: "user", content: "Hi" }], max_tokens: 10, temperature: 0, logprobs: true, top_logprobs: 3 });
    const content = chat.choices[0]!.logprobs!.content!;
    assert.equal(content.length, 10);
    assert.equal(content.map((c) => c.token).join(""), chat.choices[0]!.message.content);
    for (const c of content) {
      assert.ok(c.logprob <= 0 && Number.isFinite(c.logprob));
      assert.equal(c.top_logprobs.length, 3);
      assert.equal(c.top_logprobs[0]!.token, c.token, "greedy picks the most likely token");
      assert.ok(Math.abs(c.top_logprobs[0]!.logprob - c.logprob) < 1e-9);
      for (let i = 1; i < 3; i++) assert.ok(c.top_logprobs[i - 1]!.logprob >= c.top_logprobs[i]!.logprob, "sorted");
      assert.deepEqual(c.bytes, [...Buffer.from(c.token)]);
    }
    const noTop = await client.chat.completions.create({ model: MODEL_NAME, messages: [{ role: "user", content: "Hi" }], max_tokens: 3, temperature: 0, logprobs: true });
    assert.deepEqual(
      noTop.choices[0]!.logprobs!.content!.map((c) => c.top_logprobs.length),
      [0, 0, 0],
    );
    const off = await client.chat.completions.create({ model: MODEL_NAME, messages: [{ role: "user", content: "Hi" }], max_tokens: 3, temperature: 0 });
    assert.equal(off.choices[0]!.logprobs, null);

    const s = await client.chat.completions.create({ model: MODEL_NAME, messages: [{ role: "user", content: "Hi" }], max_tokens: 10, temperature: 0, logprobs: true, top_logprobs: 3, stream: true });
    const streamed: OpenAI.ChatCompletionTokenLogprob[] = [];
    for await (const ch of s) streamed.push(...(ch.choices[0]?.logprobs?.content ?? []));
    assert.deepEqual(streamed, content);

    const text = await client.completions.create({ model: MODEL_NAME, prompt: "Once upon a time", max_tokens: 8, temperature: 0, logprobs: 2 });
    const lp = text.choices[0]!.logprobs!;
    assert.equal(lp.tokens!.join(""), text.choices[0]!.text);
    assert.equal(lp.token_logprobs!.length, 8);
    assert.equal(lp.top_logprobs!.length, 8);
    lp.tokens!.forEach((t, i) => assert.equal(Object.keys(lp.top_logprobs![i]!)[0], t));
    assert.deepEqual(lp.text_offset, [0, 1, 7, 11, 13, 20, 22, 24]);
    const ts = await client.completions.create({ model: MODEL_NAME, prompt: "Once upon a time", max_tokens: 8, temperature: 0, logprobs: 2, stream: true });
    const offsets: number[] = [];
    for await (const ch of ts) offsets.push(...(ch.choices[0]?.logprobs?.text_offset ?? []));
    assert.deepEqual(offsets, lp.text_offset, "streamed text_offset counts from the start of the completion");
  });

  it("the same routes without /v1", async () => {
    const bare = new OpenAI({ baseURL: srv.url, apiKey: "unused", maxRetries: 0 });
    const a = await bare.completions.create({ model: MODEL_NAME, prompt: PROMPTS[0]!, max_tokens: 10, temperature: 0 });
    const b = await client.completions.create({ model: MODEL_NAME, prompt: PROMPTS[0]!, max_tokens: 10, temperature: 0 });
    assert.equal(a.choices[0]!.text, b.choices[0]!.text);
    const chat = await bare.chat.completions.create({ model: MODEL_NAME, messages: [{ role: "user", content: "Hi" }], max_tokens: 5 });
    assert.equal(chat.choices.length, 1);
    assert.deepEqual(
      (await bare.models.list()).data.map((m) => m.id),
      [MODEL_NAME],
    );
  });

  it("typed errors: unknown model is NotFoundError, bad parameter is BadRequestError with its param", async () => {
    await assert.rejects(client.completions.create({ model: "gpt-5", prompt: "x", max_tokens: 2 }), (e: unknown) => e instanceof OpenAI.NotFoundError && e.code === "model_not_found");
    await assert.rejects(client.chat.completions.create({ model: MODEL_NAME, messages: [{ role: "user", content: "x" }], max_tokens: 2, temperature: 7 }), (e: unknown) => e instanceof OpenAI.BadRequestError && e.param === "temperature");
    await assert.rejects(client.chat.completions.create({ model: MODEL_NAME, messages: [{ role: "user", content: "x" }], max_tokens: 5000 }), (e: unknown) => e instanceof OpenAI.BadRequestError && e.code === "context_length_exceeded");
  });
});
