/**
 * Copy (and where needed convert) each lane's share of the weights into its memory, in the
 * kernels' packed layout (src/kernels/packing.ts).
 *
 * Rows are read in chunks of whole groups of 4 rows into a staging buffer (storage-only types
 * are first converted: Q5_0 exactly to Q8_0 rows, the others dequantized to F32 rows, as the
 * planner chose), then packed into the lane's slice. Each lane packs its own slice
 * independently (its first row starts a group). The staging buffer is the lane's own kernel
 * scratch (free while loading): the file is read straight into WebAssembly memory and the
 * interleave runs in WebAssembly (wasmInterleaver), with a TypeScript fallback (and a
 * TypeScript staging buffer for converted types). Peak extra memory is a few staging buffers
 * (~2 x STAGE_BYTES), whatever the model size.
 */
import type { WeightSource } from "../../formats/weights.js";
import { KERNEL_RESERVED_BYTES, KERNEL_SCRATCH_START, PACK_ROWS, packRows, packedGroupBytes, wasmInterleaver } from "../../kernels/index.js";
import type { Interleaver } from "../../kernels/index.js";
import { getFormat } from "../../tensor/registry.js";
import { GgmlType } from "../../tensor/ggml-type.js";
import type { LanePlan } from "./plan.js";
import { readTensorF32 } from "./plan.js";

/** Target bytes of one chunk of rows (file bytes, and converted f32 bytes for storage-only types). */
const STAGE_BYTES = 8 << 20;

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
  let stage = new Uint8Array(0);
  let conv = new Float32Array(0);
  const fast: (Interleaver | undefined)[] = memories.map((m) => wasmInterleaver(m));
  const laneStage = KERNEL_RESERVED_BYTES - KERNEL_SCRATCH_START;
  for (const m of plan.matrices) {
    const src = getFormat(m.fileType, m.name);
    const srcRowBytes = (m.cols / src.blockSize) * src.typeSize;
    const convert = m.fileType !== m.type;
    const toQ8 = m.fileType === GgmlType.Q5_0 && m.type === GgmlType.Q8_0;
    const rowBytesOut = !convert ? srcRowBytes : toQ8 ? (m.cols / 32) * 34 : m.cols * 4;
    // whole groups per chunk, so that chunk i packs into groups [i * chunkGroups, ...)
    const chunkRows = Math.max(PACK_ROWS, Math.floor(STAGE_BYTES / Math.max(srcRowBytes, rowBytesOut) / PACK_ROWS) * PACK_ROWS);
    // rows per chunk staged in the lane's scratch (unconverted types)
    const laneRows = Math.floor(laneStage / srcRowBytes / PACK_ROWS) * PACK_ROWS;
    const groupBytes = packedGroupBytes(m.type, m.cols);
    const bias = m.bias === undefined ? undefined : readTensorF32(weights, m.bias, weights.get(m.bias)!.type, m.rows);
    for (let lane = 0; lane < plan.nLanes; lane++) {
      const r0 = m.bounds[lane]!;
      const r1 = m.bounds[lane + 1]!;
      if (r1 === r0) continue;
      const at = plan.lanes[lane]!.matrix[m.id]!;
      const f = fast[lane];
      if (f !== undefined && laneRows >= PACK_ROWS && !convert) {
        // file -> lane scratch -> packed slice, all inside the lane's memory
        const mem = bytes[lane]!;
        for (let r = r0; r < r1; r += laneRows) {
          const cnt = Math.min(laneRows, r1 - r);
          const chunk = mem.subarray(KERNEL_SCRATCH_START, KERNEL_SCRATCH_START + cnt * srcRowBytes);
          weights.readInto(m.name, r * srcRowBytes, chunk);
          const g0 = at + ((r - r0) / PACK_ROWS) * groupBytes;
          packRows(m.type, chunk, cnt, m.cols, mem.subarray(g0, g0 + Math.ceil(cnt / PACK_ROWS) * groupBytes), f);
        }
        if (bias !== undefined) floats[lane]!.set(bias.subarray(r0, r1), plan.lanes[lane]!.bias[m.id]! >> 2);
        continue;
      }
      const n = Math.min(chunkRows, r1 - r0);
      if (stage.length < n * srcRowBytes) stage = new Uint8Array(n * srcRowBytes);
      if (convert && conv.length * 4 < n * rowBytesOut) conv = new Float32Array(Math.ceil((n * rowBytesOut) / 4));
      for (let r = r0; r < r1; r += chunkRows) {
        const cnt = Math.min(chunkRows, r1 - r);
        const chunk = stage.subarray(0, cnt * srcRowBytes);
        weights.readInto(m.name, r * srcRowBytes, chunk);
        let rows = chunk;
        if (toQ8) {
          rows = new Uint8Array(conv.buffer, 0, cnt * rowBytesOut);
          q5_0ToQ8_0(chunk, rows, (cnt * m.cols) / 32);
        } else if (convert) {
          // Storage-only type: dequantize to f32 rows first (the planner chose F32 for it).
          for (let i = 0; i < cnt; i++) {
            src.dequantizeRow(chunk.subarray(i * srcRowBytes, (i + 1) * srcRowBytes), conv.subarray(i * m.cols, (i + 1) * m.cols), m.cols);
          }
          rows = new Uint8Array(conv.buffer, 0, cnt * m.cols * 4);
        }
        const g0 = at + ((r - r0) / PACK_ROWS) * groupBytes;
        const g1 = g0 + Math.ceil(cnt / PACK_ROWS) * groupBytes;
        packRows(m.type, rows, cnt, m.cols, bytes[lane]!.subarray(g0, g1));
      }
      if (bias !== undefined) floats[lane]!.set(bias.subarray(r0, r1), plan.lanes[lane]!.bias[m.id]! >> 2);
    }
    progress?.(++done, total, m.name);
  }
}

/**
 * nb Q5_0 blocks (22 B: f16 d, u32 qh, 16 B qs) -> nb Q8_0 blocks (34 B: f16 d, 32 i8) with the
 * same values: d copied, q8[j] = q5[j] - 16 (dequantize_row_q5_0's integers). Exact, and a
 * Q8_0 x Q8_0 dot of these is the same integer sum as ggml's Q5_0 x Q8_0 vec_dot.
 */
export function q5_0ToQ8_0(src: Uint8Array, dst: Uint8Array, nb: number): void {
  for (let b = 0; b < nb; b++) {
    const o = b * 22;
    const p = b * 34;
    dst[p] = src[o]!;
    dst[p + 1] = src[o + 1]!;
    const qh = (src[o + 2]! | (src[o + 3]! << 8) | (src[o + 4]! << 16) | (src[o + 5]! << 24)) >>> 0;
    for (let j = 0; j < 16; j++) {
      const q = src[o + 6 + j]!;
      const x0 = ((q & 0x0f) | (((qh >>> j) << 4) & 0x10)) - 16;
      const x1 = ((q >> 4) | ((qh >>> (j + 12)) & 0x10)) - 16;
      dst[p + 2 + j] = x0 & 0xff;
      dst[p + 18 + j] = x1 & 0xff;
    }
  }
}
