/**
 * One lane's share of a training matrix product (see src/train/matmul-pool.ts): columns
 * [n0, n1) of C[M,N] = A'[M,K] . B'[N,K]^T computed by the WebAssembly kernels in the lane's own
 * memory, from and to a shared arena.
 */
import { KERNEL_RESERVED_BYTES, type KernelSet, PACK_ROWS, instantiateKernels } from "../../kernels/index.js";
import { GgmlType } from "../../tensor/ggml-type.js";

const PAGE = 65536;

export interface Job {
  M: number;
  N: number;
  K: number;
  acc: boolean;
  /** Float offsets in the arena. */
  a: number;
  b: number;
  c: number;
  /** A' = A^T (A is [K, M]); otherwise A is [M, K]. */
  aT: boolean;
  /** B' = B^T (B is [K, N]); otherwise B is [N, K]. */
  bCols: boolean;
}

/** Runs in any thread; owns a WebAssembly memory (the kernels keep their scratch in it). */
export class MatmulLane {
  private mem: WebAssembly.Memory;
  private f32: Float32Array;
  private kernels: KernelSet;

  constructor(
    module: WebAssembly.Module,
    readonly arena: Float32Array,
  ) {
    // NOTE: the kernel module imports a shared memory (the engine shares lane memories).
    this.mem = new WebAssembly.Memory({ initial: Math.ceil(KERNEL_RESERVED_BYTES / PAGE) + 16, maximum: 65536, shared: true });
    this.f32 = new Float32Array(this.mem.buffer);
    this.kernels = instantiateKernels(module, this.mem);
  }

  private ensure(bytes: number): void {
    const need = KERNEL_RESERVED_BYTES + bytes;
    const have = this.mem.buffer.byteLength;
    if (need > have) {
      this.mem.grow(Math.ceil((need - have) / PAGE));
      this.f32 = new Float32Array(this.mem.buffer);
    }
  }

  run(j: Job, n0: number, n1: number): void {
    const { M, K } = j;
    const n = n1 - n0;
    if (n <= 0 || M === 0) return;
    const src = this.arena;
    const groups = Math.ceil(n / PACK_ROWS);
    // lane memory: [reserved][A' M*K][B' packed groups*4*K][C M*n]
    const aAt = KERNEL_RESERVED_BYTES >> 2;
    const bAt = aAt + M * K;
    const cAt = bAt + groups * PACK_ROWS * K;
    this.ensure((cAt + M * n) * 4 - KERNEL_RESERVED_BYTES);
    const f = this.f32;
    // A' rows (A^T: transposed in 32 x 32 tiles, so both sides stay in cache)
    if (!j.aT) f.set(src.subarray(j.a, j.a + M * K), aAt);
    else {
      for (let k0 = 0; k0 < K; k0 += 32) {
        const k1 = Math.min(K, k0 + 32);
        for (let m0 = 0; m0 < M; m0 += 32) {
          const m1 = Math.min(M, m0 + 32);
          for (let k = k0; k < k1; k++) {
            const row = j.a + k * M;
            for (let m = m0; m < m1; m++) f[aAt + m * K + k] = src[row + m];
          }
        }
      }
    }
    // B' rows n0..n1, packed: element k of row r of group g at ((g * K + k) * 4 + r)
    for (let g = 0; g < groups; g++) {
      const base = bAt + g * K * 4;
      const c0 = n0 + g * 4;
      const full = c0 + 4 <= n1;
      if (j.bCols && full) {
        // B' = B^T: the 4 rows of the group are 4 adjacent columns of B: contiguous reads
        for (let k = 0; k < K; k++) {
          const o = j.b + k * j.N + c0;
          const d = base + k * 4;
          f[d] = src[o];
          f[d + 1] = src[o + 1];
          f[d + 2] = src[o + 2];
          f[d + 3] = src[o + 3];
        }
        continue;
      }
      for (let r = 0; r < 4; r++) {
        const row = c0 + r;
        if (row >= n1) {
          for (let k = 0; k < K; k++) f[base + k * 4 + r] = 0;
        } else if (j.bCols) {
          for (let k = 0; k < K; k++) f[base + k * 4 + r] = src[j.b + k * j.N + row];
        } else {
          const o = j.b + row * K;
          for (let k = 0; k < K; k++) f[base + k * 4 + r] = src[o + k];
        }
      }
    }
    this.kernels.matmul(GgmlType.F32, bAt * 4, aAt * 4, cAt * 4, n, K, M, n);
    // columns n0..n1 of C
    for (let m = 0; m < M; m++) {
      const dst = j.c + m * j.N + n0;
      const from = cAt + m * n;
      if (j.acc) for (let i = 0; i < n; i++) src[dst + i] += f[from + i];
      else src.set(f.subarray(from, from + n), dst);
    }
  }
}

/** Column split of a product over lanes (multiples of 4 columns). */
export function columnsOf(N: number, lanes: number, i: number): [number, number] {
  const groups = Math.ceil(N / PACK_ROWS);
  const g0 = Math.floor((i * groups) / lanes);
  const g1 = Math.floor(((i + 1) * groups) / lanes);
  return [Math.min(N, g0 * PACK_ROWS), Math.min(N, g1 * PACK_ROWS)];
}

