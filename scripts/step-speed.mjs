#!/usr/bin/env node
// Time of one engine forward pass with 1, 4, 8 and 16 decode tokens (one per sequence, each
// sequence holding --pos positions), and of a 256-token prefill: what batching buys per token.
// Not a test; asserts nothing. Run after `npm run build`:
//   node scripts/step-speed.mjs <model.gguf> [--threads 2] [--pos 100] [--steps 24]
import { performance } from "node:perf_hooks";
import { Engine } from "../dist/src/runtime/engine.js";

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : dflt;
};
const model = args[0];
if (model === undefined || model.startsWith("--")) {
  console.error("usage: node scripts/step-speed.mjs <model.gguf> [--threads 2] [--pos 100] [--steps 24]");
  process.exit(1);
}
const threads = opt("threads", 2);
const pos = opt("pos", 100);
const steps = opt("steps", 24);
const N = 16;
const engine = await Engine.load(model, { threads, contextSize: Math.max(256, pos + steps * 4 + 8), maxSeqs: N, maxBatchTokens: 256 });
const V = engine.config.vocabSize;
const tok = (i) => 1 + (i % (V - 1));
const seqs = [];
for (let s = 0; s < N; s++) {
  const q = engine.newSequence();
  engine.evaluate(q, Array.from({ length: pos }, (_, i) => tok(i * 7 + s * 13)));
  seqs.push(q);
}
const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
function step(n) {
  const ss = seqs.slice(0, n);
  for (const q of ss) q.reserve(q.length + 1);
  const t0 = performance.now();
  engine.forward({
    tokens: ss.map((_, i) => tok(i)),
    positions: ss.map((q) => q.length),
    seqOf: ss.map((_, i) => i),
    blockTables: ss.map((q) => q.blockTable),
    outputRows: ss.map((_, i) => i),
  });
  for (const q of ss) q.length += 1;
  return performance.now() - t0;
}
console.log(`${model}: ${threads} thread(s), ${pos} positions per sequence, medians of ${steps} steps`);
let single;
for (const n of [1, 4, 8, 16]) {
  const ms = median(Array.from({ length: steps }, () => step(n)));
  single ??= ms;
  console.log(`T=${String(n).padStart(2)}: ${ms.toFixed(2)} ms per step, ${(ms / n).toFixed(2)} ms per token (${((single * n) / ms).toFixed(2)}x the tokens/s of T=1)`);
}
const pre = [];
for (let r = 0; r < 3; r++) {
  const q = engine.newSequence();
  const t0 = performance.now();
  engine.evaluate(q, Array.from({ length: 256 }, (_, i) => tok(i)));
  pre.push(performance.now() - t0);
  q.release();
}
console.log(`prefill 256 tokens: ${median(pre).toFixed(0)} ms (${((256 / median(pre)) * 1000).toFixed(0)} tok/s)`);
await engine.close();
