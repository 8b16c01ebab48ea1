/** `slimlm quantize` and `slimlm eval`: the CLI contract (one JSON object, one-line errors, no half-written output). */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { after, before, describe, it } from "node:test";
import { fileTypeSpec } from "../../src/optimize/quant-types.js";
import { quantizeModel } from "../../src/optimize/quantize.js";
import { SHARED, STORIES_GGUF } from "../helpers/slimlm.js";

const BIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../../bin/slimlm.js");

function run(args: string[]): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: "utf8", timeout: 60000 });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** A failed run: exit code 1, stderr's last line is one "error: ..." line matching `pattern`. */
function fails(args: string[], pattern: RegExp): void {
  const r = run(args);
  assert.equal(r.code, 1, r.stderr);
  assert.equal(r.stdout, "");
  const last = r.stderr.trim().split("\n").pop() ?? "";
  assert.match(last, /^error: /);
  assert.match(last, pattern);
}

describe("slimlm quantize / eval (CLI)", () => {
  let dir: string;
  let calib: string;
  let data: string;
  /** Files in `dir` (to prove nothing half-written or temporary is left behind). */
  const files = (): string[] => fs.readdirSync(dir).sort();
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "slimlm-qcli-"));
    const text = fs.readFileSync(path.join(SHARED, "data/tinystories_valid_head.txt"), "utf8");
    calib = path.join(dir, "calib.txt");
    data = path.join(dir, "data.txt");
    fs.writeFileSync(calib, text.slice(300000, 320000));
    fs.writeFileSync(data, text.slice(0, 20000));
    fs.writeFileSync(path.join(dir, "empty.txt"), "\n  \n");
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("--json: one object with the report; the fallback is reported on stderr", () => {
    const out = path.join(dir, "q4_0.gguf");
    const r = run(["quantize", STORIES_GGUF, "-o", out, "--type", "q4_0", "--threads", "2", "--json"]);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trim().split("\n");
    assert.equal(lines.length, 1);
    const o = JSON.parse(lines[0]!) as Record<string, unknown>;
    for (const k of ["output", "type", "file_type", "bytes_in", "bytes_out", "bpw_in", "bpw_out", "seconds", "tensors", "by_type", "fallbacks"]) assert.ok(k in o, k);
    assert.equal(o.type, "q4_0");
    assert.equal(o.file_type, 2);
    assert.equal(o.fallbacks, 6);
    assert.ok((o.bpw_out as number) < 8 && (o.bpw_in as number) === 32);
    assert.match(r.stderr, /warning: blk\.0\.ffn_down\.weight: row length 172 is not a multiple of 32 \(q4_0\); must use f16/);
    assert.ok(fs.statSync(out).size === o.file_size);
  });

  it("human output: the summary table with sizes and bits per weight", () => {
    const r = run(["quantize", STORIES_GGUF, "-o", path.join(dir, "q8.gguf"), "--type", "q8_0", "--calib", calib, "--calib-tokens", "1024"]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, "");
    assert.match(r.stderr, /calibration: 1024 tokens, importance for \d+ weights/);
    assert.match(r.stderr, /^q8_0\s+32\s+237,056\s+246\.0 KiB\s+8\.50$/m);
    assert.match(r.stderr, /^total\s+48\s+292,800\s+1\.12 MiB -> 356\.2 KiB\s+32\.00 -> 9\.97$/m);
  });

  it("a quantized input is requantized with a warning", () => {
    const r = run(["quantize", path.join(dir, "q8.gguf"), "-o", path.join(dir, "requant.gguf"), "--type", "q4_0", "--threads", "2"]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /warning: requantizing: the input is already quantized \(q8_0\)/);
  });

  it("bad input: one-line errors, exit code 1, no output file", () => {
    const out = path.join(dir, "never.gguf");
    const before = files();
    fails(["quantize", STORIES_GGUF, "-o", out, "--type", "q4_0", "--calib", path.join(dir, "missing.txt")], /cannot read calibration file ".*missing\.txt": no such file or directory/);
    fails(["quantize", STORIES_GGUF, "-o", out, "--type", "q4_0", "--calib", path.join(dir, "empty.txt")], /calibration file ".*empty\.txt" is empty/);
    fails(["quantize", STORIES_GGUF, "-o", out, "--type", "q3_k_xl"], /unknown quantization type "q3_k_xl" \(expected one of q8_0, q4_0/);
    fails(["quantize", STORIES_GGUF, "-o", out, "--type", "q4_0", "--tensor-type", "attn_v=q7"], /unknown tensor type "q7" for --tensor-type/);
    fails(["quantize", STORIES_GGUF, "-o", path.join(dir, "no-such-dir", "x.gguf"), "--type", "q4_0"], /cannot write ".*x\.gguf": no such file or directory/);
    fails(["quantize", STORIES_GGUF, "-o", dir, "--type", "q4_0"], /cannot write ".*": it is a directory/);
    fails(["quantize", STORIES_GGUF, "-o", STORIES_GGUF, "--type", "q4_0"], /the output would overwrite the input/);
    fails(["quantize", path.join(dir, "missing.gguf"), "-o", out, "--type", "q4_0"], /cannot open model ".*missing\.gguf": no such file or folder/);
    assert.deepEqual(files(), before);
  });

  it("a failure half-way leaves neither the output nor a temp file", async () => {
    const out = path.join(dir, "half.gguf");
    const before = files();
    await assert.rejects(
      quantizeModel({
        input: STORIES_GGUF,
        output: out,
        spec: fileTypeSpec("q4_k_m"),
        threads: 2,
        onTensor: (done) => {
          if (done === 20) throw new Error("simulated failure");
        },
      }),
      /simulated failure/,
    );
    assert.deepEqual(files(), before);
  });

  it("eval --json: perplexity, nll, tokens; with --reference kld_mean, kld_p99, top1_agreement, ppl_ratio", () => {
    const q = path.join(dir, "q4_0.gguf");
    const r = run(["eval", q, "--data", data, "--ctx", "64", "--max-tokens", "1024", "--reference", STORIES_GGUF, "--threads", "2", "--json"]);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trim().split("\n");
    assert.equal(lines.length, 1);
    const o = JSON.parse(lines[0]!) as Record<string, number>;
    assert.equal(o.tokens, 16 * 31);
    for (const k of ["perplexity", "nll", "kld_mean", "kld_p99", "top1_agreement", "ppl_ratio"]) assert.ok(typeof o[k] === "number" && Number.isFinite(o[k]), k);
    assert.ok(Math.abs(Math.exp(o.nll!) - o.perplexity!) < 1e-9);
    assert.ok(o.kld_mean! > 0 && o.kld_p99! > o.kld_mean! && o.top1_agreement! > 0.5 && o.top1_agreement! < 1 && o.ppl_ratio! > 1);
    const plain = run(["eval", STORIES_GGUF, "--data", data, "--ctx", "64", "--max-tokens", "256"]);
    assert.equal(plain.code, 0, plain.stderr);
    assert.match(plain.stderr, /perplexity\s+\d+\.\d+/);
  });

  it("eval errors: missing data, too little data, a reference with another tokenizer", () => {
    fails(["eval", STORIES_GGUF, "--data", path.join(dir, "missing.txt")], /cannot read data file/);
    fails(["eval", STORIES_GGUF, "--data", calib, "--ctx", "4096", "--max-tokens", "100"], /not enough data for one window/);
    fails(["eval", STORIES_GGUF, "--data", data, "--ctx", "64", "--reference", path.join(SHARED, "models/llama-2-tiny-random.gguf")], /different tokenizers/);
  });
});
