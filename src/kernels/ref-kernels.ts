/**
 * The reference KernelSet: plain TypeScript over the same memory and pointer ABI as the wasm
 * kernels, built on the src/tensor references (quantizeRowRef, vecDot, dequantizeRow). It is the
 * oracle of the tests and of SLIMLM_VALIDATE_KERNELS=1; readable over fast.
 *
 * Numerics:
 * - quantizeActivations, matmul: exactly the src/tensor routines (ggml's _ref quantizers and
 *   generic vec_dot, with their f32 rounding).
 * - rmsnorm, rope, add, addBias: ggml's f32 expressions, each operation rounded to f32.
 * - attention, swiglu: in f64 (Math.exp), rounded to f32 at the end: closer to exact than ggml.
 *
 * Weights are in the packed layout (src/kernels/packing.ts): each row is unpacked back to its
 * GGUF bytes (`unpackRow`) before the src/tensor routines see it.
 *
 * Alignment: f32 arrays must be 4-byte aligned, the block data of quantized types may sit at any
 * byte offset. Inputs are copied before outputs are written, so any aliasing is fine.
 */

/** Row r of the packed weights at w (rows x k of `type`) as GGUF bytes (a fresh copy). */
function weightRow(u8: Uint8Array, type: GgmlType, w: number, rows: number, k: number, r: number, dst: Uint8Array): Uint8Array {
  unpackRow(type, u8.subarray(w, w + packedBytes(type, rows, k)), r, k, dst);
  return dst;
}

import { assert, InternalError } from "../errors.js";
import { getFormat } from "../tensor/registry.js";
import { f16ToF32Row, f32ToF16Row } from "../tensor/f16.js";
import { GgmlType } from "../tensor/ggml-type.js";
import { rowBytes } from "../tensor/format.js";
import { activationRowBytes, computedBlockSize, type KernelSet, type KvType, kvRowBytes } from "./kernel-set.js";
import { minK4, scaleK4 } from "../tensor/quant-math.js";
import { packedBytes, unpackRow } from "./packing.js";

const fr = Math.fround;

/** Views of the current buffer (re-read on every call: the memory may have grown). */
class Views {
  readonly u8: Uint8Array;
  readonly f32: Float32Array;
  readonly i32: Int32Array;
  constructor(memory: WebAssembly.Memory) {
    const b = memory.buffer;
    this.u8 = new Uint8Array(b);
    this.f32 = new Float32Array(b, 0, b.byteLength >>> 2);
    this.i32 = new Int32Array(b, 0, b.byteLength >>> 2);
  }
  /** Index of the f32 at byte pointer p (asserts alignment). */
  fi(p: number, what: string): number {
    assert(p % 4 === 0, () => `ref kernels: ${what} pointer ${p} is not 4-byte aligned`);
    return p / 4;
  }
  /** A copy of n f32 at byte pointer p. */
  copyF32(p: number, n: number, what: string): Float32Array {
    const i = this.fi(p, what);
    return this.f32.slice(i, i + n);
  }
}

/** The activation format type (vecDotType) of a weight type. */
function activationFormatType(type: GgmlType): GgmlType {
  const f = getFormat(type);
  assert(f.vecDotType !== undefined, () => `type ${f.name} has no vecDot`);
  return f.vecDotType;
}

export function createRefKernels(memory: WebAssembly.Memory): KernelSet {
  return {
    name: "ref",

    quantizeActivations(type, x, dst, k, T) {
      const v = new Views(memory);
      const outBytes = activationRowBytes(type, k);
      const act = activationFormatType(type);
      for (let t = 0; t < T; t++) {
        const src = v.copyF32(x + t * k * 4, k, "x");
        const o = dst + t * outBytes;
        if (act === GgmlType.F32) {
          v.f32.set(src, v.fi(o, "dst"));
        } else if (act === GgmlType.F16) {
          // f32 -> f16 -> f32: the value the F16 vecDot will see, kept as f32
          const h = new Uint8Array(2 * k);
          f32ToF16Row(src, h, k);
          const back = new Float32Array(k);
          f16ToF32Row(h, back, k);
          v.f32.set(back, v.fi(o, "dst"));
        } else {
          const q = getFormat(act).quantizeRowRef;
          assert(q !== undefined, () => `no quantizeRowRef for activation type ${act}`);
          q(src, v.u8.subarray(o, o + outBytes), k);
        }
      }
    },

    matmul(type, w, xq, y, rows, k, T, ldy) {
      const v = new Views(memory);
      const f = getFormat(type);
      const dot = f.vecDot;
      assert(dot !== undefined, () => `no vecDot for ${f.name}`);
      assert(k % computedBlockSize(type) === 0, () => `matmul: k=${k} not a multiple of the ${f.name} block`);
      const wb = rowBytes(f, k);
      const xb = activationRowBytes(type, k);
      const out = new Float32Array(rows * T);
      const wrows: Uint8Array[] = [];
      for (let r = 0; r < rows; r++) wrows.push(weightRow(v.u8, type, w, rows, k, r, new Uint8Array(wb)));
      for (let t = 0; t < T; t++) {
        let xrow = v.u8.subarray(xq + t * xb, xq + (t + 1) * xb);
        if (type === GgmlType.F16) {
          // our F16 activations are f32 values of f16 precision; F16's vecDot takes f16 bytes
          const h = new Uint8Array(2 * k);
          f32ToF16Row(v.copyF32(xq + t * xb, k, "xq"), h, k);
          xrow = h;
        } else {
          xrow = xrow.slice();
        }
        for (let r = 0; r < rows; r++) out[t * rows + r] = dot(k, wrows[r], xrow);
      }
      for (let t = 0; t < T; t++) v.f32.set(out.subarray(t * rows, (t + 1) * rows), v.fi(y + t * ldy * 4, "y"));
    },

    readBytes(ptr, bytes) {
      const u8 = new Uint8Array(memory.buffer, ptr, bytes);
      let r = 0;
      for (let i = 0; i < bytes; i++) r ^= u8[i] << (8 * (i & 3));
      return r | 0;
    },

    rmsnorm(x, w, out, n, T, eps) {
      const v = new Views(memory);
      const wv = v.copyF32(w, n, "w");
      const e = fr(eps);
      for (let t = 0; t < T; t++) {
        const xr = v.copyF32(x + t * n * 4, n, "x");
        let sum = 0; // ggml_float
        for (let i = 0; i < n; i++) sum += fr(xr[i] * xr[i]);
        const mean = fr(sum / n);
        const scale = fr(1 / fr(Math.sqrt(fr(mean + e))));
        const o = v.fi(out + t * n * 4, "out");
        for (let i = 0; i < n; i++) v.f32[o + i] = fr(fr(xr[i] * scale) * wv[i]);
      }
    },

    rope(x, cosSin, T, nHeads, headDim, nRot, rowStride, neox) {
      const v = new Views(memory);
      assert(nRot % 2 === 0 && nRot <= headDim, () => `rope: bad nRot=${nRot} for headDim=${headDim}`);
      const half = nRot / 2;
      for (let t = 0; t < T; t++) {
        const cs = v.copyF32(cosSin + t * nRot * 4, nRot, "cosSin");
        for (let h = 0; h < nHeads; h++) {
          const p = v.fi(x + (t * rowStride + h * headDim) * 4, "x");
          for (let i = 0; i < half; i++) {
            const c = cs[2 * i];
            const s = cs[2 * i + 1];
            const i0 = neox ? p + i : p + 2 * i;
            const i1 = neox ? p + i + half : p + 2 * i + 1;
            const x0 = v.f32[i0];
            const x1 = v.f32[i1];
            v.f32[i0] = fr(fr(x0 * c) - fr(x1 * s));
            v.f32[i1] = fr(fr(x0 * s) + fr(x1 * c));
          }
        }
      }
    },

    attention(q, out, kCache, vCache, blockTable, nKeys, nHeads, nKvHeads, headDim, blockSize, scale, scratch, kvType) {
      const res = refAttention(memory, q, kCache, vCache, blockTable, nKeys, nHeads, nKvHeads, headDim, blockSize, scale, false, kvType);
      const v = new Views(memory);
      // scratch contents are unspecified after the call; the ref leaves the probabilities there
      v.f32.set(res.p.subarray(0, nKeys), v.fi(scratch, "scratch"));
      v.f32.set(res.out, v.fi(out, "out"));
    },

    storeKv(type, x, dst, n) {
      const v = new Views(memory);
      const src = v.copyF32(x, n, "x");
      if (type === "f32") {
        v.f32.set(src, v.fi(dst, "dst"));
        return;
      }
      const bytes = v.u8.subarray(dst, dst + kvRowBytes(type, n));
      if (type === "f16") return f32ToF16Row(src, bytes, n);
      const q = getFormat(GgmlType.Q8_0).quantizeRowRef;
      assert(q !== undefined, "no quantizeRowRef for Q8_0");
      q(src, bytes, n);
    },

    swiglu(gate, up, out, n) {
      const v = new Views(memory);
      const g = v.copyF32(gate, n, "gate");
      const u = v.copyF32(up, n, "up");
      const o = v.fi(out, "out");
      for (let i = 0; i < n; i++) v.f32[o + i] = fr((g[i] / (1 + Math.exp(-g[i]))) * u[i]);
    },

    add(a, b, out, n) {
      const v = new Views(memory);
      const x = v.copyF32(a, n, "a");
      const y = v.copyF32(b, n, "b");
      const o = v.fi(out, "out");
      for (let i = 0; i < n; i++) v.f32[o + i] = fr(x[i] + y[i]);
    },

    addBias(x, bias, n, T, rowStride) {
      const v = new Views(memory);
      const bv = v.copyF32(bias, n, "bias");
      for (let t = 0; t < T; t++) {
        const o = v.fi(x + t * rowStride * 4, "x");
        for (let i = 0; i < n; i++) v.f32[o + i] = fr(v.f32[o + i] + bv[i]);
      }
    },
  };
}

/**
 * Attention of one query token in f64 (see KernelSet.attention). With absV, |V| replaces V: the
 * result is then sum_j p_j |v_j|, the magnitude the tolerance of the fast kernel is relative to.
 * Returns the outputs [nHeads][headDim] and the probabilities of the last head.
 */
export function refAttention(
  memory: WebAssembly.Memory,
  q: number,
  kCache: number,
  vCache: number,
  blockTable: number,
  nKeys: number,
  nHeads: number,
  nKvHeads: number,
  headDim: number,
  blockSize: number,
  scale: number,
  absV: boolean,
  kvType: KvType,
): { out: Float32Array; p: Float32Array } {
  const v = new Views(memory);
  assert(nKvHeads > 0 && nHeads % nKvHeads === 0, () => `attention: bad heads ${nHeads}/${nKvHeads}`);
  const group = nHeads / nKvHeads;
  const out = new Float32Array(nHeads * headDim);
  const p = new Float32Array(nKeys);
  const sc = fr(scale);
  const rowB = kvRowBytes(kvType, headDim);
  const blockBytes = nKvHeads * blockSize * rowB;
  const bt = v.fi(blockTable, "blockTable");
  const format = kvType === "f32" ? getFormat(GgmlType.F32) : getFormat(kvType === "f16" ? GgmlType.F16 : GgmlType.Q8_0);
  /** Positions 0..nKeys-1 of KV head g in a pool at byte pointer base, as f32 rows. */
  const headRows = (base: number, g: number): Float32Array[] =>
    Array.from({ length: nKeys }, (_, j) => {
      const blk = v.i32[bt + Math.floor(j / blockSize)];
      const o = base + blk * blockBytes + (g * blockSize + (j % blockSize)) * rowB;
      const r = new Float32Array(headDim);
      format.dequantizeRow(v.u8.subarray(o, o + rowB), r, headDim);
      return r;
    });
  const K: Float32Array[][] = [];
  const Vr: Float32Array[][] = [];
  const s = new Float64Array(nKeys);
  for (let h = 0; h < nHeads; h++) {
    const g = Math.floor(h / group);
    K[g] ??= headRows(kCache, g);
    Vr[g] ??= headRows(vCache, g);
    const qi = v.fi(q + h * headDim * 4, "q");
    if (nKeys === 0) continue;
    let max = -Infinity;
    for (let j = 0; j < nKeys; j++) {
      const kr = K[g][j];
      let d = 0;
      for (let i = 0; i < headDim; i++) d += v.f32[qi + i] * kr[i];
      s[j] = fr(sc * fr(d));
      if (s[j] > max) max = s[j];
    }
    let sum = 0;
    for (let j = 0; j < nKeys; j++) {
      s[j] = Math.exp(s[j] - max);
      sum += s[j];
    }
    for (let j = 0; j < nKeys; j++) p[j] = s[j] / sum;
    for (let i = 0; i < headDim; i++) {
      let acc = 0;
      for (let j = 0; j < nKeys; j++) {
        const vv = Vr[g][j][i];
        acc += (s[j] / sum) * (absV ? Math.abs(vv) : vv);
      }
      out[h * headDim + i] = acc;
    }
  }
  return { out, p };
}

/**
 * For each output of matmul(type, ...) (packed weights at w): sum_i |w_i| |x_i| over the dequantized weight and
 * activation rows (f64), with Q4_K's |w_i| taken as |d sc q| + |dmin m| (the two terms the
 * integer kernels accumulate separately). The f32 rounding error of any of our matmul kernels is
 * a small multiple of eps_f32 times this. Returns [T][rows].
 */
export function matmulMagnitude(
  memory: WebAssembly.Memory,
  type: GgmlType,
  w: number,
  xq: number,
  rows: number,
  k: number,
  T: number,
): Float64Array {
  const v = new Views(memory);
  const f = getFormat(type);
  const wb = rowBytes(f, k);
  const xb = activationRowBytes(type, k);
  const act = getFormat(activationFormatType(type));
  const xs: Float32Array[] = [];
  for (let t = 0; t < T; t++) {
    const xr = new Float32Array(k);
    if (type === GgmlType.F32 || type === GgmlType.F16) xr.set(v.copyF32(xq + t * xb, k, "xq"));
    else act.dequantizeRow(v.u8.subarray(xq + t * xb, xq + (t + 1) * xb), xr, k);
    for (let i = 0; i < k; i++) xr[i] = Math.abs(xr[i]);
    xs.push(xr);
  }
  const res = new Float64Array(T * rows);
  const wr = new Float32Array(k);
  const row = new Uint8Array(wb);
  for (let r = 0; r < rows; r++) {
    const src = weightRow(v.u8, type, w, rows, k, r, row);
    if (type === GgmlType.Q4_K) q4kAbsRow(src, wr, k);
    else {
      f.dequantizeRow(src, wr, k);
      for (let i = 0; i < k; i++) wr[i] = Math.abs(wr[i]);
    }
    for (let t = 0; t < T; t++) {
      const xr = xs[t];
      let m = 0;
      for (let i = 0; i < k; i++) m += wr[i] * xr[i];
      res[t * rows + r] = m;
    }
  }
  return res;
}

/** Q4_K row as |d sc q| + |dmin m| per element (see matmulMagnitude); layout in formats/q4_k.ts. */
function q4kAbsRow(src: Uint8Array, dst: Float32Array, n: number): void {
  if (n % 256 !== 0) throw new InternalError(`q4kAbsRow: n=${n}`);
  const dv = new DataView(src.buffer, src.byteOffset, src.byteLength);
  const f16 = new Float32Array(2);
  const h = new Uint8Array(4);
  for (let b = 0; b < n / 256; b++) {
    const o = b * 144;
    for (let i = 0; i < 4; i++) h[i] = dv.getUint8(o + i);
    f16ToF32Row(h, f16, 2);
    const d = Math.abs(f16[0]);
    const dmin = Math.abs(f16[1]);
    for (let j = 0; j < 8; j++) {
      const sc = scaleK4(j, src, o + 4);
      const m = minK4(j, src, o + 4);
      const c = j >> 1;
      for (let l = 0; l < 32; l++) {
        const byte = src[o + 16 + 32 * c + l];
        const q = j & 1 ? byte >> 4 : byte & 15;
        dst[b * 256 + 32 * j + l] = d * sc * q + dmin * m;
      }
    }
  }
}
