/**
 * The three matrix products training needs, on row-major arrays. `accumulate` adds to C instead
 * of overwriting it (gradients of shared weights sum).
 *
 * The reference here is plain loops with float64 sums: the oracle for the fast implementation
 * (WebAssembly kernels on worker threads) and the engine of gradient checks in float64.
 */
import type { Floats } from "./tensor-ops.js";

export interface Matmul {
  /** C[M,N] = A[M,K] . B[N,K]^T   (forward of a linear layer: y = x W^T) */
  abT(c: Floats, a: Floats, b: Floats, M: number, N: number, K: number, accumulate: boolean): void;
  /** C[M,N] = A[M,K] . B[K,N]     (input gradient: dx = dy W) */
  ab(c: Floats, a: Floats, b: Floats, M: number, N: number, K: number, accumulate: boolean): void;
  /** C[M,N] = A[K,M]^T . B[K,N]   (weight gradient: dW = dy^T x) */
  aTb(c: Floats, a: Floats, b: Floats, M: number, N: number, K: number, accumulate: boolean): void;
}

export const refMatmul: Matmul = {
  abT(c, a, b, M, N, K, accumulate) {
    for (let m = 0; m < M; m++) {
      for (let n = 0; n < N; n++) {
        let s = 0;
        for (let k = 0; k < K; k++) s += a[m * K + k]! * b[n * K + k]!;
        c[m * N + n] = (accumulate ? c[m * N + n]! : 0) + s;
      }
    }
  },
  ab(c, a, b, M, N, K, accumulate) {
    const row = new Float64Array(N);
    for (let m = 0; m < M; m++) {
      row.fill(0);
      for (let k = 0; k < K; k++) {
        const av = a[m * K + k]!;
        if (av === 0) continue;
        for (let n = 0; n < N; n++) row[n] += av * b[k * N + n]!;
      }
      for (let n = 0; n < N; n++) c[m * N + n] = (accumulate ? c[m * N + n]! : 0) + row[n]!;
    }
  },
  aTb(c, a, b, M, N, K, accumulate) {
    const acc = new Float64Array(M * N);
    for (let k = 0; k < K; k++) {
      for (let m = 0; m < M; m++) {
        const av = a[k * M + m]!;
        if (av === 0) continue;
        for (let n = 0; n < N; n++) acc[m * N + n] += av * b[k * N + n]!;
      }
    }
    for (let i = 0; i < M * N; i++) c[i] = (accumulate ? c[i]! : 0) + acc[i]!;
  },
};
