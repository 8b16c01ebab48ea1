import os from "node:os";
import path from "node:path";
import type { Command } from "commander";
import { PRESETS, getPreset, parseSynthType, synthesizeParallel } from "../../bench/synth.js";
import { ggmlTypeName } from "../../tensor/ggml-type.js";
import { ProgressBar, formatBytes, parseIntOption, printJson, runCommand, say } from "../common.js";

interface SynthCliOptions {
  preset: string;
  type: string;
  out: string;
  seed: number;
  threads?: number;
  json?: boolean;
}

export function registerSynth(program: Command): void {
  program
    .command("synth")
    .description("write a random-weight GGUF with a real model's shapes (for speed measurements)")
    .requiredOption("--preset <name>", `model shape: ${Object.keys(PRESETS).join(", ")}`)
    .requiredOption("--type <type>", "weight type: f32, f16, q8_0, q4_0, q4_k, q6_k")
    .requiredOption("-o, --out <file>", "output .gguf file")
    .option("--seed <s>", "random seed (same seed, same bytes)", parseIntOption("--seed", 0, 2 ** 32 - 1), 0)
    .option("-t, --threads <n>", "quantizing threads (default: cores; the bytes do not depend on it)", parseIntOption("--threads", 1, 256))
    .option("--json", "print one JSON object on stdout")
    .action((o: SynthCliOptions) =>
      runCommand(async () => {
        const shape = getPreset(o.preset);
        const type = parseSynthType(o.type);
        const threads = o.threads ?? os.availableParallelism();
        const bar = new ProgressBar("synth", o.json);
        const t0 = performance.now();
        const r = await synthesizeParallel({
          shape,
          type,
          seed: o.seed,
          out: o.out,
          name: `slimlm synth ${o.preset} ${ggmlTypeName(type)}`,
          threads,
          onProgress: (d, t, name) => bar.update(d, t, name),
        });
        bar.done();
        const seconds = Math.round(performance.now() - t0) / 1000;
        if (o.json) {
          printJson({
            path: path.resolve(o.out),
            preset: o.preset,
            type: ggmlTypeName(type),
            seed: o.seed,
            parameters: r.parameters,
            tensor_types: r.types,
            file_size: r.fileSize,
            threads,
            seconds,
          });
          return;
        }
        const types = Object.entries(r.types).map(([t, n]) => `${t} x${n}`).join(", ");
        say(`wrote ${o.out}: ${o.preset}, ${r.parameters.toLocaleString("en-US")} parameters (${types}), ${formatBytes(r.fileSize)} in ${seconds} s on ${threads} thread(s)`);
      }),
    );
}
