/**
 * `slimlm batch`: offline generation for a JSONL file of prompts over the serving engine (static
 * batching by default). Every line is checked before generation starts; the results go to a temp
 * file beside the output, renamed into place at the end (no half-written output).
 */
import fs from "node:fs";
import path from "node:path";
import type { Command } from "commander";
import { FileError, UsageError } from "../../errors.js";
import type { BatchingPolicy } from "../../scheduler/scheduler.js";
import { type BatchItem, type BatchLineError, type BatchResult, parseBatchLine, runBatch } from "../../server/batch-job.js";
import { ChatTemplate } from "../../server/chat-template.js";
import { ServingEngine } from "../../server/serving-engine.js";
import { KV_TYPE_HELP, ProgressBar, parseIntOption, printJson, runCommand, say, parseKvType } from "../common.js";
import type { KvType } from "../../kernels/kernel-set.js";
import { parseSize } from "./serve.js";
import { MODEL_ARGUMENT_HELP, modelOrBuiltin } from "../builtin-model.js";

interface BatchCliOptions {
  input: string;
  output: string;
  batching: string;
  maxBatch: number;
  maxBatchTokens: number;
  maxTokens?: number;
  threads?: number;
  kvType?: KvType;
  ctx?: number;
  kvMemory?: string;
  prefixCache: boolean;
  skipBad?: boolean;
  json?: boolean;
}

export function registerBatch(program: Command): void {
  program
    .command("batch")
    .description("generate for every line of a JSONL file of prompts (offline, batched); results in input order")
    .argument("[model]", MODEL_ARGUMENT_HELP)
    .requiredOption("-i, --input <file>", 'JSONL: {"prompt": text | token ids} or {"messages": [...]}, optional sampling fields and "id"')
    .requiredOption("-o, --output <file>", "JSONL results, one line per input line")
    .option("--batching <policy>", "static | dynamic | continuous", "static")
    .option("--max-batch <n>", "sequences per forward pass", parseIntOption("--max-batch", 1, 1024), 16)
    .option("--max-batch-tokens <n>", "tokens per forward pass (prefill chunk)", parseIntOption("--max-batch-tokens", 1, 65536), 256)
    .option("-n, --max-tokens <n>", "max_tokens for lines without one (default: the rest of the context)", parseIntOption("--max-tokens", 1, 1 << 20))
    .option("-t, --threads <n>", "threads (default: cores)", parseIntOption("--threads", 1, 64))
    .option("--kv-type <type>", KV_TYPE_HELP, parseKvType)
    .option("-c, --ctx <n>", "context per sequence (default: the model's, at most 4096)", parseIntOption("--ctx", 16, 1 << 20))
    .option("--kv-memory <size>", "KV cache size, e.g. 2g")
    .option("--no-prefix-cache", "do not reuse the KV blocks of shared prompt prefixes")
    .option("--skip-bad", "record bad lines as errors in the output instead of stopping")
    .option("--json", "print a summary object on stdout")
    .action((modelArg: string | undefined, o: BatchCliOptions) => runCommand(() => runBatchCommand(modelOrBuiltin(modelArg), o)));
}

async function runBatchCommand(model: string, o: BatchCliOptions): Promise<void> {
  if (!["continuous", "dynamic", "static"].includes(o.batching)) {
    throw new UsageError("invalid --batching", { expected: "static, dynamic or continuous", got: o.batching });
  }
  let input: string;
  try {
    input = fs.readFileSync(o.input, "utf8");
  } catch (e) {
    throw new FileError(`cannot read ${o.input}`, { got: e instanceof Error ? e.message : String(e) });
  }
  const outDir = path.dirname(path.resolve(o.output));
  if (!fs.existsSync(outDir)) throw new FileError(`cannot write ${o.output}`, { got: `no folder ${outDir}` });

  const policy = o.batching as BatchingPolicy;
  const inFlight = 2 * o.maxBatch;
  const bar = new ProgressBar("loading", o.json);
  const serving = await ServingEngine.create(model, {
    policy,
    maxBatch: o.maxBatch,
    maxBatchTokens: o.maxBatchTokens,
    maxQueue: inFlight,
    // NOTE: static batches form only when full or when the input is exhausted (closeInput), never on a timer
    maxQueueDelayMs: policy === "static" ? 3_600_000 : 20,
    prefixCaching: o.prefixCache,
    ...(o.threads === undefined ? {} : { threads: o.threads }),
    ...(o.ctx === undefined ? {} : { contextSize: o.ctx }),
    ...(o.kvMemory === undefined ? {} : { kvMemoryBytes: parseSize(o.kvMemory) }),
    engine: { onProgress: (d, t, name) => bar.update(d, t, name), ...(o.kvType === undefined ? {} : { kvType: o.kvType }) },
  });
  bar.done();
  const tmp = path.join(outDir, `.${path.basename(o.output)}.${process.pid}.tmp`);
  try {
    // 1. every line checked before any generation
    const ctx = {
      tokenizer: serving.tokenizer,
      template: new ChatTemplate(serving.tokenizer, serving.engine.file.metadata.optString("tokenizer.chat_template")),
      contextSize: serving.contextSize,
      vocabSize: serving.engine.config.vocabSize,
      defaultMaxTokens: o.maxTokens,
    };
    const items: BatchItem[] = [];
    const bad: BatchLineError[] = [];
    const lines = input.split("\n");
    let index = 0;
    lines.forEach((text, i) => {
      if (text.trim() === "") return;
      const r = parseBatchLine(text, index++, i + 1, ctx);
      if ("request" in r) items.push(r);
      else if (o.skipBad) bad.push(r);
      else throw new UsageError(`${o.input}:${r.line}: ${r.message}`, { hint: "fix the line, or --skip-bad to record it as an error" });
    });
    const total = index;

    // 2. generate, writing results in input order as soon as the head of the order is done
    const out = fs.openSync(tmp, "w");
    const done = new Map<number, string>();
    for (const b of bad) done.set(b.index, JSON.stringify({ id: b.id, index: b.index, line: b.line, error: { message: b.message, type: "invalid_request_error" } }));
    let written = 0;
    const flush = (): void => {
      let chunk = "";
      while (done.has(written)) {
        chunk += done.get(written)! + "\n";
        done.delete(written++);
      }
      if (chunk.length > 0) fs.writeSync(out, chunk);
    };
    let promptTokens = 0;
    let cachedTokens = 0;
    let completionTokens = 0;
    const gen = new ProgressBar("generating", o.json);
    const t0 = performance.now();
    try {
      flush();
      await runBatch(serving, items, inFlight, (r: BatchResult) => {
        promptTokens += r.usage.prompt_tokens;
        cachedTokens += r.usage.prompt_tokens_details.cached_tokens;
        completionTokens += r.usage.completion_tokens;
        done.set(r.index, JSON.stringify(r));
        flush();
        const s = (performance.now() - t0) / 1000;
        gen.update(written, total, `${(completionTokens / Math.max(s, 1e-9)).toFixed(1)} tok/s`);
      });
      flush();
    } finally {
      fs.closeSync(out);
      gen.done();
    }
    fs.renameSync(tmp, o.output);
    const seconds = (performance.now() - t0) / 1000;
    const tokS = seconds > 0 ? completionTokens / seconds : 0;
    if (o.json) {
      printJson({ output: o.output, lines: total, errors: bad.length, prompt_tokens: promptTokens, cached_tokens: cachedTokens, completion_tokens: completionTokens, seconds: round(seconds), output_tokens_per_second: round(tokS) });
    } else {
      say(
        `${total} line(s)${bad.length > 0 ? ` (${bad.length} bad)` : ""} -> ${o.output}: ${completionTokens} tokens in ${seconds.toFixed(2)} s ` +
          `(${tokS.toFixed(1)} tok/s; ${policy} batching, max batch ${o.maxBatch}, ${serving.engine.threads} thread(s))`,
      );
    }
  } finally {
    fs.rmSync(tmp, { force: true });
    await serving.close();
  }
}

function round(x: number): number {
  return Math.round(x * 100) / 100;
}
