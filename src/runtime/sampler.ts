/**
 * Token sampling, in llama.cpp's default order: penalties -> top-k -> top-p -> min-p ->
 * temperature -> draw. Temperature <= 0 is greedy (argmax after penalties).
 *
 * Cost per token is O(V) for the penalties scan and top-k selection; a full sort only happens
 * when top-k is disabled (0) and a sampling filter needs the whole vocabulary ordered.
 */
import { UsageError } from "../errors.js";

export interface SamplingParams {
  /** 0 = greedy. */
  readonly temperature: number;
  /** 0 = disabled. */
  readonly topK: number;
  /** 1 = disabled. */
  readonly topP: number;
  /** 0 = disabled. */
  readonly minP: number;
  /** 1 = disabled. Divides positive logits and multiplies negative ones of recent tokens. */
  readonly repeatPenalty: number;
  /** Subtracted once from the logit of every token seen in the window (OpenAI semantics). */
  readonly presencePenalty: number;
  /** Subtracted per occurrence in the window. */
  readonly frequencyPenalty: number;
  /** Window of recent tokens (prompt included) the penalties look at; -1 = whole context. */
  readonly penaltyLastN: number;
  /** Same seed, same draws. undefined = random. */
  readonly seed: number | undefined;
}

export const DEFAULT_SAMPLING: SamplingParams = {
  temperature: 0.8,
  topK: 40,
  topP: 0.95,
  minP: 0.05,
  repeatPenalty: 1,
  presencePenalty: 0,
  frequencyPenalty: 0,
  penaltyLastN: 64,
  seed: undefined,
};

export const GREEDY: SamplingParams = { ...DEFAULT_SAMPLING, temperature: 0 };

/** Range-check user-supplied sampling parameters (the CLI and the server share these rules). */
export function validateSampling(p: SamplingParams): SamplingParams {
  const bad = (name: string, expected: string, got: number): never => {
    throw new UsageError(`invalid ${name}`, { expected, got: String(got) });
  };
  if (!Number.isFinite(p.temperature) || p.temperature < 0 || p.temperature > 100) bad("temperature", "a number in [0, 100]", p.temperature);
  if (!Number.isInteger(p.topK) || p.topK < 0) bad("top-k", "an integer >= 0", p.topK);
  if (!(p.topP > 0 && p.topP <= 1)) bad("top-p", "a number in (0, 1]", p.topP);
  if (!(p.minP >= 0 && p.minP <= 1)) bad("min-p", "a number in [0, 1]", p.minP);
  if (!(p.repeatPenalty > 0 && p.repeatPenalty <= 10)) bad("repeat penalty", "a number in (0, 10]", p.repeatPenalty);
  if (!(p.presencePenalty >= -2 && p.presencePenalty <= 2)) bad("presence penalty", "a number in [-2, 2]", p.presencePenalty);
  if (!(p.frequencyPenalty >= -2 && p.frequencyPenalty <= 2)) bad("frequency penalty", "a number in [-2, 2]", p.frequencyPenalty);
  if (!Number.isInteger(p.penaltyLastN) || p.penaltyLastN < -1) bad("penalty window", "an integer >= -1", p.penaltyLastN);
  if (p.seed !== undefined && !(Number.isInteger(p.seed) && p.seed >= 0 && p.seed <= Number.MAX_SAFE_INTEGER)) bad("seed", "an integer >= 0", p.seed);
  return p;
}

/** xoshiro128** seeded by splitmix32: small, fast, and the same stream on every platform. */
export class Rng {
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;

  constructor(seed: number) {
    let x = (seed >>> 0) ^ Math.floor(seed / 2 ** 32);
    const next = (): number => {
      x = (x + 0x9e3779b9) | 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.s0 = next();
    this.s1 = next();
    this.s2 = next();
    this.s3 = next();
  }

  /** Uniform in [0, 1). */
  next(): number {
    const r = Math.imul(rotl(Math.imul(this.s1, 5), 7), 9) >>> 0;
    const t = this.s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = rotl(this.s3, 11);
    return r / 2 ** 32;
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

/** A sampler for one sequence: owns its RNG, its penalty window and its scratch buffers. */
export class Sampler {
  readonly params: SamplingParams;
  private readonly rng: Rng;
  private readonly recent: number[] = [];
  private readonly counts = new Map<number, number>();
  // scratch, grown once to the vocabulary size
  private ids = new Int32Array(0);
  private vals = new Float32Array(0);
  private probs = new Float64Array(0);

  constructor(params: SamplingParams) {
    this.params = validateSampling(params);
    this.rng = new Rng(params.seed ?? Math.floor(Math.random() * 2 ** 32));
  }

  /** Record a token (prompt or generated) in the penalty window. */
  accept(token: number): void {
    const n = this.params.penaltyLastN;
    if (n === 0 || !this.penalized) return;
    this.recent.push(token);
    this.counts.set(token, (this.counts.get(token) ?? 0) + 1);
    if (n > 0 && this.recent.length > n) {
      const old = this.recent.shift()!;
      const c = this.counts.get(old)! - 1;
      if (c === 0) this.counts.delete(old);
      else this.counts.set(old, c);
    }
  }

  private get penalized(): boolean {
    const p = this.params;
    return p.repeatPenalty !== 1 || p.presencePenalty !== 0 || p.frequencyPenalty !== 0;
  }

  /** Choose the next token from one row of logits (not modified). */
  sample(logits: Float32Array): number {
    const p = this.params;
    const V = logits.length;
    if (this.vals.length < V) {
      this.ids = new Int32Array(V);
      this.vals = new Float32Array(V);
      this.probs = new Float64Array(V);
    }
    // Penalties touch only the tokens in the window; apply them on a sparse overlay.
    const penalty = this.penalized ? this.penaltyOverlay(logits) : undefined;
    const logit = penalty === undefined ? (i: number) => logits[i]! : (i: number) => penalty.get(i) ?? logits[i]!;

    if (p.temperature <= 0) {
      let best = 0;
      let bestV = -Infinity;
      for (let i = 0; i < V; i++) {
        const v = logit(i);
        if (v > bestV) {
          bestV = v;
          best = i;
        }
      }
      return best;
    }

    // 1. candidates, sorted by logit descending (top-k, or all)
    const n = p.topK > 0 && p.topK < V ? this.topK(logit, V, p.topK) : this.sortAll(logit, V);
    const ids = this.ids;
    const vals = this.vals;
    // 2. top-p on the softmax of the candidates
    let keep = n;
    if (p.topP < 1) {
      const probs = this.softmax(n, 1);
      let cum = 0;
      for (let i = 0; i < n; i++) {
        cum += probs[i]!;
        if (cum >= p.topP) {
          keep = i + 1;
          break;
        }
      }
    }
    // 3. min-p relative to the best candidate: p_i >= minP * p_max  <=>  l_i >= l_max + ln(minP)
    if (p.minP > 0) {
      const threshold = vals[0]! + Math.log(p.minP);
      let k = 1;
      while (k < keep && vals[k]! >= threshold) k++;
      keep = k;
    }
    // 4. temperature, 5. draw
    const probs = this.softmax(keep, 1 / p.temperature);
    let r = this.rng.next();
    for (let i = 0; i < keep; i++) {
      r -= probs[i]!;
      if (r < 0) return ids[i]!;
    }
    return ids[keep - 1]!;
  }

  private penaltyOverlay(logits: Float32Array): Map<number, number> {
    const p = this.params;
    const out = new Map<number, number>();
    for (const [tok, count] of this.counts) {
      if (tok < 0 || tok >= logits.length) continue;
      let l = logits[tok]!;
      if (p.repeatPenalty !== 1) l = l > 0 ? l / p.repeatPenalty : l * p.repeatPenalty;
      l -= count * p.frequencyPenalty + p.presencePenalty;
      out.set(tok, l);
    }
    return out;
  }

  /** Keep the k largest in ids/vals[0..k), sorted descending. O(V log k). */
  private topK(logit: (i: number) => number, V: number, k: number): number {
    const ids = this.ids;
    const vals = this.vals;
    // min-heap of size k in ids/vals
    let size = 0;
    for (let i = 0; i < V; i++) {
      const v = logit(i);
      if (size < k) {
        let j = size++;
        while (j > 0) {
          const parent = (j - 1) >> 1;
          if (vals[parent]! <= v) break;
          vals[j] = vals[parent]!;
          ids[j] = ids[parent]!;
          j = parent;
        }
        vals[j] = v;
        ids[j] = i;
      } else if (v > vals[0]!) {
        siftDown(ids, vals, size, i, v);
      }
    }
    // heap-sort descending: repeatedly move the minimum to the end
    for (let end = size - 1; end > 0; end--) {
      const minId = ids[0]!;
      const minV = vals[0]!;
      const lastId = ids[end]!;
      const lastV = vals[end]!;
      ids[end] = minId;
      vals[end] = minV;
      siftDown(ids, vals, end, lastId, lastV);
    }
    return size;
  }

  private sortAll(logit: (i: number) => number, V: number): number {
    const order = Array.from({ length: V }, (_, i) => i);
    const l = Float32Array.from({ length: V }, (_, i) => logit(i));
    order.sort((a, b) => l[b]! - l[a]! || a - b);
    for (let i = 0; i < V; i++) {
      this.ids[i] = order[i]!;
      this.vals[i] = l[order[i]!]!;
    }
    return V;
  }

  /** Softmax of vals[0..n) * scale (vals sorted descending) into probs. */
  private softmax(n: number, scale: number): Float64Array {
    const probs = this.probs;
    const max = this.vals[0]! * scale;
    let sum = 0;
    for (let i = 0; i < n; i++) {
      const e = Math.exp(this.vals[i]! * scale - max);
      probs[i] = e;
      sum += e;
    }
    for (let i = 0; i < n; i++) probs[i] = probs[i]! / sum;
    return probs;
  }
}

/** Replace the heap root with (id, v) and restore the min-heap of `size` entries. */
function siftDown(ids: Int32Array, vals: Float32Array, size: number, id: number, v: number): void {
  let j = 0;
  for (;;) {
    const l = 2 * j + 1;
    if (l >= size) break;
    const r = l + 1;
    const c = r < size && vals[r]! < vals[l]! ? r : l;
    if (vals[c]! >= v) break;
    vals[j] = vals[c]!;
    ids[j] = ids[c]!;
    j = c;
  }
  vals[j] = v;
  ids[j] = id;
}
