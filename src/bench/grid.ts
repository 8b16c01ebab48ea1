/**
 * The standard benchmark grid (`npm run bench`): SmolLM2-135M and TinyLlama-1.1B shapes in
 * f16, q8_0, q4_0 and q4_k at 1 and 2 threads, plus stories260K, each against llama.cpp, written
 * to BENCHMARKS.md. Missing synthetic models are written once into a cache folder.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { UsageError } from "../errors.js";
import { type BenchReport, type EngineFigures, runBench } from "./bench.js";
import { getPreset, parseSynthType, synthesizeParallel } from "./synth.js";
import { type SysInfo, slimlmCacheDir, sysInfo } from "./sysinfo.js";

/** The repository root (this file is dist/src/bench/grid.js). */
export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");

export const GRID_PRESETS = ["smollm2-135m", "tinyllama-1.1b"] as const;
export const GRID_TYPES = ["f16", "q8_0", "q4_0", "q4_k"] as const;
export const GRID_THREADS = [1, 2] as const;
/** A real (tiny) model from ../shared beside the repository, f32. */
export const STORIES = "stories260K";
const SEED = 0;

export interface GridOptions {
  readonly models: readonly string[];
  readonly types: readonly string[];
  readonly threads: readonly number[];
  readonly repeat: number;
  readonly prefill: number;
  readonly decode: number;
  readonly compare: boolean;
  /** BENCHMARKS.md path, or undefined to print the table only. */
  readonly out: string | undefined;
  /** The command line to print as "how to rerun". */
  readonly command: string;
  readonly log: (line: string) => void;
}

export interface GridRow {
  readonly model: string;
  readonly type: string;
  readonly threads: number;
  readonly report?: BenchReport;
  readonly error?: string;
}

/** Where synthetic bench models live: SLIMLM_BENCH_MODELS, or <cache>/slimlm/bench-models. */
export function benchModelsDir(): string {
  const v = process.env.SLIMLM_BENCH_MODELS;
  return v !== undefined && v !== "" ? path.resolve(v) : path.join(slimlmCacheDir(), "bench-models");
}

export function storiesPath(): string {
  const shared = process.env.SLIMLM_SHARED ?? path.resolve(REPO_ROOT, "../shared");
  return path.join(shared, "models/stories260K.gguf");
}

async function ensureModel(preset: string, type: string, log: (s: string) => void): Promise<string> {
  const dir = benchModelsDir();
  const file = path.join(dir, `${preset}-${type}-seed${SEED}.gguf`);
  if (fs.existsSync(file)) return file;
  fs.mkdirSync(dir, { recursive: true });
  log(`synthesizing ${path.basename(file)} (once; kept in ${dir})...`);
  const t0 = performance.now();
  let lastPct = -1;
  await synthesizeParallel({
    shape: getPreset(preset),
    type: parseSynthType(type),
    seed: SEED,
    out: file,
    name: `slimlm synth ${preset} ${type}`,
    onProgress: (d, t) => {
      const pct = Math.floor((d / t) * 10) * 10;
      if (pct !== lastPct) {
        lastPct = pct;
        if (pct > 0 && pct < 100) log(`  ${pct}%`);
      }
    },
  });
  log(`  done in ${((performance.now() - t0) / 1000).toFixed(0)} s`);
  return file;
}

export async function runGrid(o: GridOptions): Promise<{ rows: GridRow[]; sys: SysInfo; markdown: string }> {
  for (const m of o.models) if (m !== STORIES) getPreset(m);
  for (const t of o.types) parseSynthType(t);
  const started = new Date();
  const loadBefore = os.loadavg()[0]!;
  // NOTE: other processes skew every figure (llama.cpp's spinning thread pool most of all).
  if (loadBefore > 0.5) o.log(`warning: the machine is busy (1-minute load average ${loadBefore.toFixed(2)} on ${os.availableParallelism()} cores)`);
  o.log("measuring the machine (read bandwidth, fresh for this run)...");
  const threadCounts = [...new Set([1, os.availableParallelism(), ...o.threads])].sort((a, b) => a - b);
  const sys = await sysInfo({ refresh: true, threads: threadCounts });
  const rows: GridRow[] = [];
  const configs: { model: string; type: string; file: () => Promise<string> }[] = [];
  for (const m of o.models) {
    if (m === STORIES) configs.push({ model: m, type: "f32", file: () => Promise.resolve(storiesPath()) });
    else for (const t of o.types) configs.push({ model: m, type: t, file: () => ensureModel(m, t, o.log) });
  }
  for (const c of configs) {
    let file: string;
    try {
      file = await c.file();
    } catch (e) {
      for (const threads of o.threads) rows.push({ model: c.model, type: c.type, threads, error: errorText(e) });
      continue;
    }
    for (const threads of o.threads) {
      o.log(`bench ${c.model} ${c.type}, ${threads} thread(s)...`);
      try {
        const report = await runBench({
          model: file,
          threads,
          prefill: o.prefill,
          decode: o.decode,
          repeat: o.repeat,
          ...(o.compare ? { compare: "llama.cpp" as const } : {}),
        });
        rows.push({ model: c.model, type: c.type, threads, report });
        const p = report.compare;
        o.log(
          `  prefill ${report.prefill_tok_s} tok/s, decode ${report.decode_tok_s} tok/s, ttft ${report.ttft_ms} ms` +
            (p ? `; llama.cpp ${p.prefill_tok_s} / ${p.decode_tok_s} tok/s, ${p.ttft_ms} ms (ratios ${p.ratio_prefill} / ${p.ratio_decode})` : ""),
        );
      } catch (e) {
        o.log(`  failed: ${errorText(e)}`);
        rows.push({ model: c.model, type: c.type, threads, error: errorText(e) });
      }
    }
  }
  const markdown = renderMarkdown(rows, sys, o, started, [loadBefore, os.loadavg()[0]!]);
  if (o.out !== undefined) {
    const existing = fs.existsSync(o.out) ? fs.readFileSync(o.out, "utf8") : "";
    fs.writeFileSync(o.out, keepOtherSections(existing, markdown));
    const raw = path.join(path.dirname(benchModelsDir()), "bench-results.json");
    try {
      fs.writeFileSync(raw, JSON.stringify({ date: started.toISOString(), command: o.command, sysinfo: sys, rows }, null, 1) + "\n");
      o.log(`raw figures: ${raw}`);
    } catch {
      // optional
    }
  }
  return { rows, sys, markdown };
}

function errorText(e: unknown): string {
  return (e instanceof Error ? e.message : String(e)).replace(/\s*\n\s*/g, " ");
}

function fmt(x: number, digits: number): string {
  if (x >= 1000) return Math.round(x).toLocaleString("en-US");
  return x.toFixed(digits);
}

/** "123 ±4%": median and half the min-max range relative to it. */
function withSpread(f: EngineFigures, k: keyof EngineFigures["spread"], digits: number): string {
  const v = k === "ttft_ms" ? f.ttft_ms : k === "prefill_tok_s" ? f.prefill_tok_s : f.decode_tok_s;
  const [a, b] = f.spread[k];
  const pct = v > 0 ? Math.round(((b - a) / 2 / v) * 100) : 0;
  return f.runs.length > 1 ? `${fmt(v, digits)} ±${pct}%` : fmt(v, digits);
}

function ratio(x: number): string {
  return `**${x.toFixed(2)}**`;
}

function mb(bytes: number): string {
  return (bytes / 1e6).toFixed(bytes < 10e6 ? 2 : 0);
}

/** `load`: the 1-minute load average before and after the run (other processes skew the figures). */
export function renderMarkdown(rows: readonly GridRow[], sys: SysInfo, o: GridOptions, date: Date, load: readonly [number, number]): string {
  const bw = sys.read_bandwidth.by_threads.map((r) => `${r.gb_s} GB/s at ${r.threads} thread${r.threads > 1 ? "s" : ""} (min ${r.min_gb_s}, max ${r.max_gb_s})`).join("; ");
  const peer = rows.find((r) => r.report?.compare)?.report?.compare?.engine ?? "node-llama-cpp";
  const kernels = rows.find((r) => r.report)?.report?.kernels ?? sys.kernels;
  const peerBuild = rows.find((r) => r.report?.compare)?.report?.compare?.kernels;
  const lines: string[] = [
    "# Benchmarks",
    "",
    "Written by `npm run bench` (src/bench/grid.ts); do not edit by hand. Random-weight models with real shapes",
    "(`slimlm synth`, speed only) and stories260K, slimlm against llama.cpp in the same run.",
    "",
    `- **Date**: ${date.toISOString().replace(/\.\d+Z$/, "Z")}`,
    `- **Machine**: ${sys.cpu_model}, ${sys.cores} cores, ${(sys.memory_bytes / 2 ** 30).toFixed(1)} GiB, ${sys.platform}/${sys.arch}`,
    `- **Runtime**: Node ${sys.node} (V8 ${sys.v8}); relaxed SIMD: ${sys.relaxed_simd}; slimlm kernels: ${kernels}`,
    `- **Read bandwidth** (WebAssembly, ${(sys.read_bandwidth.probe_bytes / 2 ** 30).toFixed(0)} GiB probe, median of ${sys.read_bandwidth.by_threads[0]?.passes ?? 0} passes): ${bw}`,
    `- **Peer**: ${peer}${peerBuild ? ` (${peerBuild})` : ""}`,
    `- **Other load**: 1-minute load average ${load[0].toFixed(2)} before, ${load[1].toFixed(2)} after the run (includes the run itself; ${sys.cores} cores)`,
    `- **Rerun**: \`${o.command}\``,
    "",
    `Each cell: slimlm, llama.cpp, ratio slimlm/llama.cpp (bold). Prefill = ${o.prefill} tokens, decode = ${o.decode} tokens,`,
    `median of ${o.repeat} runs, ±% = half the min-max range. Throughput ratios > 1 and TTFT/RSS ratios < 1 favour slimlm.`,
    "",
    "| model | type | thr | file MB | MB/token | prefill tok/s | | | decode tok/s | | | TTFT ms | | | peak RSS MB | | | decode GB/s (% of read) | |",
    "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
  ];
  for (const r of rows) {
    const head = `| ${r.model} | ${r.type} | ${r.threads}`;
    const rep = r.report;
    if (rep === undefined) {
      lines.push(`${head} | | | **error**: ${(r.error ?? "").replace(/\|/g, "\\|")} | | | | | | | | | | | | | |`);
      continue;
    }
    const c = rep.compare;
    const cell = (f: (x: EngineFigures) => string, rat: number | undefined): string => `${f(rep)} | ${c ? f(c) : "-"} | ${c && rat !== undefined ? ratio(rat) : "-"}`;
    const gb = (f: EngineFigures): string => `${f.decode_gb_s.toFixed(2)} (${Math.round(f.bandwidth_fraction * 100)}%)`;
    lines.push(
      `${head} | ${mb(rep.file_size)} | ${mb(rep.bytes_per_token)} | ` +
        [
          cell((f) => withSpread(f, "prefill_tok_s", 1), c?.ratio_prefill),
          cell((f) => withSpread(f, "decode_tok_s", 1), c?.ratio_decode),
          cell((f) => withSpread(f, "ttft_ms", 1), c?.ratio_ttft),
          cell((f) => f.peak_rss_mb.toFixed(0), c?.ratio_peak_rss),
          `${gb(rep)} | ${c ? gb(c) : "-"}`,
        ].join(" | ") +
        " |",
    );
  }
  lines.push(
    "",
    "## How measured",
    "",
    "- `slimlm bench <model> --threads N --prefill P --decode D --repeat R --compare llama.cpp` per row. Each engine runs in",
    "  its own fresh child process, one after the other, with the same token ids, thread count, context (1024) and batch (512).",
    "  After a short untimed warm-up, each of the R runs measures:",
    "  - **prefill**: one forward pass over P prompt tokens from an empty context (slimlm `Engine.evaluate`; llama.cpp",
    "    `evaluateWithoutGeneratingNewTokens`), tokens / wall time;",
    "  - **TTFT**: from handing over the P token ids (empty context) to holding the first greedy token (slimlm: the same",
    "    forward plus sampling; llama.cpp: a separate `sequence.evaluate(prompt, {temperature: 0})` until its first token);",
    "    tokenization is not included;",
    "  - **decode**: greedy generation from a one-token prompt, timed from the first generated token over the next D",
    "    (each a one-token forward plus sampling, like llama-bench's tg; llama.cpp iterates `sequence.evaluate`).",
    "- Both engines otherwise use their defaults (llama.cpp: F16 KV cache, flash attention \"auto\", the CPU build shipped",
    "  in node-llama-cpp, threads pinned with `threads: {ideal: N, min: N}`; slimlm: the kernels above).",
    "- **peak RSS**: `process.resourceUsage().maxRSS` of the engine's child process at the end (Node itself included), MB = 10^6 bytes.",
    "- **decode GB/s** = weight bytes streamed per token x decode tok/s (MB/token: every matrix except the embedding lookup;",
    "  `slimlm info`'s `bytes_per_token`); the percentage is of the read bandwidth measured from WebAssembly at the same",
    "  thread count (`slimlm sysinfo`: 16 v128 loads per 256-byte step into 8 accumulators, worker threads over one shared",
    "  1 GiB memory, median of 9 passes). Models that fit in the caches (stories260K) are not bandwidth-bound: their percentage means little.",
    "- Figures are medians of R runs; llama.cpp at 2 threads is noisy (its thread pool spins against Node's threads), hence",
    "  the ±%. The machine may have other load; rerun a row with the subset options before trusting a surprise.",
    "- Synthetic models: `slimlm synth --preset <name> --type <type> --seed 0`, kept in `$SLIMLM_BENCH_MODELS` or",
    "  `~/.cache/slimlm/bench-models` (not in the repository).",
    "",
  );
  return lines.join("\n");
}

function list(v: string | undefined, all: readonly string[]): string[] {
  if (v === undefined) return [...all];
  return v.split(",").map((s) => s.trim()).filter((s) => s !== "");
}

function intList(name: string, v: string | undefined, all: readonly number[]): number[] {
  return list(v, all.map(String)).map((s) => {
    const n = Number(s);
    if (!Number.isInteger(n) || n < 1 || n > 64) throw new UsageError(`invalid ${name}`, { expected: "integers in [1, 64], comma-separated", got: s });
    return n;
  });
}

/** Options of `npm run bench -- [--models a,b] [--types x,y] [--threads 1,2] [--repeat R] ...`. */
export function gridOptionsFromArgs(values: Record<string, string | boolean | undefined>, argv: readonly string[], log: (s: string) => void): GridOptions {
  const str = (k: string): string | undefined => (typeof values[k] === "string" ? (values[k] as string) : undefined);
  const models = list(str("models"), [STORIES, ...GRID_PRESETS]);
  const types = list(str("types"), GRID_TYPES);
  const threads = intList("--threads", str("threads"), GRID_THREADS);
  const num = (k: string, d: number): number => {
    const v = str(k);
    if (v === undefined) return d;
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) throw new UsageError(`invalid --${k}`, { expected: "a positive integer", got: v });
    return n;
  };
  const subset = ["models", "types", "threads", "repeat", "prefill", "decode", "no-compare"].some((k) => values[k] !== undefined);
  const outArg = str("out");
  return {
    models,
    types,
    threads,
    repeat: num("repeat", 3),
    prefill: num("prefill", 512),
    decode: num("decode", 128),
    compare: values["no-compare"] !== true,
    // NOTE: a subset does not overwrite the full table unless asked to (--out BENCHMARKS.md).
    out: outArg === "-" ? undefined : outArg !== undefined ? path.resolve(outArg) : subset ? undefined : path.join(REPO_ROOT, "BENCHMARKS.md"),
    command: ["npm run bench", ...(argv.length > 0 ? ["--", ...argv] : [])].join(" "),
    log,
  };
}

/**
 * BENCHMARKS.md is shared: the grid owns the title, the speed table and "How measured"; other
 * tools own sections of their own ("## Serving", "## Quantization quality", "## Training"...),
 * which are kept, in their order, after the grid's part.
 */
export function keepOtherSections(existing: string, generated: string): string {
  const own = new Set(["How measured"]);
  const sections = existing.split(/\n(?=## )/).slice(1);
  const kept = sections.filter((sec) => !own.has(sec.slice(3, sec.indexOf("\n") < 0 ? undefined : sec.indexOf("\n")).trim()));
  return kept.length === 0 ? generated : `${generated.trimEnd()}\n\n${kept.map((k) => k.trimEnd()).join("\n\n")}\n`;
}
