/**
 * Causal grouped-query attention over whole sequences (training has no KV cache).
 *
 * q: [B*T, H*hd], k and v: [B*T, Hk*hd], out: [B*T, H*hd]; query head h uses KV head
 * h / (H / Hk). Per (b, h): S = scale * Q K^T with the future masked, P = softmax(S) (kept for
 * backward: probs [B, H, T, T]), O = P V.
 */
import type { Matmul } from "./matmul.js";
import type { Floats } from "./tensor-ops.js";

export interface AttentionShape {
  readonly B: number;
  readonly T: number;
  readonly H: number;
  readonly Hk: number;
  readonly hd: number;
  readonly scale: number;
}

/** Copy head h of rows b*T..(b+1)*T of x [B*T, width] into dst [T, hd] (or back, with `back`). */
function headSlice(dst: Floats, x: Floats, b: number, T: number, width: number, h: number, hd: number, back = false, add = false): void {
  for (let t = 0; t < T; t++) {
    const o = (b * T + t) * width + h * hd;
    for (let d = 0; d < hd; d++) {
      if (!back) dst[t * hd + d] = x[o + d]!;
      else if (add) x[o + d] += dst[t * hd + d]!;
      else x[o + d] = dst[t * hd + d]!;
    }
  }
}

export class Attention {
  private readonly qh: Floats;
  private readonly kh: Floats;
  private readonly vh: Floats;
  private readonly oh: Floats;
  private readonly dp: Floats;

  constructor(
    readonly s: AttentionShape,
    private readonly mm: Matmul,
    make: (n: number) => Floats,
  ) {
    const { T, hd } = s;
    this.qh = make(T * hd);
    this.kh = make(T * hd);
    this.vh = make(T * hd);
    this.oh = make(T * hd);
    this.dp = make(T * T);
  }

  forward(out: Floats, probs: Floats, q: Floats, k: Floats, v: Floats): void {
    const { B, T, H, Hk, hd, scale } = this.s;
    const group = H / Hk;
    for (let b = 0; b < B; b++) {
      for (let h = 0; h < H; h++) {
        const kvh = Math.floor(h / group);
        headSlice(this.qh, q, b, T, H * hd, h, hd);
        headSlice(this.kh, k, b, T, Hk * hd, kvh, hd);
        headSlice(this.vh, v, b, T, Hk * hd, kvh, hd);
        const p = probs.subarray((b * H + h) * T * T, (b * H + h + 1) * T * T);
        this.mm.abT(p, this.qh, this.kh, T, T, hd, false); // S = Q K^T
        for (let i = 0; i < T; i++) {
          let max = -Infinity;
          for (let j = 0; j <= i; j++) max = Math.max(max, p[i * T + j]! * scale);
          let sum = 0;
          for (let j = 0; j <= i; j++) {
            const e = Math.exp(p[i * T + j]! * scale - max);
            p[i * T + j] = e;
            sum += e;
          }
          for (let j = 0; j <= i; j++) p[i * T + j] /= sum;
          for (let j = i + 1; j < T; j++) p[i * T + j] = 0;
        }
        this.mm.ab(this.oh, p, this.vh, T, hd, T, false); // O = P V
        headSlice(this.oh, out, b, T, H * hd, h, hd, true);
      }
    }
  }

  /** Accumulates dq, dk, dv from dOut. */
  backward(dq: Floats, dk: Floats, dv: Floats, dOut: Floats, probs: Floats, q: Floats, k: Floats, v: Floats): void {
    const { B, T, H, Hk, hd, scale } = this.s;
    const group = H / Hk;
    const dO = this.oh;
    const dp = this.dp;
    for (let b = 0; b < B; b++) {
      for (let h = 0; h < H; h++) {
        const kvh = Math.floor(h / group);
        headSlice(this.qh, q, b, T, H * hd, h, hd);
        headSlice(this.kh, k, b, T, Hk * hd, kvh, hd);
        headSlice(this.vh, v, b, T, Hk * hd, kvh, hd);
        headSlice(dO, dOut, b, T, H * hd, h, hd);
        const p = probs.subarray((b * H + h) * T * T, (b * H + h + 1) * T * T);
        // dV = P^T dO   (accumulated into the shared KV head)
        this.mm.aTb(this.vh, p, dO, T, hd, T, false);
        headSlice(this.vh, dv, b, T, Hk * hd, kvh, hd, true, true);
        // dP = dO V^T (V reloaded: vh was overwritten), dS = P * (dP - rowsum(dP * P)) * scale
        headSlice(this.vh, v, b, T, Hk * hd, kvh, hd);
        this.mm.abT(dp, dO, this.vh, T, T, hd, false);
        for (let i = 0; i < T; i++) {
          let dot = 0;
          for (let j = 0; j <= i; j++) dot += dp[i * T + j]! * p[i * T + j]!;
          for (let j = 0; j < T; j++) dp[i * T + j] = j <= i ? p[i * T + j]! * (dp[i * T + j]! - dot) * scale : 0;
        }
        // dQ = dS K ; dK = dS^T Q
        this.mm.ab(dO, dp, this.kh, T, hd, T, false);
        headSlice(dO, dq, b, T, H * hd, h, hd, true, true);
        this.mm.aTb(dO, dp, this.qh, T, hd, T, false);
        headSlice(dO, dk, b, T, Hk * hd, kvh, hd, true, true);
      }
    }
  }
}
