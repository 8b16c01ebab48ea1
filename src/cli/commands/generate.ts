import type { Command } from "commander";
import { UsageError } from "../../errors.js";
import { Engine } from "../../runtime/engine.js";
import { generate } from "../../runtime/generate.js";
import { DEFAULT_SAMPLING, type SamplingParams } from "../../runtime/sampler.js";
import { KV_TYPE_HELP, ProgressBar, parseFloatOption, parseIntOption, parseKvType, printJson, runCommand, say } from "../common.js";
import type { KvType } from "../../kernels/kernel-set.js";
import { MODEL_ARGUMENT_HELP, modelOrBuiltin } from "../builtin-model.js";

interface GenerateCliOptions {
  prompt: string;
  maxTokens: number;
  temperature: number;
  topK: number;
  topP: number;
  minP: number;
  repeatPenalty: number;
  presencePenalty: number;
  frequencyPenalty: number;
  seed?: number;
  stop: string[];
  threads?: number;
  ctx?: number;
  kvType?: KvType;
  special?: boolean;
  json?: boolean;
}

export function registerGenerate(program: Command): void {
  program
    .command("generate")
    .description("generate text from a prompt (the text streams to stdout; stats go to stderr)")
    .argument("[model]", MODEL_ARGUMENT_HELP)
    .requiredOption("-p, --prompt <text>", "prompt text")
    .option("-n, --max-tokens <n>", "tokens to generate", parseIntOption("--max-tokens", 0, 1 << 20), 128)
    .option("--temperature <t>", "0 = greedy", parseFloatOption("--temperature", 0, 100), DEFAULT_SAMPLING.temperature)
    .option("--top-k <k>", "0 = off", parseIntOption("--top-k", 0, 1 << 24), DEFAULT_SAMPLING.topK)
    .option("--top-p <p>", "1 = off", parseFloatOption("--top-p", 0, 1), DEFAULT_SAMPLING.topP)
    .option("--min-p <p>", "0 = off", parseFloatOption("--min-p", 0, 1), DEFAULT_SAMPLING.minP)
    .option("--repeat-penalty <x>", "1 = off", parseFloatOption("--repeat-penalty", 0, 10), DEFAULT_SAMPLING.repeatPenalty)
    .option("--presence-penalty <x>", "0 = off", parseFloatOption("--presence-penalty", -2, 2), DEFAULT_SAMPLING.presencePenalty)
    .option("--frequency-penalty <x>", "0 = off", parseFloatOption("--frequency-penalty", -2, 2), DEFAULT_SAMPLING.frequencyPenalty)
    .option("--seed <s>", "random seed (same seed, same text)", parseIntOption("--seed", 0, Number.MAX_SAFE_INTEGER))
    .option("--stop <text>", "stop when this text appears (repeatable)", (v: string, acc: string[]) => [...acc, v], [] as string[])
    .option("-t, --threads <n>", "threads (default: cores)", parseIntOption("--threads", 1, 64))
    .option("-c, --ctx <n>", "context size in tokens (default: the model's, at most 4096)", parseIntOption("--ctx", 1, 1 << 20))
    .option("--kv-type <type>", KV_TYPE_HELP, parseKvType)
    .option("--special", "parse special-token text in the prompt")
    .option("--json", "print one JSON object on stdout")
    .action((modelArg: string | undefined, o: GenerateCliOptions) =>
      runCommand(async () => {
        const model = modelOrBuiltin(modelArg);
        if (o.topP === 0) throw new UsageError("invalid --top-p", { expected: "a number in (0, 1]", got: "0" });
        const bar = new ProgressBar("loading", o.json);
        const engine = await Engine.load(model, {
          ...(o.threads === undefined ? {} : { threads: o.threads }),
          ...(o.ctx === undefined ? {} : { contextSize: o.ctx }),
          ...(o.kvType === undefined ? {} : { kvType: o.kvType }),
          onProgress: (d, t, name) => bar.update(d, t, name),
        });
        bar.done();
        try {
          const sampling: SamplingParams = {
            ...DEFAULT_SAMPLING,
            temperature: o.temperature,
            topK: o.topK,
            topP: o.topP,
            minP: o.minP,
            repeatPenalty: o.repeatPenalty,
            presencePenalty: o.presencePenalty,
            frequencyPenalty: o.frequencyPenalty,
            seed: o.seed,
          };
          const result = generate(engine, o.prompt, {
            maxTokens: o.maxTokens,
            sampling,
            stop: o.stop,
            parseSpecial: o.special ?? false,
            ...(o.json ? {} : { onText: (s: string) => process.stdout.write(s) }),
          });
          if (o.json) {
            printJson({
              text: result.text,
              tokens: result.tokens,
              prompt_tokens: result.promptTokens,
              stop_reason: result.stopReason,
              stop_detail: result.stopDetail,
              timings: result.timings,
            });
          } else {
            process.stdout.write("\n");
            const t = result.timings;
            say(
              `[${result.promptTokens.length} prompt tokens: ${t.prefill_tok_s} tok/s; ${result.tokens.length} generated: ${t.decode_tok_s} tok/s; ` +
                `stop: ${result.stopDetail}; ${engine.threads} thread(s), ${engine.backend.kernelName}]`,
            );
          }
        } finally {
          await engine.close();
        }
      }),
    );
}
