// The non-matmul kernels: rmsnorm, rope, attention, swiglu, add, addBias. f32 throughout;
// pointers are byte offsets, counts are elements. See src/kernels/kernel-set.ts for semantics.

import { madd, hsum, hsum4, expNeg, align64, f16x8Lo, f16x8Hi, f16ToF32, f32ToF16Bits, SCRATCH, SCRATCH_END } from "./common";
import { quantizeQ8_0 } from "./quantize";

/**
 * out[t, i] = (x[t, i] * scale_t) * w[i], scale_t = 1 / sqrtf(f32(sum_i f64(x*x) / n) + eps):
 * ggml's rms_norm (squares rounded to f32, summed in f64; here in 4 interleaved f64 partial
 * sums) fused with the weight multiply. out may equal x.
 */
export function rmsnorm(x: usize, w: usize, out: usize, n: i32, T: i32, eps: f32): void {
  const rb = <usize>n << 2;
  const end4 = <usize>(n & ~3) << 2;
  for (let t = 0; t < T; t++) {
    let s0 = f64x2.splat(0);
    let s1 = f64x2.splat(0);
    let o: usize = 0;
    for (; o < end4; o += 16) {
      const v = v128.load(x + o);
      const sq = f32x4.mul(v, v);
      s0 = f64x2.add(s0, f64x2.promote_low_f32x4(sq));
      s1 = f64x2.add(s1, f64x2.promote_low_f32x4(v128.shuffle<f32>(sq, sq, 2, 3, 0, 1)));
    }
    const s = f64x2.add(s0, s1);
    let sum = f64x2.extract_lane(s, 0) + f64x2.extract_lane(s, 1);
    for (; o < rb; o += 4) {
      const v = load<f32>(x + o);
      sum += <f64>(v * v);
    }
    const mean = <f32>(sum / <f64>n);
    const scale: f32 = <f32>1 / sqrt<f32>(mean + eps);
    const sv = f32x4.splat(scale);
    o = 0;
    for (; o < end4; o += 16) {
      v128.store(out + o, f32x4.mul(f32x4.mul(v128.load(x + o), sv), v128.load(w + o)));
    }
    for (; o < rb; o += 4) {
      store<f32>(out + o, (load<f32>(x + o) * scale) * load<f32>(w + o));
    }
    x += rb;
    out += rb;
  }
}

/**
 * In-place rotation of the first nRot dims of nHeads heads of T rows (x: [T][rowStride] f32,
 * head h of row t at element t*rowStride + h*headDim; cosSin: [T][nRot/2][cos, sin]).
 * normal: pairs (2i, 2i+1); neox: pairs (i, i + nRot/2). Each output is computed as the
 * scalar ggml expression in f32 (x0*c - x1*s, x0*s + x1*c, no fused multiply-add), so the
 * results are bit-identical to the reference.
 */
export function rope(x: usize, cosSin: usize, T: i32, nHeads: i32, headDim: i32, nRot: i32, rowStride: i32, neox: i32): void {
  const half = nRot >> 1;
  const csRow = <usize>nRot << 2; // bytes of cosSin per row: nRot/2 pairs of 2 floats
  const negEven = i32x4(0x80000000, 0, 0x80000000, 0);
  for (let t = 0; t < T; t++) {
    const cs = cosSin + <usize>t * csRow;
    for (let h = 0; h < nHeads; h++) {
      const p = x + ((<usize>t * <usize>rowStride + <usize>h * <usize>headDim) << 2);
      if (neox == 0) {
        // 2 pairs per vector: (x0 x1 x2 x3) with (c0 s0 c1 s1)
        let i = 0;
        for (; i + 2 <= half; i += 2) {
          const o = <usize>i << 3;
          const v = v128.load(p + o);
          const c = v128.load(cs + o);
          const cc = v128.shuffle<f32>(c, c, 0, 0, 2, 2);
          const ss = v128.shuffle<f32>(c, c, 1, 1, 3, 3);
          const vs = v128.shuffle<f32>(v, v, 1, 0, 3, 2);
          v128.store(p + o, f32x4.add(f32x4.mul(v, cc), v128.xor(f32x4.mul(vs, ss), negEven)));
        }
        if (i < half) {
          const o = <usize>i << 3;
          const x0 = load<f32>(p + o);
          const x1 = load<f32>(p + o, 4);
          const c = load<f32>(cs + o);
          const s = load<f32>(cs + o, 4);
          store<f32>(p + o, x0 * c - x1 * s);
          store<f32>(p + o, x0 * s + x1 * c, 4);
        }
      } else {
        const q = p + (<usize>half << 2);
        let i = 0;
        for (; i + 4 <= half; i += 4) {
          const o = <usize>i << 2;
          const a = v128.load(p + o);
          const b = v128.load(q + o);
          const c0 = v128.load(cs + (o << 1));
          const c1 = v128.load(cs + (o << 1), 16);
          const c = v128.shuffle<f32>(c0, c1, 0, 2, 4, 6);
          const s = v128.shuffle<f32>(c0, c1, 1, 3, 5, 7);
          v128.store(p + o, f32x4.sub(f32x4.mul(a, c), f32x4.mul(b, s)));
          v128.store(q + o, f32x4.add(f32x4.mul(a, s), f32x4.mul(b, c)));
        }
        for (; i < half; i++) {
          const o = <usize>i << 2;
          const x0 = load<f32>(p + o);
          const x1 = load<f32>(q + o);
          const c = load<f32>(cs + (o << 1));
          const s = load<f32>(cs + (o << 1), 4);
          store<f32>(p + o, x0 * c - x1 * s);
          store<f32>(q + o, x0 * s + x1 * c);
        }
      }
    }
  }
}

/** dot of n f32 at a and b (n any; 2 accumulators of 2 vectors per step, scalar tail). */
@inline function dotF32(a: usize, b: usize, n: i32): f32 {
  let s0 = f32x4.splat(0);
  let s1 = f32x4.splat(0);
  const end8 = <usize>(n & ~7) << 2;
  let o: usize = 0;
  for (; o < end8; o += 32) {
    s0 = madd(v128.load(a + o), v128.load(b + o), s0);
    s1 = madd(v128.load(a + o, 16), v128.load(b + o, 16), s1);
  }
  if (n & 4) {
    s0 = madd(v128.load(a + o), v128.load(b + o), s0);
    o += 16;
  }
  let s = hsum(f32x4.add(s0, s1));
  const end = <usize>n << 2;
  for (; o < end; o += 4) s += load<f32>(a + o) * load<f32>(b + o);
  return s;
}

/**
 * [q.k0, q.k1, q.k2, q.k3] for 4 keys `stride` bytes apart (n a multiple of 4): 8 independent
 * accumulators (2 per key), one horizontal sum.
 */
@inline function dot4F32(q: usize, k: usize, stride: usize, n: i32): v128 {
  let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
  let b0 = f32x4.splat(0), b1 = f32x4.splat(0), b2 = f32x4.splat(0), b3 = f32x4.splat(0);
  const k1 = k + stride;
  const k2 = k1 + stride;
  const k3 = k2 + stride;
  const end8 = <usize>(n & ~7) << 2;
  let o: usize = 0;
  for (; o < end8; o += 32) {
    const x = v128.load(q + o);
    const y = v128.load(q + o, 16);
    a0 = madd(x, v128.load(k + o), a0);
    a1 = madd(x, v128.load(k1 + o), a1);
    a2 = madd(x, v128.load(k2 + o), a2);
    a3 = madd(x, v128.load(k3 + o), a3);
    b0 = madd(y, v128.load(k + o, 16), b0);
    b1 = madd(y, v128.load(k1 + o, 16), b1);
    b2 = madd(y, v128.load(k2 + o, 16), b2);
    b3 = madd(y, v128.load(k3 + o, 16), b3);
  }
  if (n & 4) {
    const x = v128.load(q + o);
    a0 = madd(x, v128.load(k + o), a0);
    a1 = madd(x, v128.load(k1 + o), a1);
    a2 = madd(x, v128.load(k2 + o), a2);
    a3 = madd(x, v128.load(k3 + o), a3);
  }
  return hsum4(f32x4.add(a0, b0), f32x4.add(a1, b1), f32x4.add(a2, b2), f32x4.add(a3, b3));
}

/**
 * Scores of one query head over nKeys keys into sp (e_j = exp(s_j - max)); returns 1 / sum e_j
 * (sum in f64). kBase: the pool plus the KV head's offset inside a block.
 */
function scoresExp(
  qh: usize, kBase: usize, blockTable: usize, nKeys: i32, headDim: i32, blockSize: i32, blockBytes: usize, scale: f32, sp: usize,
): f32 {
  const headBytes = <usize>headDim << 2;
  const nBlocks = (nKeys + blockSize - 1) / blockSize;
  // scores, 4 keys at a time (independent dot products, one horizontal sum for all 4)
  let mxv = f32x4.splat(-Infinity);
  let mx = -Infinity;
  let j = 0;
  const sv = f32x4.splat(scale);
  for (let bi = 0; bi < nBlocks; bi++) {
    const blk = <usize>load<i32>(blockTable + (<usize>bi << 2));
    let kp = kBase + blk * blockBytes;
    const n = min(blockSize, nKeys - j);
    let i = 0;
    if ((headDim & 3) == 0) {
      for (; i + 4 <= n; i += 4) {
        const s4 = f32x4.mul(sv, dot4F32(qh, kp, headBytes, headDim));
        v128.store(sp + (<usize>(j + i) << 2), s4);
        mxv = f32x4.max(mxv, s4);
        kp += headBytes << 2;
      }
    }
    for (; i < n; i++) {
      const s = scale * dotF32(qh, kp, headDim);
      store<f32>(sp + (<usize>(j + i) << 2), s);
      mx = max(mx, s);
      kp += headBytes;
    }
    j += n;
  }
  mxv = f32x4.max(mxv, v128.shuffle<f32>(mxv, mxv, 2, 3, 0, 1));
  mx = max(mx, max(f32x4.extract_lane(mxv, 0), f32x4.extract_lane(mxv, 1)));
  // e_j = exp(s_j - max), sum in f64
  const mv = f32x4.splat(<f32>mx);
  let sum0 = f64x2.splat(0);
  let sum1 = f64x2.splat(0);
  const end4 = <usize>(nKeys & ~3) << 2;
  let o: usize = 0;
  for (; o < end4; o += 16) {
    const e = expNeg(f32x4.sub(v128.load(sp + o), mv));
    v128.store(sp + o, e);
    sum0 = f64x2.add(sum0, f64x2.promote_low_f32x4(e));
    sum1 = f64x2.add(sum1, f64x2.promote_low_f32x4(v128.shuffle<f32>(e, e, 2, 3, 0, 1)));
  }
  const ss = f64x2.add(sum0, sum1);
  let sum = f64x2.extract_lane(ss, 0) + f64x2.extract_lane(ss, 1);
  const endK = <usize>nKeys << 2;
  for (; o < endK; o += 4) {
    const e = f32x4.extract_lane(expNeg(f32x4.splat(load<f32>(sp + o) - <f32>mx)), 0);
    store<f32>(sp + o, e);
    sum += <f64>e;
  }
  return <f32>(1.0 / sum);
}

/** out[d] = inv * sum_j e_j v_j[d] for one head (e at sp); vBase: pool plus the KV head's offset. */
function weightedValues(
  oh: usize, sp: usize, inv1: f32, vBase: usize, blockTable: usize, nKeys: i32, headDim: i32, blockSize: i32, blockBytes: usize,
): void {
  const headBytes = <usize>headDim << 2;
  const nBlocks = (nKeys + blockSize - 1) / blockSize;
  const inv = f32x4.splat(inv1);
  let d = 0;
  for (; d + 16 <= headDim; d += 16) {
    const dOff = <usize>d << 2;
    let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
    let j = 0;
    for (let bi = 0; bi < nBlocks; bi++) {
      const blk = <usize>load<i32>(blockTable + (<usize>bi << 2));
      let vp = vBase + blk * blockBytes + dOff;
      const n = min(blockSize, nKeys - j);
      let p = sp + (<usize>j << 2);
      for (let i = 0; i < n; i++) {
        const e = v128.load32_splat(p);
        a0 = madd(e, v128.load(vp), a0);
        a1 = madd(e, v128.load(vp, 16), a1);
        a2 = madd(e, v128.load(vp, 32), a2);
        a3 = madd(e, v128.load(vp, 48), a3);
        vp += headBytes;
        p += 4;
      }
      j += n;
    }
    v128.store(oh + dOff, f32x4.mul(a0, inv));
    v128.store(oh + dOff, f32x4.mul(a1, inv), 16);
    v128.store(oh + dOff, f32x4.mul(a2, inv), 32);
    v128.store(oh + dOff, f32x4.mul(a3, inv), 48);
  }
  for (; d + 4 <= headDim; d += 4) {
    const dOff = <usize>d << 2;
    let a0 = f32x4.splat(0);
    let j = 0;
    for (let bi = 0; bi < nBlocks; bi++) {
      const blk = <usize>load<i32>(blockTable + (<usize>bi << 2));
      let vp = vBase + blk * blockBytes + dOff;
      const n = min(blockSize, nKeys - j);
      let p = sp + (<usize>j << 2);
      for (let i = 0; i < n; i++) {
        a0 = madd(v128.load32_splat(p), v128.load(vp), a0);
        vp += headBytes;
        p += 4;
      }
      j += n;
    }
    v128.store(oh + dOff, f32x4.mul(a0, inv));
  }
  for (; d < headDim; d++) {
    const dOff = <usize>d << 2;
    let a: f32 = 0;
    let j = 0;
    for (let bi = 0; bi < nBlocks; bi++) {
      const blk = <usize>load<i32>(blockTable + (<usize>bi << 2));
      let vp = vBase + blk * blockBytes + dOff;
      const n = min(blockSize, nKeys - j);
      for (let i = 0; i < n; i++) {
        a += load<f32>(sp + (<usize>(j + i) << 2)) * load<f32>(vp);
        vp += headBytes;
      }
      j += n;
    }
    store<f32>(oh + dOff, a * inv1);
  }
}

/**
 * weightedValues for two heads sharing a KV head (e at sp and sq): each V vector is loaded once
 * for both; 8 independent accumulators (the one-head loop is latency-bound on 4). headDim % 16 == 0.
 */
function weightedValues2(
  oh: usize, og: usize, sp: usize, sq: usize, inv1: f32, inv2: f32, vBase: usize, blockTable: usize, nKeys: i32, headDim: i32,
  blockSize: i32, blockBytes: usize,
): void {
  const headBytes = <usize>headDim << 2;
  const nBlocks = (nKeys + blockSize - 1) / blockSize;
  const iv = f32x4.splat(inv1);
  const iw = f32x4.splat(inv2);
  const dq = sq - sp;
  for (let d = 0; d < headDim; d += 16) {
    const dOff = <usize>d << 2;
    let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
    let b0 = f32x4.splat(0), b1 = f32x4.splat(0), b2 = f32x4.splat(0), b3 = f32x4.splat(0);
    let j = 0;
    for (let bi = 0; bi < nBlocks; bi++) {
      const blk = <usize>load<i32>(blockTable + (<usize>bi << 2));
      let vp = vBase + blk * blockBytes + dOff;
      const n = min(blockSize, nKeys - j);
      let p = sp + (<usize>j << 2);
      for (let i = 0; i < n; i++) {
        const e = v128.load32_splat(p);
        const f = v128.load32_splat(p + dq);
        const v0 = v128.load(vp);
        const v1 = v128.load(vp, 16);
        const v2 = v128.load(vp, 32);
        const v3 = v128.load(vp, 48);
        a0 = madd(e, v0, a0);
        b0 = madd(f, v0, b0);
        a1 = madd(e, v1, a1);
        b1 = madd(f, v1, b1);
        a2 = madd(e, v2, a2);
        b2 = madd(f, v2, b2);
        a3 = madd(e, v3, a3);
        b3 = madd(f, v3, b3);
        vp += headBytes;
        p += 4;
      }
      j += n;
    }
    v128.store(oh + dOff, f32x4.mul(a0, iv));
    v128.store(oh + dOff, f32x4.mul(a1, iv), 16);
    v128.store(oh + dOff, f32x4.mul(a2, iv), 32);
    v128.store(oh + dOff, f32x4.mul(a3, iv), 48);
    v128.store(og + dOff, f32x4.mul(b0, iw));
    v128.store(og + dOff, f32x4.mul(b1, iw), 16);
    v128.store(og + dOff, f32x4.mul(b2, iw), 32);
    v128.store(og + dOff, f32x4.mul(b3, iw), 48);
  }
}

/** KV cache row types (attention's kvType, storeKv's type): rows of headDim values. */
export const KV_F32: i32 = 0;
export const KV_F16: i32 = 1;
export const KV_Q8_0: i32 = 2;

/** Bytes of one cached row of n values (Q8_0: n % 32 == 0, 34-byte blocks). */
@inline function kvRowBytes(type: i32, n: i32): usize {
  return type == KV_F32 ? <usize>n << 2 : type == KV_F16 ? <usize>n << 1 : <usize>(n >> 5) * 34;
}

/**
 * Store n f32 values at x as one KV row of `type` at dst: F32 copied, F16 rounded to nearest
 * even (f32ToF16Bits), Q8_0 as quantizeQ8_0 (llama.cpp's quantize_row_q8_0).
 */
export function storeKv(type: i32, x: usize, dst: usize, n: i32): void {
  if (type == KV_F32) {
    memory.copy(dst, x, <usize>n << 2);
  } else if (type == KV_F16) {
    for (let i = 0; i < n; i++) store<u16>(dst + (<usize>i << 1), <u16>f32ToF16Bits(load<f32>(x + (<usize>i << 2))));
  } else {
    quantizeQ8_0(x, dst, n >> 5);
  }
}

/** One KV row of `type` at src -> n f32 at dst (F16 exact, inf/NaN included; Q8_0: d * q). */
function loadKvRow(type: i32, src: usize, dst: usize, n: i32): void {
  if (type == KV_F16) {
    let i = 0;
    for (; i + 8 <= n; i += 8) {
      const h = v128.load(src + (<usize>i << 1));
      v128.store(dst + (<usize>i << 2), f16x8Lo(h));
      v128.store(dst + (<usize>i << 2), f16x8Hi(h), 16);
    }
    for (; i < n; i++) store<f32>(dst + (<usize>i << 2), f16ToF32(<u32>load<u16>(src + (<usize>i << 1))));
  } else {
    for (let b = 0; b < (n >> 5); b++) {
      const blk = src + <usize>b * 34;
      const d = f32x4.splat(f16ToF32(<u32>load<u16>(blk)));
      const o = dst + (<usize>b << 7);
      for (let c = 0; c < 2; c++) {
        const q = v128.load(blk + 2 + (<usize>c << 4));
        const lo = i16x8.extend_low_i8x16_s(q);
        const hi = i16x8.extend_high_i8x16_s(q);
        const oc = o + (<usize>c << 6);
        v128.store(oc, f32x4.mul(d, f32x4.convert_i32x4_s(i32x4.extend_low_i16x8_s(lo))));
        v128.store(oc, f32x4.mul(d, f32x4.convert_i32x4_s(i32x4.extend_high_i16x8_s(lo))), 16);
        v128.store(oc, f32x4.mul(d, f32x4.convert_i32x4_s(i32x4.extend_low_i16x8_s(hi))), 32);
        v128.store(oc, f32x4.mul(d, f32x4.convert_i32x4_s(i32x4.extend_high_i16x8_s(hi))), 48);
      }
    }
  }
}

/**
 * Causal attention of one query token over nKeys cached positions (see kernel-set.ts).
 * Per query head: scores s_j = scale * (q . k_j); softmax with the max subtracted, exp (expNeg,
 * ~1 ulp) and the sum in f64; out = (sum_j e_j v_j) * f32(1/sum).
 * KV pools: [block][nKvHeads][blockSize][row] with rows of kvType (F32: headDim f32); blockTable:
 * i32 block ids. The query heads of one KV head are done in pairs when their scores fit the
 * kernel scratch (then `scratch` is unused for scores), else one at a time in `scratch`.
 * F16/Q8_0 rows are first converted, per KV head, to f32 rows in `scratch` after the scores
 * (see attentionScratchBytes in kernel-set.ts). nKeys = 0 writes zeros.
 */
export function attention(
  q: usize, out: usize, kCache: usize, vCache: usize, blockTable: usize, nKeys: i32, nHeads: i32,
  nKvHeads: i32, headDim: i32, blockSize: i32, scale: f32, scratch: usize, kvType: i32,
): void {
  const group = nHeads / nKvHeads;
  const headBytes = <usize>headDim << 2;
  if (nKeys <= 0) {
    memory.fill(out, 0, <usize>nHeads * headBytes);
    return;
  }
  const rowBytes = align64(<usize>nKeys << 2);
  const paired = group >= 2 && (headDim & 15) == 0 && (rowBytes << 1) <= SCRATCH_END - SCRATCH;
  if (kvType == KV_F32) {
    const blockBytes = <usize>nKvHeads * <usize>blockSize * headBytes;
    for (let g = 0; g < nKvHeads; g++) {
      const headOff = <usize>g * <usize>blockSize * headBytes;
      attendKvHead(q, out, g * group, group, kCache + headOff, vCache + headOff, blockTable, nKeys, headDim, blockSize, blockBytes, scale, scratch, paired, rowBytes);
    }
    return;
  }
  // converted rows: K then V, [nKeys][headDim] f32 each, read as one block of nKeys positions
  const qRow = kvRowBytes(kvType, headDim);
  const qBlockBytes = <usize>nKvHeads * <usize>blockSize * qRow;
  const kTmp = scratch + rowBytes;
  const vTmp = kTmp + align64(<usize>nKeys * headBytes);
  const oneBlock = vTmp + align64(<usize>nKeys * headBytes);
  store<i32>(oneBlock, 0);
  for (let g = 0; g < nKvHeads; g++) {
    const headOff = <usize>g * <usize>blockSize * qRow;
    let j = 0;
    for (let bi = 0; j < nKeys; bi++) {
      const blk = <usize>load<i32>(blockTable + (<usize>bi << 2));
      const n = min(blockSize, nKeys - j);
      for (let i = 0; i < n; i++) {
        const src = blk * qBlockBytes + headOff + <usize>i * qRow;
        loadKvRow(kvType, kCache + src, kTmp + <usize>(j + i) * headBytes, headDim);
        loadKvRow(kvType, vCache + src, vTmp + <usize>(j + i) * headBytes, headDim);
      }
      j += n;
    }
    attendKvHead(q, out, g * group, group, kTmp, vTmp, oneBlock, nKeys, headDim, nKeys, 0, scale, scratch, paired, rowBytes);
  }
}

/** The query heads h0 .. h0+group-1 of one KV head (kBase, vBase: the head's offset in the pools). */
function attendKvHead(
  q: usize, out: usize, h0: i32, group: i32, kBase: usize, vBase: usize, blockTable: usize, nKeys: i32, headDim: i32,
  blockSize: i32, blockBytes: usize, scale: f32, scratch: usize, paired: bool, rowBytes: usize,
): void {
  const headBytes = <usize>headDim << 2;
  let h = h0;
  const hEnd = h + group;
  if (paired) {
    for (; h + 2 <= hEnd; h += 2) {
      const s0 = SCRATCH;
      const s1 = SCRATCH + rowBytes;
      const oh = out + <usize>h * headBytes;
      const inv0 = scoresExp(q + <usize>h * headBytes, kBase, blockTable, nKeys, headDim, blockSize, blockBytes, scale, s0);
      const inv1 = scoresExp(q + <usize>(h + 1) * headBytes, kBase, blockTable, nKeys, headDim, blockSize, blockBytes, scale, s1);
      weightedValues2(oh, oh + headBytes, s0, s1, inv0, inv1, vBase, blockTable, nKeys, headDim, blockSize, blockBytes);
    }
  }
  for (; h < hEnd; h++) {
    const inv = scoresExp(q + <usize>h * headBytes, kBase, blockTable, nKeys, headDim, blockSize, blockBytes, scale, scratch);
    weightedValues(out + <usize>h * headBytes, scratch, inv, vBase, blockTable, nKeys, headDim, blockSize, blockBytes);
  }
}

/** silu(g) * u = (g * sigmoid(g)) * u with sigmoid from e = exp(-|g|): 1/(1+e) or e/(1+e). */
@inline function swigluV(g: v128, u: v128): v128 {
  const e = expNeg(f32x4.neg(f32x4.abs(g)));
  const one = f32x4.splat(1);
  const num = v128.bitselect(one, e, f32x4.ge(g, f32x4.splat(0)));
  return f32x4.mul(f32x4.mul(g, f32x4.div(num, f32x4.add(one, e))), u);
}

/** out[i] = silu(gate[i]) * up[i]; out may alias either input. Error: a few ulp (expNeg ~1 ulp). */
export function swiglu(gate: usize, up: usize, out: usize, n: i32): void {
  const end8 = <usize>(n & ~7) << 2;
  let o: usize = 0;
  for (; o < end8; o += 32) {
    const g0 = v128.load(gate + o);
    const g1 = v128.load(gate + o, 16);
    const u0 = v128.load(up + o);
    const u1 = v128.load(up + o, 16);
    v128.store(out + o, swigluV(g0, u0));
    v128.store(out + o, swigluV(g1, u1), 16);
  }
  const end = <usize>n << 2;
  for (; o < end; o += 4) {
    store<f32>(out + o, f32x4.extract_lane(swigluV(f32x4.splat(load<f32>(gate + o)), f32x4.splat(load<f32>(up + o))), 0));
  }
}

/** out[i] = a[i] + b[i]; out may alias either input. */
export function add(a: usize, b: usize, out: usize, n: i32): void {
  const end8 = <usize>(n & ~7) << 2;
  let o: usize = 0;
  for (; o < end8; o += 32) {
    const x0 = f32x4.add(v128.load(a + o), v128.load(b + o));
    const x1 = f32x4.add(v128.load(a + o, 16), v128.load(b + o, 16));
    v128.store(out + o, x0);
    v128.store(out + o, x1, 16);
  }
  const end = <usize>n << 2;
  for (; o < end; o += 4) store<f32>(out + o, load<f32>(a + o) + load<f32>(b + o));
}

/** x[t*rowStride + i] += bias[i], i < n, t < T. */
export function addBias(x: usize, bias: usize, n: i32, T: i32, rowStride: i32): void {
  const rs = <usize>rowStride << 2;
  for (let t = 0; t < T; t++) {
    add(x, bias, x, n);
    x += rs;
  }
}

/** memmove of n bytes. */
export function copyBytes(src: usize, dst: usize, n: usize): void {
  memory.copy(dst, src, n);
}

/**
 * Memory-read probe: XOR of the n bytes at p taken as little-endian i32 words (bytes past the
 * last whole word padded with zeros), 8 independent v128 accumulators. For measuring the read
 * bandwidth from WebAssembly (scripts/kernel-speed.mjs); the result only keeps the loads alive.
 */
export function readBytes(p: usize, n: usize): i32 {
  let a0 = i32x4.splat(0), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
  const end = p + (n & ~<usize>127);
  for (; p < end; p += 128) {
    a0 = v128.xor(a0, v128.load(p));
    a1 = v128.xor(a1, v128.load(p, 16));
    a2 = v128.xor(a2, v128.load(p, 32));
    a3 = v128.xor(a3, v128.load(p, 48));
    a4 = v128.xor(a4, v128.load(p, 64));
    a5 = v128.xor(a5, v128.load(p, 80));
    a6 = v128.xor(a6, v128.load(p, 96));
    a7 = v128.xor(a7, v128.load(p, 112));
  }
  const a = v128.xor(v128.xor(v128.xor(a0, a1), v128.xor(a2, a3)), v128.xor(v128.xor(a4, a5), v128.xor(a6, a7)));
  let r = i32x4.extract_lane(a, 0) ^ i32x4.extract_lane(a, 1) ^ i32x4.extract_lane(a, 2) ^ i32x4.extract_lane(a, 3);
  let rest = n & 127;
  for (; rest >= 4; rest -= 4) {
    r ^= load<i32>(p);
    p += 4;
  }
  // tail bytes: byte i of the last partial word at bits 8i
  for (let i: usize = 0; i < rest; i++) r ^= <i32>load<u8>(p + i) << (<i32>i << 3);
  return r;
}

/**
 * The byte interleave of src/kernels/packing.ts (packRows) for one field of `groups` groups of
 * 4 rows, all offsets in bytes inside this memory: row r of group g at s + (4g + r) * rs, block b
 * at + b * bs, n bytes per block; written at d + g * gs + b * ds, chunk j of row r at
 * + 4 * chunk * j + chunk * r. chunk: 2 or 4 (n a multiple of it).
 */
export function packInterleave(s: usize, rs: usize, bs: usize, n: usize, nb: i32, d: usize, ds: usize, groups: i32, gs: usize, chunk: i32): void {
  for (let g = 0; g < groups; g++) {
    const a = s + <usize>(g << 2) * rs;
    for (let b = 0; b < nb; b++) {
      const a0 = a + <usize>b * bs;
      const a1 = a0 + rs;
      const a2 = a1 + rs;
      const a3 = a2 + rs;
      let o = d + <usize>g * gs + <usize>b * ds;
      if (chunk == 2) {
        let j: usize = 0;
        for (; j + 8 <= n; j += 8) {
          // 4 chunks of each row -> 16 interleaved chunks (two 16-byte stores)
          const r0 = v128.load64_zero(a0 + j);
          const r1 = v128.load64_zero(a1 + j);
          const r2 = v128.load64_zero(a2 + j);
          const r3 = v128.load64_zero(a3 + j);
          const p01 = v128.shuffle<u16>(r0, r1, 0, 8, 1, 9, 2, 10, 3, 11);
          const p23 = v128.shuffle<u16>(r2, r3, 0, 8, 1, 9, 2, 10, 3, 11);
          v128.store(o, v128.shuffle<u32>(p01, p23, 0, 4, 1, 5));
          v128.store(o, v128.shuffle<u32>(p01, p23, 2, 6, 3, 7), 16);
          o += 32;
        }
        for (; j < n; j += 2) {
          store<u16>(o, load<u16>(a0 + j));
          store<u16>(o, load<u16>(a1 + j), 2);
          store<u16>(o, load<u16>(a2 + j), 4);
          store<u16>(o, load<u16>(a3 + j), 6);
          o += 8;
        }
      } else {
        let j: usize = 0;
        for (; j + 16 <= n; j += 16) {
          // a 4x4 transpose of 32-bit chunks
          const r0 = v128.load(a0 + j);
          const r1 = v128.load(a1 + j);
          const r2 = v128.load(a2 + j);
          const r3 = v128.load(a3 + j);
          const t0 = v128.shuffle<u32>(r0, r1, 0, 4, 1, 5);
          const t1 = v128.shuffle<u32>(r0, r1, 2, 6, 3, 7);
          const t2 = v128.shuffle<u32>(r2, r3, 0, 4, 1, 5);
          const t3 = v128.shuffle<u32>(r2, r3, 2, 6, 3, 7);
          v128.store(o, v128.shuffle<u64>(t0, t2, 0, 2));
          v128.store(o, v128.shuffle<u64>(t0, t2, 1, 3), 16);
          v128.store(o, v128.shuffle<u64>(t1, t3, 0, 2), 32);
          v128.store(o, v128.shuffle<u64>(t1, t3, 1, 3), 48);
          o += 64;
        }
        for (; j < n; j += 4) {
          store<u32>(o, load<u32>(a0 + j));
          store<u32>(o, load<u32>(a1 + j), 4);
          store<u32>(o, load<u32>(a2 + j), 8);
          store<u32>(o, load<u32>(a3 + j), 12);
          o += 16;
        }
      }
    }
  }
}
