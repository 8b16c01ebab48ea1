/** Reading a weight's rows as f32 values, whatever its type in the file (dequantizing). */
import type { TensorInfo, WeightSource } from "../formats/weights.js";
import { GgmlType } from "../tensor/ggml-type.js";
import { getFormat } from "../tensor/registry.js";

/** Row length and row count of a tensor (a 1-D tensor is one row; higher dims fold into rows). */
export function rowShape(info: TensorInfo): { cols: number; rows: number } {
  const cols = info.dims.length === 0 ? 1 : info.dims[0]!;
  let rows = 1;
  for (let i = 1; i < info.dims.length; i++) rows *= info.dims[i]!;
  return { cols, rows };
}

/**
 * Rows [r0, r0 + n) of tensor `info` as f32 into dst[0 .. n*cols). `scratch` is reused between
 * calls (grown when too small) and returned.
 */
export function readRowsF32(weights: WeightSource, info: TensorInfo, r0: number, n: number, dst: Float32Array, scratch: Uint8Array): Uint8Array {
  const { cols } = rowShape(info);
  const f = getFormat(info.type, info.name);
  const rowBytes = (cols / f.blockSize) * f.typeSize;
  if (info.type === GgmlType.F32) {
    weights.readInto(info.name, r0 * rowBytes, new Uint8Array(dst.buffer, dst.byteOffset, n * rowBytes));
    return scratch;
  }
  let buf = scratch;
  if (buf.length < n * rowBytes) buf = new Uint8Array(n * rowBytes);
  weights.readInto(info.name, r0 * rowBytes, buf.subarray(0, n * rowBytes));
  for (let r = 0; r < n; r++) f.dequantizeRow(buf.subarray(r * rowBytes, (r + 1) * rowBytes), dst.subarray(r * cols, (r + 1) * cols), cols);
  return buf;
}

/** A whole tensor as f32 (for small tensors: norms, calibration samples). */
export function readTensorF32(weights: WeightSource, info: TensorInfo): Float32Array {
  const { cols, rows } = rowShape(info);
  const out = new Float32Array(cols * rows);
  readRowsF32(weights, info, 0, rows, out, new Uint8Array(0));
  return out;
}
