/**
 * `npm run bench [-- options]`: the standard grid (grid.ts). Options:
 *   --models a,b   smollm2-135m, tinyllama-1.1b, stories260K (default: all)
 *   --types x,y    f16, q8_0, q4_0, q4_k (default: all)
 *   --threads 1,2  (default: 1,2)
 *   --repeat R --prefill P --decode D   (default 3, 512, 128)
 *   --no-compare   slimlm only
 *   --out FILE     where to write the table ("-": nowhere); default BENCHMARKS.md for the full
 *                  grid, nowhere for a subset (the table is printed on stdout either way)
 */
import { parseArgs } from "node:util";
import { SlimError } from "../errors.js";
import { gridOptionsFromArgs, runGrid } from "./grid.js";

const argv = process.argv.slice(2);
const log = (s: string): void => {
  process.stderr.write(s + "\n");
};
try {
  const { values } = parseArgs({
    args: argv,
    options: {
      models: { type: "string" },
      types: { type: "string" },
      threads: { type: "string" },
      repeat: { type: "string" },
      prefill: { type: "string" },
      decode: { type: "string" },
      "no-compare": { type: "boolean" },
      out: { type: "string" },
    },
    strict: true,
  });
  const opts = gridOptionsFromArgs(values, argv, log);
  const { markdown } = await runGrid(opts);
  process.stdout.write(markdown);
  if (opts.out !== undefined) log(`wrote ${opts.out}`);
} catch (e) {
  log(`error: ${(e instanceof Error ? e.message : String(e)).replace(/\s*\n\s*/g, " ")}`);
  if (process.env.SLIMLM_DEBUG === "1" && e instanceof Error && e.stack) log(e.stack);
  process.exitCode = e instanceof SlimError ? 1 : 70;
}
