/**
 * Which type each tensor gets: llama.cpp's `llama_tensor_get_type` (src/llama-quant.cpp) for the
 * file types slimlm writes, including the Q4_K_M / Q5_K_M / Q4_K_S mixes, --tensor-type
 * overrides, --output-type / --embedding-type, and `tensor_type_fallback` for row lengths a type
 * cannot hold. See docs/quantization.md for the rules in prose.
 */
import { UsageError } from "../errors.js";
import { GgmlType, ggmlTypeName } from "../tensor/ggml-type.js";
import { getFormat } from "../tensor/registry.js";
import { FTYPE, type FileTypeSpec, isQuantized } from "./quant-types.js";

export interface RecipeTensor {
  readonly name: string;
  /** GGUF dims: dims[0] is the row length. */
  readonly dims: readonly number[];
  readonly type: GgmlType;
}

export interface TensorTypeOverride {
  /** The pattern as given (regex source, lower-cased like llama-quantize). */
  readonly pattern: string;
  readonly regex: RegExp;
  readonly type: GgmlType;
}

export interface RecipeOptions {
  readonly spec: FileTypeSpec;
  readonly nLayers: number;
  /** Query heads per KV head (llama.cpp's n_gqa). */
  readonly nGqa: number;
  readonly arch: string;
  readonly overrides: readonly TensorTypeOverride[];
  readonly outputType?: GgmlType;
  readonly embeddingType?: GgmlType;
  /** --pure: every quantizable tensor in the base type (overrides still apply). */
  readonly pure?: boolean;
  /** An importance matrix is used (llama.cpp's has_imatrix: changes the Q4_0/Q5_0 ffn_down rule). */
  readonly hasImatrix: boolean;
}

export interface TensorPlan {
  readonly name: string;
  readonly dims: readonly number[];
  readonly from: GgmlType;
  readonly to: GgmlType;
  /** Quantizable weight (2-D, name ending in "weight", not a norm). */
  readonly quantizable: boolean;
  /** Why the type differs from the file type's base, when it does. */
  readonly reason?: string;
  /** Set when the row length forced another type (tensor_type_fallback). */
  readonly fallback?: string;
}

type Category = "token_embd" | "output" | "attn_q" | "attn_k" | "attn_v" | "attn_qkv" | "attn_output" | "ffn_up" | "ffn_gate" | "ffn_down" | "other";

function category(name: string): Category {
  if (name === "output.weight") return "output";
  if (name === "token_embd.weight") return "token_embd";
  if (name.includes("attn_qkv.weight")) return "attn_qkv";
  if (name.includes("attn_v.weight")) return "attn_v";
  if (name.includes("attn_k.weight")) return "attn_k";
  if (name.includes("attn_q.weight")) return "attn_q";
  if (name.includes("attn_output.weight")) return "attn_output";
  if (name.includes("ffn_up")) return "ffn_up";
  if (name.includes("ffn_gate")) return "ffn_gate";
  if (name.includes("ffn_down")) return "ffn_down";
  return "other";
}

/** tensor_allows_quantization, restricted to what Llama-family files hold. */
export function allowsQuantization(name: string, dims: readonly number[]): boolean {
  if (dims.length < 2) return false;
  if (!name.endsWith("weight")) return false;
  if (name.includes("_norm.weight")) return false;
  if (name.includes("ffn_gate_inp.weight")) return false;
  if (name === "position_embd.weight" || name === "token_types.weight") return false;
  return true;
}

/** llama.cpp's use_more_bits: the first and last eighth of the layers and every third in between. */
export function useMoreBits(i: number, n: number): boolean {
  const e = Math.trunc(n / 8);
  return i < e || i >= Math.trunc((7 * n) / 8) || (i - e) % 3 === 2;
}

function layerOf(name: string): number | undefined {
  const m = /^blk\.(\d+)\./.exec(name);
  return m === null ? undefined : Number(m[1]);
}

/**
 * tensor_type_fallback: a type whose block does not divide the row length falls back to a
 * 32-block type, and to F16 when even that does not fit. Returns the type and a note when it
 * changed.
 */
export function fallbackType(type: GgmlType, rowLength: number): { type: GgmlType; note?: string } {
  const bs = (t: GgmlType): number => getFormat(t).blockSize;
  if (rowLength % bs(type) === 0) return { type };
  const next: Partial<Record<GgmlType, GgmlType>> = {
    [GgmlType.Q2_K]: GgmlType.Q4_0,
    [GgmlType.Q3_K]: GgmlType.Q4_0,
    [GgmlType.Q4_K]: GgmlType.Q5_0,
    [GgmlType.Q5_K]: GgmlType.Q5_1,
    [GgmlType.Q6_K]: GgmlType.Q8_0,
  };
  let to = next[type] ?? type;
  const why = `row length ${rowLength} is not a multiple of ${bs(type)} (${ggmlTypeName(type)})`;
  if (rowLength % bs(to) !== 0) {
    to = GgmlType.F16;
    return { type: to, note: `${why}; must use f16 (row length not a multiple of 32 either)` };
  }
  return { type: to, note: `${why}; falling back to ${ggmlTypeName(to)}` };
}

/** Parses "regex=type" (llama-quantize --tensor-type: the pattern is lower-cased, searched anywhere in the name). */
export function parseOverride(arg: string, typeOf: (name: string) => GgmlType): TensorTypeOverride {
  const eq = arg.lastIndexOf("=");
  if (eq <= 0 || eq === arg.length - 1) {
    throw new UsageError(`malformed --tensor-type "${arg}"`, { expected: "<regex>=<type>, e.g. attn_v=q6_k", got: JSON.stringify(arg) });
  }
  const pattern = arg.slice(0, eq).toLowerCase();
  let regex: RegExp;
  try {
    regex = new RegExp(pattern);
  } catch (e) {
    throw new UsageError(`invalid --tensor-type pattern "${pattern}"`, { expected: "a JavaScript regular expression", got: e instanceof Error ? e.message : String(e) });
  }
  return { pattern, regex, type: typeOf(arg.slice(eq + 1)) };
}

/** The type of every tensor of a file. */
export function planTypes(tensors: readonly RecipeTensor[], o: RecipeOptions): TensorPlan[] {
  const tied = !tensors.some((t) => t.name === "output.weight");
  const nAttnV = tensors.filter((t) => category(t.name) === "attn_v").length;
  let iAttnV = 0;
  // llama.cpp walks tensors sorted by layer, so its counters equal the layer index; count in
  // that order here too, whatever the file's order.
  const byLayer = [...tensors.keys()].sort((a, b) => (layerOf(tensors[a]!.name) ?? -1) - (layerOf(tensors[b]!.name) ?? -1) || a - b);
  const attnVIndex = new Map<number, number>();
  for (const i of byLayer) if (category(tensors[i]!.name) === "attn_v") attnVIndex.set(i, iAttnV++);

  return tensors.map((t, i): TensorPlan => {
    const base = { name: t.name, dims: t.dims, from: t.type };
    if (!allowsQuantization(t.name, t.dims)) {
      // NOTE: 1-D tensors (norms, biases) are always written as F32, as the converter does.
      return { ...base, to: t.dims.length < 2 ? GgmlType.F32 : t.type, quantizable: false };
    }
    const cat = category(t.name);
    const rowLength = t.dims[0]!;
    let to = o.spec.base;
    let reason: string | undefined;
    const finish = (): TensorPlan => {
      const fb = isQuantized(to) ? fallbackType(to, rowLength) : { type: to };
      return {
        ...base,
        to: fb.type,
        quantizable: true,
        ...(reason === undefined ? {} : { reason }),
        ...(fb.note === undefined ? {} : { fallback: fb.note }),
      };
    };
    if (o.embeddingType !== undefined && cat === "token_embd") {
      to = o.embeddingType;
      reason = "--embedding-type";
      return finish();
    }
    if (o.outputType !== undefined && cat === "output") {
      to = o.outputType;
      reason = "--output-type";
      return finish();
    }
    if (!isQuantized(to)) return finish();
    const manual = o.overrides.find((ov) => ov.regex.test(t.name));
    if (manual !== undefined) {
      to = manual.type;
      reason = `--tensor-type ${manual.pattern}`;
      return finish();
    }
    if (o.pure === true) return finish();
    const r = mixRule(o, cat, to, t, tied, attnVIndex.get(i) ?? 0, nAttnV);
    if (r !== undefined) {
      to = r.type;
      reason = r.reason;
    }
    return finish();
  });
}

/** llama_tensor_get_type_impl for the file types slimlm writes. */
function mixRule(
  o: RecipeOptions,
  cat: Category,
  type: GgmlType,
  t: RecipeTensor,
  tied: boolean,
  iAttnV: number,
  nAttnV: number,
): { type: GgmlType; reason: string } | undefined {
  const f = o.spec.ftype;
  if (cat === "output" || (tied && cat === "token_embd")) {
    const what = cat === "output" ? "output.weight" : "tied token_embd (used as output)";
    if (o.outputType !== undefined) return { type: o.outputType, reason: `--output-type (${what})` };
    if (t.dims[0]! % getFormat(type).blockSize !== 0) return { type: GgmlType.Q8_0, reason: `${what}: row length not a multiple of the block` };
    if (type !== GgmlType.Q8_0) return { type: GgmlType.Q6_K, reason: `${what} in q6_k` };
    return undefined;
  }
  if (cat === "attn_v" || cat === "attn_qkv") {
    let to: GgmlType | undefined;
    let reason = "";
    if (cat === "attn_qkv") {
      if (f === FTYPE.MOSTLY_Q4_K_M) to = GgmlType.Q5_K;
      else if (f === FTYPE.MOSTLY_Q5_K_M) to = GgmlType.Q6_K;
      reason = "attn_qkv of a _M mix";
      return to === undefined ? undefined : { type: to, reason };
    }
    if ((f === FTYPE.MOSTLY_Q4_K_M || f === FTYPE.MOSTLY_Q5_K_M) && useMoreBits(iAttnV, nAttnV)) {
      to = GgmlType.Q6_K;
      reason = "attn_v, use_more_bits layer";
    } else if (f === FTYPE.MOSTLY_Q4_K_S && iAttnV < 4) {
      to = GgmlType.Q5_K;
      reason = "attn_v of the first 4 layers";
    }
    // llama.cpp's 70B rule (LLM_TYPE_70B: llama, 80 layers, grouped-query attention): attn_v is
    // 8x smaller than attn_q there, so 3-4 bit attn_v -> Q5_K.
    if (o.arch === "llama" && o.nLayers === 80 && o.nGqa > 1) {
      const cur = to ?? type;
      if (cur === GgmlType.Q3_K || cur === GgmlType.Q4_K) {
        to = GgmlType.Q5_K;
        reason = "attn_v of a 70B model";
      }
    }
    return to === undefined ? undefined : { type: to, reason };
  }
  if (cat === "ffn_down") {
    const i = layerOf(t.name) ?? 0;
    const n = o.nLayers;
    if (f === FTYPE.MOSTLY_Q4_K_M && useMoreBits(i, n)) return { type: GgmlType.Q6_K, reason: "ffn_down, use_more_bits layer" };
    if (f === FTYPE.MOSTLY_Q5_K_M && useMoreBits(i, n)) return { type: GgmlType.Q6_K, reason: "ffn_down, use_more_bits layer" };
    if (f === FTYPE.MOSTLY_Q4_K_S && i < Math.trunc(n / 8)) return { type: GgmlType.Q5_K, reason: "ffn_down of the first eighth of the layers" };
    if ((f === FTYPE.MOSTLY_Q4_0 || f === FTYPE.MOSTLY_Q5_0) && o.hasImatrix && i < Math.trunc(n / 8)) {
      return { type: f === FTYPE.MOSTLY_Q4_0 ? GgmlType.Q4_1 : GgmlType.Q5_1, reason: "ffn_down of the first eighth of the layers (with an importance matrix)" };
    }
  }
  return undefined;
}
