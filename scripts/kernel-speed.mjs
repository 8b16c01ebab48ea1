#!/usr/bin/env node
// Single-thread speed of the wasm matmul kernels on the shapes of real models (not a test;
// prints, asserts nothing). Run after `npm run build`:
//   node scripts/kernel-speed.mjs [--models smollm2,tinyllama] [--types f32,q8_0,...] [--gemm 64,512]
//                                 [--builds simd,relaxed] [--ms 300] [--no-gemm] [--no-read]
//
// - read: kernels.readBytes over 1 MiB .. 1 GiB (GB/s read from WebAssembly, 8 v128 streams)
// - GEMV hot : T = 1 over one matrix again and again (in cache when small enough), GB/s of weights
// - GEMV cold: T = 1 rotating over enough copies to stream >= 384 MiB (DRAM-bound), GB/s
// - GEMM     : T = 64 and 512 (prefill), GFLOP/s = 2 rows k T / s (skipped for vocabulary rows)
// Weights are random GGUF rows with sane f16 scales, packed with src/kernels/packing.ts (when
// the build has it: run from an older checkout it measures the unpacked layout).

import { performance } from "node:perf_hooks";
import { KERNEL_RESERVED_BYTES, activationRowBytes, instantiateKernels, loadKernelModule } from "../dist/src/kernels/index.js";
import { getFormat } from "../dist/src/tensor/registry.js";
import { f32ToF16 } from "../dist/src/tensor/f16.js";

let packing;
try {
  packing = await import("../dist/src/kernels/packing.js");
} catch {
  packing = undefined;
}

const args = process.argv.slice(2);
function opt(name, dflt) {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : dflt;
}
const flag = (name) => args.includes(`--${name}`);

const TYPES = { f32: 0, f16: 1, q8_0: 8, q4_0: 2, q4_k: 12, q6_k: 14 };
const MODELS = {
  smollm2: { mats: [[192, 576], [576, 576], [1536, 576], [576, 1536], [49152, 576]], vocab: 49152 },
  tinyllama: { mats: [[256, 2048], [2048, 2048], [5632, 2048], [2048, 5632], [32000, 2048]], vocab: 32000 },
};
const types = opt("types", Object.keys(TYPES).join(",")).split(",");
const models = opt("models", Object.keys(MODELS).join(",")).split(",");
const gemmT = flag("no-gemm") ? [] : opt("gemm", "64,512").split(",").map(Number);
const builds = opt("builds", "simd,relaxed").split(",");
const MS = Number(opt("ms", "300"));
const COLD_BYTES = 384 * 2 ** 20;

function rng(seed) {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0), s);
}

/** rows GGUF rows of k elements with random quants and sane scales (no inf/NaN reach the sums). */
function ggufRows(type, rows, k, seed) {
  const f = getFormat(type);
  const bytes = (k / f.blockSize) * f.typeSize * rows;
  const u8 = new Uint8Array(bytes);
  const next = rng(seed);
  if (type === 0) {
    const f32 = new Float32Array(u8.buffer);
    for (let i = 0; i < f32.length; i++) f32[i] = (next() / 2 ** 32 - 0.5) * 0.1;
    return u8;
  }
  if (type === 1) {
    const h = f32ToF16(0.01);
    const u16 = new Uint16Array(u8.buffer);
    for (let i = 0; i < u16.length; i++) u16[i] = (h + (next() & 0x3ff)) | (next() & 0x8000);
    return u8;
  }
  const u32 = new Uint32Array(u8.buffer, 0, bytes >>> 2);
  for (let i = 0; i < u32.length; i++) u32[i] = next();
  const scaleOffsets = { 8: [0], 2: [0], 12: [0, 2], 14: [208] }[type];
  const h = f32ToF16(0.01);
  for (let b = 0; b < bytes / f.typeSize; b++) {
    for (const o of scaleOffsets) {
      u8[b * f.typeSize + o] = h & 0xff;
      u8[b * f.typeSize + o + 1] = h >> 8;
    }
  }
  return u8;
}

function bench(fn, minMs = MS) {
  fn(); // warm-up (and tier-up)
  const times = [];
  const t0 = performance.now();
  while (performance.now() - t0 < minMs || times.length < 3) {
    const a = performance.now();
    fn();
    times.push(performance.now() - a);
  }
  times.sort((a, b) => a - b);
  return times[times.length >> 1] / 1000; // median seconds per call
}

const mods = [];
for (const b of builds) {
  try {
    mods.push({ label: b, ...(await loadKernelModule({ relaxed: b === "relaxed" ? "on" : "off" })) });
  } catch (e) {
    console.log(`${b} unavailable: ${e.message}`);
  }
}

const memory = new WebAssembly.Memory({ initial: 1024, maximum: 65536, shared: true });
function ensure(bytes) {
  const need = Math.ceil((bytes - memory.buffer.byteLength) / 65536);
  if (need > 0) memory.grow(need);
}

console.log(`Node ${process.version}, 1 thread, ${packing ? "packed" : "GGUF (unpacked)"} weights; medians of >= 3 calls over ${MS} ms`);

if (!flag("no-read")) {
  ensure(KERNEL_RESERVED_BYTES + 2 ** 30 + 4096);
  const u32 = new Uint32Array(memory.buffer, KERNEL_RESERVED_BYTES, 2 ** 28);
  const next = rng(5);
  for (let i = 0; i < u32.length; i += 1024) u32[i] = next();
  const line = [];
  for (const m of mods) {
    const k = instantiateKernels(m.module, memory);
    if (typeof k.readBytes !== "function") break;
    for (const mb of [1, 16, 64, 256, 1024]) {
      const t = bench(() => k.readBytes(KERNEL_RESERVED_BYTES, mb * 2 ** 20));
      line.push(`${mb} MiB ${((mb * 2 ** 20) / t / 1e9).toFixed(1)}`);
    }
    console.log(`readBytes (${m.label}) GB/s: ${line.join(", ")}`);
    line.length = 0;
  }
}

for (const model of models) {
  const spec = MODELS[model];
  if (spec === undefined) throw new Error(`unknown model ${model}`);
  console.log(`\n${model}: GEMV GB/s hot/cold; GEMM GFLOP/s at T=${gemmT.join(", T=")}`);
  console.log(`type   shape         ${mods.map((m) => `${m.label.padEnd(8)} hot  cold${gemmT.map((t) => `  T${t}`.padStart(7)).join("")}`).join("   |  ")}`);
  for (const name of types) {
    const type = TYPES[name];
    if (type === undefined) throw new Error(`unknown type ${name}`);
    const f = getFormat(type);
    for (const [rows, k] of spec.mats) {
      if (k % f.blockSize !== 0) continue;
      const raw = ggufRows(type, rows, k, rows + k);
      const wBytes = packing ? packing.packedBytes(type, rows, k) : raw.length;
      const nMat = Math.max(1, Math.ceil(COLD_BYTES / wBytes));
      const Tmax = Math.max(1, ...gemmT);
      const xq = KERNEL_RESERVED_BYTES + nMat * wBytes + 64;
      const xBytes = Tmax * activationRowBytes(type, k);
      const xf = xq + xBytes + 64;
      const y = xf + Tmax * k * 4 + 64;
      ensure(y + Tmax * rows * 4 + 4096);
      const u8 = new Uint8Array(memory.buffer);
      const ws = [];
      for (let i = 0; i < nMat; i++) {
        const p = KERNEL_RESERVED_BYTES + i * wBytes;
        if (packing) packing.packRows(type, raw, rows, k, u8.subarray(p, p + wBytes));
        else u8.set(raw, p);
        ws.push(p);
      }
      const xv = new Float32Array(memory.buffer, xf, Tmax * k);
      for (let i = 0; i < xv.length; i++) xv[i] = Math.sin(i * 0.37);
      const cells = [];
      for (const m of mods) {
        const kern = instantiateKernels(m.module, memory);
        kern.quantizeActivations(type, xf, xq, k, Tmax);
        const hot = bench(() => kern.matmul(type, ws[0], xq, y, rows, k, 1, rows));
        let i = 0;
        const cold = bench(() => {
          kern.matmul(type, ws[i], xq, y, rows, k, 1, rows);
          i = (i + 1) % nMat;
        });
        let cell = `${(wBytes / hot / 1e9).toFixed(1).padStart(12)} ${(wBytes / cold / 1e9).toFixed(1).padStart(5)}`;
        for (const T of gemmT) {
          if (rows === spec.vocab) {
            cell += "      -";
            continue;
          }
          const t = bench(() => kern.matmul(type, ws[0], xq, y, rows, k, T, rows), Math.min(MS, 200));
          cell += `${((2 * rows * k * T) / t / 1e9).toFixed(1).padStart(7)}`;
        }
        cells.push(cell);
      }
      console.log(`${name.padEnd(6)} ${`${rows}x${k}`.padEnd(12)}${cells.join("   |  ")}`);
    }
  }
}
