// In-L1 ceilings of integer GEMM inner loops in WebAssembly SIMD (run.mjs compiles and times them).
// Not the kernels (src/kernels/assembly/): only their innermost loops over a small panel and tile, to
// show how fast each instruction mix can go on this machine.
//   k1: 4 rows x 4 tokens, i16 pairs, i32x4.dot_i16x8_s (the GEMM's 4-row tail, intTile)
//   k2: 8 rows x 4 tokens, the same products (intTile8, every Q8_0 GEMM)
//   k3: 4 rows x 4 tokens, relaxed i16x8.relaxed_dot_i8x16_i7x16_s with i16 sums (gemm-rq.ts, 4-bit types)
//   k4: 8 rows x 4 tokens, relaxed
const P: usize = 65536;
const X: usize = 262144;

// K1: 4 rows x 4 tokens, i16 pairs, dot_i16x8_s. steps: n steps of 16B (8 MACs x 4 tokens... )
export function k1(n: i32, reps: i32): i32 {
  let r0 = i32x4.splat(0), r1 = r0, r2 = r0, r3 = r0;
  for (let r = 0; r < reps; r++) {
    let i0 = i32x4.splat(0), i1 = i0, i2 = i0, i3 = i0;
    const d = X - P;
    const e = P + (<usize>n << 4);
    for (let pp = P; pp < e; pp += 32) {
      const w = v128.load(pp);
      const xp = pp + d;
      i0 = i32x4.add(i0, i32x4.dot_i16x8_s(w, v128.load32_splat(xp)));
      i1 = i32x4.add(i1, i32x4.dot_i16x8_s(w, v128.load32_splat(xp, 4)));
      i2 = i32x4.add(i2, i32x4.dot_i16x8_s(w, v128.load32_splat(xp, 8)));
      i3 = i32x4.add(i3, i32x4.dot_i16x8_s(w, v128.load32_splat(xp, 12)));
      const u = v128.load(pp, 16);
      i0 = i32x4.add(i0, i32x4.dot_i16x8_s(u, v128.load32_splat(xp, 16)));
      i1 = i32x4.add(i1, i32x4.dot_i16x8_s(u, v128.load32_splat(xp, 20)));
      i2 = i32x4.add(i2, i32x4.dot_i16x8_s(u, v128.load32_splat(xp, 24)));
      i3 = i32x4.add(i3, i32x4.dot_i16x8_s(u, v128.load32_splat(xp, 28)));
    }
    r0 = i32x4.add(r0, i0); r1 = i32x4.add(r1, i1); r2 = i32x4.add(r2, i2); r3 = i32x4.add(r3, i3);
  }
  return i32x4.extract_lane(i32x4.add(i32x4.add(r0, r1), i32x4.add(r2, r3)), 0);
}
// K2: 8 rows x 4 tokens: panel steps of 32B (two row-quads), tile steps 16B
export function k2(n: i32, reps: i32): i32 {
  let r0 = i32x4.splat(0), r1 = r0;
  for (let r = 0; r < reps; r++) {
    let a0 = i32x4.splat(0), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
    const e = P + (<usize>n << 5);
    let xp = X;
    for (let pp = P; pp < e; pp += 32) {
      const w = v128.load(pp);
      const u = v128.load(pp, 16);
      let s = v128.load32_splat(xp);
      a0 = i32x4.add(a0, i32x4.dot_i16x8_s(w, s)); b0 = i32x4.add(b0, i32x4.dot_i16x8_s(u, s));
      s = v128.load32_splat(xp, 4);
      a1 = i32x4.add(a1, i32x4.dot_i16x8_s(w, s)); b1 = i32x4.add(b1, i32x4.dot_i16x8_s(u, s));
      s = v128.load32_splat(xp, 8);
      a2 = i32x4.add(a2, i32x4.dot_i16x8_s(w, s)); b2 = i32x4.add(b2, i32x4.dot_i16x8_s(u, s));
      s = v128.load32_splat(xp, 12);
      a3 = i32x4.add(a3, i32x4.dot_i16x8_s(w, s)); b3 = i32x4.add(b3, i32x4.dot_i16x8_s(u, s));
      xp += 16;
    }
    r0 = i32x4.add(r0, i32x4.add(i32x4.add(a0, a1), i32x4.add(a2, a3)));
    r1 = i32x4.add(r1, i32x4.add(i32x4.add(b0, b1), i32x4.add(b2, b3)));
  }
  return i32x4.extract_lane(i32x4.add(r0, r1), 0);
}
// K3: relaxed i8 dot, 4 rows x 4 tokens, i16 accum with flush every 8 steps (16B quads)
export function k3(n: i32, reps: i32): i32 {
  let r0 = i32x4.splat(0), r1 = r0, r2 = r0, r3 = r0;
  const ones = i16x8.splat(1);
  for (let r = 0; r < reps; r++) {
    const d = X - P;
    const e = P + (<usize>n << 4);
    for (let pp = P; pp < e; pp += 128) {
      let h0 = i16x8.splat(0), h1 = h0, h2 = h0, h3 = h0;
      for (let j: usize = 0; j < 128; j += 16) {
        const w = v128.load(pp + j);
        const xp = pp + d + j;
        h0 = i16x8.add(h0, i16x8.relaxed_dot_i8x16_i7x16_s(v128.load32_splat(xp), w));
        h1 = i16x8.add(h1, i16x8.relaxed_dot_i8x16_i7x16_s(v128.load32_splat(xp, 4), w));
        h2 = i16x8.add(h2, i16x8.relaxed_dot_i8x16_i7x16_s(v128.load32_splat(xp, 8), w));
        h3 = i16x8.add(h3, i16x8.relaxed_dot_i8x16_i7x16_s(v128.load32_splat(xp, 12), w));
      }
      r0 = i32x4.add(r0, i32x4.dot_i16x8_s(h0, ones));
      r1 = i32x4.add(r1, i32x4.dot_i16x8_s(h1, ones));
      r2 = i32x4.add(r2, i32x4.dot_i16x8_s(h2, ones));
      r3 = i32x4.add(r3, i32x4.dot_i16x8_s(h3, ones));
    }
  }
  return i32x4.extract_lane(i32x4.add(i32x4.add(r0, r1), i32x4.add(r2, r3)), 0);
}
// K4: relaxed, 8 rows x 4 tokens (two row-quads per step), flush every 4 steps
export function k4(n: i32, reps: i32): i32 {
  let r0 = i32x4.splat(0), r1 = r0;
  const ones = i16x8.splat(1);
  for (let r = 0; r < reps; r++) {
    const e = P + (<usize>n << 5);
    let xp = X;
    for (let pp = P; pp < e; pp += 128) {
      let a0 = i16x8.splat(0), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
      for (let j: usize = 0; j < 128; j += 32) {
        const w = v128.load(pp + j);
        const u = v128.load(pp + j, 16);
        let s = v128.load32_splat(xp);
        a0 = i16x8.add(a0, i16x8.relaxed_dot_i8x16_i7x16_s(s, w)); b0 = i16x8.add(b0, i16x8.relaxed_dot_i8x16_i7x16_s(s, u));
        s = v128.load32_splat(xp, 4);
        a1 = i16x8.add(a1, i16x8.relaxed_dot_i8x16_i7x16_s(s, w)); b1 = i16x8.add(b1, i16x8.relaxed_dot_i8x16_i7x16_s(s, u));
        s = v128.load32_splat(xp, 8);
        a2 = i16x8.add(a2, i16x8.relaxed_dot_i8x16_i7x16_s(s, w)); b2 = i16x8.add(b2, i16x8.relaxed_dot_i8x16_i7x16_s(s, u));
        s = v128.load32_splat(xp, 12);
        a3 = i16x8.add(a3, i16x8.relaxed_dot_i8x16_i7x16_s(s, w)); b3 = i16x8.add(b3, i16x8.relaxed_dot_i8x16_i7x16_s(s, u));
        xp += 16;
      }
      r0 = i32x4.add(r0, i32x4.add(i32x4.add(i32x4.dot_i16x8_s(a0, ones), i32x4.dot_i16x8_s(a1, ones)), i32x4.add(i32x4.dot_i16x8_s(a2, ones), i32x4.dot_i16x8_s(a3, ones))));
      r1 = i32x4.add(r1, i32x4.add(i32x4.add(i32x4.dot_i16x8_s(b0, ones), i32x4.dot_i16x8_s(b1, ones)), i32x4.add(i32x4.dot_i16x8_s(b2, ones), i32x4.dot_i16x8_s(b3, ones))));
    }
  }
  return i32x4.extract_lane(i32x4.add(r0, r1), 0);
}
