// Relaxed-SIMD GEMM (T >= 4) for Q4_0, Q4_K and Q6_K weights: their quants (0..15, 0..63) are
// valid 7-bit operands of i16x8.relaxed_dot_i8x16_i7x16_s, which does 16 i8 x u7 products
// with pairwise sums in one instruction (the i16-panel path of gemm-int.ts does 8 per
// instruction and needs an i32 add for each). Relaxed build only (gemm-int.ts otherwise).
//
// Per pass over the weights (up to ~1 MiB of activations), tiles of 4 tokens:
// - activation tile, per weight block: L1 "quad steps" of 4 tokens x 4 consecutive x bytes
//   (16 B, i32 lanes = tokens), then L2 "pair steps" of 4 tokens x two i16 (16 B); dx [nb][4];
// - weight panel of a group (4 rows), per block: (L1 / F) times [F quad steps of 4 rows x 4
//   quants (16 B), then a flush scale vector (i16x8, pair form [s_r0, s_r0, s_r1, ...])], then
//   L2 pair steps of 4 rows x two i16; scales s1, s2 (f32x4 per block).
// - micro-kernel, per (group, tile) and token t: h_t += rdot(splat(x quad), quads) over F steps
//   (pair sums [r0, r0, r1, r1, ...] in i16), i_t += dot_i16x8_s(h_t, flush scale); the L2
//   steps add dot_i16x8_s(pair step, splat(x pair)) into i_t (l2 with s1) or j_t (own scale s2);
//   f_t += f32(i_t) * (s1 * dx_t) (+ f32(j_t) * (s2 * dx_t)).
//
// | type | L1 | F | flush scale | L2 steps (x pairs) | panel L2 | s1 | s2 |
// | Q4_0 | 8 | 8 | 1 | 1: (sum x, 0) | (-8, 0) | d | (s1) |
// | Q4_K | 64 | 8 | sub-block scale | 4: (B_2p, B_2p+1) sub-block sums | (m_2p, m_2p+1) | d | -dmin |
// | Q6_K | 64 | 2 | sub-block scale | 8: (bsums_2p, bsums_2p+1) | -32 (sc_2p, sc_2p+1) | d | (s1) |
// NOTE: i16 sums of F rdot results: Q4 8 x 2*15*127 = 30480, Q6_K 2 x 2*63*127 = 32004 (fit).

import { madd, f16x8Lo, f16x8Hi, storeLanes, transpose4Store, kv, K_I8_15, SCRATCH, SCRATCH_END, align64 } from "./common";
import { rdot16, q8kPairSums } from "./qcommon";
import {
  KIND_Q4_0, KIND_Q4_K, KIND_Q6_K, groupBytesOf, scaleRegion, rowBytePairs, q4kScaleLo, q4kScaleHi, q4kMinHi, q4kMinPair, q6Quant,
} from "./gemm-int";

@inline function l1Of(kind: i32): i32 {
  return kind == KIND_Q4_0 ? 8 : 64;
}
@inline function fOf(kind: i32): i32 {
  return kind == KIND_Q6_K ? 2 : 8;
}
@inline function l2Of(kind: i32): i32 {
  return kind == KIND_Q4_0 ? 1 : kind == KIND_Q4_K ? 4 : 8;
}
/** Panel bytes per block. */
@inline function panelBlockBytes(kind: i32): usize {
  const L1 = l1Of(kind);
  return <usize>(L1 + L1 / fOf(kind) + l2Of(kind)) << 4;
}
/** Tile bytes per block (4 tokens). */
@inline function tileBlockBytes(kind: i32): usize {
  return <usize>(l1Of(kind) + l2Of(kind)) << 4;
}
@inline function blockOf(kind: i32): i32 {
  return kind == KIND_Q4_0 ? 32 : 256;
}

// ------------------------------------------------------------------------------- weight panel

function buildPanelR(kind: i32, g: usize, nb: i32, pp: usize, ps: usize): void {
  const m = kv(K_I8_15);
  if (kind == KIND_Q4_0) {
    const q = g + scaleRegion(nb);
    const ones = i16x8.splat(1);
    const corr = i32x4.splat(0xfff8); // i16 pairs (-8, 0)
    for (let b = 0; b < nb; b++) {
      const qb = q + (<usize>b << 6);
      const pb = pp + <usize>b * (10 << 4);
      // elements 0..15: low nibbles of the 4 vectors; 16..31: high nibbles
      for (let c: usize = 0; c < 4; c++) {
        const v = v128.load(qb + (c << 4));
        v128.store(pb + (c << 4), v128.and(v, m));
        v128.store(pb + (c << 4), v128.and(i16x8.shr_u(v, 4), m), 64);
      }
      v128.store(pb, ones, 128);
      v128.store(pb, corr, 144);
      const d = f16x8Lo(v128.load64_zero(g + (<usize>b << 3)));
      v128.store(ps + (<usize>b << 5), d);
      v128.store(ps + (<usize>b << 5), d, 16);
    }
  } else if (kind == KIND_Q4_K) {
    for (let b = 0; b < nb; b++) {
      const p = g + <usize>b * 576;
      const pb = pp + <usize>b * (76 << 4);
      const A = v128.load(p, 16);
      const B = v128.load(p, 32);
      const C = v128.load(p, 48);
      const scLo = q4kScaleLo(A);
      const scHi = q4kScaleHi(A, C);
      const mLo = q4kScaleLo(B);
      const mHi = q4kMinHi(B, C);
      for (let c = 0; c < 4; c++) {
        const sc = c < 2 ? scLo : scHi;
        // sub-block 2c (low nibbles of vectors 8c..8c+7) then 2c + 1 (high nibbles), each 8
        // quad steps + its scale: 9 vectors per sub-block
        const o = pb + (<usize>(c * 18) << 4);
        for (let j: usize = 0; j < 8; j++) {
          const v = v128.load(p + 64 + ((<usize>(c << 3) + j) << 4));
          v128.store(o + (j << 4), v128.and(v, m));
          v128.store(o + (j << 4), v128.and(i16x8.shr_u(v, 4), m), 144);
        }
        v128.store(o, i16x8.extend_low_i8x16_u(rowBytePairs(sc, (c & 1) << 1)), 128);
        v128.store(o, i16x8.extend_low_i8x16_u(rowBytePairs(sc, ((c & 1) << 1) + 1)), 272);
      }
      for (let s = 0; s < 4; s++) v128.store(pb + (<usize>(72 + s) << 4), q4kMinPair(mLo, mHi, s));
      const dd = v128.load(p);
      v128.store(ps + (<usize>b << 5), f16x8Lo(dd));
      v128.store(ps + (<usize>b << 5), f32x4.neg(f16x8Hi(dd)), 16);
    }
  } else {
    // Q6_K: quad step e/4 for elements e = 128n + 32m + 4c + i (32n + 8m + c); after every 2
    // steps the scale of sub-block e/16 (so 3 vectors per 8 elements)
    const base = g + scaleRegion(nb);
    for (let b = 0; b < nb; b++) {
      const p = base + <usize>b * 832;
      const pb = pp + <usize>b * (104 << 4);
      for (let n = 0; n < 2; n++) {
        for (let c = 0; c < 8; c++) {
          const L0 = v128.load(p + (<usize>((n << 4) + c) << 4));
          const L1 = v128.load(p + (<usize>((n << 4) + 8 + c) << 4));
          const H = v128.load(p + 512 + (<usize>((n << 3) + c) << 4));
          for (let mm = 0; mm < 4; mm++) {
            const step = (n << 5) + (mm << 3) + c; // quad step index
            const o = pb + (<usize>((step >> 1) * 3 + (step & 1)) << 4);
            v128.store(o, q6Quant(L0, L1, H, mm));
            if ((step & 1) == 1) {
              const s = step >> 2; // sub-block (16 elements = 4 steps)
              v128.store(o + 16, i16x8.extend_low_i8x16_s(rowBytePairs(v128.load(p + 768 + (<usize>(s >> 2) << 4)), s & 3)));
            }
          }
        }
      }
      // offset: -32 sum_s sc_s bsums_s as 8 pair steps (sc_2p, sc_2p+1) * -32
      const k32 = i16x8.splat(-32);
      for (let s = 0; s < 8; s++) {
        const sv = v128.load(p + 768 + (<usize>(s >> 1) << 4)); // rows' scales 4v..4v+3, v = s / 2
        const sh = i32x4.shr_u(sv, (s & 1) << 4);
        const pr = i16x8.extend_low_i8x16_s(v128.shuffle<u8>(sh, sh, 0, 1, 4, 5, 8, 9, 12, 13, 0, 1, 4, 5, 8, 9, 12, 13));
        v128.store(pb + (<usize>(96 + s) << 4), i16x8.mul(pr, k32));
      }
      const d = f16x8Lo(v128.load64_zero(g + (<usize>b << 3)));
      v128.store(ps + (<usize>b << 5), d);
      v128.store(ps + (<usize>b << 5), d, 16);
    }
  }
}

// --------------------------------------------------------------------------- activation tiles

function buildTileR(kind: i32, x: usize, xb: usize, nb: i32, nt: i32, xt: usize, dxt: usize): void {
  const zero = i32x4.splat(0);
  const kb = kind != KIND_Q4_0;
  const ab: usize = kb ? 292 : 34;
  const tbb = tileBlockBytes(kind);
  const x1 = x + xb;
  const x2 = x1 + xb;
  const x3 = x2 + xb;
  const L1 = <usize>l1Of(kind);
  for (let b = 0; b < nb; b++) {
    const o = <usize>b * ab;
    const st = xt + <usize>b * tbb;
    let d: v128;
    if (kb) {
      d = v128.load32_zero(x + o);
      if (nt > 1) d = v128.load32_lane(x1 + o, d, 1);
      if (nt > 2) d = v128.load32_lane(x2 + o, d, 2);
      if (nt > 3) d = v128.load32_lane(x3 + o, d, 3);
    } else {
      let h = v128.load16_lane(x + o, zero, 0);
      if (nt > 1) h = v128.load16_lane(x1 + o, h, 1);
      if (nt > 2) h = v128.load16_lane(x2 + o, h, 2);
      if (nt > 3) h = v128.load16_lane(x3 + o, h, 3);
      d = f16x8Lo(h);
    }
    v128.store(dxt + (<usize>b << 4), d);
    const q = o + (kb ? 4 : 2);
    // 16 x bytes = 4 quads -> 4 quad steps
    for (let e: usize = 0; e < (L1 << 2); e += 16) {
      transpose4Store(
        st + (e << 2),
        v128.load(x + q + e),
        nt > 1 ? v128.load(x1 + q + e) : zero,
        nt > 2 ? v128.load(x2 + q + e) : zero,
        nt > 3 ? v128.load(x3 + q + e) : zero,
      );
    }
    const s2 = st + (L1 << 4);
    if (kind == KIND_Q4_0) {
      // (sum of the block's x, 0) per token
      let sv = i32x4.splat(0);
      sv = i32x4.replace_lane(sv, 0, blockSum(x + q));
      if (nt > 1) sv = i32x4.replace_lane(sv, 1, blockSum(x1 + q));
      if (nt > 2) sv = i32x4.replace_lane(sv, 2, blockSum(x2 + q));
      if (nt > 3) sv = i32x4.replace_lane(sv, 3, blockSum(x3 + q));
      v128.store(s2, sv);
    } else if (kind == KIND_Q4_K) {
      transpose4Store(
        s2,
        q8kPairSums(x + o),
        nt > 1 ? q8kPairSums(x1 + o) : zero,
        nt > 2 ? q8kPairSums(x2 + o) : zero,
        nt > 3 ? q8kPairSums(x3 + o) : zero,
      );
    } else {
      for (let h: usize = 0; h < 32; h += 16) {
        transpose4Store(
          s2 + (h << 2),
          v128.load(x + o + 260 + h),
          nt > 1 ? v128.load(x1 + o + 260 + h) : zero,
          nt > 2 ? v128.load(x2 + o + 260 + h) : zero,
          nt > 3 ? v128.load(x3 + o + 260 + h) : zero,
        );
      }
    }
  }
}

/** Sum of the 32 i8 at p as an i32 whose low 16 bits are the sum (|sum| <= 4064) and high bits 0. */
@inline function blockSum(p: usize): i32 {
  const s = i32x4.extadd_pairwise_i16x8_s(i16x8.add(i16x8.extadd_pairwise_i8x16_s(v128.load(p)), i16x8.extadd_pairwise_i8x16_s(v128.load(p, 16))));
  const u = i32x4.add(s, v128.shuffle<i32>(s, s, 2, 3, 0, 1));
  return (i32x4.extract_lane(u, 0) + i32x4.extract_lane(u, 1)) & 0xffff;
}

// -------------------------------------------------------------------------------- micro-kernel

function rqTile(
  pp: usize, ps: usize, xt: usize, dxt: usize, nb: i32, L1: i32, F: i32, L2: i32, l2sep: bool,
  y: usize, yb: usize, nr: i32, nt: i32,
): void {
  let f0 = f32x4.splat(0), f1 = f32x4.splat(0), f2 = f32x4.splat(0), f3 = f32x4.splat(0);
  if (ASC_FEATURE_RELAXED_SIMD) {
    const nFlush = L1 / F;
    for (let b = 0; b < nb; b++) {
      let i0 = i32x4.splat(0), i1 = i32x4.splat(0), i2 = i32x4.splat(0), i3 = i32x4.splat(0);
      for (let fl = 0; fl < nFlush; fl++) {
        let h0 = i16x8.splat(0), h1 = i16x8.splat(0), h2 = i16x8.splat(0), h3 = i16x8.splat(0);
        const e = pp + (<usize>F << 4);
        for (; pp < e; pp += 16) {
          const w = v128.load(pp);
          h0 = i16x8.add(h0, rdot16(v128.load32_splat(xt), w));
          h1 = i16x8.add(h1, rdot16(v128.load32_splat(xt, 4), w));
          h2 = i16x8.add(h2, rdot16(v128.load32_splat(xt, 8), w));
          h3 = i16x8.add(h3, rdot16(v128.load32_splat(xt, 12), w));
          xt += 16;
        }
        const sv = v128.load(pp);
        pp += 16;
        i0 = i32x4.add(i0, i32x4.dot_i16x8_s(h0, sv));
        i1 = i32x4.add(i1, i32x4.dot_i16x8_s(h1, sv));
        i2 = i32x4.add(i2, i32x4.dot_i16x8_s(h2, sv));
        i3 = i32x4.add(i3, i32x4.dot_i16x8_s(h3, sv));
      }
      let j0 = i32x4.splat(0), j1 = i32x4.splat(0), j2 = i32x4.splat(0), j3 = i32x4.splat(0);
      const e2 = pp + (<usize>L2 << 4);
      for (; pp < e2; pp += 16) {
        const w = v128.load(pp);
        j0 = i32x4.add(j0, i32x4.dot_i16x8_s(w, v128.load32_splat(xt)));
        j1 = i32x4.add(j1, i32x4.dot_i16x8_s(w, v128.load32_splat(xt, 4)));
        j2 = i32x4.add(j2, i32x4.dot_i16x8_s(w, v128.load32_splat(xt, 8)));
        j3 = i32x4.add(j3, i32x4.dot_i16x8_s(w, v128.load32_splat(xt, 12)));
        xt += 16;
      }
      const s1 = v128.load(ps);
      if (!l2sep) {
        i0 = i32x4.add(i0, j0);
        i1 = i32x4.add(i1, j1);
        i2 = i32x4.add(i2, j2);
        i3 = i32x4.add(i3, j3);
      }
      f0 = madd(f32x4.convert_i32x4_s(i0), f32x4.mul(s1, v128.load32_splat(dxt)), f0);
      f1 = madd(f32x4.convert_i32x4_s(i1), f32x4.mul(s1, v128.load32_splat(dxt, 4)), f1);
      f2 = madd(f32x4.convert_i32x4_s(i2), f32x4.mul(s1, v128.load32_splat(dxt, 8)), f2);
      f3 = madd(f32x4.convert_i32x4_s(i3), f32x4.mul(s1, v128.load32_splat(dxt, 12)), f3);
      if (l2sep) {
        const s2 = v128.load(ps, 16);
        f0 = madd(f32x4.convert_i32x4_s(j0), f32x4.mul(s2, v128.load32_splat(dxt)), f0);
        f1 = madd(f32x4.convert_i32x4_s(j1), f32x4.mul(s2, v128.load32_splat(dxt, 4)), f1);
        f2 = madd(f32x4.convert_i32x4_s(j2), f32x4.mul(s2, v128.load32_splat(dxt, 8)), f2);
        f3 = madd(f32x4.convert_i32x4_s(j3), f32x4.mul(s2, v128.load32_splat(dxt, 12)), f3);
      }
      ps += 32;
      dxt += 16;
    }
  }
  storeLanes(y, f0, nr);
  if (nt > 1) storeLanes(y + yb, f1, nr);
  if (nt > 2) storeLanes(y + 2 * yb, f2, nr);
  if (nt > 3) storeLanes(y + 3 * yb, f3, nr);
}

// ------------------------------------------------------------------------------------- driver

/** Tokens per pass (multiple of 4), or 0 when the panel and one tile do not fit the scratch. */
export function rqPassTokens(kind: i32, k: i32, T: i32): i32 {
  const nb = <usize>(k / blockOf(kind));
  const panel = align64(nb * panelBlockBytes(kind)) + align64(nb << 5);
  const tile = align64(nb * tileBlockBytes(kind)) + align64(nb << 4);
  const room = SCRATCH_END - SCRATCH;
  if (nb == 0 || panel + tile > room) return 0;
  const budget = min(room - panel, max(tile, <usize>(1 << 20)));
  return <i32>min((budget / tile) << 2, <usize>(T + 3) & ~<usize>3);
}

export function gemmRq(kind: i32, w: usize, x: usize, y: usize, rows: i32, k: i32, T: i32, ldy: i32): void {
  const nb = k / blockOf(kind);
  const gb = groupBytesOf(kind, nb);
  const xb = <usize>nb * (kind == KIND_Q4_0 ? 34 : 292);
  const yb = <usize>ldy << 2;
  const TB = rqPassTokens(kind, k, T);
  const pp = SCRATCH;
  const ps = pp + align64(<usize>nb * panelBlockBytes(kind));
  const tiles = ps + align64(<usize>nb << 5);
  const stepBytes = align64(<usize>nb * tileBlockBytes(kind));
  const tileBytes = stepBytes + align64(<usize>nb << 4);
  const L1 = l1Of(kind);
  const F = fOf(kind);
  const L2 = l2Of(kind);
  const sep = kind == KIND_Q4_K;
  for (let t0 = 0; t0 < T; t0 += TB) {
    const nt = min(TB, T - t0);
    for (let tt = 0; tt < nt; tt += 4) {
      const tile = tiles + <usize>(tt >> 2) * tileBytes;
      buildTileR(kind, x + <usize>(t0 + tt) * xb, xb, nb, min(4, nt - tt), tile, tile + stepBytes);
    }
    let g = w;
    for (let r = 0; r < rows; r += 4) {
      buildPanelR(kind, g, nb, pp, ps);
      const yr = y + (<usize>r << 2) + <usize>t0 * yb;
      const nr = min(rows - r, 4);
      for (let tt = 0; tt < nt; tt += 4) {
        const tile = tiles + <usize>(tt >> 2) * tileBytes;
        rqTile(pp, ps, tile, tile + stepBytes, nb, L1, F, L2, sep, yr + <usize>tt * yb, yb, nr, min(4, nt - tt));
      }
      g += gb;
    }
  }
}
