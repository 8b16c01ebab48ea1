/** Test helpers around our own engine. */
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { Engine } from "../../src/runtime/engine.js";

/** ../shared beside the repository (tests only; never copied into the repo). */
// dist/test/helpers -> repo root is three levels up; ../shared sits beside the repo.
export const SHARED = process.env.SLIMLM_SHARED ?? path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../../../shared");
export const STORIES_GGUF = path.join(SHARED, "models/stories260K.gguf");
export const STORIES_HF = path.join(SHARED, "models/derived/stories260K-hf");

export function argmax(x: Float32Array): number {
  let best = 0;
  for (let i = 1; i < x.length; i++) if (x[i]! > x[best]!) best = i;
  return best;
}

/** Greedy continuation of `promptIds` for `n` tokens, ignoring EOS. */
export function greedyIds(engine: Engine, promptIds: readonly number[], n: number): number[] {
  const seq = engine.newSequence();
  try {
    let logits = engine.evaluate(seq, promptIds);
    const out: number[] = [];
    for (let i = 0; i < n; i++) {
      const id = argmax(logits);
      out.push(id);
      if (i + 1 < n) logits = engine.evaluate(seq, [id]);
    }
    return out;
  } finally {
    seq.release();
  }
}

/** Our argmax after each prefix ids[0..i] for i >= from-1 (teacher forcing), plus the logits rows. */
export function teacherForcedArgmax(engine: Engine, ids: readonly number[], from: number): number[] {
  const seq = engine.newSequence();
  try {
    const out: number[] = [];
    let logits = engine.evaluate(seq, ids.slice(0, from));
    out.push(argmax(logits));
    for (let i = from; i < ids.length; i++) {
      logits = engine.evaluate(seq, [ids[i]!]);
      out.push(argmax(logits));
    }
    return out;
  } finally {
    seq.release();
  }
}
