/**
 * Forward and backward of every operation of the Llama-family model, on flat row-major arrays.
 *
 * Generic over Float32Array (training) and Float64Array (gradient checks against finite
 * differences). Matrix products go through a `Matmul` (see matmul.ts) so they run in the
 * WebAssembly kernels on worker threads; everything else is cheap elementwise work here.
 * Backward functions *accumulate* into their gradient outputs (+=), so a tensor used twice
 * (tied embeddings, residual streams) sums its gradients.
 *
 * Legend: N rows (tokens), D width; shapes in comments are [rows, cols].
 */

export type Floats = Float32Array | Float64Array;

// ---------------------------------------------------------------------------- embedding

/** out[n] = table[ids[n]]   out: [N, D], table: [V, D] */
export function embedForward(out: Floats, table: Floats, ids: ArrayLike<number>, D: number): void {
  for (let n = 0; n < ids.length; n++) {
    const o = ids[n]! * D;
    for (let d = 0; d < D; d++) out[n * D + d] = table[o + d]!;
  }
}

/** dTable[ids[n]] += dOut[n] */
export function embedBackward(dTable: Floats, dOut: Floats, ids: ArrayLike<number>, D: number): void {
  for (let n = 0; n < ids.length; n++) {
    const o = ids[n]! * D;
    for (let d = 0; d < D; d++) dTable[o + d] += dOut[n * D + d]!;
  }
}

// ---------------------------------------------------------------------------- RMSNorm

/** out = x * r * w with r = 1/sqrt(mean(x^2) + eps) per row; rstd[n] = r is kept for backward. */
export function rmsnormForward(out: Floats, rstd: Floats, x: Floats, w: Floats, N: number, D: number, eps: number): void {
  for (let n = 0; n < N; n++) {
    let ss = 0;
    for (let d = 0; d < D; d++) ss += x[n * D + d]! ** 2;
    const r = 1 / Math.sqrt(ss / D + eps);
    rstd[n] = r;
    for (let d = 0; d < D; d++) out[n * D + d] = x[n * D + d]! * r * w[d]!;
  }
}

/**
 * dx += r * (dy*w) - x * r^3 / D * sum(dy*w*x);  dw += sum_n dy * x * r
 */
export function rmsnormBackward(dx: Floats, dw: Floats, dy: Floats, x: Floats, w: Floats, rstd: Floats, N: number, D: number): void {
  for (let n = 0; n < N; n++) {
    const r = rstd[n]!;
    let dot = 0;
    for (let d = 0; d < D; d++) dot += dy[n * D + d]! * w[d]! * x[n * D + d]!;
    const c = (dot * r * r * r) / D;
    for (let d = 0; d < D; d++) {
      const i = n * D + d;
      dx[i] += dy[i]! * w[d]! * r - x[i]! * c;
      dw[d] += dy[i]! * x[i]! * r;
    }
  }
}

// ---------------------------------------------------------------------------- RoPE

/**
 * cos/sin table [T, nRot/2] for positions 0..T-1 (the inference engine computes the same angles:
 * theta_i = pos * base^(-2i/nRot) / freqFactor_i).
 */
export function ropeTable(T: number, nRot: number, base: number, freqFactors?: Float32Array): { cos: Float64Array; sin: Float64Array } {
  const half = nRot / 2;
  const cos = new Float64Array(T * half);
  const sin = new Float64Array(T * half);
  for (let t = 0; t < T; t++) {
    for (let i = 0; i < half; i++) {
      const a = (t * Math.pow(base, (-2 * i) / nRot)) / (freqFactors?.[i] ?? 1);
      cos[t * half + i] = Math.cos(a);
      sin[t * half + i] = Math.sin(a);
    }
  }
  return { cos, sin };
}

/**
 * Rotate in place. x: [B*T, H*hd]; row n is position n % T. Pairs (2i, 2i+1) (normal) or
 * (i, i + nRot/2) (neox). `inverse` rotates by -theta: the backward pass of a rotation.
 */
export function rope(x: Floats, B: number, T: number, H: number, hd: number, nRot: number, neox: boolean, tbl: { cos: Float64Array; sin: Float64Array }, inverse = false): void {
  const half = nRot / 2;
  const sgn = inverse ? -1 : 1;
  for (let n = 0; n < B * T; n++) {
    const t = n % T;
    for (let h = 0; h < H; h++) {
      const base = (n * H + h) * hd;
      for (let i = 0; i < half; i++) {
        const c = tbl.cos[t * half + i]!;
        const s = sgn * tbl.sin[t * half + i]!;
        const a = base + (neox ? i : 2 * i);
        const b = base + (neox ? i + half : 2 * i + 1);
        const x0 = x[a]!;
        const x1 = x[b]!;
        x[a] = x0 * c - x1 * s;
        x[b] = x0 * s + x1 * c;
      }
    }
  }
}

// ---------------------------------------------------------------------------- SwiGLU

function sigmoid(v: number): number {
  return 1 / (1 + Math.exp(-v));
}

/** out = silu(g) * u */
export function swigluForward(out: Floats, g: Floats, u: Floats, n: number): void {
  for (let i = 0; i < n; i++) {
    const v = g[i]!;
    out[i] = (v * sigmoid(v)) * u[i]!;
  }
}

/** dg += dOut * u * silu'(g);  du += dOut * silu(g);  silu'(v) = s (1 + v (1 - s)) */
export function swigluBackward(dg: Floats, du: Floats, dOut: Floats, g: Floats, u: Floats, n: number): void {
  for (let i = 0; i < n; i++) {
    const v = g[i]!;
    const s = sigmoid(v);
    dg[i] += dOut[i]! * u[i]! * s * (1 + v * (1 - s));
    du[i] += dOut[i]! * v * s;
  }
}

// ---------------------------------------------------------------------------- losses

/**
 * Mean cross-entropy of logits [N, V] against targets; writes dLogits (= (softmax - onehot) * scale / N).
 * Returns the mean loss. `scale` weighs this loss in a sum of losses.
 */
export function crossEntropy(dLogits: Floats, logits: Floats, targets: ArrayLike<number>, N: number, V: number, scale = 1): number {
  let loss = 0;
  for (let n = 0; n < N; n++) {
    const o = n * V;
    let max = -Infinity;
    for (let v = 0; v < V; v++) max = Math.max(max, logits[o + v]!);
    let sum = 0;
    for (let v = 0; v < V; v++) sum += Math.exp(logits[o + v]! - max);
    const lse = max + Math.log(sum);
    const target = targets[n]!;
    loss += lse - logits[o + target]!;
    for (let v = 0; v < V; v++) dLogits[o + v] += ((Math.exp(logits[o + v]! - lse) - (v === target ? 1 : 0)) * scale) / N;
  }
  return loss / N;
}

/**
 * Mean KL(teacher ‖ student) over N rows at temperature tau, scaled by tau^2 (Hinton et al.):
 * loss = tau^2 * sum p_t (log p_t - log p_s) with p = softmax(z / tau).
 * dStudent += scale * tau * (p_s - p_t) / N.
 */
export function klDivergence(dStudent: Floats, student: Floats, teacher: Floats, N: number, V: number, tau: number, scale = 1): number {
  let loss = 0;
  const ps = new Float64Array(V);
  const pt = new Float64Array(V);
  for (let n = 0; n < N; n++) {
    const o = n * V;
    logSoftmax(student, o, V, tau, ps);
    logSoftmax(teacher, o, V, tau, pt);
    let kl = 0;
    for (let v = 0; v < V; v++) {
      const p = Math.exp(pt[v]!);
      kl += p * (pt[v]! - ps[v]!);
      dStudent[o + v] += (scale * tau * (Math.exp(ps[v]!) - p)) / N;
    }
    loss += kl * tau * tau;
  }
  return loss / N;
}

/** out[v] = log softmax(x[o..o+V) / tau)[v]. */
function logSoftmax(x: Floats, o: number, V: number, tau: number, out: Float64Array): void {
  let max = -Infinity;
  for (let v = 0; v < V; v++) max = Math.max(max, x[o + v]! / tau);
  let sum = 0;
  for (let v = 0; v < V; v++) sum += Math.exp(x[o + v]! / tau - max);
  const lse = max + Math.log(sum);
  for (let v = 0; v < V; v++) out[v] = x[o + v]! / tau - lse;
}
