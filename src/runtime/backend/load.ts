/** Copy (and where needed convert) each lane's share of the weights into its memory. */
import type { WeightSource } from "../../formats/weights.js";
import { getFormat } from "../../tensor/registry.js";
import type { LanePlan } from "./plan.js";
import { readTensorF32 } from "./plan.js";

/** Rows converted per chunk when a storage-only type is dequantized at load. */
const CONVERT_CHUNK_BYTES = 16 << 20;

export interface LoadProgress {
  (done: number, total: number, tensor: string): void;
}

export function loadWeights(plan: LanePlan, weights: WeightSource, memories: readonly WebAssembly.Memory[], progress?: LoadProgress): void {
  const bytes = memories.map((m) => new Uint8Array(m.buffer));
  const floats = memories.map((m) => new Float32Array(m.buffer));
  const total = plan.matrices.length + plan.vectors.length;
  let done = 0;
  for (const v of plan.vectors) {
    const values = readTensorF32(weights, v.name, weights.get(v.name)!.type, v.length);
    plan.lanes.forEach((l, i) => floats[i]!.set(values, l.vec[v.id]! >> 2));
    progress?.(++done, total, v.name);
  }
  for (const m of plan.matrices) {
    const src = getFormat(m.fileType, m.name);
    const srcRowBytes = (m.cols / src.blockSize) * src.typeSize;
    const bias = m.bias === undefined ? undefined : readTensorF32(weights, m.bias, weights.get(m.bias)!.type, m.rows);
    for (let lane = 0; lane < plan.nLanes; lane++) {
      const r0 = m.bounds[lane]!;
      const r1 = m.bounds[lane + 1]!;
      if (r1 === r0) continue;
      const at = plan.lanes[lane]!.matrix[m.id]!;
      if (m.fileType === m.type) {
        weights.readInto(m.name, r0 * srcRowBytes, bytes[lane]!.subarray(at, at + (r1 - r0) * srcRowBytes));
      } else {
        // Storage-only type: dequantize to f32 (the planner chose F32 for it).
        const chunkRows = Math.max(1, Math.floor(CONVERT_CHUNK_BYTES / srcRowBytes));
        const buf = new Uint8Array(Math.min(r1 - r0, chunkRows) * srcRowBytes);
        for (let r = r0; r < r1; r += chunkRows) {
          const n = Math.min(chunkRows, r1 - r);
          const chunk = buf.subarray(0, n * srcRowBytes);
          weights.readInto(m.name, r * srcRowBytes, chunk);
          for (let i = 0; i < n; i++) {
            const dst = (at >> 2) + (r - r0 + i) * m.cols;
            src.dequantizeRow(chunk.subarray(i * srcRowBytes, (i + 1) * srcRowBytes), floats[lane]!.subarray(dst, dst + m.cols), m.cols);
          }
        }
      }
      if (bias !== undefined) floats[lane]!.set(bias.subarray(r0, r1), plan.lanes[lane]!.bias[m.id]! >> 2);
    }
    progress?.(++done, total, m.name);
  }
}
