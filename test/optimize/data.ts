/**
 * Deterministic synthetic data for the quantizer tests, built only from exact float operations
 * (so a C program computes the very same inputs): an integer LCG mapped to [-1, 1).
 */

/** `n` uniform values in [-1, 1) from a 32-bit LCG (Numerical Recipes constants). */
export function uniform(n: number, seed = 12345): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = ((s >>> 8) / 16777216) * 2 - 1;
  }
  return out;
}

/** uniform^3: heavier tails, like real weights (each product rounded to f32 as C float does). */
export function cubic(n: number, seed = 12345): Float32Array {
  const u = uniform(n, seed);
  return u.map((v) => Math.fround(Math.fround(v * v) * v));
}

/** llama.cpp tests/test-quantize-fns.cpp `generate_data(0, n)`: 0.1 + 2 cos(i), with JavaScript's cos. */
export function cosineData(n: number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.fround(0.1 + 2 * Math.fround(Math.cos(i)));
  return out;
}
