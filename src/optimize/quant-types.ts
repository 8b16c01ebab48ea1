/**
 * The quantization types `slimlm quantize --type` accepts: llama.cpp file types (`llama_ftype`,
 * written as `general.file_type`) with the default tensor type of each. q4_k and q5_k are
 * llama.cpp's Q4_K_S and Q5_K_S recipes (NOTE: llama-quantize's own "Q4_K"/"Q5_K" aliases mean
 * the _M mixes; slimlm spells those q4_k_m and q5_k_m).
 */
import { UsageError } from "../errors.js";
import { GgmlType } from "../tensor/ggml-type.js";

export type FileTypeName =
  | "f32" | "f16" | "bf16" | "q8_0" | "q4_0" | "q4_1" | "q5_0" | "q5_1"
  | "q4_k_s" | "q4_k_m" | "q5_k_s" | "q5_k_m" | "q6_k";

export interface FileTypeSpec {
  readonly name: FileTypeName;
  /** llama_ftype (general.file_type). */
  readonly ftype: number;
  /** The type of every quantizable weight before the recipe adjusts it. */
  readonly base: GgmlType;
}

/** llama_ftype values (llama.h). */
export const FTYPE = {
  ALL_F32: 0, MOSTLY_F16: 1, MOSTLY_Q4_0: 2, MOSTLY_Q4_1: 3, MOSTLY_Q8_0: 7, MOSTLY_Q5_0: 8, MOSTLY_Q5_1: 9,
  MOSTLY_Q4_K_S: 14, MOSTLY_Q4_K_M: 15, MOSTLY_Q5_K_S: 16, MOSTLY_Q5_K_M: 17, MOSTLY_Q6_K: 18, MOSTLY_BF16: 32,
} as const;

const SPECS: readonly FileTypeSpec[] = [
  { name: "f32", ftype: FTYPE.ALL_F32, base: GgmlType.F32 },
  { name: "f16", ftype: FTYPE.MOSTLY_F16, base: GgmlType.F16 },
  { name: "bf16", ftype: FTYPE.MOSTLY_BF16, base: GgmlType.BF16 },
  { name: "q8_0", ftype: FTYPE.MOSTLY_Q8_0, base: GgmlType.Q8_0 },
  { name: "q4_0", ftype: FTYPE.MOSTLY_Q4_0, base: GgmlType.Q4_0 },
  { name: "q4_1", ftype: FTYPE.MOSTLY_Q4_1, base: GgmlType.Q4_1 },
  { name: "q5_0", ftype: FTYPE.MOSTLY_Q5_0, base: GgmlType.Q5_0 },
  { name: "q5_1", ftype: FTYPE.MOSTLY_Q5_1, base: GgmlType.Q5_1 },
  { name: "q4_k_s", ftype: FTYPE.MOSTLY_Q4_K_S, base: GgmlType.Q4_K },
  { name: "q4_k_m", ftype: FTYPE.MOSTLY_Q4_K_M, base: GgmlType.Q4_K },
  { name: "q5_k_s", ftype: FTYPE.MOSTLY_Q5_K_S, base: GgmlType.Q5_K },
  { name: "q5_k_m", ftype: FTYPE.MOSTLY_Q5_K_M, base: GgmlType.Q5_K },
  { name: "q6_k", ftype: FTYPE.MOSTLY_Q6_K, base: GgmlType.Q6_K },
];

const ALIASES: Readonly<Record<string, FileTypeName>> = { q4_k: "q4_k_s", q5_k: "q5_k_s" };

/** Names accepted by --type, for messages. */
export const FILE_TYPE_NAMES = "q8_0, q4_0, q4_1, q5_0, q5_1, q4_k, q4_k_s, q4_k_m, q5_k, q5_k_s, q5_k_m, q6_k, f16, bf16, f32";

/** The spec of a --type value (case-insensitive). */
export function fileTypeSpec(name: string): FileTypeSpec {
  const n = name.trim().toLowerCase();
  const canonical = ALIASES[n] ?? n;
  const s = SPECS.find((x) => x.name === canonical);
  if (s === undefined) {
    throw new UsageError(`unknown quantization type "${name}"`, { expected: `one of ${FILE_TYPE_NAMES}`, got: JSON.stringify(name) });
  }
  return s;
}

/** Tensor types accepted by --tensor-type, --output-type and --embedding-type. */
const TENSOR_TYPES: ReadonlyMap<string, GgmlType> = new Map([
  ["f32", GgmlType.F32], ["f16", GgmlType.F16], ["bf16", GgmlType.BF16], ["q8_0", GgmlType.Q8_0],
  ["q4_0", GgmlType.Q4_0], ["q4_1", GgmlType.Q4_1], ["q5_0", GgmlType.Q5_0], ["q5_1", GgmlType.Q5_1],
  ["q2_k", GgmlType.Q2_K], ["q3_k", GgmlType.Q3_K], ["q4_k", GgmlType.Q4_K], ["q5_k", GgmlType.Q5_K], ["q6_k", GgmlType.Q6_K],
]);

/** A tensor type name (ggml spelling, case-insensitive), e.g. "q6_k". */
export function tensorTypeOf(name: string, option: string): GgmlType {
  const t = TENSOR_TYPES.get(name.trim().toLowerCase());
  if (t === undefined) {
    throw new UsageError(`unknown tensor type "${name}" for ${option}`, {
      expected: `one of ${[...TENSOR_TYPES.keys()].join(", ")}`,
      got: JSON.stringify(name),
    });
  }
  return t;
}

/** Whether a type is a block-quantized one (ggml_is_quantized). */
export function isQuantized(t: GgmlType): boolean {
  return t !== GgmlType.F32 && t !== GgmlType.F16 && t !== GgmlType.BF16;
}

/** Types with 4-bit weights, where activation-aware scaling is applied (AWQ). */
export function isFourBit(spec: FileTypeSpec): boolean {
  return spec.base === GgmlType.Q4_0 || spec.base === GgmlType.Q4_1 || spec.base === GgmlType.Q4_K;
}
