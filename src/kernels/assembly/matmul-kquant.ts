// matmul for K-quant weights (packed, src/kernels/packing.ts) against Q8_K activations: Q4_K and
// Q6_K. y[t*ldy + r] = dot(W[r, :], Xq[t, :]); Q8_K block (292 B): f32 d @0, i8 qs[256] @4,
// i16 bsums[16] @260. T >= 4: gemm-rq.ts (relaxed) or gemm-int.ts.
//
// Same integer sums as ggml's vec_dot_q4_K_q8_K / q6_K_q8_K (exact); per superblock
//   acc[r] += f32(isum[r]) * (d[r] * dx)  (Q4_K also: - f32(msum[r]) * (dmin[r] * dx))
// with the 4 rows of a packed group in the lanes of one f32x4 accumulator.
//
// Packed quants are interleaved by 4 bytes: 16 bytes = 4 rows x 4 consecutive quant bytes.
// - relaxed: i16x8.relaxed_dot_i8x16_i7x16_s(splat(x[e..e+3]), quants) gives the pair sums
//   [r0, r0, r1, r1, r2, r2, r3, r3]; they are summed in i16 over a sub-block while they fit
//   (Q4_K: 8 x 3810; Q6_K: 2 x 16002), then i32x4.dot_i16x8_s with the sub-block scales in the
//   same pair form [s0, s0, s1, s1, ...] gives the 4 rows' scaled i32 sums.
// - SIMD128: quants widened to i16 (rows 0,1 and rows 2,3), i16x8.mul by x widened to i16 (from the
//   scratch), summed per lane over a sub-block (Q4_K: 8 x 1905, Q6_K: 4 x 8001 fit i16), then
//   dot_i16x8_s with [s0 x4, s1 x4] scales: pair sums for rows (0, 1) and (2, 3), combined at the end.
//
// Scales: Q4_K's 6-bit scales/mins of the 4 rows are decoded together (their 12 bytes are
// interleaved by 4: three i32x4 of the rows' words 0, 1, 2); Q6_K's i8 scales likewise (four
// vectors of 4 bytes per row). rowBytePairs picks sub-block s's scale of the 4 rows.

import { madd, f16x8Lo, f16x8Hi, f16ExtToF32, scaleKey, scalesNeedExact, storeLanes, kv, K_I8_15, SCRATCH, TMP } from "./common";
import { rdot16, q8kPairSums } from "./qcommon";
import {
  KIND_Q4_K, KIND_Q6_K, gemmInt, intPassTokens, scaleRegion, rowBytePairs, q4kScaleLo, q4kScaleHi, q4kMinHi, q4kMinPair,
  q6Quant,
} from "./gemm-int";
import { gemmRq, rqPassTokens } from "./gemm-rq";

/** [a0+a1, a2+a3, b0+b1, b2+b3] of two pair-form i32x4 (rows 0,1 in a; rows 2,3 in b). */
@inline function combine(a: v128, b: v128): v128 {
  return i32x4.add(v128.shuffle<i32>(a, b, 0, 2, 4, 6), v128.shuffle<i32>(a, b, 1, 3, 5, 7));
}

/** Per-row byte b of v as i8 [r0 x4, r1 x4, r2 x4, r3 x4] (for the SIMD128 paths' i16 lanes). */
@inline function rowByteQuads(v: v128, b: i32): v128 {
  const s = i32x4.shr_u(v, b << 3);
  return v128.shuffle<u8>(s, s, 0, 0, 0, 0, 4, 4, 4, 4, 8, 8, 8, 8, 12, 12, 12, 12);
}

/** SIMD128 prep: each token's 256 nb quants widened to i16 at SCRATCH + t * 512 nb. */
function prepWide(x: usize, nb: i32, T: i32): void {
  let o = SCRATCH;
  for (let t = 0; t < T; t++) {
    for (let b = 0; b < nb; b++) {
      const q = x + 4;
      for (let e: usize = 0; e < 256; e += 16) {
        const v = v128.load(q + e);
        v128.store(o, i16x8.extend_low_i8x16_s(v));
        v128.store(o, i16x8.extend_high_i8x16_s(v), 16);
        o += 32;
      }
      x += 292;
    }
  }
}

// ------------------------------------------------------------------------------------- Q4_K
// packed superblock (576 B for 4 rows): d[4] @0, dmin[4] @8, scales @16 (3 x 16 B), qs @64
// (32 x 16 B: vector v = the rows' qs bytes 4v..4v+3; chunk c = vectors 8c..8c+7: low nibbles
// = sub-block 2c elements 4j.., high nibbles = sub-block 2c+1).

/** relaxed: chunk c of superblock p against Q8_K qs at xq: scaled i32 sums of the 4 rows. */
@inline function q4kChunkR(p: usize, xq: usize, c: i32, sc: v128): v128 {
  const m = kv(K_I8_15);
  let hl = i16x8.splat(0);
  let hh = i16x8.splat(0);
  const q = p + 64 + (<usize>c << 7);
  const xl = xq + (<usize>c << 6);
  for (let j: usize = 0; j < 32; j += 8) {
    const v = v128.load(q + (j << 2));
    const u = v128.load(q + (j << 2), 16);
    hl = i16x8.add(hl, rdot16(v128.load32_splat(xl + j), v128.and(v, m)));
    hh = i16x8.add(hh, rdot16(v128.load32_splat(xl + j, 32), v128.and(i16x8.shr_u(v, 4), m)));
    hl = i16x8.add(hl, rdot16(v128.load32_splat(xl + j, 4), v128.and(u, m)));
    hh = i16x8.add(hh, rdot16(v128.load32_splat(xl + j, 36), v128.and(i16x8.shr_u(u, 4), m)));
  }
  const b = (c & 1) << 1;
  return i32x4.add(
    i32x4.dot_i16x8_s(hl, i16x8.extend_low_i8x16_u(rowBytePairs(sc, b))),
    i32x4.dot_i16x8_s(hh, i16x8.extend_low_i8x16_u(rowBytePairs(sc, b + 1))),
  );
}

/** SIMD128: chunk c against widened x (xw: the superblock's 256 i16): pair-form sums added to *acc, *(acc + 16). */
@inline function q4kChunkS(p: usize, xw: usize, c: i32, sc: v128, acc: usize): void {
  const m = kv(K_I8_15);
  let al = i16x8.splat(0), bl = i16x8.splat(0), ah = i16x8.splat(0), bh = i16x8.splat(0);
  const q = p + 64 + (<usize>c << 7);
  const xl = xw + (<usize>c << 7);
  for (let j: usize = 0; j < 32; j += 4) {
    const v = v128.load(q + (j << 2));
    const lo = v128.and(v, m);
    const hi = v128.and(i16x8.shr_u(v, 4), m);
    const x0 = v128.load64_splat(xl + (j << 1));
    const x1 = v128.load64_splat(xl + (j << 1), 64);
    al = i16x8.add(al, i16x8.mul(i16x8.extend_low_i8x16_u(lo), x0));
    bl = i16x8.add(bl, i16x8.mul(i16x8.extend_high_i8x16_u(lo), x0));
    ah = i16x8.add(ah, i16x8.mul(i16x8.extend_low_i8x16_u(hi), x1));
    bh = i16x8.add(bh, i16x8.mul(i16x8.extend_high_i8x16_u(hi), x1));
  }
  const b = (c & 1) << 1;
  const sl = rowByteQuads(sc, b);
  const sh = rowByteQuads(sc, b + 1);
  const a = i32x4.add(i32x4.dot_i16x8_s(al, i16x8.extend_low_i8x16_u(sl)), i32x4.dot_i16x8_s(ah, i16x8.extend_low_i8x16_u(sh)));
  const bb = i32x4.add(i32x4.dot_i16x8_s(bl, i16x8.extend_high_i8x16_u(sl)), i32x4.dot_i16x8_s(bh, i16x8.extend_high_i8x16_u(sh)));
  v128.store(acc, i32x4.add(v128.load(acc), a));
  v128.store(acc, i32x4.add(v128.load(acc, 16), bb), 16);
}

/**
 * One packed Q4_K group . one token (x: its Q8_K blocks; xw: widened qs, SIMD128 only). Per
 * superblock, d and dmin take the fast f16 conversion unless one of them is inf/NaN, zero or
 * subnormal (scaleKey): then f16x8Lo/Hi, exact and without a subnormal multiply operand.
 * NOTE: super-scales of small weights are often f16 subnormals (d = max scale / 63).
 */
function q4kGemv(g: usize, nb: i32, x: usize, xw: usize): v128 {
  let acc = f32x4.splat(0);
  const tmp = TMP;
  for (let b = 0; b < nb; b++) {
    const p = g + <usize>b * 576;
    const A = v128.load(p, 16);
    const B = v128.load(p, 32);
    const C = v128.load(p, 48);
    const scLo = q4kScaleLo(A);
    const scHi = q4kScaleHi(A, C);
    let isum: v128;
    if (ASC_FEATURE_RELAXED_SIMD) {
      const xq = x + 4;
      isum = i32x4.add(
        i32x4.add(q4kChunkR(p, xq, 0, scLo), q4kChunkR(p, xq, 1, scLo)),
        i32x4.add(q4kChunkR(p, xq, 2, scHi), q4kChunkR(p, xq, 3, scHi)),
      );
    } else {
      v128.store(tmp, i32x4.splat(0));
      v128.store(tmp, i32x4.splat(0), 16);
      q4kChunkS(p, xw, 0, scLo, tmp);
      q4kChunkS(p, xw, 1, scLo, tmp);
      q4kChunkS(p, xw, 2, scHi, tmp);
      q4kChunkS(p, xw, 3, scHi, tmp);
      isum = combine(v128.load(tmp), v128.load(tmp, 16));
      xw += 512;
    }
    // mins: sum_j m_j * B_j, B_j = sum of x over sub-block j (pairs of Q8_K bsums)
    const mLo = q4kScaleLo(B);
    const mHi = q4kMinHi(B, C);
    const pb = q8kPairSums(x);
    let ms = i32x4.dot_i16x8_s(q4kMinPair(mLo, mHi, 0), v128.shuffle<i32>(pb, pb, 0, 0, 0, 0));
    ms = i32x4.add(ms, i32x4.dot_i16x8_s(q4kMinPair(mLo, mHi, 1), v128.shuffle<i32>(pb, pb, 1, 1, 1, 1)));
    ms = i32x4.add(ms, i32x4.dot_i16x8_s(q4kMinPair(mLo, mHi, 2), v128.shuffle<i32>(pb, pb, 2, 2, 2, 2)));
    ms = i32x4.add(ms, i32x4.dot_i16x8_s(q4kMinPair(mLo, mHi, 3), v128.shuffle<i32>(pb, pb, 3, 3, 3, 3)));
    const dd = v128.load(p);
    const xd = v128.load32_splat(x);
    let d: v128, dmin: v128;
    if (scalesNeedExact(scaleKey(dd))) {
      d = f16x8Lo(dd);
      dmin = f16x8Hi(dd);
    } else {
      d = f16ExtToF32(i32x4.extend_low_i16x8_s(dd));
      dmin = f16ExtToF32(i32x4.extend_high_i16x8_s(dd));
    }
    acc = madd(f32x4.convert_i32x4_s(isum), f32x4.mul(d, xd), acc);
    acc = madd(f32x4.convert_i32x4_s(ms), f32x4.neg(f32x4.mul(dmin, xd)), acc);
    x += 292;
  }
  return acc;
}

export function matmulQ4_K(w: usize, x: usize, y: usize, rows: i32, k: i32, T: i32, ldy: i32): void {
  const nb = k >> 8;
  if (T >= 4 && ASC_FEATURE_RELAXED_SIMD && rqPassTokens(KIND_Q4_K, k, T) > 0) {
    gemmRq(KIND_Q4_K, w, x, y, rows, k, T, ldy);
    return;
  }
  if (T >= 4 && intPassTokens(KIND_Q4_K, k, T) > 0) {
    gemmInt(KIND_Q4_K, w, x, y, rows, k, T, ldy);
    return;
  }
  kquantGemv(KIND_Q4_K, w, x, y, rows, nb, T, ldy);
}

// ------------------------------------------------------------------------------------- Q6_K
// packed: d of superblock b (4 rows) at 8b in the scale region; superblock at S + 832 b:
// ql @0 (32 x 16 B), qh @512 (16 x 16 B), scales @768 (4 x 16 B: i8 scales 4v..4v+3 per row).
// Half n, chunk c (l = 4c..4c+3): L0 = ql vector 16n + c, L1 = 16n + 8 + c, H = qh vector 8n + c;
// q6Quant(L0, L1, H, m) are elements 128n + 32m + l, sub-block 8n + 2m + (c >= 4).

/** Sub-block s's i8 scales of the 4 rows (scale vectors at sp) in pair form, as i16. */
@inline function q6Scale(sp: usize, s: i32): v128 {
  return i16x8.extend_low_i8x16_s(rowBytePairs(v128.load(sp + (<usize>(s >> 2) << 4)), s & 3));
}

/** relaxed: half n, quant group m, chunks 4h..4h+3 (one sub-block) -> scaled i32 sums. */
@inline function q6SubR(p: usize, xq: usize, n: i32, m: i32, h: i32): v128 {
  let a = i16x8.splat(0);
  let b = i16x8.splat(0);
  const xo = xq + (<usize>n << 7) + (<usize>m << 5) + (<usize>h << 4);
  for (let c = h << 2, e = (h << 2) + 4; c < e; c += 2) {
    const o0 = p + (<usize>((n << 4) + c) << 4);
    const h0 = p + 512 + (<usize>((n << 3) + c) << 4);
    const xc = xo + <usize>((c & 3) << 2);
    a = i16x8.add(a, rdot16(v128.load32_splat(xc), q6Quant(v128.load(o0), v128.load(o0, 128), v128.load(h0), m)));
    b = i16x8.add(b, rdot16(v128.load32_splat(xc, 4), q6Quant(v128.load(o0, 16), v128.load(o0, 144), v128.load(h0, 16), m)));
  }
  const sv = q6Scale(p + 768, (n << 3) + (m << 1) + h);
  return i32x4.add(i32x4.dot_i16x8_s(a, sv), i32x4.dot_i16x8_s(b, sv));
}

/** SIMD128: the same sub-block against widened x; pair-form sums added to *acc, *(acc + 16). */
@inline function q6SubS(p: usize, xw: usize, n: i32, m: i32, h: i32, acc: usize): void {
  let a = i16x8.splat(0);
  let b = i16x8.splat(0);
  const xo = xw + (<usize>((n << 7) + (m << 5) + (h << 4)) << 1);
  for (let c = h << 2, e = (h << 2) + 4; c < e; c++) {
    const o0 = p + (<usize>((n << 4) + c) << 4);
    const q = q6Quant(v128.load(o0), v128.load(o0, 128), v128.load(p + 512 + (<usize>((n << 3) + c) << 4)), m);
    const xs = v128.load64_splat(xo + (<usize>((c & 3) << 3)));
    a = i16x8.add(a, i16x8.mul(i16x8.extend_low_i8x16_u(q), xs));
    b = i16x8.add(b, i16x8.mul(i16x8.extend_high_i8x16_u(q), xs));
  }
  const s = (n << 3) + (m << 1) + h;
  const sv = rowByteQuads(v128.load(p + 768 + (<usize>(s >> 2) << 4)), s & 3);
  v128.store(acc, i32x4.add(v128.load(acc), i32x4.dot_i16x8_s(a, i16x8.extend_low_i8x16_s(sv))));
  v128.store(acc, i32x4.add(v128.load(acc, 16), i32x4.dot_i16x8_s(b, i16x8.extend_high_i8x16_s(sv))), 16);
}

/** 32 * sum_s sc_s * bsums_s per row (the -32 offset of the quants), i32x4 of the 4 rows. */
@inline function q6Offset(sp: usize, x: usize): v128 {
  let a = i32x4.splat(0);
  let b = i32x4.splat(0);
  for (let v: usize = 0; v < 4; v++) {
    const s = v128.load(sp + (v << 4));
    const bs = v128.load64_splat(x + 260 + (v << 3));
    a = i32x4.add(a, i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_s(s), bs));
    b = i32x4.add(b, i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_s(s), bs));
  }
  return i32x4.shl(combine(a, b), 5);
}

function q6kGemv(g: usize, nb: i32, x: usize, xw: usize): v128 {
  let acc = f32x4.splat(0);
  const base = g + scaleRegion(nb);
  const tmp = TMP;
  for (let b = 0; b < nb; b++) {
    const p = base + <usize>b * 832;
    let isum: v128;
    if (ASC_FEATURE_RELAXED_SIMD) {
      const xq = x + 4;
      isum = i32x4.splat(0);
      for (let n = 0; n < 2; n++) {
        isum = i32x4.add(isum, i32x4.add(q6SubR(p, xq, n, 0, 0), q6SubR(p, xq, n, 0, 1)));
        isum = i32x4.add(isum, i32x4.add(q6SubR(p, xq, n, 1, 0), q6SubR(p, xq, n, 1, 1)));
        isum = i32x4.add(isum, i32x4.add(q6SubR(p, xq, n, 2, 0), q6SubR(p, xq, n, 2, 1)));
        isum = i32x4.add(isum, i32x4.add(q6SubR(p, xq, n, 3, 0), q6SubR(p, xq, n, 3, 1)));
      }
    } else {
      v128.store(tmp, i32x4.splat(0));
      v128.store(tmp, i32x4.splat(0), 16);
      for (let n = 0; n < 2; n++) {
        q6SubS(p, xw, n, 0, 0, tmp);
        q6SubS(p, xw, n, 0, 1, tmp);
        q6SubS(p, xw, n, 1, 0, tmp);
        q6SubS(p, xw, n, 1, 1, tmp);
        q6SubS(p, xw, n, 2, 0, tmp);
        q6SubS(p, xw, n, 2, 1, tmp);
        q6SubS(p, xw, n, 3, 0, tmp);
        q6SubS(p, xw, n, 3, 1, tmp);
      }
      isum = combine(v128.load(tmp), v128.load(tmp, 16));
      xw += 512;
    }
    isum = i32x4.sub(isum, q6Offset(p + 768, x));
    const ds = f32x4.mul(f16x8Lo(v128.load64_zero(g + (<usize>b << 3))), v128.load32_splat(x));
    acc = madd(f32x4.convert_i32x4_s(isum), ds, acc);
    x += 292;
  }
  return acc;
}

export function matmulQ6_K(w: usize, x: usize, y: usize, rows: i32, k: i32, T: i32, ldy: i32): void {
  const nb = k >> 8;
  if (T >= 4 && ASC_FEATURE_RELAXED_SIMD && rqPassTokens(KIND_Q6_K, k, T) > 0) {
    gemmRq(KIND_Q6_K, w, x, y, rows, k, T, ldy);
    return;
  }
  if (T >= 4 && intPassTokens(KIND_Q6_K, k, T) > 0) {
    gemmInt(KIND_Q6_K, w, x, y, rows, k, T, ldy);
    return;
  }
  kquantGemv(KIND_Q6_K, w, x, y, rows, nb, T, ldy);
}

// ------------------------------------------------------------------------------------- driver

function kquantGemv(kind: i32, w: usize, x: usize, y: usize, rows: i32, nb: i32, T: i32, ldy: i32): void {
  const gb = kind == KIND_Q4_K ? <usize>nb * 576 : scaleRegion(nb) + <usize>nb * 832;
  const yb = <usize>ldy << 2;
  const xb = <usize>nb * 292;
  const wb = <usize>nb << 9; // widened x per token (SIMD128)
  for (let t0 = 0; t0 < T; t0 += 4) {
    const nt = min(4, T - t0);
    const x0 = x + <usize>t0 * xb;
    if (!ASC_FEATURE_RELAXED_SIMD) prepWide(x0, nb, nt);
    let g = w;
    for (let r = 0; r < rows; r += 4) {
      const nr = min(rows - r, 4);
      const yr = y + (<usize>r << 2) + <usize>t0 * yb;
      for (let t = 0; t < nt; t++) {
        const xt = x0 + <usize>t * xb;
        const xw = SCRATCH + <usize>t * wb;
        storeLanes(yr + <usize>t * yb, kind == KIND_Q4_K ? q4kGemv(g, nb, xt, xw) : q6kGemv(g, nb, xt, xw), nr);
      }
      g += gb;
    }
  }
}
