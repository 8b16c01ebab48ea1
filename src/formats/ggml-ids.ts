import { GgmlType } from "../tensor/ggml-type.js";

/**
 * GGML type ids ggml defines (or once defined) that are not in our GgmlType enum: removed
 * interleaved layouts and types newer than the enum. A file using them is valid, only
 * unsupported; any other id is corruption.
 */
const FOREIGN_TYPES: ReadonlyMap<number, string> = new Map([
  [4, "q4_2 (removed from ggml)"],
  [5, "q4_3 (removed from ggml)"],
  [31, "q4_0_4_4 (removed from ggml)"],
  [32, "q4_0_4_8 (removed from ggml)"],
  [33, "q4_0_8_8 (removed from ggml)"],
  [36, "iq4_nl_4_4 (removed from ggml)"],
  [37, "iq4_nl_4_8 (removed from ggml)"],
  [38, "iq4_nl_8_8 (removed from ggml)"],
  [39, "mxfp4"],
  [40, "nvfp4"],
  [41, "q1_0"],
  [42, "q2_0"],
]);

/** ggml's name for a type id our enum lacks, or undefined. */
export function foreignTypeName(type: number): string | undefined {
  return FOREIGN_TYPES.get(type);
}

/** True for ids ggml knows (whether or not slimlm implements them). */
export function isGgmlTypeId(type: number): boolean {
  return GgmlType[type] !== undefined || FOREIGN_TYPES.has(type);
}
