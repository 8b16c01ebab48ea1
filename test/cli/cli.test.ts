/** The CLI contract that scripts and tests rely on (README, issue #2). */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, it } from "node:test";
import { SHARED, STORIES_GGUF, STORIES_HF } from "../helpers/slimlm.js";

const BIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../../bin/slimlm.js");

function run(args: string[]): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: "utf8", timeout: 60000 });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

function json(args: string[]): Record<string, unknown> {
  const r = run([...args, "--json"]);
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.trim().split("\n");
  assert.equal(lines.length, 1, "stdout holds exactly one JSON object");
  return JSON.parse(lines[0]!) as Record<string, unknown>;
}

const golden = JSON.parse(fs.readFileSync(path.join(SHARED, "models/stories260K.golden.json"), "utf8")) as {
  once_upon_a_time: { prompt_ids: number[]; generated_ids: number[] };
};

describe("slimlm generate", () => {
  it("--json: the documented object, greedy tokens as the reference", () => {
    const o = json(["generate", STORIES_GGUF, "--prompt", "Once upon a time", "--max-tokens", "40", "--temperature", "0"]);
    assert.deepEqual(Object.keys(o).sort(), ["prompt_tokens", "stop_detail", "stop_reason", "text", "timings", "tokens"]);
    assert.deepEqual(o.prompt_tokens, golden.once_upon_a_time.prompt_ids);
    assert.deepEqual(o.tokens, golden.once_upon_a_time.generated_ids.slice(0, 40));
    assert.equal(o.stop_reason, "length");
    assert.equal(o.stop_detail, "max_tokens");
    assert.match(o.text as string, /^, there was a little girl named Lily/);
    const t = o.timings as Record<string, number>;
    for (const k of ["prefill_ms", "decode_ms", "prefill_tok_s", "decode_tok_s"]) assert.ok(typeof t[k] === "number" && t[k]! >= 0, k);
  });

  it("streams the text to stdout without --json", () => {
    const r = run(["generate", STORIES_GGUF, "-p", "Once upon a time", "-n", "20", "--temperature", "0"]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^, there was a little girl/);
    assert.match(r.stderr, /tok\/s/);
  });

  it("same seed, same text; the Hugging Face folder works too", () => {
    const a = json(["generate", STORIES_GGUF, "-p", "The dog", "-n", "30", "--temperature", "1", "--seed", "7"]);
    const b = json(["generate", STORIES_HF, "-p", "The dog", "-n", "30", "--temperature", "1", "--seed", "7", "--threads", "1"]);
    assert.deepEqual(a.tokens, b.tokens);
  });

  it("stops at a stop string with stop_reason stop", () => {
    const o = json(["generate", STORIES_GGUF, "-p", "Once upon a time", "-n", "60", "--temperature", "0", "--stop", "Lily"]);
    assert.equal(o.stop_reason, "stop");
    assert.equal(o.text, ", there was a little girl named ");
  });

  it("stops at the context limit with a clear reason", () => {
    const o = json(["generate", STORIES_GGUF, "-p", "Once upon a time", "-n", "100", "--temperature", "0", "--ctx", "16"]);
    assert.equal(o.stop_reason, "length");
    assert.equal(o.stop_detail, "context_limit");
    assert.equal((o.prompt_tokens as number[]).length + (o.tokens as number[]).length, 17);
  });

  it("bad input: one line on stderr and a non-zero exit", () => {
    for (const args of [
      ["generate", "/nonexistent/model.gguf", "-p", "x"],
      ["generate", STORIES_GGUF, "-p", "x", "--top-p", "7"],
      ["generate", STORIES_GGUF, "-p", "x", "--max-tokens", "-3"],
      ["generate", STORIES_GGUF, "-p", "x", "--threads", "zero"],
      ["generate", path.join(SHARED, "data/README.md"), "-p", "x"],
    ]) {
      const r = run(args);
      assert.notEqual(r.code, 0, args.join(" "));
      assert.equal(r.stderr.trim().split("\n").length, 1, `one line: ${r.stderr}`);
      assert.match(r.stderr, /error/);
    }
  });
});

describe("slimlm tokenize / info", () => {
  it("tokenize: no BOS unless --bos; --file", () => {
    assert.deepEqual(json(["tokenize", STORIES_GGUF, "Once upon a time"]), { tokens: [403, 407, 261, 378] });
    assert.deepEqual(json(["tokenize", STORIES_GGUF, "Once upon a time", "--bos"]), { tokens: [1, 403, 407, 261, 378] });
    const f = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "slimlm-cli-")), "t.txt");
    fs.writeFileSync(f, "Once upon a time");
    assert.deepEqual(json(["tokenize", STORIES_GGUF, "--file", f]), { tokens: [403, 407, 261, 378] });
    assert.equal(run(["tokenize"]).code, 1); // no text
    assert.equal(run(["tokenize", STORIES_GGUF, "Once", "--file", f]).code, 1); // both
  });

  it("info: architecture, parameters, types, sizes, tokenizer", () => {
    const o = json(["info", STORIES_GGUF]);
    assert.equal(o.architecture, "llama");
    assert.equal(o.parameters, 292800);
    assert.deepEqual(o.tensor_types, { f32: { tensors: 48, parameters: 292800 } });
    assert.equal(o.file_size, 1185376);
    assert.equal(o.context_length, 2048);
    assert.equal(o.vocab_size, 512);
    assert.equal(o.tokenizer, "sentencepiece-bpe");
    // every matrix but the embedding table (the output matrix is separate here): 292800 - 64*512 - 11*64 floats
    assert.equal(o.bytes_per_token, (292800 - 64 * 512 - 11 * 64) * 4);
    const hf = json(["info", STORIES_HF]);
    assert.equal(hf.format, "hf");
    assert.equal(hf.parameters, 292800);
  });
});
