/** CLI contracts of the measurement tools: synth, sysinfo, bench (issue #3). */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import crypto from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { after, before, describe, it } from "node:test";
import { probeModuleBytes } from "../../src/bench/bandwidth.js";
import { Engine } from "../../src/runtime/engine.js";
import { loadLlamaCpp } from "../helpers/llama-cpp.js";
import { STORIES_GGUF, greedyIds } from "../helpers/slimlm.js";

const BIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../../bin/slimlm.js");

let dir: string;
/** A private cache folder and a small probe: the tests neither read nor pollute ~/.cache/slimlm. */
let env: NodeJS.ProcessEnv;

before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "slimlm-tools-"));
  env = { ...process.env, XDG_CACHE_HOME: path.join(dir, "cache"), SLIMLM_PROBE_MIB: "8" };
});
after(() => fs.rmSync(dir, { recursive: true, force: true }));

function run(args: string[]): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: "utf8", timeout: 60000, env });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

function json(args: string[]): Record<string, unknown> {
  const r = run([...args, "--json"]);
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.trim().split("\n");
  assert.equal(lines.length, 1, "stdout holds exactly one JSON object");
  return JSON.parse(lines[0]!) as Record<string, unknown>;
}

function sha(file: string): string {
  return crypto.createHash("sha256").update(fs.readFileSync(file)).digest("hex");
}

function oneLineError(args: string[], pattern: RegExp): void {
  const r = run(args);
  assert.notEqual(r.code, 0, args.join(" "));
  assert.equal(r.stdout, "");
  assert.equal(r.stderr.trim().split("\n").length, 1, `one line: ${r.stderr}`);
  assert.match(r.stderr, pattern);
}

describe("slimlm synth", () => {
  it("--json: the documented object; same seed, same bytes on any thread count; another seed differs", () => {
    const a = path.join(dir, "a.gguf");
    const b = path.join(dir, "b.gguf");
    const c = path.join(dir, "c.gguf");
    const o = json(["synth", "--preset", "tiny", "--type", "q4_k", "-o", a, "--seed", "5", "--threads", "1"]);
    assert.deepEqual(Object.keys(o).sort(), ["file_size", "parameters", "path", "preset", "seconds", "seed", "tensor_types", "threads", "type"]);
    assert.equal(o.path, a);
    assert.equal(o.type, "q4_k");
    assert.deepEqual(o.tensor_types, { q4_k: 16, f32: 5 });
    assert.equal(o.file_size, fs.statSync(a).size);
    json(["synth", "--preset", "tiny", "--type", "q4_k", "-o", b, "--seed", "5", "--threads", "3"]);
    assert.equal(sha(a), sha(b));
    json(["synth", "--preset", "tiny", "--type", "q4_k", "-o", c, "--seed", "6"]);
    assert.notEqual(sha(a), sha(c));
  });

  it("loads in slimlm and in llama.cpp, with the same greedy tokens", async () => {
    for (const [type, steps] of [["f16", 16], ["q4_k", 4]] as const) {
      const file = path.join(dir, `tiny-${type}.gguf`);
      json(["synth", "--preset", "tiny", "--type", type, "-o", file, "--seed", "1"]);
      const ref = await loadLlamaCpp(file, { contextSize: 64 });
      const engine = await Engine.load(file, { threads: 2, contextSize: 64 });
      try {
        const prompt = [1, ...ref.tokenize("Once upon a time there")];
        assert.deepEqual(engine.tokenizer.encode("Once upon a time there", { addSpecial: true }), prompt);
        assert.deepEqual(greedyIds(engine, prompt, steps), await ref.greedy(prompt, steps), type);
      } finally {
        await engine.close();
        await ref.dispose();
      }
    }
  });

  it("bad type, preset or output: one line on stderr, exit 1, no file left behind", () => {
    const out = path.join(dir, "bad.gguf");
    oneLineError(["synth", "--preset", "tiny", "--type", "q5_k", "-o", out], /unknown weight type "q5_k".*q4_k/);
    oneLineError(["synth", "--preset", "gpt-9", "--type", "q8_0", "-o", out], /unknown preset "gpt-9".*smollm2-135m/);
    oneLineError(["synth", "--preset", "tiny", "-o", out], /--type/);
    oneLineError(["synth", "--preset", "tiny", "--type", "f16", "-o", path.join(dir, "no/such/dir/x.gguf")], /cannot write/);
    assert.equal(fs.existsSync(out), false);
    assert.deepEqual(fs.readdirSync(dir).filter((f) => f.endsWith(".tmp")), []);
  });
});

describe("slimlm sysinfo", () => {
  it("the hand-encoded probe reads every 16-byte vector of its range", () => {
    const memory = new WebAssembly.Memory({ initial: 2, maximum: 2, shared: true });
    const u32 = new Uint32Array(memory.buffer);
    for (let i = 0; i < u32.length; i++) u32[i] = (i * 2654435761) >>> 0;
    const read = new WebAssembly.Instance(new WebAssembly.Module(probeModuleBytes()), { env: { memory } }).exports.read as (a: number, b: number) => number;
    for (const [start, end] of [[0, 131072], [256, 4096], [1024, 1024]] as const) {
      let want = 0;
      for (let v = start / 16; v < end / 16; v++) want = (want + u32[v * 4]!) | 0;
      assert.equal(read(start, end), want, `[${start}, ${end})`);
    }
  });

  it("--json: machine, runtime and read bandwidth at 1 thread and every core; cached; --refresh", () => {
    const o = json(["sysinfo"]);
    assert.deepEqual(Object.keys(o).sort(), ["arch", "cores", "cpu_model", "kernels", "memory_bytes", "node", "platform", "read_bandwidth", "relaxed_simd", "v8"]);
    assert.equal(o.cores, os.availableParallelism());
    assert.equal(o.node, process.version);
    assert.ok(["native", "flag", "no"].includes(o.relaxed_simd as string));
    assert.ok(["wasm-relaxed", "wasm-simd"].includes(o.kernels as string));
    const bw = o.read_bandwidth as { probe_bytes: number; cached: boolean; measured_at: string; by_threads: Record<string, number>[] };
    assert.equal(bw.probe_bytes, 8 << 20);
    assert.equal(bw.cached, false);
    assert.deepEqual(bw.by_threads.map((r) => r.threads), os.availableParallelism() > 1 ? [1, os.availableParallelism()] : [1]);
    for (const r of bw.by_threads) {
      assert.deepEqual(Object.keys(r).sort(), ["gb_s", "max_gb_s", "min_gb_s", "passes", "probe_bytes", "threads"]);
      assert.ok(r.gb_s! > 0.5 && r.min_gb_s! <= r.gb_s! && r.gb_s! <= r.max_gb_s!, JSON.stringify(r));
    }
    const again = json(["sysinfo"]).read_bandwidth as typeof bw;
    assert.equal(again.cached, true);
    assert.deepEqual(again.by_threads, bw.by_threads);
    assert.ok(fs.existsSync(path.join(dir, "cache/slimlm/sysinfo.json")));
    assert.equal((json(["sysinfo", "--refresh"]).read_bandwidth as typeof bw).cached, false);
  });
});

describe("slimlm bench", () => {
  const FIGURES = ["bandwidth_fraction", "bytes_per_token", "decode_gb_s", "decode_tok_s", "kernels", "load_ms", "peak_rss_mb", "prefill_tok_s", "runs", "spread", "ttft_ms"];
  const TOP = ["batch_size", "compare", "context_size", "decode_tokens", "file_size", "kv_cache_bytes", "kv_type", "model", "prefill_tokens", "read_gb_s", "repeat", "threads"];
  const ARGS = ["bench", STORIES_GGUF, "--prefill", "16", "--decode", "8", "--repeat", "2", "--threads", "1"];

  function checkFigures(f: Record<string, unknown>): void {
    for (const k of ["prefill_tok_s", "decode_tok_s", "ttft_ms", "peak_rss_mb", "decode_gb_s", "bandwidth_fraction"]) {
      assert.ok(typeof f[k] === "number" && (f[k] as number) > 0, `${k} = ${String(f[k])}`);
    }
    const runs = f.runs as Record<string, number>[];
    assert.equal(runs.length, 2);
    for (const r of runs) assert.deepEqual(Object.keys(r).sort(), ["decode_ms", "decode_tok_s", "prefill_ms", "prefill_tok_s", "ttft_ms"]);
    const [lo, hi] = (f.spread as Record<string, [number, number]>).decode_tok_s!;
    assert.ok(lo! <= (f.decode_tok_s as number) && (f.decode_tok_s as number) <= hi!);
    assert.ok(Math.abs((f.decode_gb_s as number) - ((f.bytes_per_token as number) * (f.decode_tok_s as number)) / 1e9) < 0.01);
  }

  it("--json: the documented figures, no compare", () => {
    const o = json(ARGS);
    assert.deepEqual(Object.keys(o).sort(), [...FIGURES, ...TOP].sort());
    assert.equal(o.compare, null);
    assert.equal(o.threads, 1);
    assert.equal(o.prefill_tokens, 16);
    assert.equal(o.file_size, fs.statSync(STORIES_GGUF).size);
    assert.equal(o.bytes_per_token, (292800 - 64 * 512 - 11 * 64) * 4);
    assert.match(o.kernels as string, /^wasm-/);
    checkFigures(o);
    assert.ok((o.read_gb_s as number) > 0);
    assert.ok(Math.abs((o.bandwidth_fraction as number) - (o.decode_gb_s as number) / (o.read_gb_s as number)) < 0.01);
  });

  it("--compare llama.cpp: the peer's figures side by side with ratios ours/theirs", () => {
    const o = json([...ARGS, "--compare", "llama.cpp"]);
    const c = o.compare as Record<string, unknown>;
    assert.deepEqual(Object.keys(c).sort(), [...FIGURES, "engine", "ratio_decode", "ratio_peak_rss", "ratio_prefill", "ratio_ttft"].sort());
    assert.equal(c.engine, "node-llama-cpp 3.21.1");
    checkFigures(c);
    const near = (a: number, b: number): boolean => Math.abs(a - b) <= 0.01 * Math.max(1, Math.abs(b));
    assert.ok(near(c.ratio_prefill as number, (o.prefill_tok_s as number) / (c.prefill_tok_s as number)));
    assert.ok(near(c.ratio_decode as number, (o.decode_tok_s as number) / (c.decode_tok_s as number)));
    assert.ok(near(c.ratio_ttft as number, (o.ttft_ms as number) / (c.ttft_ms as number)));
    assert.ok(near(c.ratio_peak_rss as number, (o.peak_rss_mb as number) / (c.peak_rss_mb as number)));
  });

  it("human report on stderr; bad input: one line, exit 1", () => {
    const r = run([...ARGS.slice(0, 2), "--prefill", "8", "--decode", "4", "--repeat", "1", "--threads", "1"]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, "");
    assert.match(r.stderr, /prefill tok\/s/);
    oneLineError([...ARGS, "--compare", "onnx"], /unknown --compare engine/);
    oneLineError(["bench", STORIES_GGUF, "--repeat", "0"], /invalid --repeat/);
    oneLineError(["bench", path.join(dir, "missing.gguf")], /error: cannot open model/);
  });
});
