// Entry point of the kernel module (compiled twice: SIMD128 and relaxed SIMD, see
// scripts/build-kernels.mjs). The module imports its memory and keeps no static data of its
// own but its constant table; heapBase() is where AssemblyScript would start allocating, checked
// at load against the kernel temporaries (common.ts TMP, SCRATCH) inside KERNEL_RESERVED_BYTES
// (src/kernels/wasm-kernels.ts).

import { TMP, SCRATCH_END } from "./common";

export { quantizeF16, quantizeQ8_0, quantizeQ8_K } from "./quantize";
export { matmulF32, matmulF16 } from "./matmul-float";
export { matmulQ8_0, matmulQ4_0 } from "./matmul-quant";
export { matmulQ4_K, matmulQ6_K } from "./matmul-kquant";
export { rmsnorm, rope, attention, storeKv, swiglu, add, addBias, copyBytes, readBytes, packInterleave } from "./ops";

/** End of the module's static data (nothing of ours lives above it). */
export function heapBase(): usize {
  return __heap_base;
}

/** 1 when compiled with relaxed SIMD. */
export function isRelaxed(): i32 {
  return ASC_FEATURE_RELAXED_SIMD ? 1 : 0;
}

/** Start of the kernels' temporaries and scratch (nothing else may live in [tmpBase, scratchEnd)). */
export function tmpBase(): usize {
  return TMP;
}
export function scratchEnd(): usize {
  return SCRATCH_END;
}
