/**
 * The built-in models (issue #6): shipped under models/, 10 MB or less together, each with a model
 * card, loadable by slimlm; every command that takes a model uses the teacher when none is given.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, it } from "node:test";
import { describeModel } from "../../src/runtime/info.js";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");
const BIN = path.join(ROOT, "bin/slimlm.js");
const TEACHER = path.join(ROOT, "models/slimlm-teacher.gguf");
const STUDENT = path.join(ROOT, "models/slimlm-student.gguf");

function run(args: string[]): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: "utf8", timeout: 120000 });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

function json(args: string[]): Record<string, unknown> {
  const r = run([...args, "--json"]);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout.trim().split("\n").at(-1)!) as Record<string, unknown>;
}

describe("built-in models", () => {
  it("teacher and student ship as GGUF with model cards, 10 MB or less together", () => {
    const total = fs.statSync(TEACHER).size + fs.statSync(STUDENT).size;
    assert.ok(total <= 10 * 1000 * 1000, `${total} bytes`);
    for (const card of ["slimlm-teacher.md", "slimlm-student.md"]) {
      const text = fs.readFileSync(path.join(ROOT, "models", card), "utf8");
      for (const needle of [/perplexity/i, /licen[cs]e/i, /scripts\/build-builtin-models\.mjs/, /minutes/]) assert.match(text, needle, card);
    }
    const t = describeModel(TEACHER);
    const s = describeModel(STUDENT);
    assert.equal(t.architecture, "llama");
    assert.ok(t.parameters >= 1e6 && t.parameters <= 5e6, `teacher parameters ${t.parameters}`);
    assert.ok(s.config.nLayers < t.config.nLayers, "the student is smaller");
    assert.equal(s.vocab_size, t.vocab_size);
  });

  it("generate, info and tokenize use the teacher when no model is given", () => {
    const g = json(["generate", "--prompt", "The people of the United States", "--max-tokens", "24", "--temperature", "0"]);
    const n = (g.tokens as number[]).length;
    assert.ok(n > 0 && n <= 24 && (n === 24 || g.stop_reason === "eos"), `${n} tokens, ${String(g.stop_reason)}`);
    assert.ok((g.text as string).trim().length > 0);
    // the same as naming the file
    const named = json(["generate", TEACHER, "--prompt", "The people of the United States", "--max-tokens", "24", "--temperature", "0"]);
    assert.deepEqual(named.tokens, g.tokens);
    const info = json(["info"]);
    assert.equal(info.path, TEACHER);
    const tok = json(["tokenize", "Congress shall make no law"]);
    assert.deepEqual(tok.tokens, json(["tokenize", TEACHER, "Congress shall make no law"]).tokens);
  });

  it("eval and bench run on the teacher by default; the student loads", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "slimlm-builtin-"));
    try {
      const data = path.join(dir, "text.txt");
      fs.writeFileSync(data, "We the People of the United States, in Order to form a more perfect Union, establish Justice, insure domestic Tranquility, provide for the common defence, promote the general Welfare, and secure the Blessings of Liberty to ourselves and our Posterity, do ordain and establish this Constitution for the United States of America.\n".repeat(4));
      const e = json(["eval", "--data", data, "--ctx", "64", "--threads", "1"]);
      assert.equal(e.model, TEACHER);
      assert.ok((e.perplexity as number) > 1 && Number.isFinite(e.perplexity), String(e.perplexity));
      const b = json(["bench", "--prefill", "16", "--decode", "8", "--repeat", "1", "--threads", "1"]);
      assert.equal(b.model, TEACHER);
      assert.ok((b.decode_tok_s as number) > 0);
      const s = json(["generate", STUDENT, "--prompt", "The people", "--max-tokens", "8", "--temperature", "0"]);
      assert.ok((s.tokens as number[]).length > 0);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
