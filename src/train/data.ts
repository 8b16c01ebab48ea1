/**
 * Training data: a text file tokenized once, split into a training part and a held-out part,
 * and batches drawn at positions that depend only on (seed, step, micro-batch) — so a resumed run
 * sees exactly the batches it would have seen, with no sampler state to save.
 */
import fs from "node:fs";
import { FileError, UsageError } from "../errors.js";
import type { Tokenizer } from "../tokenizer/index.js";
import { Rng } from "../runtime/sampler.js";

export class TokenData {
  constructor(
    readonly train: Int32Array,
    readonly heldOut: Int32Array,
    /** The held-out text itself (for perplexity through the inference engine). */
    readonly heldOutText: string,
    minTokens: number,
  ) {
    if (this.train.length < minTokens) {
      throw new UsageError("the data file is smaller than one batch", {
        expected: `>= ${minTokens} training tokens (batch x (ctx + 1))`,
        got: `${this.train.length} tokens`,
        hint: "use more text, or a smaller --batch / --ctx",
      });
    }
  }

  /**
   * Tokenize a text file: the last `heldOutFraction` of the text (cut at a line break) is held
   * out; each part starts with BOS when the tokenizer adds one.
   */
  static fromFile(path: string, tok: Tokenizer, opts: { heldOutFraction: number; minTokens: number }): TokenData {
    let text: string;
    try {
      text = fs.readFileSync(path, "utf8");
    } catch (e) {
      throw new FileError(`cannot read the data file ${path}`, { got: e instanceof Error ? e.message : String(e) });
    }
    if (text.trim().length === 0) throw new UsageError("the data file is empty", { got: path });
    let cut = Math.floor(text.length * (1 - opts.heldOutFraction));
    const nl = text.indexOf("\n", cut);
    if (nl >= 0 && nl < text.length - 1) cut = nl + 1;
    const heldOutText = text.slice(cut);
    const enc = (s: string): Int32Array => Int32Array.from(s.length === 0 ? [] : tok.encode(s, { addSpecial: true }));
    return new TokenData(enc(text.slice(0, cut)), enc(heldOutText), heldOutText, opts.minTokens);
  }

  /**
   * B windows of T+1 tokens for (seed, step, micro): inputs [B*T] and next-token targets [B*T].
   */
  batch(seed: number, step: number, micro: number, B: number, T: number): { inputs: Int32Array; targets: Int32Array } {
    const rng = new Rng((seed * 1000003 + step * 131 + micro) >>> 0);
    const inputs = new Int32Array(B * T);
    const targets = new Int32Array(B * T);
    const span = this.train.length - T - 1;
    for (let b = 0; b < B; b++) {
      const o = Math.floor(rng.next() * (span + 1));
      inputs.set(this.train.subarray(o, o + T), b * T);
      targets.set(this.train.subarray(o + 1, o + T + 1), b * T);
    }
    return { inputs, targets };
  }

  /** Held-out windows: consecutive, non-overlapping, at most `maxBatches` batches of B. */
  heldOutBatches(B: number, T: number, maxBatches: number): { inputs: Int32Array; targets: Int32Array }[] {
    const out: { inputs: Int32Array; targets: Int32Array }[] = [];
    const windows = Math.floor((this.heldOut.length - 1) / T);
    for (let w = 0; w + B <= windows && out.length < maxBatches; w += B) {
      const inputs = new Int32Array(B * T);
      const targets = new Int32Array(B * T);
      for (let b = 0; b < B; b++) {
        const o = (w + b) * T;
        inputs.set(this.heldOut.subarray(o, o + T), b * T);
        targets.set(this.heldOut.subarray(o + 1, o + T + 1), b * T);
      }
      out.push({ inputs, targets });
    }
    return out;
  }
}
