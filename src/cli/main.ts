import { Command, CommanderError } from "commander";
import { EXIT_USER, runCommand } from "./common.js";
import { registerBench } from "./commands/bench.js";
import { registerEval } from "./commands/eval.js";
import { registerGenerate } from "./commands/generate.js";
import { registerInfo } from "./commands/info.js";
import { registerQuantize } from "./commands/quantize.js";
import { registerSynth } from "./commands/synth.js";
import { registerSysinfo } from "./commands/sysinfo.js";
import { registerTokenize } from "./commands/tokenize.js";
import { registerServe } from "./commands/serve.js";
import { registerBatch } from "./commands/batch.js";
import { registerTrain } from "./commands/train.js";

export function buildProgram(): Command {
  const program = new Command();
  program
    .name("slimlm")
    .description("Make language models smaller and faster, and serve them. TypeScript, no Python.")
    .showHelpAfterError(false)
    .exitOverride();
  registerGenerate(program);
  registerTokenize(program);
  registerInfo(program);
  registerQuantize(program);
  registerEval(program);
  registerServe(program);
  registerBatch(program);
  registerSynth(program);
  registerSysinfo(program);
  registerBench(program);
  registerTrain(program);
  return program;
}

export async function main(argv: readonly string[]): Promise<void> {
  const program = buildProgram();
  for (const c of program.commands) c.exitOverride();
  await runCommand(async () => {
    try {
      await program.parseAsync(argv as string[]);
    } catch (e) {
      if (e instanceof CommanderError) {
        // commander already printed its message on stderr
        if (e.code !== "commander.helpDisplayed" && e.code !== "commander.version" && e.code !== "commander.help") process.exitCode = e.exitCode || EXIT_USER;
        return;
      }
      throw e;
    }
  });
}
