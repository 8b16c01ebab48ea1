// matmul for F32 and F16 weights (packed, src/kernels/packing.ts) against f32 activations (F16:
// activations already rounded to f16 precision, stored as f32). y[t*ldy + r] = dot(W[r, :], X[t, :]).
//
// Packed groups of 4 rows: F32 [k][4] f32 (16 B per element), F16 [k][4] f16 (8 B per element,
// group padded to a multiple of 16 B). One 16-byte load gives the 4 rows' element i (F32) or
// elements i, i+1 (F16), multiplied by a splat of x[i]: the 4 lanes of the accumulators are the
// 4 rows, so there are no horizontal sums.
//
// T < 4 (decode): per group, per token, a GEMV streaming the group once (later tokens of the
// same group read it from L1). T >= 4 (prefill): tokens in passes of up to ~1 MiB of activations,
// transposed into tiles of 4 tokens ([k][4] f32); per two groups an 8-row x 4-token register
// tile (8 accumulators, per element 2 weight loads, 4 splat loads, 8 multiply-adds). F16 groups
// are converted to f32 panels once per pass and then run the F32 micro-kernel.
//
// Summation order: GEMV: 4 (F32) or 4 (F16) interleaved partial sums over k, added at the end;
// GEMM: one sum per (row, token) in k order.

import { madd, f16ExtToF32, f16x8Lo, f16x8Hi, storeLanes, transpose4Store, kv, K_F16_EXP, K_F16_MAGIC, K_I16_8FFF, F16_MAGIC, SCRATCH, SCRATCH_END, align64 } from "./common";

const NT: i32 = 4; // tokens per GEMM tile

/** Group bytes of the packed F32 / F16 layouts. */
@inline function groupBytes(k: i32, f16: bool): usize {
  return f16 ? (<usize>(k << 3) + 15) & ~<usize>15 : <usize>k << 4;
}

// ------------------------------------------------------------------------------------ GEMV

/** F32 group [k][4] . x[0..k) -> the 4 rows' dots. */
@inline function f32Gemv(g: usize, x: usize, k: i32): v128 {
  let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
  const end4 = <usize>(k & ~3);
  let i: usize = 0;
  for (; i < end4; i += 4) {
    const p = g + (i << 4);
    const xp = x + (i << 2);
    a0 = madd(v128.load(p), v128.load32_splat(xp), a0);
    a1 = madd(v128.load(p, 16), v128.load32_splat(xp, 4), a1);
    a2 = madd(v128.load(p, 32), v128.load32_splat(xp, 8), a2);
    a3 = madd(v128.load(p, 48), v128.load32_splat(xp, 12), a3);
  }
  for (; i < <usize>k; i++) a0 = madd(v128.load(g + (i << 4)), v128.load32_splat(x + (i << 2)), a0);
  return f32x4.add(f32x4.add(a0, a1), f32x4.add(a2, a3));
}

@inline function lo(h: v128): v128 {
  return f16ExtToF32(i32x4.extend_low_i16x8_s(h));
}
@inline function hi(h: v128): v128 {
  return f16ExtToF32(i32x4.extend_high_i16x8_s(h));
}

/** OR of all weights seen by the last fast f16Dot (a wasm global: one per instance). */
let f16Seen: v128 = i16x8.splat(0);

/**
 * F16 group [k][4] . x -> the 4 rows' dots. exact = false: the fast conversion (wrong for
 * inf/NaN weights), leaving the OR of all weights in f16Seen.
 */
@inline function f16Dot(g: usize, x: usize, k: i32, exact: bool): v128 {
  let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
  let any = i16x8.splat(0);
  const end4 = <usize>(k & ~3);
  let i: usize = 0;
  for (; i < end4; i += 4) {
    const p = g + (i << 3);
    const xp = x + (i << 2);
    const h0 = v128.load(p);
    const h1 = v128.load(p, 16);
    if (exact) {
      a0 = madd(f16x8Lo(h0), v128.load32_splat(xp), a0);
      a1 = madd(f16x8Hi(h0), v128.load32_splat(xp, 4), a1);
      a2 = madd(f16x8Lo(h1), v128.load32_splat(xp, 8), a2);
      a3 = madd(f16x8Hi(h1), v128.load32_splat(xp, 12), a3);
    } else {
      any = v128.or(any, v128.or(h0, h1));
      a0 = madd(lo(h0), v128.load32_splat(xp), a0);
      a1 = madd(hi(h0), v128.load32_splat(xp, 4), a1);
      a2 = madd(lo(h1), v128.load32_splat(xp, 8), a2);
      a3 = madd(hi(h1), v128.load32_splat(xp, 12), a3);
    }
  }
  for (; i < <usize>k; i++) {
    const h = v128.load64_zero(g + (i << 3));
    if (!exact) any = v128.or(any, h);
    a0 = madd(exact ? f16x8Lo(h) : lo(h), v128.load32_splat(x + (i << 2)), a0);
  }
  if (!exact) f16Seen = any;
  return f32x4.add(f32x4.add(a0, a1), f32x4.add(a2, a3));
}

function f16GemvExact(g: usize, x: usize, k: i32): v128 {
  return f16Dot(g, x, k, true);
}

function f16Gemv(g: usize, x: usize, k: i32): v128 {
  const s = f16Dot(g, x, k, false);
  // NOTE: all exponent bits set in the OR of the weights: maybe an inf/NaN (or just weights
  // >= 2.0 next to others): recompute exactly. Exact for every input, fast for typical weights.
  const e = kv(K_F16_EXP);
  if (v128.any_true(i16x8.eq(v128.and(f16Seen, e), e))) return f16GemvExact(g, x, k);
  return s;
}

/**
 * F16 group [k][4] . x' where x' = x * 2^112 (scaled: see gemvF16): the weights' f32 bit
 * patterns without the 2^112 factor, built with i16 ops (per 8 f16 h: hi = (h >>s 3) & 0x8fff,
 * lo = h << 13, interleaved into i32 lanes = sign << 31 | (e,m) << 13): 5 ops per 8 values and
 * no multiply. NOTE: f16 subnormal weights give f32 subnormal operands: no FMA penalty on the
 * x64 cores measured. Inf/NaN: as f16Dot (OR of the weights in f16Seen).
 */
@inline function f16DotScaled(g: usize, x: usize, k: i32): v128 {
  let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
  let any = i16x8.splat(0);
  const end4 = <usize>(k & ~3);
  let i: usize = 0;
  for (; i < end4; i += 4) {
    const p = g + (i << 3);
    const xp = x + (i << 2);
    const h0 = v128.load(p);
    const h1 = v128.load(p, 16);
    any = v128.or(any, v128.or(h0, h1));
    const u0 = v128.and(i16x8.shr_s(h0, 3), kv(K_I16_8FFF));
    const l0 = i16x8.shl(h0, 13);
    const u1 = v128.and(i16x8.shr_s(h1, 3), kv(K_I16_8FFF));
    const l1 = i16x8.shl(h1, 13);
    a0 = madd(v128.shuffle<u16>(l0, u0, 0, 8, 1, 9, 2, 10, 3, 11), v128.load32_splat(xp), a0);
    a1 = madd(v128.shuffle<u16>(l0, u0, 4, 12, 5, 13, 6, 14, 7, 15), v128.load32_splat(xp, 4), a1);
    a2 = madd(v128.shuffle<u16>(l1, u1, 0, 8, 1, 9, 2, 10, 3, 11), v128.load32_splat(xp, 8), a2);
    a3 = madd(v128.shuffle<u16>(l1, u1, 4, 12, 5, 13, 6, 14, 7, 15), v128.load32_splat(xp, 12), a3);
  }
  for (; i < <usize>k; i++) {
    const h = v128.load64_zero(g + (i << 3));
    any = v128.or(any, h);
    const w = v128.shuffle<u16>(i16x8.shl(h, 13), v128.and(i16x8.shr_s(h, 3), kv(K_I16_8FFF)), 0, 8, 1, 9, 2, 10, 3, 11);
    a0 = madd(w, v128.load32_splat(x + (i << 2)), a0);
  }
  f16Seen = any;
  return f32x4.add(f32x4.add(a0, a1), f32x4.add(a2, a3));
}

function gemvF32(w: usize, x: usize, y: usize, rows: i32, k: i32, T: i32, ldy: i32): void {
  const gb = groupBytes(k, false);
  const xb = <usize>k << 2;
  const yb = <usize>ldy << 2;
  for (let r = 0; r < rows; r += 4) {
    const nr = min(rows - r, 4);
    const yr = y + (<usize>r << 2);
    for (let t = 0; t < T; t++) storeLanes(yr + <usize>t * yb, f32Gemv(w, x + <usize>t * xb, k), nr);
    w += gb;
  }
}

/**
 * Token t's x' = x * 2^112 into the scratch when exact: every finite |x| < 2^15 (x' stays finite).
 * Inf/NaN lanes are fine: x' keeps them and w * x' gives the same inf/NaN as w * x (inf * 0 = NaN
 * either way). Returns whether it did.
 */
function scaleTokenF16(x: usize, k: i32, dst: usize): bool {
  if ((<usize>k << 2) > SCRATCH_END - dst) return false;
  let m = i32x4.splat(0);
  const end4 = <usize>(k & ~3) << 2;
  let o: usize = 0;
  // finite |x| as i32 bit patterns (< 0x7f800000); inf/NaN lanes count as 0
  const inf = i32x4.splat(0x7f800000);
  for (; o < end4; o += 16) {
    const a = v128.and(v128.load(x + o), i32x4.splat(0x7fffffff));
    m = i32x4.max_s(m, v128.andnot(a, i32x4.ge_s(a, inf)));
  }
  let mx = max(i32x4.extract_lane(m, 0), max(i32x4.extract_lane(m, 1), max(i32x4.extract_lane(m, 2), i32x4.extract_lane(m, 3))));
  const end = <usize>k << 2;
  for (let e = o; e < end; e += 4) {
    const a = load<i32>(x + e) & 0x7fffffff;
    if (a < 0x7f800000) mx = max(mx, a);
  }
  if (mx >= 0x47000000) return false; // 2^15
  const s = kv(K_F16_MAGIC);
  for (o = 0; o < end4; o += 16) v128.store(dst + o, f32x4.mul(v128.load(x + o), s));
  for (; o < end; o += 4) store<f32>(dst + o, load<f32>(x + o) * F16_MAGIC);
  return true;
}

function f16GemvScaled(g: usize, x: usize, xs: usize, k: i32): v128 {
  const s = f16DotScaled(g, xs, k);
  const e = kv(K_F16_EXP);
  if (v128.any_true(i16x8.eq(v128.and(f16Seen, e), e))) return f16GemvExact(g, x, k);
  return s;
}

function gemvF16(w: usize, x: usize, y: usize, rows: i32, k: i32, T: i32, ldy: i32): void {
  const gb = groupBytes(k, true);
  const xb = <usize>k << 2;
  const yb = <usize>ldy << 2;
  // NOTE: T < 4 here (or the scratch lacks room for GEMM tiles): up to 4 scaled tokens
  let scaled = 0; // bit t: token t's x' is in the scratch at SCRATCH + t * xb
  for (let t = 0; t < min(T, 4); t++) if (scaleTokenF16(x + <usize>t * xb, k, SCRATCH + <usize>t * xb)) scaled |= 1 << t;
  for (let r = 0; r < rows; r += 4) {
    const nr = min(rows - r, 4);
    const yr = y + (<usize>r << 2);
    for (let t = 0; t < T; t++) {
      const xt = x + <usize>t * xb;
      const v = t < 4 && (scaled & (1 << t)) != 0 ? f16GemvScaled(w, xt, SCRATCH + <usize>t * xb, k) : f16Gemv(w, xt, k);
      storeLanes(yr + <usize>t * yb, v, nr);
    }
    w += gb;
  }
}

// ------------------------------------------------------------------------------------ GEMM

/**
 * Tokens t0..t0+nt of X ([T][k] f32) into tiles of NT = 4 tokens: tile i, element e, token t
 * at xt + i*16k + 16e + 4t (tokens past nt are zero).
 */
function transposeTiles(x: usize, k: i32, t0: i32, nt: i32, xt: usize): void {
  const xb = <usize>k << 2;
  const zero = f32x4.splat(0);
  for (let tt = 0; tt < nt; tt += NT) {
    const dst = xt + <usize>tt * xb; // tile tt / 4 (16k bytes = 4 rows of x)
    const p0 = x + <usize>(t0 + tt) * xb;
    const n = min(NT, nt - tt);
    const p1 = n > 1 ? p0 + xb : 0;
    const p2 = n > 2 ? p0 + 2 * xb : 0;
    const p3 = n > 3 ? p0 + 3 * xb : 0;
    const end4 = <usize>(k & ~3) << 2;
    let o: usize = 0;
    for (; o < end4; o += 16) {
      transpose4Store(
        dst + (o << 2),
        v128.load(p0 + o),
        n > 1 ? v128.load(p1 + o) : zero,
        n > 2 ? v128.load(p2 + o) : zero,
        n > 3 ? v128.load(p3 + o) : zero,
      );
    }
    const end = <usize>k << 2;
    for (; o < end; o += 4) {
      const q = dst + (o << 2);
      store<f32>(q, load<f32>(p0 + o));
      store<f32>(q, n > 1 ? load<f32>(p1 + o) : 0, 4);
      store<f32>(q, n > 2 ? load<f32>(p2 + o) : 0, 8);
      store<f32>(q, n > 3 ? load<f32>(p3 + o) : 0, 12);
    }
  }
}

/** F16 group [k][4] -> f32 panel [k][4] (exact conversion). */
function f16Panel(g: usize, k: i32, dst: usize): void {
  const end2 = <usize>(k & ~1);
  let i: usize = 0;
  for (; i < end2; i += 2) {
    const h = v128.load(g + (i << 3));
    v128.store(dst + (i << 4), f16x8Lo(h));
    v128.store(dst + (i << 4), f16x8Hi(h), 16);
  }
  if (k & 1) v128.store(dst + (i << 4), f16x8Lo(v128.load64_zero(g + (i << 3))));
}

/**
 * 8 rows (two panels [k][4] f32 at p and q) x 4 tokens (tile [k][4]): per element 2 weight
 * loads, 4 splat loads, 8 multiply-adds. Stores nr rows (1..8) of nt tokens at y.
 * NOTE: 8 accumulators + 6 loaded vectors = 14 registers: V8 hoists the loads of an iteration
 * (a 4-row x 8-token tile needed 17 and spilled an accumulator: 2.5x slower).
 */
function f32Tile(p: usize, q: usize, xt: usize, k: i32, y: usize, yb: usize, nr: i32, nt: i32): void {
  let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
  let b0 = f32x4.splat(0), b1 = f32x4.splat(0), b2 = f32x4.splat(0), b3 = f32x4.splat(0);
  const d = q - p;
  const e = xt - p;
  const end = p + (<usize>k << 4);
  for (; p < end; p += 16) {
    const w = v128.load(p);
    const u = v128.load(p + d);
    const x = p + e;
    const x0 = v128.load32_splat(x);
    const x1 = v128.load32_splat(x, 4);
    const x2 = v128.load32_splat(x, 8);
    const x3 = v128.load32_splat(x, 12);
    a0 = madd(w, x0, a0);
    b0 = madd(u, x0, b0);
    a1 = madd(w, x1, a1);
    b1 = madd(u, x1, b1);
    a2 = madd(w, x2, a2);
    b2 = madd(u, x2, b2);
    a3 = madd(w, x3, a3);
    b3 = madd(u, x3, b3);
  }
  const na = min(nr, 4);
  storeLanes(y, a0, na);
  if (nt > 1) storeLanes(y + yb, a1, na);
  if (nt > 2) storeLanes(y + 2 * yb, a2, na);
  if (nt > 3) storeLanes(y + 3 * yb, a3, na);
  if (nr > 4) {
    const nb = nr - 4;
    y += 16;
    storeLanes(y, b0, nb);
    if (nt > 1) storeLanes(y + yb, b1, nb);
    if (nt > 2) storeLanes(y + 2 * yb, b2, nb);
    if (nt > 3) storeLanes(y + 3 * yb, b3, nb);
  }
}

/** Tokens per pass (multiple of NT), or 0 when one tile and the panel do not fit the scratch. */
function floatPassTokens(k: i32, T: i32, f16: bool): i32 {
  const panel: usize = f16 ? align64(<usize>k << 5) : 0; // two groups
  const perToken: usize = <usize>k << 2;
  if (perToken == 0) return 0;
  const avail = SCRATCH_END - SCRATCH - panel;
  if (panel + <usize>NT * perToken > SCRATCH_END - SCRATCH) return 0;
  // ~1 MiB of activations per pass (stays in L2 while the weights stream)
  const want = max(<usize>NT, min(avail, <usize>(1 << 20)) / perToken);
  return <i32>min(want & ~<usize>(NT - 1), <usize>(T + NT - 1) & ~<usize>(NT - 1));
}

function gemmFloat(w: usize, x: usize, y: usize, rows: i32, k: i32, T: i32, ldy: i32, f16: bool): void {
  const gb = groupBytes(k, f16);
  const yb = <usize>ldy << 2;
  const TB = floatPassTokens(k, T, f16);
  const tileBytes = <usize>k << 4; // 4 tokens
  const panel = SCRATCH;
  const tiles = SCRATCH + (f16 ? align64(<usize>k << 5) : 0);
  for (let t0 = 0; t0 < T; t0 += TB) {
    const nt = min(TB, T - t0);
    transposeTiles(x, k, t0, nt, tiles);
    let g = w;
    for (let r = 0; r < rows; r += 8) {
      const nr = min(rows - r, 8);
      // two groups (the second one repeated when only 4 rows are left)
      let p = g;
      let q = nr > 4 ? g + gb : g;
      if (f16) {
        f16Panel(p, k, panel);
        if (nr > 4) f16Panel(q, k, panel + (<usize>k << 4));
        p = panel;
        q = nr > 4 ? panel + (<usize>k << 4) : panel;
      }
      const yr = y + (<usize>r << 2) + <usize>t0 * yb;
      for (let tt = 0; tt < nt; tt += NT) {
        f32Tile(p, q, tiles + <usize>(tt >> 2) * tileBytes, k, yr + <usize>tt * yb, yb, nr, min(NT, nt - tt));
      }
      g += gb << 1;
    }
  }
}

// ----------------------------------------------------------------------------------- entries

/** F32 weights (packed [k][4] groups) x f32 activations ([T][k]). */
export function matmulF32(w: usize, x: usize, y: usize, rows: i32, k: i32, T: i32, ldy: i32): void {
  if (T < 4 || floatPassTokens(k, T, false) == 0) gemvF32(w, x, y, rows, k, T, ldy);
  else gemmFloat(w, x, y, rows, k, T, ldy, false);
}

/** F16 weights (packed [k][4] groups) x f32 activations (f16-rounded, [T][k]). */
export function matmulF16(w: usize, x: usize, y: usize, rows: i32, k: i32, T: i32, ldy: i32): void {
  if (T < 4 || floatPassTokens(k, T, true) == 0) gemvF16(w, x, y, rows, k, T, ldy);
  else gemmFloat(w, x, y, rows, k, T, ldy, true);
}
