/**
 * `slimlm bench serve`: load a running OpenAI-compatible server (ours or any other) and report
 * throughput, TTFT, inter-token and end-to-end latency percentiles, and errors. A subcommand of
 * `bench` (registered by src/cli/commands/bench.ts beside `bench <model>`).
 */
import type { Command } from "commander";
import { UsageError } from "../../errors.js";
import { type Percentiles, type ServeLoadReport, WORKLOADS, type Workload, runServeLoad } from "../../bench/serve-load.js";
import { ProgressBar, parseFloatOption, parseIntOption, printJson, runCommand, say } from "../common.js";

interface BenchServeCliOptions {
  url: string;
  concurrency: number;
  requests: number;
  workload: string;
  rate?: number;
  maxTokens: number;
  turns: number;
  seed: number;
  model?: string;
  apiKey?: string;
  temperature: number;
  json?: boolean;
}

export function registerBenchServe(bench: Command): void {
  bench
    .command("serve")
    .description("load a running OpenAI-compatible server with streaming requests: throughput, TTFT, inter-token and e2e latency (p50/p90/p99), errors")
    .requiredOption("--url <url>", "server base URL, e.g. http://127.0.0.1:8080")
    .option("--concurrency <n>", "clients (closed loop), or the in-flight cap with --rate", parseIntOption("--concurrency", 1, 4096), 16)
    .option("--requests <n>", "requests in all", parseIntOption("--requests", 1, 1 << 24), 64)
    .option("--workload <name>", `${WORKLOADS.join(" | ")}`, "random")
    .option("--rate <r>", "Poisson arrivals per second (default: closed loop at the concurrency)", parseFloatOption("--rate", 1e-6, 1e6))
    .option("--max-tokens <n>", "tokens per reply (EOS ignored)", parseIntOption("--max-tokens", 1, 1 << 20), 64)
    .option("--turns <n>", "chat workload: turns per conversation", parseIntOption("--turns", 1, 1000), 4)
    .option("--temperature <t>", "sampling temperature (0 = greedy)", parseFloatOption("--temperature", 0, 2), 0)
    .option("--seed <s>", "prompt and arrival seed", parseIntOption("--seed", 0, 2 ** 32 - 1), 1)
    .option("--model <name>", "model field of the requests (default: none, the server's)")
    .option("--api-key <key>", "Authorization: Bearer key")
    .option("--json", "print one JSON object on stdout")
    // NOTE: main() makes top-level commands throw instead of exiting; a subcommand needs it too
    .exitOverride()
    // NOTE: `bench <model>` has a --json of its own, and commander lets the parent take its options
    // after the subcommand name: read the merged options.
    .action((_own: BenchServeCliOptions, cmd: Command) =>
      runCommand(async () => {
        const o = cmd.optsWithGlobals<BenchServeCliOptions>();
        if (!(WORKLOADS as readonly string[]).includes(o.workload)) {
          throw new UsageError("invalid --workload", { expected: WORKLOADS.join(", "), got: o.workload });
        }
        const bar = new ProgressBar("requests", o.json);
        const report = await runServeLoad({
          url: o.url,
          concurrency: o.concurrency,
          requests: o.requests,
          workload: o.workload as Workload,
          maxTokens: o.maxTokens,
          turns: o.turns,
          seed: o.seed,
          temperature: o.temperature,
          ...(o.rate === undefined ? {} : { rate: o.rate }),
          ...(o.model === undefined ? {} : { model: o.model }),
          ...(o.apiKey === undefined ? {} : { apiKey: o.apiKey }),
          onProgress: (d, t) => bar.update(d, t),
        });
        bar.done();
        if (o.json) printJson(report);
        else printServeReport(report);
      }),
    );
}

function row(label: string, p: Percentiles): string {
  const f = (x: number): string => x.toFixed(1).padStart(10);
  return `${label.padEnd(22)}${f(p.p50)}${f(p.p90)}${f(p.p99)}${f(p.mean)}`;
}

function printServeReport(r: ServeLoadReport): void {
  say(`${r.url}: ${r.workload} workload, ${r.rate === null ? `closed loop, concurrency ${r.concurrency}` : `${r.rate} req/s Poisson, at most ${r.concurrency} in flight`}, ${r.max_tokens} tokens per reply`);
  say(`${r.completed} of ${r.requests} requests in ${r.duration_s.toFixed(2)} s: ${r.requests_per_s.toFixed(2)} req/s, ${r.output_tokens_per_s.toFixed(1)} output tok/s`);
  say(`prompt tokens ${r.prompt_tokens} (${r.cached_prompt_tokens} cached), output tokens ${r.output_tokens}`);
  say(`${"ms".padEnd(22)}${"p50".padStart(10)}${"p90".padStart(10)}${"p99".padStart(10)}${"mean".padStart(10)}`);
  say(row("time to first token", r.ttft_ms));
  say(row("inter-token latency", r.itl_ms));
  say(row("end-to-end latency", r.e2e_ms));
  if (r.errors > 0) say(`errors: ${r.errors} (${Object.entries(r.error_kinds).map(([k, n]) => `${k}: ${n}`).join(", ")})`);
}
