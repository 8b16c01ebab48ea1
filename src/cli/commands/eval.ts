import fs from "node:fs";
import type { Command } from "commander";
import { UsageError } from "../../errors.js";
import { type PerplexityReport, evaluatePerplexity } from "../../eval/perplexity.js";
import { fileError } from "../../formats/file.js";
import { Engine } from "../../runtime/engine.js";
import { KV_TYPE_HELP, ProgressBar, parseIntOption, parseKvType, printJson, runCommand, say } from "../common.js";
import type { KvType } from "../../kernels/kernel-set.js";
import { MODEL_ARGUMENT_HELP, modelOrBuiltin } from "../builtin-model.js";

interface EvalCliOptions {
  data: string;
  ctx: number;
  maxTokens?: number;
  reference?: string;
  threads?: number;
  kvType?: KvType;
  json?: boolean;
}

export function registerEval(program: Command): void {
  program
    .command("eval")
    .description("perplexity on a text (llama-perplexity's windows); with --reference also KL divergence and top-1 agreement")
    .argument("[model]", MODEL_ARGUMENT_HELP)
    .requiredOption("--data <file>", "text file to evaluate on")
    .option("-c, --ctx <n>", "window size in tokens; the second half of each window is scored", parseIntOption("--ctx", 4, 1 << 16), 256)
    .option("--max-tokens <n>", "use at most this many tokens of the text", parseIntOption("--max-tokens", 4, Number.MAX_SAFE_INTEGER))
    .option("--reference <model>", "compare with this model (usually the unquantized one; same tokenizer)")
    .option("-t, --threads <n>", "threads (default: cores)", parseIntOption("--threads", 1, 64))
    .option("--kv-type <type>", `${KV_TYPE_HELP}; the reference always uses f32 (so --reference <same model> measures the KV cache's cost)`, parseKvType)
    .option("--json", "print one JSON object on stdout")
    .action((modelArg: string | undefined, o: EvalCliOptions) =>
      runCommand(async () => {
        const model = modelOrBuiltin(modelArg);
        let text: string;
        try {
          text = fs.readFileSync(o.data, "utf8");
        } catch (e) {
          throw fileError(o.data, "cannot read data file", e);
        }
        if (text.trim().length === 0) throw new UsageError(`data file "${o.data}" is empty`, { expected: "some text", got: `${text.length} bytes` });
        const load = (path: string, kvType: KvType): Promise<Engine> =>
          Engine.load(path, {
            contextSize: o.ctx,
            maxBatchTokens: o.ctx,
            maxOutputRows: o.ctx,
            kvType,
            ...(o.threads === undefined ? {} : { threads: o.threads }),
          });
        const engine = await load(model, o.kvType ?? "f32");
        let reference: Engine | undefined;
        try {
          reference = o.reference === undefined ? undefined : await load(o.reference, "f32");
          if (o.ctx > engine.config.contextLength) say(`warning: --ctx ${o.ctx} is longer than the model's context (${engine.config.contextLength})`);
          const bar = new ProgressBar("evaluating", o.json);
          const t0 = performance.now();
          const r = evaluatePerplexity(engine, text, { ctx: o.ctx, ...(o.maxTokens === undefined ? {} : { maxTokens: o.maxTokens }), onProgress: (d, t) => bar.update(d, t, `window ${d}/${t}`) }, reference);
          bar.done();
          const seconds = (performance.now() - t0) / 1000;
          if (o.json) return printJson({ ...flatten(model, o.reference, r, seconds), kv_type: o.kvType ?? "f32" });
          say(`model        ${model} (KV cache ${o.kvType ?? "f32"})`);
          say(`data         ${o.data}: ${r.data_tokens} tokens, ${r.windows} windows of ${r.ctx}, ${r.tokens} scored`);
          say(`perplexity   ${r.perplexity.toFixed(4)} ± ${(r.perplexity * r.nll_stderr).toFixed(4)}  (mean NLL ${r.nll.toFixed(5)} nats)`);
          const k = r.reference;
          if (k !== undefined) {
            say(`reference    ${o.reference}: perplexity ${k.reference_perplexity.toFixed(4)}, ratio ${k.ppl_ratio.toFixed(5)}`);
            say(`KL div.      mean ${k.kld_mean.toFixed(6)} ± ${k.kld_stderr.toFixed(6)}, median ${k.kld_median.toFixed(6)}, 99% ${k.kld_p99.toFixed(6)}, max ${k.kld_max.toFixed(6)}`);
            say(`top-1        ${(k.top1_agreement * 100).toFixed(2)}% agreement`);
          }
          say(`time         ${seconds.toFixed(2)} s (${(((r.windows * r.ctx) / seconds) * (reference === undefined ? 1 : 2)).toFixed(0)} tokens/s)`);
        } finally {
          await reference?.close();
          await engine.close();
        }
      }),
    );
}

/** The --json object: the documented top-level fields plus the details. */
function flatten(model: string, reference: string | undefined, r: PerplexityReport, seconds: number): Record<string, unknown> {
  const { reference: k, ...base } = r;
  return { model, ...base, ...(k === undefined ? {} : { reference_model: reference, ...k }), seconds };
}
