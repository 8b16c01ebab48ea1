import path from "node:path";
import type { Command } from "commander";
import { UsageError } from "../../errors.js";
import { type BenchReport, type EngineFigures, runBench } from "../../bench/bench.js";
import { KV_TYPE_HELP, formatBytes, parseIntOption, printJson, runCommand, say, parseKvType } from "../common.js";
import type { KvType } from "../../kernels/kernel-set.js";
import { registerBenchServe } from "./bench-serve.js";
import { MODEL_ARGUMENT_HELP, modelOrBuiltin } from "../builtin-model.js";

interface BenchCliOptions {
  threads?: number;
  prefill: number;
  decode: number;
  repeat: number;
  compare?: string;
  kvType?: KvType;
  json?: boolean;
}

/** `bench <model>`; returns the command so subcommands (`bench serve`) can attach to it. */
export function registerBench(program: Command): Command {
  const bench = program
    .command("bench")
    .description("measure prefill, decode, time to first token, peak memory and decode bandwidth (optionally against llama.cpp)")
    .argument("[model]", MODEL_ARGUMENT_HELP)
    .option("-t, --threads <n>", "threads (default: cores)", parseIntOption("--threads", 1, 64))
    .option("--prefill <n>", "prompt tokens of the prefill measurement", parseIntOption("--prefill", 1, 1 << 16), 512)
    .option("--decode <n>", "greedy tokens of the decode measurement (timed after the first)", parseIntOption("--decode", 1, 1 << 16), 128)
    .option("--repeat <n>", "runs per engine; figures are medians", parseIntOption("--repeat", 1, 1000), 3)
    .option("--compare <engine>", "also run this engine on the same file and threads: llama.cpp (node-llama-cpp)")
    .option("--kv-type <type>", `${KV_TYPE_HELP}; given, both engines use it (default: slimlm f32, llama.cpp f16)`, parseKvType)
    .option("--json", "print one JSON object on stdout")
    .action((modelArg: string | undefined, o: BenchCliOptions) =>
      runCommand(async () => {
        const model = modelOrBuiltin(modelArg);
        if (o.compare !== undefined && o.compare !== "llama.cpp") {
          throw new UsageError("unknown --compare engine", { expected: "llama.cpp", got: o.compare });
        }
        const report = await runBench({
          model,
          ...(o.threads === undefined ? {} : { threads: o.threads }),
          prefill: o.prefill,
          decode: o.decode,
          repeat: o.repeat,
          ...(o.compare === undefined ? {} : { compare: "llama.cpp" as const }),
          ...(o.kvType === undefined ? {} : { kvType: o.kvType }),
          onStatus: (line) => {
            if (!o.json) say(line);
          },
        });
        if (o.json) return printJson(report);
        printReport(report);
      }),
    );
  registerBenchServe(bench);
  return bench;
}

function spreadText(f: EngineFigures, k: keyof EngineFigures["spread"], digits: number): string {
  const [a, b] = f.spread[k];
  return f.runs.length > 1 ? ` (${a.toFixed(digits)}-${b.toFixed(digits)})` : "";
}

function printReport(r: BenchReport): void {
  const c = r.compare;
  say();
  say(`${path.basename(r.model)}: ${formatBytes(r.file_size)}, ${formatBytes(r.bytes_per_token)} read per token; ${r.threads} thread(s); ` +
    `${r.prefill_tokens}-token prefill, ${r.decode_tokens}-token decode; KV cache ${r.kv_type} (${formatBytes(r.kv_cache_bytes)} for ${r.context_size} positions); median of ${r.repeat} (min-max)`);
  const rows: [string, (f: EngineFigures) => string, number | undefined][] = [
    ["prefill tok/s", (f) => f.prefill_tok_s.toFixed(1) + spreadText(f, "prefill_tok_s", 1), c?.ratio_prefill],
    ["decode tok/s", (f) => f.decode_tok_s.toFixed(1) + spreadText(f, "decode_tok_s", 1), c?.ratio_decode],
    ["TTFT ms", (f) => f.ttft_ms.toFixed(1) + spreadText(f, "ttft_ms", 1), c?.ratio_ttft],
    ["peak RSS MB", (f) => f.peak_rss_mb.toFixed(0), c?.ratio_peak_rss],
    ["decode GB/s", (f) => `${f.decode_gb_s.toFixed(2)} (${(f.bandwidth_fraction * 100).toFixed(0)}% of ${r.read_gb_s.toFixed(1)})`, undefined],
  ];
  const w0 = 15;
  const w1 = 30;
  const w2 = 30;
  say(`${"".padEnd(w0)}${`slimlm (${r.kernels})`.padEnd(w1)}${c ? `${c.engine}`.padEnd(w2) + "ours/theirs" : ""}`);
  for (const [label, fmt, ratio] of rows) {
    say(`${label.padEnd(w0)}${fmt(r).padEnd(w1)}${c ? fmt(c).padEnd(w2) + (ratio !== undefined ? `${ratio.toFixed(2)}x` : "") : ""}`);
  }
}
