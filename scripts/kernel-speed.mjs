#!/usr/bin/env node
// Rough single-thread speed of the wasm matmul kernels (not a test; prints, asserts nothing).
// Run after `npm run build`:  node scripts/kernel-speed.mjs [types...]   (default: all)
//
// For each weight type, a 4096 x 4096 matrix:
//   GEMV hot : T = 1 over one matrix again and again (it stays in cache when small enough)
//   GEMV cold: T = 1 rotating over enough matrices to stream ~512 MiB (DRAM-bound)
//   GEMM     : T = 16 (prefill-like), GFLOP/s
// GB/s = weight bytes streamed per second. SIMD128 and relaxed SIMD side by side.

import { performance } from "node:perf_hooks";
import {
  KERNEL_RESERVED_BYTES,
  activationRowBytes,
  instantiateKernels,
  loadKernelModule,
} from "../dist/src/kernels/index.js";
import { getFormat } from "../dist/src/tensor/registry.js";
import { rowBytes } from "../dist/src/tensor/format.js";
import { f32ToF16 } from "../dist/src/tensor/f16.js";

const N = 4096;
const K = 4096;
const COLD_BYTES = 512 * 2 ** 20;
const TYPES = { f32: 0, f16: 1, q8_0: 8, q4_0: 2, q4_k: 12, q6_k: 14 };
const wanted = process.argv.slice(2).length > 0 ? process.argv.slice(2) : Object.keys(TYPES);

function fillWeights(u8, p, bytes, type, seed) {
  let s = seed >>> 0;
  const next = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0), s);
  const f = getFormat(type);
  if (type === 0) {
    const f32 = new Float32Array(u8.buffer, p, bytes / 4);
    for (let i = 0; i < f32.length; i++) f32[i] = (next() / 2 ** 32 - 0.5) * 0.1;
    return;
  }
  if (type === 1) {
    const h = f32ToF16(0.01);
    const u16 = new Uint16Array(u8.buffer, p, bytes / 2);
    for (let i = 0; i < u16.length; i++) u16[i] = (h + (next() & 0x3ff)) | (next() & 0x8000); // finite values
    return;
  }
  for (let i = 0; i < bytes; i += 4) {
    const v = next();
    u8[p + i] = v;
    u8[p + i + 1] = v >>> 8;
    u8[p + i + 2] = v >>> 16;
    u8[p + i + 3] = v >>> 24;
  }
  // sane f16 scales so no inf/NaN reaches the float accumulators
  const scaleOffsets = { 8: [0], 2: [0], 12: [0, 2], 14: [208] }[type];
  const h = f32ToF16(0.01);
  for (let b = 0; b < bytes / f.typeSize; b++) {
    for (const o of scaleOffsets) {
      u8[p + b * f.typeSize + o] = h & 0xff;
      u8[p + b * f.typeSize + o + 1] = h >> 8;
    }
  }
}

function bench(fn, minMs = 400) {
  fn(); // warm-up (and tier-up)
  let reps = 0;
  const t0 = performance.now();
  let t = t0;
  while (t - t0 < minMs) {
    fn();
    reps++;
    t = performance.now();
  }
  return (t - t0) / 1000 / reps; // seconds per call
}

const modules = [];
modules.push({ label: "simd", ...(await loadKernelModule({ relaxed: "off" })) });
try {
  modules.push({ label: "relaxed", ...(await loadKernelModule({ relaxed: "on" })) });
} catch (e) {
  console.log(`relaxed SIMD unavailable: ${e.message}`);
}

console.log(`Node ${process.version}, 1 thread, W ${N}x${K}; GB/s of weights (GEMV), GFLOP/s (GEMM T=16)`);
console.log("type   build    GEMV hot GB/s   GEMV cold GB/s   GEMM T=16 GFLOP/s");
for (const name of wanted) {
  const type = TYPES[name];
  if (type === undefined) throw new Error(`unknown type ${name}`);
  const f = getFormat(type);
  const wBytes = rowBytes(f, K) * N;
  const nMat = Math.max(2, Math.ceil(COLD_BYTES / wBytes));
  const xBytes = 16 * activationRowBytes(type, K);
  const total = KERNEL_RESERVED_BYTES + nMat * wBytes + 16 * K * 4 + xBytes + 16 * N * 4 + 4096;
  const memory = new WebAssembly.Memory({ initial: Math.ceil(total / 65536), maximum: 65536, shared: true });
  const u8 = new Uint8Array(memory.buffer);
  let p = KERNEL_RESERVED_BYTES;
  const ws = [];
  for (let i = 0; i < nMat; i++) {
    fillWeights(u8, p, wBytes, type, i + 1);
    ws.push(p);
    p += wBytes;
  }
  p = Math.ceil(p / 64) * 64;
  const x = p;
  p += 16 * K * 4;
  const xq = p;
  p += xBytes;
  p = Math.ceil(p / 64) * 64;
  const y = p;
  const xf = new Float32Array(memory.buffer, x, 16 * K);
  for (let i = 0; i < xf.length; i++) xf[i] = Math.sin(i * 0.37);
  for (const m of modules) {
    const k = instantiateKernels(m.module, memory);
    k.quantizeActivations(type, x, xq, K, 16);
    const ws0 = ws[0];
    const hot = bench(() => k.matmul(type, ws0, xq, y, N, K, 1, N));
    let i = 0;
    const cold = bench(() => {
      k.matmul(type, ws[i], xq, y, N, K, 1, N);
      i = (i + 1) % nMat;
    });
    const gemm = bench(() => k.matmul(type, ws0, xq, y, N, K, 16, N));
    console.log(
      `${name.padEnd(6)} ${m.label.padEnd(8)} ${(wBytes / hot / 1e9).toFixed(1).padStart(13)}` +
        `${(wBytes / cold / 1e9).toFixed(1).padStart(17)}${((2 * N * K * 16) / gemm / 1e9).toFixed(1).padStart(20)}`,
    );
  }
}
