/**
 * The one table of supported block formats. Adding a format = writing its file under formats/
 * and adding its row here.
 */

import { UnsupportedError, UsageError } from "../errors.js";
import type { BlockFormat } from "./format.js";
import { GgmlType, ggmlTypeName } from "./ggml-type.js";
import { BF16_FORMAT } from "./formats/bf16.js";
import { F16_FORMAT } from "./formats/f16.js";
import { F32_FORMAT } from "./formats/f32.js";
import { Q2_K_FORMAT } from "./formats/q2_k.js";
import { Q3_K_FORMAT } from "./formats/q3_k.js";
import { Q4_0_FORMAT } from "./formats/q4_0.js";
import { Q4_1_FORMAT } from "./formats/q4_1.js";
import { Q4_K_FORMAT } from "./formats/q4_k.js";
import { Q5_0_FORMAT } from "./formats/q5_0.js";
import { Q5_1_FORMAT } from "./formats/q5_1.js";
import { Q5_K_FORMAT } from "./formats/q5_k.js";
import { Q6_K_FORMAT } from "./formats/q6_k.js";
import { Q8_0_FORMAT } from "./formats/q8_0.js";
import { Q8_1_FORMAT } from "./formats/q8_1.js";
import { Q8_K_FORMAT } from "./formats/q8_k.js";

const ROWS: readonly BlockFormat[] = [
  F32_FORMAT,
  F16_FORMAT,
  BF16_FORMAT,
  Q4_0_FORMAT,
  Q4_1_FORMAT,
  Q5_0_FORMAT,
  Q5_1_FORMAT,
  Q8_0_FORMAT,
  Q8_1_FORMAT,
  Q2_K_FORMAT,
  Q3_K_FORMAT,
  Q4_K_FORMAT,
  Q5_K_FORMAT,
  Q6_K_FORMAT,
  Q8_K_FORMAT,
];

/** Every supported format by GGML type id. */
export const FORMATS: ReadonlyMap<GgmlType, BlockFormat> = new Map(ROWS.map((f) => [f.type, f]));

const SUPPORTED_NAMES = ROWS.map((f) => f.name).join(", ");

/**
 * The format of GGML type id `type`. Throws UnsupportedError for ids we do not implement (IQ*,
 * TQ*, integer types...) and ids unknown to us. `context` (e.g. a tensor name) prefixes the
 * message.
 */
export function getFormat(type: number, context?: string): BlockFormat {
  const f = FORMATS.get(type);
  if (f !== undefined) return f;
  const where = context === undefined ? "" : `${context}: `;
  const known = GgmlType[type] !== undefined;
  throw new UnsupportedError(
    known
      ? `${where}tensor type ${ggmlTypeName(type)} (id ${type}) is not supported`
      : `${where}unknown GGML tensor type id ${type}`,
    {
      expected: `one of ${SUPPORTED_NAMES}`,
      got: known ? ggmlTypeName(type) : `type id ${type}`,
      hint: known
        ? `slimlm does not implement ${ggmlTypeName(type)} (i-quants, ternary and integer/f64 types); ` +
          "re-quantize the model with llama.cpp's llama-quantize to e.g. Q4_K_M, Q8_0 or F16"
        : "the file may come from a newer llama.cpp than slimlm knows, or be corrupt",
    },
  );
}

/**
 * Bytes taken by a tensor of GGML type `type` with dimensions `dims` (ggml order: dims[0] is the
 * row length, the fastest-varying dimension). A 0-d tensor (dims = []) is one element.
 * Throws UnsupportedError for unsupported types or a row length that is not a whole number of
 * blocks (or a size beyond 2^53 bytes), UsageError for dims that are not non-negative integers.
 */
export function tensorBytes(type: number, dims: readonly number[], context?: string): number {
  const f = getFormat(type, context);
  const where = context === undefined ? "" : `${context}: `;
  for (const d of dims) {
    if (!Number.isSafeInteger(d) || d < 0) {
      throw new UsageError(`${where}bad tensor dimension ${d}`, {
        expected: "non-negative integer dimensions",
        got: `[${dims.join(", ")}]`,
      });
    }
  }
  const rowLen = dims.length === 0 ? 1 : dims[0];
  if (rowLen % f.blockSize !== 0) {
    throw new UnsupportedError(
      `${where}row length ${rowLen} is not a multiple of the ${f.name} block size ${f.blockSize}`,
      {
        expected: `dims[0] multiple of ${f.blockSize}`,
        got: `dims [${dims.join(", ")}]`,
        hint: `${f.name} stores rows in whole blocks of ${f.blockSize}; the tensor is malformed or needs another type`,
      },
    );
  }
  let bytes = (rowLen / f.blockSize) * f.typeSize;
  for (let i = 1; i < dims.length; i++) {
    bytes *= dims[i];
    if (bytes > Number.MAX_SAFE_INTEGER) {
      throw new UnsupportedError(`${where}tensor too large`, {
        expected: `at most ${Number.MAX_SAFE_INTEGER} bytes`,
        got: `dims [${dims.join(", ")}] of ${f.name}`,
      });
    }
  }
  return bytes;
}
