import type { Command } from "commander";
import { describeModel } from "../../runtime/info.js";
import { formatBytes, printJson, runCommand, say } from "../common.js";
import { MODEL_ARGUMENT_HELP, modelOrBuiltin } from "../builtin-model.js";

export function registerInfo(program: Command): void {
  program
    .command("info")
    .description("describe a model: architecture, parameters, tensor types, sizes, tokenizer")
    .argument("[model]", MODEL_ARGUMENT_HELP)
    .option("--json", "print one JSON object on stdout")
    .action((modelArg: string | undefined, opts: { json?: boolean }) =>
      runCommand(async () => {
        const model = modelOrBuiltin(modelArg);
        const info = describeModel(model);
        if (opts.json) return printJson(info);
        const c = info.config;
        say(`model          ${info.path} (${info.format}${info.name ? `, "${info.name}"` : ""})`);
        say(`architecture   ${info.architecture}: ${c.nLayers} layers, dim ${c.dim}, ${c.nHeads} heads / ${c.nKvHeads} KV heads of ${c.headDim}, FFN ${c.ffnDim}`);
        say(`parameters     ${info.parameters.toLocaleString("en-US")}`);
        say(`tensor types   ${Object.entries(info.tensor_types).map(([t, v]) => `${t} x${v.tensors}`).join(", ")}`);
        say(`file size      ${formatBytes(info.file_size)}`);
        say(`bytes/token    ${formatBytes(info.bytes_per_token)} read per generated token`);
        say(`context        ${info.context_length}`);
        const kvF32 = info.kv_cache.f32!.bytes_at_context;
        const kv = Object.entries(info.kv_cache).map(([t, v]) =>
          v === null ? `${t} n/a` : `${t} ${formatBytes(v.bytes_at_context)}${t === "f32" ? "" : ` (${(v.bytes_at_context / kvF32).toFixed(2)}x)`}`,
        );
        say(`KV cache       ${kv.join(", ")} per sequence of ${info.context_length} positions (--kv-type)`);
        say(`vocabulary     ${info.vocab_size} (${info.tokenizer})`);
      }),
    );
}
