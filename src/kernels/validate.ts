/**
 * SLIMLM_VALIDATE_KERNELS=1: every kernel call runs the fast implementation, then (after
 * restoring the memory it wrote) the reference on the same inputs, compares the two within the
 * kernel's tolerance and leaves the fast result in memory. A mismatch throws InternalError with
 * the kernel name, the largest absolute and relative differences and the first failing index.
 *
 * Each kernel declares the byte ranges it may write (the bounding range of its outputs). Inside
 * a range, output elements are compared with the tolerance below and every other byte must be
 * left unchanged by the fast kernel (stray writes are caught too). Scratch (attention) is
 * restored but not compared.
 *
 * Tolerances: |fast - ref| <= atol + rtol * mag, where mag is
 * - matmul: sum_i |w_i| |x_i| (matmulMagnitude), default rtol 1e-4;
 * - attention: sum_j p_j |v_j| (refAttention with |V|), default rtol 1e-4;
 * - rmsnorm, swiglu: |ref|, default rtol 4e-6 (a few f32 ulps);
 * - rope: |x0| + |x1| of the rotated pair, default rtol 0 (the fast kernel is bit-identical);
 * - add, addBias: exact; quantizeActivations, storeKv: byte-identical.
 * Defaults are loose enough for any k the models use; tests use tighter ones.
 */

import { InternalError } from "../errors.js";
import { getFormat } from "../tensor/registry.js";
import { ggmlTypeName } from "../tensor/ggml-type.js";
import { activationRowBytes, attentionScratchBytes, type KernelSet, kvRowBytes } from "./kernel-set.js";
import { matmulMagnitude, refAttention } from "./ref-kernels.js";

/** Kernels compared with a tolerance (quantizeActivations is always compared byte for byte). */
export type ValidatedKernel =
  | "matmul"
  | "rmsnorm"
  | "rope"
  | "attention"
  | "swiglu"
  | "add"
  | "addBias";

export interface Tolerance {
  readonly rtol: number;
  readonly atol: number;
}

export interface ValidateOptions {
  /** Per-kernel overrides of the default tolerances. */
  readonly tolerances?: Partial<Record<ValidatedKernel, Tolerance>>;
}

export const DEFAULT_TOLERANCES: Readonly<Record<ValidatedKernel, Tolerance>> = {
  matmul: { rtol: 1e-4, atol: 1e-30 },
  rmsnorm: { rtol: 4e-6, atol: 1e-30 },
  rope: { rtol: 0, atol: 0 },
  attention: { rtol: 1e-4, atol: 1e-30 },
  swiglu: { rtol: 4e-6, atol: 1e-30 },
  add: { rtol: 0, atol: 0 },
  addBias: { rtol: 0, atol: 0 },
};

/** A byte range [start, end) a kernel may write, and which f32 elements in it are outputs. */
interface Region {
  readonly start: number;
  readonly end: number;
  /** Whether f32 element i of the range (byte start + 4i) is an output; undefined = all. */
  readonly isOutput?: (i: number) => boolean;
  /** Restore but do not compare (scratch). */
  readonly scratch?: boolean;
}

function f32Region(start: number, n: number): Region {
  return { start, end: start + 4 * n };
}

/** Rows of `n` f32 outputs with a row stride (floats): T rows starting at `start`. */
function stridedRegion(start: number, n: number, T: number, stride: number): Region {
  if (T <= 0 || n <= 0) return { start, end: start };
  return { start, end: start + 4 * ((T - 1) * stride + n), isOutput: (i) => i % stride < n };
}

interface Check {
  readonly regions: readonly Region[];
  /** Magnitude for output element `i` of region 0 (f32 index inside it) given the pre-call bytes. */
  readonly magnitude: (i: number, ref: number) => number;
  /** Compare raw bytes instead of floats (quantizeActivations). */
  readonly bytes?: boolean;
  readonly tolerance: Tolerance;
  readonly label: string;
}

export function validatingKernels(
  fast: KernelSet,
  ref: KernelSet,
  memory: WebAssembly.Memory,
  opts: ValidateOptions = {},
): KernelSet {
  const tol = (k: ValidatedKernel): Tolerance => opts.tolerances?.[k] ?? DEFAULT_TOLERANCES[k];

  function run(check: Check, callFast: () => void, callRef: () => void): void {
    const u8 = () => new Uint8Array(memory.buffer);
    const before = check.regions.map((r) => u8().slice(r.start, r.end));
    callFast();
    const fastOut = check.regions.map((r) => u8().slice(r.start, r.end));
    check.regions.forEach((r, i) => u8().set(before[i], r.start));
    try {
      callRef();
      const refOut = check.regions.map((r) => u8().slice(r.start, r.end));
      compare(check, before, fastOut, refOut);
    } finally {
      // leave the fast result in memory, whatever happened
      check.regions.forEach((r, i) => u8().set(fastOut[i], r.start));
    }
  }

  function compare(check: Check, before: Uint8Array[], fastOut: Uint8Array[], refOut: Uint8Array[]): void {
    let maxAbs = 0;
    let maxRel = 0;
    let first: string | undefined;
    check.regions.forEach((r, ri) => {
      if (r.scratch === true) return;
      const b = before[ri];
      const f = fastOut[ri];
      const g = refOut[ri];
      if (check.bytes === true) {
        for (let i = 0; i < f.length; i++) {
          if (f[i] !== g[i] && first === undefined) first = `byte ${i} of region ${ri}: fast ${f[i]}, ref ${g[i]}`;
          if (f[i] !== g[i]) maxAbs = Math.max(maxAbs, Math.abs(f[i] - g[i]));
        }
        return;
      }
      const ff = new Float32Array(f.buffer, f.byteOffset, f.length >>> 2);
      const gf = new Float32Array(g.buffer, g.byteOffset, g.length >>> 2);
      const bf = new Float32Array(b.buffer, b.byteOffset, b.length >>> 2);
      for (let i = 0; i < ff.length; i++) {
        const isOut = r.isOutput === undefined || r.isOutput(i);
        if (!isOut) {
          // must be untouched (compare bits: NaN payloads included)
          if (!sameBits(f, b, i) && first === undefined) {
            first = `element ${i} of region ${ri} is not an output but the fast kernel changed it (${bf[i]} -> ${ff[i]})`;
          }
          continue;
        }
        const x = ff[i];
        const y = gf[i];
        if (Number.isNaN(x) && Number.isNaN(y)) continue;
        const d = Math.abs(x - y);
        const rel = d === 0 ? 0 : d / Math.max(Math.abs(y), Number.MIN_VALUE);
        if (!(d <= maxAbs)) maxAbs = Number.isNaN(d) ? Infinity : d;
        if (rel > maxRel) maxRel = rel;
        const allowed = check.tolerance.atol + check.tolerance.rtol * (ri === 0 ? check.magnitude(i, y) : Math.abs(y));
        if (!(d <= allowed) && !(x === y) && first === undefined) {
          first = `element ${i} of region ${ri}: fast ${x}, ref ${y}, |diff| ${d} > tolerance ${allowed}`;
        }
      }
    });
    if (first !== undefined) {
      throw new InternalError(
        `kernel check failed: ${fast.name}.${check.label} differs from ${ref.name}: ` +
          `max abs diff ${maxAbs}, max rel diff ${maxRel}; first mismatch: ${first}`,
      );
    }
  }

  return {
    name: `validated(${fast.name})`,

    quantizeActivations(type, x, dst, k, T) {
      const n = T * activationRowBytes(type, k);
      run(
        {
          regions: [{ start: dst, end: dst + n }],
          magnitude: () => 0,
          bytes: true,
          tolerance: { rtol: 0, atol: 0 },
          label: `quantizeActivations(${ggmlTypeName(type)}, k=${k}, T=${T})`,
        },
        () => fast.quantizeActivations(type, x, dst, k, T),
        () => ref.quantizeActivations(type, x, dst, k, T),
      );
    },

    matmul(type, w, xq, y, rows, k, T, ldy) {
      getFormat(type); // unsupported types fail here, not in a comparison
      let mag: Float64Array | undefined;
      run(
        {
          regions: [stridedRegion(y, rows, T, ldy)],
          magnitude: (i) => {
            mag ??= matmulMagnitude(memory, type, w, xq, rows, k, T);
            return mag[Math.floor(i / ldy) * rows + (i % ldy)];
          },
          tolerance: tol("matmul"),
          label: `matmul(${ggmlTypeName(type)}, rows=${rows}, k=${k}, T=${T}, ldy=${ldy})`,
        },
        () => fast.matmul(type, w, xq, y, rows, k, T, ldy),
        () => ref.matmul(type, w, xq, y, rows, k, T, ldy),
      );
    },

    readBytes(ptr, bytes) {
      const got = fast.readBytes(ptr, bytes);
      const want = ref.readBytes(ptr, bytes);
      if (got !== want) {
        throw new InternalError(`kernel check failed: ${fast.name}.readBytes(${ptr}, ${bytes}) = ${got}, ${ref.name} says ${want}`);
      }
      return got;
    },

    rmsnorm(x, w, out, n, T, eps) {
      run(
        {
          regions: [f32Region(out, n * T)],
          magnitude: (_i, r) => Math.abs(r),
          tolerance: tol("rmsnorm"),
          label: `rmsnorm(n=${n}, T=${T})`,
        },
        () => fast.rmsnorm(x, w, out, n, T, eps),
        () => ref.rmsnorm(x, w, out, n, T, eps),
      );
    },

    rope(x, cosSin, T, nHeads, headDim, nRot, rowStride, neox) {
      const region = stridedRegion(x, nHeads * headDim, T, rowStride);
      // pre-call pair magnitudes |x0| + |x1| for the rotated elements
      const pre = new Float32Array(new Uint8Array(memory.buffer).slice(region.start, region.end).buffer);
      const half = nRot / 2;
      const partner = (i: number): number => {
        const d = (i % rowStride) % headDim;
        if (d >= nRot) return i;
        if (neox) return d < half ? i + half : i - half;
        return d % 2 === 0 ? i + 1 : i - 1;
      };
      run(
        {
          regions: [region],
          magnitude: (i) => Math.abs(pre[i]) + Math.abs(pre[partner(i)]),
          tolerance: tol("rope"),
          label: `rope(T=${T}, nHeads=${nHeads}, headDim=${headDim}, nRot=${nRot}, neox=${neox})`,
        },
        () => fast.rope(x, cosSin, T, nHeads, headDim, nRot, rowStride, neox),
        () => ref.rope(x, cosSin, T, nHeads, headDim, nRot, rowStride, neox),
      );
    },

    attention(q, out, kCache, vCache, blockTable, nKeys, nHeads, nKvHeads, headDim, blockSize, scale, scratch, kvType) {
      let mag: Float32Array | undefined;
      run(
        {
          regions: [f32Region(out, nHeads * headDim), { start: scratch, end: scratch + attentionScratchBytes(nKeys, headDim, kvType), scratch: true }],
          magnitude: (i) => {
            mag ??= refAttention(memory, q, kCache, vCache, blockTable, nKeys, nHeads, nKvHeads, headDim, blockSize, scale, true, kvType).out;
            return mag[i];
          },
          tolerance: tol("attention"),
          label: `attention(nKeys=${nKeys}, heads=${nHeads}/${nKvHeads}, headDim=${headDim}, blockSize=${blockSize}, kv ${kvType})`,
        },
        () => fast.attention(q, out, kCache, vCache, blockTable, nKeys, nHeads, nKvHeads, headDim, blockSize, scale, scratch, kvType),
        () => ref.attention(q, out, kCache, vCache, blockTable, nKeys, nHeads, nKvHeads, headDim, blockSize, scale, scratch, kvType),
      );
    },

    storeKv(type, x, dst, n) {
      run(
        {
          regions: [{ start: dst, end: dst + kvRowBytes(type, n) }],
          magnitude: () => 0,
          bytes: true,
          tolerance: { rtol: 0, atol: 0 },
          label: `storeKv(${type}, n=${n})`,
        },
        () => fast.storeKv(type, x, dst, n),
        () => ref.storeKv(type, x, dst, n),
      );
    },

    swiglu(gate, up, out, n) {
      run(
        { regions: [f32Region(out, n)], magnitude: (_i, r) => Math.abs(r), tolerance: tol("swiglu"), label: `swiglu(n=${n})` },
        () => fast.swiglu(gate, up, out, n),
        () => ref.swiglu(gate, up, out, n),
      );
    },

    add(a, b, out, n) {
      run(
        { regions: [f32Region(out, n)], magnitude: (_i, r) => Math.abs(r), tolerance: tol("add"), label: `add(n=${n})` },
        () => fast.add(a, b, out, n),
        () => ref.add(a, b, out, n),
      );
    },

    addBias(x, bias, n, T, rowStride) {
      run(
        {
          regions: [stridedRegion(x, n, T, rowStride)],
          magnitude: (_i, r) => Math.abs(r),
          tolerance: tol("addBias"),
          label: `addBias(n=${n}, T=${T})`,
        },
        () => fast.addBias(x, bias, n, T, rowStride),
        () => ref.addBias(x, bias, n, T, rowStride),
      );
    },
  };

  function sameBits(a: Uint8Array, b: Uint8Array, i: number): boolean {
    const o = 4 * i;
    return a[o] === b[o] && a[o + 1] === b[o + 1] && a[o + 2] === b[o + 2] && a[o + 3] === b[o + 3];
  }
}
