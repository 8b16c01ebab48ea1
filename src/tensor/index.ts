/** Public API of src/tensor: GGML types, f16/bf16 conversion, block formats and their registry. */

export { GgmlType, ggmlTypeName } from "./ggml-type.js";
export type { BlockFormat } from "./format.js";
export { rowBytes } from "./format.js";
export {
  bf16ToF32,
  bf16ToF32Row,
  f16BitsToF32Bits,
  f16ToF32,
  f16ToF32Row,
  f32BitsToBf16,
  f32BitsToF16,
  f32ToBf16,
  f32ToBf16Row,
  f32ToF16,
  f32ToF16Row,
} from "./f16.js";
export { FORMATS, getFormat, tensorBytes } from "./registry.js";
export { F32_FORMAT } from "./formats/f32.js";
export { F16_FORMAT } from "./formats/f16.js";
export { BF16_FORMAT } from "./formats/bf16.js";
export { Q4_0_FORMAT } from "./formats/q4_0.js";
export { Q4_1_FORMAT } from "./formats/q4_1.js";
export { Q5_0_FORMAT } from "./formats/q5_0.js";
export { Q5_1_FORMAT } from "./formats/q5_1.js";
export { Q8_0_FORMAT } from "./formats/q8_0.js";
export { Q8_1_FORMAT } from "./formats/q8_1.js";
export { Q2_K_FORMAT } from "./formats/q2_k.js";
export { Q3_K_FORMAT } from "./formats/q3_k.js";
export { Q4_K_FORMAT } from "./formats/q4_k.js";
export { Q5_K_FORMAT } from "./formats/q5_k.js";
export { Q6_K_FORMAT } from "./formats/q6_k.js";
export { Q8_K_FORMAT } from "./formats/q8_k.js";
