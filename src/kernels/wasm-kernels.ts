/**
 * The AssemblyScript SIMD kernels (src/kernels/assembly, built by scripts/build-kernels.mjs into
 * dist/kernels/kernels-{simd,relaxed}.wasm) behind the `KernelSet` interface.
 *
 * - `loadKernelModule()` compiles the module once per process (async, main thread); the
 *   `WebAssembly.Module` is structured-cloneable, so lanes post it to their workers.
 * - `instantiateKernels(module, memory)` is synchronous and cheap: each lane (thread) makes its
 *   own instance over its own shared memory.
 *
 * Memory contract: the module imports `env.memory` (shared, maximum <= 65536 pages) and only
 * touches the pointers it is given, plus its own region below `KERNEL_RESERVED_BYTES`: a small
 * constant table (static data, rewritten with the same bytes by every instantiation), then
 * temporaries and the matmul scratch (converted activations, weight panels) up to
 * KERNEL_RESERVED_BYTES. Callers allocate above it. NOTE: the scratch is per memory, so the
 * kernels of one memory must not run concurrently (one lane = one thread = one memory).
 */

import { readFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import v8 from "node:v8";
import { FileError, InternalError, UnsupportedError, UsageError, assert } from "../errors.js";
import { GgmlType } from "../tensor/ggml-type.js";
import { computedBlockSize, type KernelSet, kvTypeCode, kvTypeFits } from "./kernel-set.js";
import type { Interleaver } from "./packing.js";

/** Bytes at the start of every lane memory reserved for the kernel module (4 MiB: mostly matmul scratch). */
export const KERNEL_RESERVED_BYTES = 4 << 20;

/**
 * The kernels' scratch, [KERNEL_SCRATCH_START, KERNEL_RESERVED_BYTES): free between kernel
 * calls (the loader stages file bytes there before packing them, see `wasmInterleaver`).
 */
export const KERNEL_SCRATCH_START = 1 << 16;

export type RelaxedMode = "auto" | "on" | "off";

export interface KernelModule {
  readonly module: WebAssembly.Module;
  /** Whether `module` is the relaxed-SIMD build. */
  readonly relaxed: boolean;
}

// NOTE: compiled layout: this file is dist/src/kernels/wasm-kernels.js, the modules are in
// dist/kernels/ (scripts/build-kernels.mjs), hence two levels up.
const SIMD_URL = new URL("../../kernels/kernels-simd.wasm", import.meta.url);
const RELAXED_URL = new URL("../../kernels/kernels-relaxed.wasm", import.meta.url);

async function readModuleBytes(url: URL): Promise<Uint8Array> {
  try {
    return await readFile(url);
  } catch (e) {
    throw new FileError(`cannot read kernel module ${url.pathname}`, {
      expected: "the compiled WebAssembly kernels",
      got: e instanceof Error ? e.message : String(e),
      hint: "run `npm run build` (scripts/build-kernels.mjs compiles them)",
      cause: e,
    });
  }
}

/**
 * Relaxed SIMD validates in Node >= 22 (V8 >= 11.4) as is; Node 20 needs
 * --experimental-wasm-relaxed-simd, which we set process-wide (workers inherit it) only when
 * the module does not validate without it.
 */
function relaxedValidates(bytes: Uint8Array): boolean {
  if (WebAssembly.validate(bytes)) return true;
  v8.setFlagsFromString("--experimental-wasm-relaxed-simd");
  return WebAssembly.validate(bytes);
}

function modeFromEnv(): RelaxedMode | undefined {
  const v = process.env.SLIMLM_SIMD;
  if (v === undefined || v === "") return undefined;
  if (v === "relaxed") return "on";
  if (v === "simd") return "off";
  throw new UsageError(`bad SLIMLM_SIMD value "${v}"`, { expected: '"relaxed" or "simd"', got: v });
}

const cache = new Map<RelaxedMode, Promise<KernelModule>>();

/**
 * Compiles the kernel module. relaxed: "auto" (default) uses relaxed SIMD when the runtime
 * validates it and falls back to SIMD128; "on" requires it (UnsupportedError otherwise); "off"
 * uses SIMD128. The environment variable SLIMLM_SIMD=relaxed|simd overrides `opts.relaxed`.
 */
export function loadKernelModule(opts: { relaxed?: RelaxedMode } = {}): Promise<KernelModule> {
  const mode = modeFromEnv() ?? opts.relaxed ?? "auto";
  let p = cache.get(mode);
  if (p === undefined) {
    p = compileKernelModule(mode);
    cache.set(mode, p);
    p.catch(() => cache.delete(mode));
  }
  return p;
}

async function compileKernelModule(mode: RelaxedMode): Promise<KernelModule> {
  if (mode !== "off") {
    const bytes = await readModuleBytes(RELAXED_URL);
    if (relaxedValidates(bytes)) return { module: await WebAssembly.compile(bytes), relaxed: true };
    if (mode === "on") {
      throw new UnsupportedError("this JavaScript runtime does not support WebAssembly relaxed SIMD", {
        expected: "relaxed SIMD (Node >= 20 with --experimental-wasm-relaxed-simd, or Node >= 22)",
        got: `Node ${process.version}`,
        hint: "unset SLIMLM_SIMD (or set SLIMLM_SIMD=simd) to use the SIMD128 kernels",
      });
    }
  }
  const bytes = await readModuleBytes(SIMD_URL);
  if (!WebAssembly.validate(bytes)) {
    throw new UnsupportedError("this JavaScript runtime does not support WebAssembly SIMD and threads", {
      expected: "WebAssembly SIMD128 and shared memory (Node >= 20)",
      got: `Node ${process.version}`,
    });
  }
  return { module: await WebAssembly.compile(bytes), relaxed: false };
}

/** The module's exports (pointers are byte offsets; the JS numbers wrap to i32 on the way in). */
interface KernelExports {
  heapBase(): number;
  isRelaxed(): number;
  quantizeF16(x: number, dst: number, n: number): void;
  quantizeQ8_0(x: number, dst: number, nb: number): void;
  quantizeQ8_K(x: number, dst: number, nb: number): void;
  matmulF32(w: number, x: number, y: number, rows: number, k: number, T: number, ldy: number): void;
  matmulF16(w: number, x: number, y: number, rows: number, k: number, T: number, ldy: number): void;
  matmulQ8_0(w: number, x: number, y: number, rows: number, k: number, T: number, ldy: number): void;
  matmulQ4_0(w: number, x: number, y: number, rows: number, k: number, T: number, ldy: number): void;
  matmulQ4_K(w: number, x: number, y: number, rows: number, k: number, T: number, ldy: number): void;
  matmulQ6_K(w: number, x: number, y: number, rows: number, k: number, T: number, ldy: number): void;
  rmsnorm(x: number, w: number, out: number, n: number, T: number, eps: number): void;
  rope(x: number, cosSin: number, T: number, nHeads: number, headDim: number, nRot: number, rowStride: number, neox: number): void;
  attention(
    q: number, out: number, kCache: number, vCache: number, blockTable: number, nKeys: number, nHeads: number,
    nKvHeads: number, headDim: number, blockSize: number, scale: number, scratch: number, kvType: number,
  ): void;
  storeKv(type: number, x: number, dst: number, n: number): void;
  swiglu(gate: number, up: number, out: number, n: number): void;
  add(a: number, b: number, out: number, n: number): void;
  addBias(x: number, bias: number, n: number, T: number, rowStride: number): void;
  copyBytes(src: number, dst: number, n: number): void;
  readBytes(p: number, n: number): number;
  packInterleave(s: number, rs: number, bs: number, n: number, nb: number, d: number, ds: number, groups: number, gs: number, chunk: number): void;
  tmpBase(): number;
  scratchEnd(): number;
}

const EXPORT_NAMES: readonly (keyof KernelExports)[] = [
  "heapBase", "isRelaxed", "quantizeF16", "quantizeQ8_0", "quantizeQ8_K", "matmulF32", "matmulF16",
  "matmulQ8_0", "matmulQ4_0", "matmulQ4_K", "matmulQ6_K", "rmsnorm", "rope", "attention", "storeKv", "swiglu",
  "add", "addBias", "copyBytes", "readBytes", "packInterleave", "tmpBase", "scratchEnd",
];

function checkExports(e: WebAssembly.Exports): KernelExports {
  for (const n of EXPORT_NAMES) {
    assert(typeof e[n] === "function", () => `kernel module lacks export ${n}`);
  }
  return e as unknown as KernelExports;
}

/**
 * A KernelSet over `memory` (a shared WebAssembly.Memory, maximum <= 65536 pages). Synchronous,
 * so it works in worker threads. The caller must not place data below KERNEL_RESERVED_BYTES.
 */
export function instantiateKernels(module: WebAssembly.Module, memory: WebAssembly.Memory): KernelSet {
  const instance = new WebAssembly.Instance(module, { env: { memory } });
  const e = checkExports(instance.exports);
  const heapBase = e.heapBase() >>> 0;
  const tmpBase = e.tmpBase() >>> 0;
  assert(
    heapBase <= tmpBase && tmpBase + 256 === KERNEL_SCRATCH_START && e.scratchEnd() >>> 0 === KERNEL_RESERVED_BYTES,
    () => `kernel module layout: static data ends at ${heapBase}, temporaries at ${tmpBase}, scratch ends at ${e.scratchEnd()} (KERNEL_RESERVED_BYTES=${KERNEL_RESERVED_BYTES})`,
  );
  const relaxed = e.isRelaxed() === 1;

  return {
    name: relaxed ? "wasm-relaxed" : "wasm-simd",

    quantizeActivations(type, x, dst, k, T) {
      const n = k * T;
      switch (type) {
        case GgmlType.F32:
          if (x !== dst) e.copyBytes(x, dst, n * 4);
          return;
        case GgmlType.F16:
          e.quantizeF16(x, dst, n);
          return;
        case GgmlType.Q8_0:
        case GgmlType.Q4_0:
          assert(k % 32 === 0, () => `quantizeActivations: k=${k} is not a multiple of 32`);
          e.quantizeQ8_0(x, dst, n / 32);
          return;
        case GgmlType.Q4_K:
        case GgmlType.Q6_K:
          assert(k % 256 === 0, () => `quantizeActivations: k=${k} is not a multiple of 256`);
          e.quantizeQ8_K(x, dst, n / 256);
          return;
        default:
          throw new InternalError(`quantizeActivations: type ${type} is not a computed type`);
      }
    },

    matmul(type, w, xq, y, rows, k, T, ldy) {
      assert(k % computedBlockSize(type) === 0 && rows >= 0 && T >= 0 && (T <= 1 || ldy >= rows), () =>
        `matmul(${type}): bad shape rows=${rows} k=${k} T=${T} ldy=${ldy}`,
      );
      switch (type) {
        case GgmlType.F32:
          return e.matmulF32(w, xq, y, rows, k, T, ldy);
        case GgmlType.F16:
          return e.matmulF16(w, xq, y, rows, k, T, ldy);
        case GgmlType.Q8_0:
          return e.matmulQ8_0(w, xq, y, rows, k, T, ldy);
        case GgmlType.Q4_0:
          return e.matmulQ4_0(w, xq, y, rows, k, T, ldy);
        case GgmlType.Q4_K:
          return e.matmulQ4_K(w, xq, y, rows, k, T, ldy);
        case GgmlType.Q6_K:
          return e.matmulQ6_K(w, xq, y, rows, k, T, ldy);
        default:
          throw new InternalError(`matmul: type ${type} is not a computed type`);
      }
    },

    rmsnorm(x, w, out, n, T, eps) {
      e.rmsnorm(x, w, out, n, T, eps);
    },

    readBytes(ptr, bytes) {
      return e.readBytes(ptr, bytes) | 0;
    },

    rope(x, cosSin, T, nHeads, headDim, nRot, rowStride, neox) {
      assert(nRot % 2 === 0 && nRot <= headDim, () => `rope: bad nRot=${nRot} for headDim=${headDim}`);
      e.rope(x, cosSin, T, nHeads, headDim, nRot, rowStride, neox ? 1 : 0);
    },

    attention(q, out, kCache, vCache, blockTable, nKeys, nHeads, nKvHeads, headDim, blockSize, scale, scratch, kvType) {
      assert(nKvHeads > 0 && nHeads % nKvHeads === 0 && blockSize > 0 && kvTypeFits(kvType, headDim), () =>
        `attention: bad heads ${nHeads}/${nKvHeads}, blockSize ${blockSize} or ${kvType} rows of ${headDim}`,
      );
      e.attention(q, out, kCache, vCache, blockTable, nKeys, nHeads, nKvHeads, headDim, blockSize, scale, scratch, kvTypeCode(kvType));
    },

    storeKv(type, x, dst, n) {
      assert(kvTypeFits(type, n), () => `storeKv: ${type} rows of ${n}`);
      e.storeKv(kvTypeCode(type), x, dst, n);
    },

    swiglu(gate, up, out, n) {
      e.swiglu(gate, up, out, n);
    },

    add(a, b, out, n) {
      e.add(a, b, out, n);
    },

    addBias(x, bias, n, T, rowStride) {
      e.addBias(x, bias, n, T, rowStride);
    },
  };
}

/**
 * The packing byte interleave in WebAssembly over one memory (see packing.ts `Interleaver`):
 * several GB/s where the TypeScript loop does about one. Synchronous (the loader is); undefined
 * when the compiled kernels are missing or the runtime lacks SIMD (the loader then packs in
 * TypeScript). Uses the SIMD128 build, which every runtime that runs the kernels validates.
 */
export function wasmInterleaver(memory: WebAssembly.Memory): Interleaver | undefined {
  packerModule ??= compilePackerModule();
  if (packerModule === null) return undefined;
  const e = checkExports(new WebAssembly.Instance(packerModule, { env: { memory } }).exports);
  return {
    buffer: memory.buffer,
    interleave: (src, rs, bs, n, nb, dst, ds, groups, gs, chunk) => e.packInterleave(src, rs, bs, n, nb, dst, ds, groups, gs, chunk),
  };
}

let packerModule: WebAssembly.Module | null | undefined;

function compilePackerModule(): WebAssembly.Module | null {
  try {
    const bytes = readFileSync(SIMD_URL);
    return WebAssembly.validate(bytes) ? new WebAssembly.Module(bytes) : null;
  } catch {
    return null;
  }
}
