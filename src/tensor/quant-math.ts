/**
 * Scalar helpers shared by the block formats: C float arithmetic emulation and the K-quant
 * scale searches of ggml-quants.c (make_qx_quants, make_q3_quants, make_qkx2_quants).
 *
 * Float emulation rule: in C every `float op float` result is rounded to f32 (x86-64 SSE, no
 * FMA contraction). A JS double op on two f32 values followed by Math.fround gives exactly that
 * rounding for + - * / and sqrt (the double result is exact or rounds harmlessly: 53 >= 2*24+2),
 * so each C operation below is one `fr(...)`. ints mixed into float expressions are converted
 * to float first (exact here: all are < 2^24). NOTE: the order of operations mirrors the C text
 * (`w*x[i]*l` is `(w*x)*l`); reassociating changes results in the last bit and thereby the
 * chosen quants.
 *
 * NOTE: ggml compiled with FMA contraction (clang, or GCC with -ffp-contract=fast wherever FMA
 * is available: aarch64, x86-64 -march=native) quantizes differently: measured with
 * gcc -mfma -ffp-contract=fast on random 512-element rows, a few bytes differ in ~0.4% of Q4_0,
 * ~1.5% of Q3_K, ~10% of Q4_K/Q6_K and ~45% of Q2_K/Q5_K rows (dequantization is unaffected).
 * Our reference is the strict evaluation, i.e. x86-64 builds of ggml-base without FMA.
 */

import { assert } from "../errors.js";

export const fr = Math.fround;

const niF32 = new Float32Array(1);
const niI32 = new Int32Array(niF32.buffer);

/**
 * ggml's `nearest_int`: adds 1.5*2^23 in float and reads the low mantissa bits. For
 * |x| <= 4194303 this is round-half-to-even of the f32 value `x`; outside that range it
 * reproduces the same bit trick (garbage in, the same garbage out), NaN included.
 */
export function nearestInt(x: number): number {
  // In range, the f32 sum has ulp 1 and lies in [2^23, 2^24): the low mantissa bits are the
  // sum minus 2^23, so plain arithmetic gives the same int without a memory round trip.
  if (x <= 4194303 && x >= -4194303) return Math.fround(x + 12582912) - 12582912;
  niF32[0] = x + 12582912;
  return (niI32[0] & 0x007fffff) - 0x00400000;
}

/** C `roundf` (half away from zero) of an f32 value. */
export function roundf(x: number): number {
  return x >= 0 ? Math.floor(x + 0.5) : -Math.floor(0.5 - x);
}

/** C conversion of an int to int8_t (two's complement wrap, as every ggml target does). */
export function toInt8(v: number): number {
  return (v << 24) >> 24;
}

/** ggml's GROUP_MAX_EPS (1e-15f). */
export const GROUP_MAX_EPS = fr(1e-15);
const F01 = fr(0.1);

/** 6-bit scale and min `j` (0..7) of the 12-byte packed Q4_K/Q5_K scales at `q[o..o+12)`. */
export function scaleK4(j: number, q: Uint8Array, o: number): number {
  return j < 4 ? q[o + j] & 63 : (q[o + j + 4] & 0xf) | ((q[o + j - 4] >> 6) << 4);
}
/** See scaleK4. */
export function minK4(j: number, q: Uint8Array, o: number): number {
  return j < 4 ? q[o + j + 4] & 63 : (q[o + j + 4] >> 4) | ((q[o + j] >> 6) << 4);
}

/**
 * make_qx_quants: symmetric quants L[i] in [0, 2*nmax) of x[xo..xo+n) with a scale search.
 * Returns the scale (f32). `qw` are optional importance weights (null in the _ref quantizers).
 */
export function makeQxQuants(
  n: number,
  nmax: number,
  x: Float32Array,
  xo: number,
  L: Int8Array,
  lo: number,
  rmseType: number,
  qw: Float32Array | null,
): number {
  let max = 0;
  let amax = 0;
  for (let i = 0; i < n; i++) {
    const ax = Math.abs(x[xo + i]);
    if (ax > amax) {
      amax = ax;
      max = x[xo + i];
    }
  }
  if (amax < GROUP_MAX_EPS) {
    for (let i = 0; i < n; i++) L[lo + i] = 0;
    return 0;
  }
  let iscale = fr(-nmax / max);
  if (rmseType === 0) {
    for (let i = 0; i < n; i++) {
      const l = nearestInt(fr(iscale * x[xo + i]));
      L[lo + i] = nmax + Math.max(-nmax, Math.min(nmax - 1, l));
    }
    return fr(1 / iscale);
  }
  let returnEarly = false;
  if (rmseType < 0) {
    rmseType = -rmseType;
    returnEarly = true;
  }
  let sumlx = 0;
  let suml2 = 0;
  for (let i = 0; i < n; i++) {
    const xi = x[xo + i];
    let l = nearestInt(fr(iscale * xi));
    l = Math.max(-nmax, Math.min(nmax - 1, l));
    L[lo + i] = l + nmax;
    const w = qxWeight(qw, i, xi, rmseType);
    sumlx = fr(sumlx + fr(fr(w * xi) * l));
    suml2 = fr(suml2 + fr(fr(w * l) * l));
  }
  let scale = suml2 !== 0 ? fr(sumlx / suml2) : 0;
  if (returnEarly) return suml2 > 0 ? fr(0.5 * fr(scale + fr(1 / iscale))) : fr(1 / iscale);
  let best = fr(scale * sumlx);
  for (let is = -9; is <= 9; is++) {
    if (is === 0) continue;
    iscale = fr(-fr(nmax + fr(F01 * is)) / max);
    sumlx = 0;
    suml2 = 0;
    for (let i = 0; i < n; i++) {
      const xi = x[xo + i];
      let l = nearestInt(fr(iscale * xi));
      l = Math.max(-nmax, Math.min(nmax - 1, l));
      const w = qxWeight(qw, i, xi, rmseType);
      sumlx = fr(sumlx + fr(fr(w * xi) * l));
      suml2 = fr(suml2 + fr(fr(w * l) * l));
    }
    if (suml2 > 0 && fr(sumlx * sumlx) > fr(best * suml2)) {
      for (let i = 0; i < n; i++) {
        const l = nearestInt(fr(iscale * x[xo + i]));
        L[lo + i] = nmax + Math.max(-nmax, Math.min(nmax - 1, l));
      }
      scale = fr(sumlx / suml2);
      best = fr(scale * sumlx);
    }
  }
  return scale;
}

function qxWeight(qw: Float32Array | null, i: number, xi: number, rmseType: number): number {
  if (qw !== null) return qw[i];
  switch (rmseType) {
    case 1:
      return fr(xi * xi);
    case 2:
      return 1;
    case 3:
      return Math.abs(xi);
    default:
      return fr(Math.sqrt(Math.abs(xi)));
  }
}

/**
 * make_q3_quants: signed quants L[i] in [0, 2*nmax) of x[xo..xo+n), optionally refined by
 * coordinate descent on the x^2-weighted error (do_rmse). Returns the scale.
 */
export function makeQ3Quants(
  n: number,
  nmax: number,
  x: Float32Array,
  xo: number,
  L: Int8Array,
  lo: number,
  doRmse: boolean,
): number {
  let max = 0;
  let amax = 0;
  for (let i = 0; i < n; i++) {
    const ax = Math.abs(x[xo + i]);
    if (ax > amax) {
      amax = ax;
      max = x[xo + i];
    }
  }
  if (amax < GROUP_MAX_EPS) {
    for (let i = 0; i < n; i++) L[lo + i] = 0;
    return 0;
  }
  const iscale = fr(-nmax / max);
  if (doRmse) {
    let sumlx = 0;
    let suml2 = 0;
    for (let i = 0; i < n; i++) {
      const xi = x[xo + i];
      let l = nearestInt(fr(iscale * xi));
      l = Math.max(-nmax, Math.min(nmax - 1, l));
      L[lo + i] = l;
      const w = fr(xi * xi);
      sumlx = fr(sumlx + fr(fr(w * xi) * l));
      suml2 = fr(suml2 + fr(fr(w * l) * l));
    }
    for (let itry = 0; itry < 5; itry++) {
      let nChanged = 0;
      for (let i = 0; i < n; i++) {
        const xi = x[xo + i];
        const w = fr(xi * xi);
        const li = L[lo + i];
        let slx = fr(sumlx - fr(fr(w * xi) * li));
        if (slx > 0) {
          let sl2 = fr(suml2 - fr(fr(w * li) * li));
          let newL = nearestInt(fr(fr(xi * sl2) / slx));
          newL = Math.max(-nmax, Math.min(nmax - 1, newL));
          if (newL !== li) {
            slx = fr(slx + fr(fr(w * xi) * newL));
            sl2 = fr(sl2 + fr(fr(w * newL) * newL));
            if (sl2 > 0 && fr(fr(slx * slx) * suml2) > fr(fr(sumlx * sumlx) * sl2)) {
              L[lo + i] = newL;
              sumlx = slx;
              suml2 = sl2;
              nChanged++;
            }
          }
        }
      }
      if (nChanged === 0) break;
    }
    for (let i = 0; i < n; i++) L[lo + i] += nmax;
    return suml2 > 0 ? fr(sumlx / suml2) : 0;
  }
  for (let i = 0; i < n; i++) {
    let l = nearestInt(fr(iscale * x[xo + i]));
    l = Math.max(-nmax, Math.min(nmax - 1, l));
    L[lo + i] = l + nmax;
  }
  return fr(1 / iscale);
}

/**
 * make_qkx2_quants: asymmetric quants L[i] in [0, nmax] of x[xo..xo+n) as scale*L - min, with a
 * grid search over nstep+1 candidate scales minimizing the weighted error (|diff| if useMad,
 * else diff^2). Returns the scale; writes the (non-negative) min to `outMin[mo]`.
 * `Laux` is n bytes of scratch.
 */
export function makeQkx2Quants(
  n: number,
  nmax: number,
  x: Float32Array,
  xo: number,
  weights: Float32Array,
  L: Uint8Array,
  lo: number,
  outMin: Float32Array,
  mo: number,
  Laux: Uint8Array,
  rmin: number,
  rdelta: number,
  nstep: number,
  useMad: boolean,
): number {
  assert(Laux.length >= n && weights.length >= n, "makeQkx2Quants scratch too small");
  let min = x[xo];
  let max = x[xo];
  let sumW = weights[0];
  let sumX = fr(sumW * x[xo]);
  for (let i = 1; i < n; i++) {
    const xi = x[xo + i];
    if (xi < min) min = xi;
    if (xi > max) max = xi;
    const w = weights[i];
    sumW = fr(sumW + w);
    sumX = fr(sumX + fr(w * xi));
  }
  if (min > 0) min = 0;
  if (max === min) {
    for (let i = 0; i < n; i++) L[lo + i] = 0;
    outMin[mo] = -min;
    return 0;
  }
  let iscale = fr(nmax / fr(max - min));
  let scale = fr(1 / iscale);
  let bestError = 0;
  for (let i = 0; i < n; i++) {
    const xi = x[xo + i];
    const l = Math.max(0, Math.min(nmax, nearestInt(fr(iscale * fr(xi - min)))));
    L[lo + i] = l;
    let diff = fr(fr(fr(scale * l) + min) - xi);
    diff = useMad ? Math.abs(diff) : fr(diff * diff);
    bestError = fr(bestError + fr(weights[i] * diff));
  }
  if (nstep < 1) {
    outMin[mo] = -min;
    return scale;
  }
  for (let is = 0; is <= nstep; is++) {
    // NOTE: `min` moves when a candidate wins, and later candidates use the moved min.
    iscale = fr(fr(fr(rmin + fr(rdelta * is)) + nmax) / fr(max - min));
    let sumL = 0;
    let sumL2 = 0;
    let sumXL = 0;
    for (let i = 0; i < n; i++) {
      const xi = x[xo + i];
      const l = Math.max(0, Math.min(nmax, nearestInt(fr(iscale * fr(xi - min)))));
      Laux[i] = l;
      const wl = fr(weights[i] * l);
      sumL = fr(sumL + wl);
      sumL2 = fr(sumL2 + fr(wl * l));
      sumXL = fr(sumXL + fr(wl * xi));
    }
    const D = fr(fr(sumW * sumL2) - fr(sumL * sumL));
    if (D > 0) {
      let thisScale = fr(fr(fr(sumW * sumXL) - fr(sumX * sumL)) / D);
      let thisMin = fr(fr(fr(sumL2 * sumX) - fr(sumL * sumXL)) / D);
      if (thisMin > 0) {
        thisMin = 0;
        thisScale = fr(sumXL / sumL2);
      }
      let curError = 0;
      for (let i = 0; i < n; i++) {
        let diff = fr(fr(fr(thisScale * Laux[i]) + thisMin) - x[xo + i]);
        diff = useMad ? Math.abs(diff) : fr(diff * diff);
        curError = fr(curError + fr(weights[i] * diff));
      }
      if (curError < bestError) {
        for (let i = 0; i < n; i++) L[lo + i] = Laux[i];
        bestError = curError;
        scale = thisScale;
        min = thisMin;
      }
    }
  }
  outMin[mo] = -min;
  return scale;
}
