#!/usr/bin/env node
// Compiles ceiling.ts with AssemblyScript and prints the in-L1 GOP/s of each inner loop at one thread
// (BENCHMARKS.md "Serving" cites k2). Not a test; asserts nothing.
//   node scripts/gemm-ceiling/run.mjs
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import v8 from "node:v8";

const here = dirname(fileURLToPath(import.meta.url));
const asc = join(here, "../../node_modules/.bin/asc");
const out = mkdtempSync(join(tmpdir(), "slimlm-ceiling-"));
try {
  const wasm = join(out, "ceiling.wasm");
  execFileSync(asc, [join(here, "ceiling.ts"), "-O3", "--runtime", "stub", "--enable", "simd,relaxed-simd", "--initialMemory", "16", "-o", wasm], { stdio: "inherit" });
  v8.setFlagsFromString("--experimental-wasm-relaxed-simd"); // Node 20 (V8 11.3) only validates it with the flag
  const memory = new WebAssembly.Memory({ initial: 16 });
  const { instance } = await WebAssembly.instantiate(readFileSync(wasm), { env: { memory, abort() {} } });
  const u8 = new Uint8Array(memory.buffer);
  for (let i = 0; i < u8.length; i++) u8[i] = (i * 37) & 63; // 0..63: valid 7-bit operands, no i16 overflow
  // [kernel, steps, multiply-adds per step]
  const cases = [["k1 4x4 dot_i16x8_s", "k1", 512, 32], ["k2 8x4 dot_i16x8_s", "k2", 256, 64], ["k3 4x4 relaxed i8 dot", "k3", 512, 64], ["k4 8x4 relaxed i8 dot", "k4", 256, 128]];
  for (const [label, name, n, macs] of cases) {
    const f = instance.exports[name];
    const reps = 20000;
    f(n, 100);
    let best = Infinity;
    for (let r = 0; r < 7; r++) {
      const t0 = performance.now();
      f(n, reps);
      best = Math.min(best, performance.now() - t0);
    }
    console.log(`${label.padEnd(24)} ${((2 * n * macs * reps) / best / 1e6).toFixed(1)} GOP/s (best of 7)`);
  }
} finally {
  rmSync(out, { recursive: true, force: true });
}
