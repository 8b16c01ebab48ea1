/**
 * Importance matrices: per weight, the sum of x^2 of each input column over the calibration
 * tokens and the token count (llama.cpp's imatrix). Saved and loaded in llama.cpp's GGUF imatrix
 * format: general.type "imatrix", imatrix.datasets / chunk_count / chunk_size, and per weight the
 * tensors "<name>.in_sum2" (F32 [cols, 1]) and "<name>.counts" (F32 [1, 1]).
 */
import { ModelFormatError } from "../errors.js";
import { openGguf, writeGguf, type GgufWriterTensor } from "../formats/gguf/index.js";
import { GgufValueType, Metadata } from "../formats/metadata.js";
import { GgmlType } from "../tensor/ggml-type.js";
import { readTensorF32 } from "./tensor-rows.js";

export interface ImatrixEntry {
  /** Sum over tokens of x[c]^2, per input column. */
  readonly sumSq: Float64Array;
  /** Tokens counted. */
  count: number;
}

export class Imatrix {
  readonly entries = new Map<string, ImatrixEntry>();

  constructor(
    /** Where the statistics came from (file names), for the saved file. */
    readonly datasets: readonly string[] = [],
    /** Windows and their size, for the saved file. */
    public chunkCount = 0,
    public chunkSize = 0,
  ) {}

  /** Add `rows` rows of `cols` values of a weight's input. */
  add(name: string, x: Float32Array, rows: number, cols: number): void {
    let e = this.entries.get(name);
    if (e === undefined) {
      e = { sumSq: new Float64Array(cols), count: 0 };
      this.entries.set(name, e);
    }
    const s = e.sumSq;
    for (let t = 0; t < rows; t++) {
      const o = t * cols;
      for (let c = 0; c < cols; c++) {
        const v = x[o + c]!;
        s[c] = s[c]! + v * v;
      }
    }
    e.count += rows;
  }

  /**
   * Mean x^2 per column (what the weighted quantizers take), as f32. NOTE: computed as llama.cpp
   * does after loading an imatrix file (f32 sum / f32 count), so a saved and reloaded matrix gives
   * exactly the same importances.
   */
  importance(name: string): Float32Array | undefined {
    const e = this.entries.get(name);
    if (e === undefined || e.count === 0) return undefined;
    const out = new Float32Array(e.sumSq.length);
    const count = Math.fround(e.count);
    for (let c = 0; c < out.length; c++) out[c] = Math.fround(e.sumSq[c]!) / count;
    return out;
  }

  save(path: string): void {
    const md = new Metadata(path);
    md.set("general.type", GgufValueType.STRING, "imatrix");
    md.set("imatrix.datasets", GgufValueType.ARRAY, [...this.datasets], GgufValueType.STRING);
    md.set("imatrix.chunk_count", GgufValueType.UINT32, this.chunkCount);
    md.set("imatrix.chunk_size", GgufValueType.UINT32, this.chunkSize);
    const tensors: GgufWriterTensor[] = [];
    for (const [name, e] of [...this.entries].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
      const sums = Float32Array.from(e.sumSq);
      tensors.push({ name: `${name}.in_sum2`, type: GgmlType.F32, dims: [sums.length, 1], data: new Uint8Array(sums.buffer) });
      tensors.push({ name: `${name}.counts`, type: GgmlType.F32, dims: [1, 1], data: new Uint8Array(Float32Array.of(e.count).buffer) });
    }
    writeGguf(path, md, tensors);
  }

  static load(path: string): Imatrix {
    const f = openGguf(path);
    try {
      const type = f.metadata.optString("general.type");
      if (type !== "imatrix") {
        throw new ModelFormatError("not an importance-matrix file", {
          file: path,
          field: "general.type",
          expected: '"imatrix" (a GGUF imatrix from slimlm or llama-imatrix)',
          got: type === undefined ? "missing" : JSON.stringify(type),
        });
      }
      const datasets = f.metadata.has("imatrix.datasets") ? f.metadata.stringArray("imatrix.datasets") : [];
      const m = new Imatrix(datasets, f.metadata.uint("imatrix.chunk_count", { fallback: 0 }), f.metadata.uint("imatrix.chunk_size", { fallback: 0 }));
      for (const t of f.weights.tensors) {
        if (!t.name.endsWith(".in_sum2")) continue;
        const name = t.name.slice(0, -".in_sum2".length);
        const counts = f.weights.get(`${name}.counts`);
        if (counts === undefined) throw new ModelFormatError("imatrix entry without counts", { file: path, field: t.name, expected: `${name}.counts`, got: "missing" });
        const sums = readTensorF32(f.weights, t);
        const c = readTensorF32(f.weights, counts);
        if (c.length !== 1 || t.dims[1] !== 1) {
          throw new ModelFormatError("per-expert importance matrices are not supported", { file: path, field: t.name, expected: "one matrix per weight", got: `${c.length}` });
        }
        m.entries.set(name, { sumSq: Float64Array.from(sums), count: c[0]! });
      }
      return m;
    } finally {
      f.weights.close();
    }
  }
}
