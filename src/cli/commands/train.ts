import os from "node:os";
import type { Command } from "commander";
import { UsageError } from "../../errors.js";
import { type CommonRunOptions, type RunResult, runDistill, runTrain } from "../../train/run.js";
import type { LogEntry } from "../../train/trainer.js";
import { formatBytes, parseFloatOption, parseIntOption, printJson, runCommand, say } from "../common.js";
import { modelOrBuiltin } from "../builtin-model.js";

interface CommonCli {
  data: string;
  out: string;
  steps: number;
  batch: number;
  ctx: number;
  accum: number;
  lr: number;
  warmup?: number;
  seed: number;
  evalEvery: number;
  evalBatches: number;
  heldOut: number;
  threads?: number;
  checkpointEvery: number;
  resume?: boolean;
  f16?: boolean;
  name?: string;
  json?: boolean;
}

/** Options train and distill share. */
function addCommon(c: Command): Command {
  return c
    .requiredOption("--data <file>", "training text (the last --held-out fraction is held out)")
    .requiredOption("-o, --out <file.gguf>", "output GGUF (an optimizer sidecar <file>.opt is written beside it)")
    .requiredOption("--steps <n>", "optimizer steps", parseIntOption("--steps", 1, 1e9))
    .option("--batch <n>", "sequences per micro-batch", parseIntOption("--batch", 1, 4096), 8)
    .option("--ctx <n>", "tokens per sequence", parseIntOption("--ctx", 2, 65536), 128)
    .option("--accum <n>", "micro-batches per step (gradient accumulation)", parseIntOption("--accum", 1, 4096), 1)
    .option("--lr <x>", "peak learning rate", parseFloatOption("--lr", 1e-8, 1), 1e-3)
    .option("--warmup <n>", "warmup steps (default: 10% of steps, at most 100)", parseIntOption("--warmup", 0, 1e9))
    .option("--seed <s>", "seed: same seed and data, same loss curve", parseIntOption("--seed", 0, 2 ** 31 - 1), 1)
    .option("--eval-every <n>", "held-out evaluation interval (steps)", parseIntOption("--eval-every", 0, 1e9), 50)
    .option("--eval-batches <n>", "held-out batches per evaluation", parseIntOption("--eval-batches", 1, 1e6), 4)
    .option("--held-out <fraction>", "fraction of the text held out", parseFloatOption("--held-out", 0, 0.9), 0.05)
    .option("-t, --threads <n>", "threads (default: cores)", parseIntOption("--threads", 1, 64))
    .option("--checkpoint-every <n>", "also write the checkpoint every n steps", parseIntOption("--checkpoint-every", 0, 1e9), 0)
    .option("--resume", "continue from <out>.opt if it exists")
    .option("--f16", "write the model in F16 (the .opt sidecar keeps f32 weights)")
    .option("--name <name>", "general.name of the output")
    .option("--json", "one JSON line per evaluation on stdout, and a final summary line");
}

function common(o: CommonCli): CommonRunOptions {
  const json = o.json === true;
  const start = Date.now();
  return {
    data: o.data,
    out: o.out,
    steps: o.steps,
    batch: o.batch,
    ctx: o.ctx,
    accum: o.accum,
    lr: o.lr,
    ...(o.warmup === undefined ? {} : { warmupSteps: o.warmup }),
    minLrRatio: 0.1,
    weightDecay: 0.1,
    clip: 1,
    seed: o.seed,
    evalEvery: o.evalEvery,
    evalBatches: o.evalBatches,
    heldOutFraction: o.heldOut,
    threads: o.threads ?? os.availableParallelism(),
    checkpointEvery: o.checkpointEvery,
    resume: o.resume === true,
    f16: o.f16 === true,
    ...(o.name === undefined ? {} : { name: o.name }),
    onInfo: (line) => say(line),
    onLog: (e: LogEntry) => {
      if (e.heldOutLoss !== undefined && json) {
        printJson({ type: "eval", step: e.step, loss: e.loss, ce: e.ce, kl: e.kl ?? null, held_out_loss: e.heldOutLoss, held_out_perplexity: Math.exp(e.heldOutLoss), lr: e.lr, tokens_per_second: e.tokensPerSecond, elapsed_s: e.elapsedSeconds });
      }
      if (e.heldOutLoss !== undefined || e.step === 1 || Date.now() - start < 0) {
        say(
          `step ${e.step}/${o.steps}  loss ${e.loss.toFixed(4)}${e.kl === undefined ? "" : ` (ce ${e.ce.toFixed(3)}, kl ${e.kl.toFixed(3)})`}` +
            `${e.heldOutLoss === undefined ? "" : `  held-out ${e.heldOutLoss.toFixed(4)} (ppl ${Math.exp(e.heldOutLoss).toFixed(2)})`}` +
            `  ${Math.round(e.tokensPerSecond)} tok/s  ETA ${formatSeconds(e.etaSeconds)}`,
        );
      } else if (process.stderr.isTTY) {
        process.stderr.write(`\rstep ${e.step}/${o.steps}  loss ${e.loss.toFixed(4)}  ${Math.round(e.tokensPerSecond)} tok/s  ETA ${formatSeconds(e.etaSeconds)}\x1b[K\r`);
      }
    },
  };
}

function formatSeconds(s: number): string {
  if (!Number.isFinite(s)) return "?";
  if (s < 90) return `${Math.round(s)}s`;
  if (s < 5400) return `${Math.round(s / 60)}m`;
  return `${(s / 3600).toFixed(1)}h`;
}

function summary(r: RunResult): Record<string, unknown> {
  return {
    out: r.out,
    file_size: r.fileSize,
    parameters: r.parameters,
    steps: r.steps,
    seconds: Math.round(r.seconds * 10) / 10,
    tokens_per_second: Math.round(r.tokensPerSecond),
    final_loss: r.finalLoss,
    held_out_loss: r.heldOutLoss ?? null,
    held_out_perplexity: r.heldOutPerplexity ?? null,
    shape: r.shape,
  };
}

export function registerTrain(program: Command): void {
  addCommon(
    program
      .command("train")
      .description("train a Llama-family model from scratch on a text file")
      .requiredOption("--config <json|preset>", "model shape: a preset (stories260k, tiny-1m, tiny-5m) or a JSON file")
      .option("--tokenizer <model>", "take the tokenizer of this model")
      .option("--vocab-size <n>", "train a byte-level BPE of this size on the data instead", parseIntOption("--vocab-size", 258, 1 << 20)),
  ).action((o: CommonCli & { config: string; tokenizer?: string; vocabSize?: number }) =>
    runCommand(async () => {
      if ((o.tokenizer === undefined) === (o.vocabSize === undefined)) throw new UsageError("give --tokenizer <model> or --vocab-size <n>");
      const r = await runTrain({ ...common(o), config: o.config, ...(o.tokenizer === undefined ? {} : { tokenizer: o.tokenizer }), ...(o.vocabSize === undefined ? {} : { vocabSize: o.vocabSize }) });
      if (o.json) printJson({ type: "done", ...summary(r) });
      say(`wrote ${r.out} (${formatBytes(r.fileSize)}, ${r.parameters.toLocaleString("en-US")} parameters) in ${formatSeconds(r.seconds)}; held-out perplexity ${r.heldOutPerplexity?.toFixed(2) ?? "n/a"}`);
    }),
  );

  addCommon(
    program
      .command("distill")
      .description("distill a teacher into a smaller student: alpha * KL(teacher || student) at temperature T + (1 - alpha) * cross-entropy")
      .option("--teacher <model>", "teacher model (default: the built-in slimlm-teacher)")
      .option("--student <model>", "start from this student model")
      .option("--student-config <json|preset>", "start from a random student of this shape")
      .option("--student-from-teacher", "build the student from the teacher's own layers (with --keep-layers)")
      .option("--keep-layers <list>", "teacher layers the student keeps, e.g. 0,2,4")
      .option("--alpha <a>", "weight of the KL term", parseFloatOption("--alpha", 0, 1), 0.5)
      .option("--temperature <t>", "distillation temperature (1 suits short runs; 2-4 long ones)", parseFloatOption("--temperature", 0.01, 100), 1),
  ).action((o: CommonCli & { teacher?: string; student?: string; studentConfig?: string; studentFromTeacher?: boolean; keepLayers?: string; alpha: number; temperature: number }) =>
    runCommand(async () => {
      if ((o.studentFromTeacher === true) !== (o.keepLayers !== undefined)) throw new UsageError("--student-from-teacher goes with --keep-layers <list>");
      const keep = o.keepLayers?.split(",").map((x) => {
        const n = Number(x.trim());
        if (!Number.isInteger(n)) throw new UsageError("invalid --keep-layers", { expected: "comma-separated layer numbers", got: o.keepLayers });
        return n;
      });
      const r = await runDistill({
        ...common(o),
        teacher: modelOrBuiltin(o.teacher),
        ...(o.student === undefined ? {} : { student: o.student }),
        ...(o.studentConfig === undefined ? {} : { studentConfig: o.studentConfig }),
        ...(keep === undefined ? {} : { keepLayers: keep }),
        alpha: o.alpha,
        temperature: o.temperature,
      });
      const report = {
        type: "done",
        ...summary(r),
        teacher: { parameters: r.teacher.parameters, file_size: r.teacher.fileSize, held_out_perplexity: r.teacher.heldOutPerplexity, decode_tok_s: r.teacher.decodeTokS },
        student: { parameters: r.student.parameters, file_size: r.student.fileSize, held_out_perplexity: r.student.heldOutPerplexity, decode_tok_s: r.student.decodeTokS },
        kl_teacher_student: r.kl,
        top1_agreement: r.top1Agreement,
        initial_kl: Number.isFinite(r.initialKl) ? r.initialKl : null,
      };
      if (o.json) printJson(report);
      say(`                 teacher        student`);
      say(`parameters       ${String(r.teacher.parameters).padEnd(14)} ${r.student.parameters}`);
      say(`file size        ${formatBytes(r.teacher.fileSize).padEnd(14)} ${formatBytes(r.student.fileSize)}`);
      say(`held-out ppl     ${r.teacher.heldOutPerplexity.toFixed(3).padEnd(14)} ${r.student.heldOutPerplexity.toFixed(3)}`);
      say(`decode tok/s     ${r.teacher.decodeTokS.toFixed(0).padEnd(14)} ${r.student.decodeTokS.toFixed(0)}`);
      say(`KL(teacher||student) ${r.kl.toFixed(4)} nats/token (at start: ${Number.isFinite(r.initialKl) ? r.initialKl.toFixed(4) : "n/a"}); top-1 agreement ${(r.top1Agreement * 100).toFixed(1)}%`);
    }),
  );
}
