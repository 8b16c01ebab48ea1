/**
 * Checkpoints: the model as a GGUF file (F32 or F16) that every slimlm command and llama.cpp
 * load, plus an optimizer sidecar `<file>.opt` holding the f32 master weights, AdamW's moments and
 * the training position, so a run resumes exactly where it stopped (even from an F16 GGUF).
 *
 * Sidecar layout (little endian): "SLMOPT1\n", u32 header length, header JSON (UTF-8), padding to
 * 4 bytes, then f32 params, f32 m, f32 v (numParams each).
 */
import fs from "node:fs";
import { FileError, ModelFormatError, UsageError } from "../errors.js";
import { AtomicFileWriter } from "../formats/file-writer.js";
import { writeGguf, type GgufWriterTensor } from "../formats/gguf/index.js";
import { GgufValueType, Metadata } from "../formats/metadata.js";
import type { WeightSource } from "../formats/weights.js";
import { GgmlType } from "../tensor/ggml-type.js";
import { getFormat } from "../tensor/registry.js";
import type { AdamW } from "./ops/optim.js";
import type { ParamSpec, TrainShape } from "./ops/llama-train.js";

const MAGIC = "SLMOPT1\n";

export interface CheckpointInfo {
  readonly shape: TrainShape;
  readonly contextLength: number;
  readonly name: string;
  /** tokenizer.* keys to carry. */
  readonly tokenizer: Metadata;
  /** Free-form training facts recorded under slimlm.training.* */
  readonly training?: Record<string, string | number>;
}

/** GGUF metadata for a trained shape, in llama.cpp's key names. */
export function checkpointMetadata(info: CheckpointInfo, type: GgmlType): Metadata {
  const s = info.shape;
  const a = s.arch;
  const m = new Metadata("checkpoint");
  m.set("general.architecture", GgufValueType.STRING, a);
  m.set("general.name", GgufValueType.STRING, info.name);
  m.set("general.file_type", GgufValueType.UINT32, type === GgmlType.F16 ? 1 : 0);
  m.set(`${a}.context_length`, GgufValueType.UINT32, info.contextLength);
  m.set(`${a}.embedding_length`, GgufValueType.UINT32, s.dim);
  m.set(`${a}.block_count`, GgufValueType.UINT32, s.nLayers);
  m.set(`${a}.feed_forward_length`, GgufValueType.UINT32, s.ffnDim);
  m.set(`${a}.attention.head_count`, GgufValueType.UINT32, s.nHeads);
  m.set(`${a}.attention.head_count_kv`, GgufValueType.UINT32, s.nKvHeads);
  m.set(`${a}.rope.freq_base`, GgufValueType.FLOAT32, s.ropeTheta);
  m.set(`${a}.rope.dimension_count`, GgufValueType.UINT32, s.dim / s.nHeads);
  m.set(`${a}.attention.layer_norm_rms_epsilon`, GgufValueType.FLOAT32, s.normEps);
  m.set(`${a}.vocab_size`, GgufValueType.UINT32, s.vocabSize);
  for (const [k, e] of info.tokenizer.entries) if (k.startsWith("tokenizer.")) m.entries.set(k, e);
  for (const [k, v] of Object.entries(info.training ?? {})) {
    m.set(`slimlm.training.${k}`, typeof v === "number" ? GgufValueType.FLOAT64 : GgufValueType.STRING, v);
  }
  return m;
}

/** Write the model as GGUF: matrices in `type` (F32 or F16), norms in F32. */
export function writeModelGguf(path: string, info: CheckpointInfo, specs: readonly ParamSpec[], params: Float32Array, type: GgmlType = GgmlType.F32): number {
  if (type !== GgmlType.F32 && type !== GgmlType.F16) throw new UsageError("checkpoints are F32 or F16", { got: String(type) });
  const tensors: GgufWriterTensor[] = specs.map((p) => {
    const t = p.shape.length === 2 ? type : GgmlType.F32;
    const f = getFormat(t);
    const cols = p.shape[p.shape.length - 1]!;
    const rows = p.size / cols;
    return {
      name: p.name,
      type: t,
      dims: [...p.shape].reverse(),
      data: (write: (chunk: Uint8Array) => void) => {
        const rowBytes = (cols / f.blockSize) * f.typeSize;
        const buf = new Uint8Array(rowBytes);
        for (let r = 0; r < rows; r++) {
          f.quantizeRowRef!(params.subarray(p.offset + r * cols, p.offset + (r + 1) * cols), buf, cols);
          write(buf);
        }
      },
    };
  });
  return writeGguf(path, checkpointMetadata(info, type), tensors).fileSize;
}

/** Fill params from a model file's tensors (names as in `specs`), converting from any type. */
export function readParams(weights: WeightSource, specs: readonly ParamSpec[], params: Float32Array, opts: { rename?: (name: string) => string; allowMissing?: boolean } = {}): string[] {
  const missing: string[] = [];
  for (const p of specs) {
    const src = opts.rename ? opts.rename(p.name) : p.name;
    const t = weights.get(src);
    if (t === undefined) {
      if (opts.allowMissing) {
        missing.push(p.name);
        continue;
      }
      throw new ModelFormatError("missing tensor", { file: weights.path, field: src });
    }
    const n = t.dims.reduce((a, b) => a * b, 1);
    if (n !== p.size) throw new ModelFormatError("tensor has the wrong size", { file: weights.path, field: src, expected: String(p.size), got: String(n) });
    const f = getFormat(t.type, src);
    const bytes = new Uint8Array(t.nbytes);
    weights.readInto(src, 0, bytes);
    f.dequantizeRow(bytes, params.subarray(p.offset, p.offset + p.size), p.size);
  }
  return missing;
}

export interface OptimizerState {
  /** JSON-able facts needed to resume (step, seed, shape, schedule...). */
  readonly header: Record<string, unknown>;
  readonly params: Float32Array;
  readonly m: Float32Array;
  readonly v: Float32Array;
}

export function writeOptimizerState(path: string, header: Record<string, unknown>, params: Float32Array, opt: AdamW): void {
  const json = Buffer.from(JSON.stringify({ ...header, step: opt.step, numParams: params.length }), "utf8");
  const out = AtomicFileWriter.create(path);
  try {
    out.write(Buffer.from(MAGIC, "latin1"));
    const len = Buffer.alloc(4);
    len.writeUInt32LE(json.length);
    out.write(len);
    out.write(json);
    out.zeros((4 - ((MAGIC.length + 4 + json.length) % 4)) % 4);
    for (const a of [params, opt.m, opt.v]) out.write(new Uint8Array(a.buffer, a.byteOffset, a.byteLength));
    out.commit();
  } catch (e) {
    out.abort();
    throw e;
  }
}

export function readOptimizerState(path: string): OptimizerState {
  let buf: Buffer;
  try {
    buf = fs.readFileSync(path);
  } catch (e) {
    throw new FileError(`cannot read the optimizer state ${path}`, { got: e instanceof Error ? e.message : String(e), hint: "resume needs the .opt file written beside the checkpoint" });
  }
  const bad = (what: string): never => {
    throw new ModelFormatError(`bad optimizer state: ${what}`, { file: path });
  };
  if (buf.length < MAGIC.length + 4 || buf.toString("latin1", 0, MAGIC.length) !== MAGIC) bad("magic");
  const len = buf.readUInt32LE(MAGIC.length);
  if (len > buf.length - MAGIC.length - 4) bad("header length");
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(buf.toString("utf8", MAGIC.length + 4, MAGIC.length + 4 + len)) as Record<string, unknown>;
  } catch {
    return bad("header JSON");
  }
  const n = header.numParams;
  if (typeof n !== "number" || !Number.isInteger(n) || n < 0) return bad("numParams");
  let o = MAGIC.length + 4 + len;
  o += (4 - (o % 4)) % 4;
  if (buf.length !== o + 3 * n * 4) bad(`size (expected ${o + 3 * n * 4} bytes, got ${buf.length})`);
  const take = (): Float32Array => {
    const a = new Float32Array(n);
    new Uint8Array(a.buffer).set(buf.subarray(o, o + n * 4));
    o += n * 4;
    return a;
  };
  return { header, params: take(), m: take(), v: take() };
}
