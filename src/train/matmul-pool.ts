/**
 * The matrix products of training. `trainMatmul(threads)` picks the implementation: today the
 * plain-TypeScript reference (float64 sums); the WebAssembly-kernel pool replaces it (see
 * ARCHITECTURE.md) with the same interface.
 */
import { type Matmul, refMatmul } from "./ops/matmul.js";

export interface TrainMatmul {
  readonly name: string;
  readonly matmul: Matmul;
  /** Allocate a training buffer (the pool places them in its shared WebAssembly memory). */
  readonly make: (n: number) => Float32Array;
  close(): void;
}

export function trainMatmul(threads: number): TrainMatmul {
  void threads;
  return { name: "reference matmul (1 thread)", matmul: refMatmul, make: (n) => new Float32Array(n), close() {} };
}
