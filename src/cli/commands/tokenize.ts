import fs from "node:fs";
import type { Command } from "commander";
import { FileError, UsageError } from "../../errors.js";
import { openModelFile } from "../../formats/index.js";
import { tokenizerFor } from "../../runtime/model-tokenizer.js";
import { printJson, runCommand } from "../common.js";
import { modelOrBuiltin } from "../builtin-model.js";

interface TokenizeOptions {
  file?: string;
  bos?: boolean;
  special?: boolean;
  json?: boolean;
}

export function registerTokenize(program: Command): void {
  program
    .command("tokenize")
    .description("turn text into token ids (no BOS unless --bos)")
    .argument("[model]", "GGUF file or Hugging Face folder (default: the built-in slimlm-teacher; with one argument and no --file, that argument is the text)")
    .argument("[text]", "text to tokenize")
    .option("--file <path>", "read the text from a file")
    .option("--bos", "prepend the BOS token")
    .option("--special", "parse special-token text such as <|im_start|>")
    .option("--json", 'print {"tokens": [...]} on stdout')
    .action((first: string | undefined, second: string | undefined, opts: TokenizeOptions) =>
      runCommand(async () => {
        // NOTE: positionals by count, never by whether a file exists: `tokenize "some text"` uses the
        // built-in model; `tokenize model.gguf --file x` and `tokenize model.gguf "text"` name the model.
        const [modelArg, text] = second === undefined && opts.file === undefined ? [undefined, first] : [first, second];
        if ((text === undefined) === (opts.file === undefined)) {
          throw new UsageError("give the text or --file, not both", { expected: "<text> or --file <path>" });
        }
        const model = modelOrBuiltin(modelArg);
        const input = opts.file !== undefined ? readText(opts.file) : text!;
        const file = openModelFile(model);
        try {
          const tok = tokenizerFor(file);
          const ids = tok.encode(input, { addSpecial: false, parseSpecial: opts.special ?? false });
          if (opts.bos) {
            if (tok.bosId === undefined) throw new UsageError("this model has no BOS token", { hint: "drop --bos" });
            ids.unshift(tok.bosId);
          }
          if (opts.json) printJson({ tokens: ids });
          else process.stdout.write(ids.join(" ") + "\n");
        } finally {
          file.weights.close();
        }
      }),
    );
}

export function readText(path: string): string {
  try {
    return fs.readFileSync(path, "utf8");
  } catch (e) {
    throw new FileError(`cannot read ${path}`, { got: e instanceof Error ? e.message : String(e), cause: e });
  }
}
