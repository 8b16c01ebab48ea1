import type { Command } from "commander";
import { describeModel } from "../../runtime/info.js";
import { formatBytes, printJson, runCommand, say } from "../common.js";

export function registerInfo(program: Command): void {
  program
    .command("info")
    .description("describe a model: architecture, parameters, tensor types, sizes, tokenizer")
    .argument("<model>", "GGUF file or Hugging Face folder")
    .option("--json", "print one JSON object on stdout")
    .action((model: string, opts: { json?: boolean }) =>
      runCommand(async () => {
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
        say(`vocabulary     ${info.vocab_size} (${info.tokenizer})`);
      }),
    );
}
