/**
 * Per-position statistics of next-token distributions, in float64: log-softmax, negative
 * log-likelihood, KL divergence and argmax over one row of `vocab` logits.
 */

/** log(sum(exp(row))) of row [o, o+V) of `logits`, in float64. */
export function logSumExp(logits: Float32Array, o: number, V: number): number {
  let max = -Infinity;
  for (let i = 0; i < V; i++) {
    const v = logits[o + i]!;
    if (v > max) max = v;
  }
  if (max === -Infinity || Number.isNaN(max)) return max;
  let sum = 0;
  for (let i = 0; i < V; i++) sum += Math.exp(logits[o + i]! - max);
  return max + Math.log(sum);
}

/** First index of the largest value of row [o, o+V). */
export function argmaxRow(logits: Float32Array, o: number, V: number): number {
  let best = 0;
  let bv = logits[o]!;
  for (let i = 1; i < V; i++) {
    const v = logits[o + i]!;
    if (v > bv) {
      bv = v;
      best = i;
    }
  }
  return best;
}

/**
 * KL(P || Q) = sum_i p_i (log p_i - log q_i) of the distributions softmax(p row) and
 * softmax(q row), both `V` wide, in float64. `lseP`/`lseQ` are their logSumExp.
 */
export function klDivergence(p: Float32Array, po: number, lseP: number, q: Float32Array, qo: number, lseQ: number, V: number): number {
  let kl = 0;
  for (let i = 0; i < V; i++) {
    const lp = p[po + i]! - lseP;
    if (lp === -Infinity) continue; // p_i = 0 contributes nothing
    const lq = q[qo + i]! - lseQ;
    kl += Math.exp(lp) * (lp - lq);
  }
  // NOTE: rounding can make an exact 0 (identical rows) come out as -1e-17.
  return kl < 0 ? 0 : kl;
}

/**
 * The `fraction` percentile of ascending `sorted` values with linear interpolation between
 * neighbours (llama-perplexity's `percentile`).
 */
export function percentile(sorted: Float64Array, fraction: number): number {
  const n = sorted.length;
  if (n === 0) return NaN;
  if (fraction <= 0) return sorted[0]!;
  if (fraction >= 1) return sorted[n - 1]!;
  const p = fraction * (n - 1);
  const ip = Math.floor(p);
  const f = p - ip;
  return (1 - f) * sorted[ip]! + f * sorted[Math.min(ip + 1, n - 1)]!;
}
