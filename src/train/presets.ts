/** Model shapes to train (vocabulary size comes from the tokenizer unless given). */
import fs from "node:fs";
import { FileError, UsageError } from "../errors.js";
import type { TrainShape } from "./ops/llama-train.js";

export type ShapeConfig = Omit<TrainShape, "vocabSize"> & { readonly vocabSize?: number };

const base = { arch: "llama", normEps: 1e-5, ropeTheta: 10000, tiedEmbeddings: true } as const;

export const TRAIN_PRESETS: Readonly<Record<string, ShapeConfig>> = {
  /** stories260K's shape (Karpathy's tinyllamas): 5 layers of dim 64. */
  "stories260k": { ...base, dim: 64, nLayers: 5, nHeads: 8, nKvHeads: 4, ffnDim: 172, tiedEmbeddings: true },
  /** ~1 M parameters with a 4096-token vocabulary. */
  "tiny-1m": { ...base, dim: 128, nLayers: 4, nHeads: 4, nKvHeads: 2, ffnDim: 384 },
  /** ~4-5 M parameters with a 4096-token vocabulary. */
  "tiny-5m": { ...base, dim: 256, nLayers: 6, nHeads: 8, nKvHeads: 4, ffnDim: 704 },
};

/** A preset name or a JSON file of ShapeConfig fields. */
export function loadShapeConfig(spec: string): ShapeConfig {
  const p = TRAIN_PRESETS[spec];
  if (p !== undefined) return p;
  let raw: unknown;
  try {
    raw = JSON.parse(fs.readFileSync(spec, "utf8"));
  } catch (e) {
    if (!fs.existsSync(spec)) {
      throw new UsageError(`unknown model config "${spec}"`, { expected: `a preset (${Object.keys(TRAIN_PRESETS).join(", ")}) or a JSON file` });
    }
    throw new FileError(`cannot read the config ${spec}`, { got: e instanceof Error ? e.message : String(e) });
  }
  const o = (typeof raw === "object" && raw !== null ? raw : {}) as Record<string, unknown>;
  const int = (k: string, min: number, max: number, fallback?: number): number => {
    const v = o[k] ?? fallback;
    if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max) throw new UsageError(`invalid config field ${k}`, { expected: `an integer in [${min}, ${max}]`, got: String(v) });
    return v;
  };
  const num = (k: string, fallback: number): number => {
    const v = o[k] ?? fallback;
    if (typeof v !== "number" || !Number.isFinite(v) || v <= 0) throw new UsageError(`invalid config field ${k}`, { expected: "a positive number", got: String(v) });
    return v;
  };
  const arch = o.arch ?? "llama";
  if (arch !== "llama" && arch !== "qwen2") throw new UsageError("invalid config field arch", { expected: "llama or qwen2", got: String(arch) });
  const cfg: ShapeConfig = {
    arch,
    dim: int("dim", 8, 8192),
    nLayers: int("nLayers", 1, 256),
    nHeads: int("nHeads", 1, 256),
    nKvHeads: int("nKvHeads", 1, 256, typeof o.nHeads === "number" ? o.nHeads : undefined),
    ffnDim: int("ffnDim", 1, 65536),
    normEps: num("normEps", 1e-5),
    ropeTheta: num("ropeTheta", 10000),
    tiedEmbeddings: o.tiedEmbeddings !== false,
    ...(o.vocabSize === undefined ? {} : { vocabSize: int("vocabSize", 2, 1 << 20) }),
  };
  checkShape(cfg);
  return cfg;
}

export function checkShape(c: ShapeConfig): void {
  const bad = (what: string, got: string): never => {
    throw new UsageError(`invalid model config: ${what}`, { got });
  };
  if (c.dim % c.nHeads !== 0) bad("dim must be a multiple of nHeads", `${c.dim} / ${c.nHeads}`);
  if (c.nHeads % c.nKvHeads !== 0) bad("nHeads must be a multiple of nKvHeads", `${c.nHeads} / ${c.nKvHeads}`);
  if ((c.dim / c.nHeads) % 2 !== 0) bad("the head size must be even (RoPE)", String(c.dim / c.nHeads));
}
