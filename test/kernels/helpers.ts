/** Shared test helpers for the kernel suites: a bump arena in a shared memory, seeded random data. */

import assert from "node:assert/strict";
import { UnsupportedError } from "../../src/errors.js";
import { KERNEL_RESERVED_BYTES, createRefKernels, instantiateKernels, loadKernelModule } from "../../src/kernels/index.js";
import type { KernelSet } from "../../src/kernels/index.js";

/** A shared memory like a lane's: 64 MiB to start, growable to 4 GiB. */
export function laneMemory(): WebAssembly.Memory {
  return new WebAssembly.Memory({ initial: 1024, maximum: 65536, shared: true });
}

/** Bump allocator above the kernel reserve. `misalign` offsets a 64-byte aligned pointer. */
export class Arena {
  private top = KERNEL_RESERVED_BYTES;
  constructor(readonly memory: WebAssembly.Memory) {}

  alloc(bytes: number, misalign = 0): number {
    const p = Math.ceil(this.top / 64) * 64 + misalign;
    this.top = p + bytes + 64;
    const need = this.top - this.memory.buffer.byteLength;
    if (need > 0) this.memory.grow(Math.ceil(need / 65536));
    return p;
  }

  reset(): void {
    this.top = KERNEL_RESERVED_BYTES;
  }

  u8(): Uint8Array {
    return new Uint8Array(this.memory.buffer);
  }

  /** Copies `data` as f32 to p (p 4-byte aligned). */
  writeF32(p: number, data: ArrayLike<number>): void {
    new Float32Array(this.memory.buffer, p, data.length).set(data);
  }

  readF32(p: number, n: number): Float32Array {
    return new Float32Array(this.memory.buffer, p, n).slice();
  }

  writeBytes(p: number, data: Uint8Array): void {
    this.u8().set(data, p);
  }

  readBytes(p: number, n: number): Uint8Array {
    return this.u8().slice(p, p + n);
  }

  /** f32 array of n values at misalignment `misalign` (a multiple of 4), filled from data. */
  f32(data: ArrayLike<number>, misalign = 0): number {
    const p = this.alloc(4 * data.length, misalign);
    this.writeF32(p, data);
    return p;
  }

  /** A copy of `data` at misalignment `misalign`. */
  bytes(data: Uint8Array, misalign = 0): number {
    const p = this.alloc(data.length, misalign);
    this.writeBytes(p, data);
    return p;
  }
}

/** mulberry32: a small seeded PRNG, uniform in [0, 1). */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Standard normal samples (Box-Muller). */
export function gaussian(r: () => number, n: number, scale = 1): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const u = Math.max(r(), 1e-12);
    out[i] = scale * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * r());
  }
  return out;
}

/** Element i of a typed array (tests compile with noUncheckedIndexedAccess). */
export function at(a: ArrayLike<number>, i: number): number {
  const v = a[i];
  assert.ok(v !== undefined, `index ${i} out of range ${a.length}`);
  return v;
}

export interface Impl {
  readonly name: string;
  readonly kernels: KernelSet;
}

/**
 * Every implementation over one memory: ref, wasm-simd, and wasm-relaxed when the runtime
 * supports relaxed SIMD (reported, not failed, when it does not).
 */
export async function allImpls(memory: WebAssembly.Memory): Promise<Impl[]> {
  const impls: Impl[] = [{ name: "ref", kernels: createRefKernels(memory) }];
  const saved = process.env.SLIMLM_SIMD;
  delete process.env.SLIMLM_SIMD; // the suite picks both builds itself
  try {
    const simd = await loadKernelModule({ relaxed: "off" });
    impls.push({ name: "wasm-simd", kernels: instantiateKernels(simd.module, memory) });
    try {
      const relaxed = await loadKernelModule({ relaxed: "on" });
      impls.push({ name: "wasm-relaxed", kernels: instantiateKernels(relaxed.module, memory) });
    } catch (e) {
      if (!(e instanceof UnsupportedError)) throw e;
      process.stderr.write(`kernels: relaxed SIMD not supported here, skipping wasm-relaxed (${e.message})\n`);
    }
  } finally {
    if (saved !== undefined) process.env.SLIMLM_SIMD = saved;
  }
  return impls;
}
