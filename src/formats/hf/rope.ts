const f = Math.fround;

export interface Llama3RopeParams {
  readonly base: number;
  /** Rotary dimensions (head_dim). */
  readonly dim: number;
  readonly factor: number;
  readonly lowFreqFactor: number;
  readonly highFreqFactor: number;
  readonly originalContext: number;
}

/**
 * The `rope_freqs.weight` factors convert_hf_to_gguf.py's LlamaModel.generate_extra_tensors writes
 * for rope_type "llama3": one F32 per rotary pair (dim/2 values).
 *
 * NOTE: the converter computes in float32 torch tensors mixed with Python doubles, so every step
 * here is rounded to float32 the way torch does it (Python scalars are cast to float32 first).
 * `base ** x` uses torch's powf; we use the correctly rounded float32 of the double pow, which can
 * differ from torch's vectorized powf by 1 ulp in rare cases.
 */
export function llama3RopeFactors(p: Llama3RopeParams): Float32Array {
  const half = Math.floor((p.dim + 1) / 2);
  const out = new Float32Array(half);
  const lowWavelen = f(p.originalContext / p.lowFreqFactor);
  const highWavelen = f(p.originalContext / p.highFreqFactor);
  const twoPi = f(2 * Math.PI);
  const oldCtx = f(p.originalContext);
  const low = f(p.lowFreqFactor);
  const span = f(p.highFreqFactor - p.lowFreqFactor);
  const factor = f(p.factor);
  for (let k = 0; k < half; k++) {
    const exponent = f((2 * k) / p.dim);
    const freq = f(1 / f(Math.pow(f(p.base), exponent)));
    const wavelen = f(twoPi / freq);
    if (wavelen < highWavelen) {
      out[k] = 1;
    } else if (wavelen > lowWavelen) {
      out[k] = factor;
    } else {
      const smooth = f(f(f(oldCtx / wavelen) - low) / span);
      out[k] = f(1 / f(f(f(1 - smooth) / factor) + smooth));
    }
  }
  return out;
}
