import fs from "node:fs";
import nodePath from "node:path";
import type { Command } from "commander";
import { FileError, UsageError } from "../../errors.js";
import { fileError } from "../../formats/file.js";
import { type QuantizeReport, quantizeModel } from "../../optimize/quantize.js";
import { fileTypeSpec, tensorTypeOf } from "../../optimize/quant-types.js";
import { parseOverride } from "../../optimize/recipe.js";
import { ProgressBar, formatBytes, parseIntOption, printJson, runCommand, say } from "../common.js";
import { modelOrBuiltin } from "../builtin-model.js";

interface QuantizeCliOptions {
  output: string;
  type: string;
  calib?: string;
  calibTokens?: number;
  calibCtx?: number;
  imatrix?: string;
  imatrixOut?: string;
  awq: boolean;
  tensorType: string[];
  outputType?: string;
  embeddingType?: string;
  pure?: boolean;
  threads?: number;
  json?: boolean;
}

export function registerQuantize(program: Command): void {
  program
    .command("quantize")
    .description("quantize a model (GGUF or Hugging Face folder) into a GGUF file, optionally calibrated on a text")
    .argument("[model]", "GGUF file (F32/F16/BF16, or quantized: requantized) or Hugging Face folder (default: the built-in slimlm-teacher)")
    .requiredOption("-o, --output <path>", "output .gguf file (written to a temp file, renamed when complete)")
    .requiredOption("--type <type>", "q8_0, q4_0, q4_1, q5_0, q5_1, q4_k (= q4_k_s), q4_k_m, q5_k (= q5_k_s), q5_k_m, q6_k, f16, bf16 or f32")
    .option("--calib <file>", "calibration text: importance-weighted quantization (+ activation-aware scaling for 4-bit types)")
    .option("--calib-tokens <n>", "use at most this many calibration tokens", parseIntOption("--calib-tokens", 2, 1 << 26))
    .option("--calib-ctx <n>", "calibration window in tokens (default: min(512, the model's context))", parseIntOption("--calib-ctx", 2, 1 << 20))
    .option("--imatrix <file>", "use this importance matrix (GGUF imatrix, e.g. from --imatrix-out or llama-imatrix) instead of --calib")
    .option("--imatrix-out <file>", "save the importance matrix computed from --calib (GGUF imatrix format)")
    .option("--no-awq", "with --calib: no activation-aware scaling, importance weights only")
    .option("--tensor-type <regex=type>", "type for tensors whose name matches the regex (repeatable; first match wins)", (v: string, acc: string[]) => [...acc, v], [] as string[])
    .option("--output-type <type>", "type of output.weight")
    .option("--embedding-type <type>", "type of token_embd.weight")
    .option("--pure", "no mix rules: every weight in --type (overrides and fallbacks still apply)")
    .option("-t, --threads <n>", "threads (default: cores)", parseIntOption("--threads", 1, 256))
    .option("--json", "print one JSON object on stdout")
    .action((modelArg: string | undefined, o: QuantizeCliOptions) =>
      runCommand(async () => {
        const model = modelOrBuiltin(modelArg);
        const spec = fileTypeSpec(o.type);
        const overrides = o.tensorType.map((a) => parseOverride(a, (n) => tensorTypeOf(n, "--tensor-type")));
        const outputType = o.outputType === undefined ? undefined : tensorTypeOf(o.outputType, "--output-type");
        const embeddingType = o.embeddingType === undefined ? undefined : tensorTypeOf(o.embeddingType, "--embedding-type");
        checkOutput(model, o.output);
        if (o.imatrixOut !== undefined) checkOutput(model, o.imatrixOut);
        if (o.calibTokens !== undefined && o.calib === undefined) throw new UsageError("--calib-tokens needs --calib");
        if (o.imatrixOut !== undefined && o.calib === undefined) throw new UsageError("--imatrix-out needs --calib");
        if (o.calib !== undefined && o.imatrix !== undefined) throw new UsageError("use either --calib or --imatrix, not both");
        const text = o.calib === undefined ? undefined : readCalibration(o.calib);
        const bar = new ProgressBar("quantizing", o.json);
        const calBar = new ProgressBar("calibrating", o.json);
        const report = await quantizeModel({
          input: model,
          output: o.output,
          spec,
          overrides,
          ...(outputType === undefined ? {} : { outputType }),
          ...(embeddingType === undefined ? {} : { embeddingType }),
          ...(o.pure === undefined ? {} : { pure: o.pure }),
          ...(o.threads === undefined ? {} : { threads: o.threads }),
          ...(text === undefined && o.imatrix === undefined
            ? {}
            : {
                calibration: {
                  ...(text === undefined ? {} : { text, source: o.calib }),
                  ...(o.imatrix === undefined ? {} : { imatrixIn: o.imatrix }),
                  ...(o.imatrixOut === undefined ? {} : { imatrixOut: o.imatrixOut }),
                  ...(o.calibTokens === undefined ? {} : { maxTokens: o.calibTokens }),
                  ...(o.calibCtx === undefined ? {} : { ctx: o.calibCtx }),
                  ...(o.awq ? {} : { awq: false }),
                },
              }),
          onTensor: (d, t, name) => bar.update(d, t, name),
          onCalibration: (phase, d, t) => calBar.update(d, t, phase),
          onWarning: (m) => {
            bar.done();
            say(`warning: ${m}`);
          },
        });
        bar.done();
        if (o.json) return printJson(report);
        printSummary(report);
      }),
    );
}

/** The calibration text; a missing or empty file is a one-line error. */
function readCalibration(path: string): string {
  let text: string;
  try {
    text = fs.readFileSync(path, "utf8");
  } catch (e) {
    throw fileError(path, "cannot read calibration file", e);
  }
  if (text.trim().length === 0) {
    throw new UsageError(`calibration file "${path}" is empty`, { expected: "a text of a few thousand words", got: `${text.length} bytes` });
  }
  return text;
}

/** Fail before any work when the output cannot be written (the writer still guards the end). */
function checkOutput(input: string, output: string): void {
  const abs = nodePath.resolve(output);
  if (abs === nodePath.resolve(input)) {
    throw new UsageError("the output would overwrite the input", { expected: "another path", got: output });
  }
  let st: fs.Stats | undefined;
  try {
    st = fs.statSync(abs);
  } catch {
    st = undefined;
  }
  if (st?.isDirectory() === true) throw new FileError(`cannot write "${output}": it is a directory`, { hint: "pass a file name, e.g. model-q4_k_m.gguf" });
  const dir = nodePath.dirname(abs);
  try {
    if (!fs.statSync(dir).isDirectory()) throw Object.assign(new Error("not a directory"), { code: "ENOTDIR" });
    fs.accessSync(dir, fs.constants.W_OK);
  } catch (e) {
    throw fileError(output, "cannot write", e);
  }
}

function printSummary(r: QuantizeReport): void {
  say(`quantized ${r.input} -> ${r.output} (${r.type}, general.file_type ${r.file_type}) in ${r.seconds.toFixed(2)} s on ${r.threads} thread${r.threads === 1 ? "" : "s"}`);
  if (r.calibration !== undefined) {
    const c = r.calibration;
    const scaled = c.awq.filter((a) => a.alpha > 0).length;
    say(`calibration: ${c.tokens} tokens, importance for ${c.weights} weights` + (c.awq.length > 0 ? `, activation-aware scales on ${scaled} of ${c.awq.length} groups` : "") + ` (${c.seconds.toFixed(2)} s)`);
  }
  const rows: string[][] = [["type", "tensors", "parameters", "size", "bits/weight"]];
  for (const [t, e] of Object.entries(r.by_type).sort(([a], [b]) => (a < b ? -1 : 1))) {
    rows.push([t, String(e.tensors), e.elements.toLocaleString("en-US"), formatBytes(e.bytes), ((e.bytes * 8) / e.elements).toFixed(2)]);
  }
  rows.push(["total", String(r.tensors.length), r.elements.toLocaleString("en-US"), `${formatBytes(r.bytes_in)} -> ${formatBytes(r.bytes_out)}`, `${r.bpw_in.toFixed(2)} -> ${r.bpw_out.toFixed(2)}`]);
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)));
  for (const row of rows) say(row.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  "));
  say(`file size ${formatBytes(r.file_size)}` + (r.fallbacks > 0 ? `; ${r.fallbacks} tensor${r.fallbacks === 1 ? "" : "s"} fell back to another type (row length)` : ""));
}
