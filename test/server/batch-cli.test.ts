/** `slimlm batch`: JSONL in, one result per line out in input order, under every batching policy. */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { after, before, describe, it } from "node:test";
import { Engine } from "../../src/runtime/engine.js";
import { generate } from "../../src/runtime/generate.js";
import { GREEDY } from "../../src/runtime/sampler.js";
import { STORIES_GGUF } from "./helpers.js";

const BIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../../bin/slimlm.js");

function run(args: string[]): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [BIN, "batch", STORIES_GGUF, "--threads", "1", ...args], { encoding: "utf8", timeout: 60000 });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

interface ResultLine {
  id: string | number | null;
  index: number;
  line: number;
  text?: string;
  tokens?: number[];
  finish_reason?: string;
  usage?: { prompt_tokens: number; completion_tokens: number; total_tokens: number };
  error?: { message: string };
}

const WORDS = ["dog", "cat", "sun", "boat", "bird", "cake", "tree", "fish", "moon", "frog", "ball"];

describe("slimlm batch", () => {
  let dir: string;
  let input: string;
  let lines: Record<string, unknown>[];
  let engine: Engine;
  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "slimlm-batch-"));
    lines = [
      { id: "first", prompt: "Once upon a time", max_tokens: 20, temperature: 0 },
      { prompt: [1, 403, 407, 261, 378], max_tokens: 20, temperature: 0 },
      { id: 3, messages: [{ role: "user", content: "Hi" }], max_tokens: 12, temperature: 0 },
      { id: "stop", prompt: "Once upon a time", max_tokens: 40, temperature: 0, stop: ["Lily"] },
      { id: "seeded", prompt: "The cat", max_tokens: 15, temperature: 1, seed: 11 },
      ...WORDS.map((w, i) => ({ id: w, prompt: `The ${w} was`, max_tokens: 5 + i, temperature: 0 })),
    ];
    input = path.join(dir, "in.jsonl");
    // blank lines are not inputs
    fs.writeFileSync(input, lines.map((l, i) => JSON.stringify(l) + (i === 2 ? "\n\n" : "\n")).join(""));
    engine = await Engine.load(STORIES_GGUF, { threads: 1 });
  });
  after(async () => {
    fs.rmSync(dir, { recursive: true, force: true });
    await engine.close();
  });

  const read = (p: string): ResultLine[] =>
    fs
      .readFileSync(p, "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as ResultLine);

  let staticOut: ResultLine[] = [];

  it("static batching (default): one result per input line, in input order, the greedy tokens of generate()", () => {
    const out = path.join(dir, "static.jsonl");
    const r = run(["--input", input, "--output", out, "--max-batch", "4"]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, "", "nothing on stdout without --json");
    assert.match(r.stderr, /16 line\(s\) -> .*static batching, max batch 4/);
    const res = read(out);
    staticOut = res;
    assert.equal(res.length, lines.length);
    res.forEach((x, i) => {
      assert.equal(x.index, i);
      assert.equal(x.id, (lines[i]!.id as string | number | undefined) ?? null);
      assert.equal(x.usage!.completion_tokens, x.tokens!.length);
      assert.equal(x.usage!.total_tokens, x.usage!.prompt_tokens + x.tokens!.length);
    });
    assert.deepEqual(
      res.map((x) => x.line),
      [1, 2, 3, 5, 6, ...WORDS.map((_, i) => 7 + i)],
      "line numbers skip the blank line",
    );
    const want = generate(engine, "Once upon a time", { maxTokens: 20, sampling: GREEDY });
    assert.deepEqual(res[0]!.tokens, want.tokens);
    assert.equal(res[0]!.text, want.text);
    assert.deepEqual(res[1]!.tokens, want.tokens, "token-id prompt = the same prompt as text");
    assert.equal(res[0]!.finish_reason, "length");
    assert.equal(res[3]!.text, ", there was a little girl named ");
    assert.equal(res[3]!.finish_reason, "stop");
    WORDS.forEach((w, i) => {
      const g = generate(engine, `The ${w} was`, { maxTokens: 5 + i, sampling: GREEDY });
      assert.deepEqual(res[5 + i]!.tokens, g.tokens, w);
    });
    assert.deepEqual(fs.readdirSync(dir).sort(), ["in.jsonl", "static.jsonl"], "no temp file left");
  });

  for (const policy of ["dynamic", "continuous"]) {
    it(`--batching ${policy}: the same results`, () => {
      const out = path.join(dir, `${policy}.jsonl`);
      const r = run(["--input", input, "--output", out, "--batching", policy, "--max-batch", "3", "--json"]);
      assert.equal(r.code, 0, r.stderr);
      const summary = JSON.parse(r.stdout) as Record<string, number>;
      assert.equal(summary.lines, lines.length);
      assert.equal(summary.errors, 0);
      const res = read(out);
      assert.equal(summary.completion_tokens, res.reduce((s, x) => s + x.usage!.completion_tokens, 0));
      assert.deepEqual(
        res.map((x) => [x.id, x.text, x.tokens]),
        staticOut.map((x) => [x.id, x.text, x.tokens]),
      );
    });
  }

  it("a bad line: one error line naming file:line, exit 1, the old output untouched, no temp file", () => {
    const bad = path.join(dir, "bad.jsonl");
    const out = path.join(dir, "keep.jsonl");
    fs.writeFileSync(out, "previous\n");
    const cases: [string, RegExp][] = [
      ['{"prompt": 5}', /bad\.jsonl:2: prompt/],
      ["{not json", /bad\.jsonl:2: not valid JSON/],
      ["[1,2]", /bad\.jsonl:2: a line must be a JSON object/],
      ['{"prompt": "x", "messages": [{"role": "user", "content": "y"}]}', /exactly one of/],
      ['{"id": 1}', /exactly one of/],
      ['{"prompt": "x", "temperature": -1}', /bad\.jsonl:2: temperature/],
      ['{"prompt": "x", "max_tokens": 5000}', /exceed the context/],
      ['{"prompt": [1, 99999]}', /token id 99999 out of range/],
      ['{"messages": [{"role": "robot", "content": "x"}]}', /messages\[0\]\.role/],
      ['{"prompt": "x", "n": 2}', /one completion per line/],
      ['{"prompt": "x", "logit_bias": {"4000": 1}}', /logit_bias token id 4000/],
    ];
    for (const [line, re] of cases) {
      fs.writeFileSync(bad, `{"prompt": "ok"}\n${line}\n{"prompt": "ok"}\n`);
      const r = run(["--input", bad, "--output", out]);
      assert.equal(r.code, 1, line);
      assert.equal(r.stderr.trim().split("\n").length, 1, `one line: ${r.stderr}`);
      assert.match(r.stderr, /^error: /);
      assert.match(r.stderr, re, line);
      assert.equal(fs.readFileSync(out, "utf8"), "previous\n");
    }
    assert.ok(!fs.readdirSync(dir).some((f) => f.endsWith(".tmp")));
    const missing = run(["--input", path.join(dir, "nope.jsonl"), "--output", out]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /cannot read/);
    const noDir = run(["--input", input, "--output", path.join(dir, "no/such/dir/out.jsonl")]);
    assert.equal(noDir.code, 1);
    assert.match(noDir.stderr, /cannot write/);
  });

  it("--skip-bad: bad lines become error results at their place", () => {
    const bad = path.join(dir, "mixed.jsonl");
    const out = path.join(dir, "mixed-out.jsonl");
    fs.writeFileSync(bad, ['{"id": "a", "prompt": "Once upon a time", "max_tokens": 3, "temperature": 0}', '{"id": "b", "prompt": 5}', "{oops", '{"id": "d", "prompt": "The dog", "max_tokens": 3}'].join("\n"));
    const r = run(["--input", bad, "--output", out, "--skip-bad", "--json"]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal((JSON.parse(r.stdout) as { errors: number }).errors, 2);
    const res = read(out);
    assert.deepEqual(
      res.map((x) => [x.id, x.error === undefined]),
      [
        ["a", true],
        ["b", false],
        [null, false],
        ["d", true],
      ],
    );
    assert.match(res[1]!.error!.message, /prompt/);
    assert.equal(res[0]!.text, ", there was");
  });
});
