/** Public API of src/kernels: the KernelSet interface, its wasm and reference implementations. */

import type { KernelSet } from "./kernel-set.js";
import { createRefKernels } from "./ref-kernels.js";
import { validatingKernels, type ValidateOptions } from "./validate.js";
import { instantiateKernels } from "./wasm-kernels.js";

export type { KernelSet } from "./kernel-set.js";
export { COMPUTED_TYPES, activationRowBytes, computedBlockSize } from "./kernel-set.js";
export { PACK_ROWS, packRows, packedBytes, packedGroupBytes, unpackRow } from "./packing.js";
export type { Interleaver } from "./packing.js";
export { KERNEL_RESERVED_BYTES, KERNEL_SCRATCH_START, instantiateKernels, loadKernelModule, wasmInterleaver } from "./wasm-kernels.js";
export type { KernelModule, RelaxedMode } from "./wasm-kernels.js";
export { createRefKernels, matmulMagnitude, refAttention } from "./ref-kernels.js";
export { DEFAULT_TOLERANCES, validatingKernels } from "./validate.js";
export type { Tolerance, ValidateOptions, ValidatedKernel } from "./validate.js";

/**
 * The kernels of one lane: the wasm module instantiated over `memory`, wrapped so that every
 * call is checked against the reference when SLIMLM_VALIDATE_KERNELS=1 (slow: debugging only).
 */
export function createKernels(module: WebAssembly.Module, memory: WebAssembly.Memory, opts?: ValidateOptions): KernelSet {
  const fast = instantiateKernels(module, memory);
  if (process.env.SLIMLM_VALIDATE_KERNELS === "1") return validatingKernels(fast, createRefKernels(memory), memory, opts);
  return fast;
}
