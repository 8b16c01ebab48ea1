/** The training matmul pool (WebAssembly kernels on lanes) against the float64 reference. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { MatmulPool } from "../../src/train/matmul-pool.js";
import { refMatmul } from "../../src/train/ops/matmul.js";

describe("training matmul pool", () => {
  for (const threads of [1, 2, 3]) {
    it(`${threads} thread(s): abT, ab, aTb, with and without accumulation, awkward sizes`, async () => {
      const pool = await MatmulPool.create({ threads, arenaFloats: 1 << 22 });
      try {
        let s = threads;
        const rnd = (): number => {
          s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
          return s / 2 ** 32 - 0.5;
        };
        for (const [M, N, K] of [[1, 1, 1], [3, 5, 7], [17, 33, 9], [64, 130, 96], [200, 257, 128]] as const) {
          for (const op of ["abT", "ab", "aTb"] as const) {
            for (const acc of [false, true]) {
              const a = pool.make(M * K);
              const b = pool.make(N * K);
              const c = pool.make(M * N);
              for (const x of [a, b, c]) for (let i = 0; i < x.length; i++) x[i] = rnd();
              const want = Float64Array.from(c);
              refMatmul[op](want, a, b, M, N, K, acc);
              pool.matmul[op](c, a, b, M, N, K, acc);
              // f32 rounding of the result and of what was accumulated into
              let scale = 1e-30;
              for (const v of want) scale = Math.max(scale, Math.abs(v));
              if (acc) scale += 0.5;
              for (let i = 0; i < M * N; i++) assert.ok(Math.abs(c[i]! - want[i]!) <= 1e-5 * scale * Math.sqrt(K), `${op} ${M}x${N}x${K} acc=${acc} [${i}]: ${c[i]} vs ${want[i]}`);
            }
          }
        }
      } finally {
        pool.close();
      }
    });
  }
});
