/**
 * What calibration hands to the quantizer: per weight, the importance of each input column (the
 * imatrix) and the exact rescalings of activation-aware scaling (AWQ) folded into the weights.
 */

export interface TensorTransform {
  /** Multiply column c of every row by colScale[c] (AWQ: W' = W diag(s)). */
  readonly colScale?: Float32Array;
  /** Multiply row r by rowScale[r] (AWQ fold of the next matrix's scales into ffn_up). */
  readonly rowScale?: Float32Array;
  /** Divide element i of a 1-D tensor by divide[i] (AWQ fold into a norm weight). */
  readonly divide?: Float32Array;
}

export interface CalibrationResult {
  /** Per weight name: mean x^2 of each input column over the calibration tokens (after AWQ scaling). */
  readonly importance: ReadonlyMap<string, Float32Array>;
  /** Per tensor name: exact rescalings to apply before quantizing. */
  readonly transforms: ReadonlyMap<string, TensorTransform>;
  /** Calibration tokens that went into the statistics. */
  readonly tokens: number;
  /** AWQ: per scaled group, the chosen exponent and the loss reduction on the calibration samples. */
  readonly awq: readonly AwqChoice[];
}

export interface AwqChoice {
  /** e.g. "blk.0.attn_norm" (the folded-into op) */
  readonly group: string;
  readonly weights: readonly string[];
  readonly alpha: number;
  /** Output error of the quantized group at alpha = 0 (plain) and at the chosen alpha. */
  readonly lossBefore: number;
  readonly lossAfter: number;
}

/** Apply a transform in place to `n` rows of `cols` values starting at row `r0`. */
export function applyTransform(t: TensorTransform | undefined, data: Float32Array, r0: number, n: number, cols: number): void {
  if (t === undefined) return;
  const cs = t.colScale;
  const rs = t.rowScale;
  const dv = t.divide;
  for (let r = 0; r < n; r++) {
    const o = r * cols;
    const rf = rs === undefined ? 1 : rs[r0 + r]!;
    for (let c = 0; c < cols; c++) {
      let v = data[o + c]!;
      if (cs !== undefined) v *= cs[c]!;
      if (rf !== 1) v *= rf;
      if (dv !== undefined) v /= dv[c]!;
      data[o + c] = v;
    }
  }
}
