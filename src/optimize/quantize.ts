/**
 * `slimlm quantize`: a GGUF file or Hugging Face folder in, a quantized GGUF out.
 *
 * 1. plan every tensor's type (recipe.ts: llama.cpp's rules, overrides, fallbacks);
 * 2. optionally calibrate (calibrate.ts): importance matrix and activation-aware scales;
 * 3. stream every tensor through: read rows, dequantize to f32, apply the calibration's exact
 *    rescalings, quantize on the thread pool, write; the GGUF writer writes to a temp file and
 *    renames it only when complete.
 */
import os from "node:os";
import { UsageError } from "../errors.js";
import { openModelFile } from "../formats/index.js";
import { type GgufWriterTensor, writeGguf } from "../formats/gguf/index.js";
import { GgufValueType, Metadata } from "../formats/metadata.js";
import type { ModelFile, TensorInfo } from "../formats/weights.js";
import { resolveModel } from "../models/index.js";
import { GgmlType, ggmlTypeName } from "../tensor/ggml-type.js";
import { getFormat, tensorBytes } from "../tensor/registry.js";
import { type CalibrationOptions, calibrate } from "./calibrate.js";
import { hfTokenizerMetadata } from "./hf-tokenizer.js";
import { QuantPool } from "./quant-pool.js";
import { type FileTypeSpec, isQuantized } from "./quant-types.js";
import { type TensorPlan, type TensorTypeOverride, planTypes } from "./recipe.js";
import { type CalibrationResult, applyTransform } from "./transforms.js";
import { readRowsF32, rowShape } from "./tensor-rows.js";

/** GGML_QNT_VERSION, written as general.quantization_version. */
const QNT_VERSION = 2;
/** f32 values per slab (rows read, transformed and quantized together): 16 MiB. */
const SLAB_VALUES = 4 << 20;

export interface QuantizeOptions {
  readonly input: string;
  readonly output: string;
  readonly spec: FileTypeSpec;
  readonly overrides?: readonly TensorTypeOverride[];
  readonly outputType?: GgmlType;
  readonly embeddingType?: GgmlType;
  readonly pure?: boolean;
  /** Threads in all (default: the number of cores). */
  readonly threads?: number;
  /** Calibrate on a text (importance-weighted quantization, plus AWQ scaling for 4-bit types). */
  readonly calibration?: CalibrationOptions;
  /** Reuse a calibration computed earlier (calibrate.ts), e.g. one calibration for several types. */
  readonly calibrated?: CalibrationResult;
  readonly onTensor?: (done: number, total: number, name: string) => void;
  readonly onWarning?: (message: string) => void;
  /** Progress of calibration: a phase name and a fraction. */
  readonly onCalibration?: (phase: string, done: number, total: number) => void;
}

export interface TensorReport {
  readonly name: string;
  readonly dims: readonly number[];
  readonly from: string;
  readonly to: string;
  readonly bytes_in: number;
  readonly bytes_out: number;
  readonly reason?: string;
  readonly fallback?: string;
  readonly calibrated: boolean;
  readonly seconds: number;
}

export interface QuantizeReport {
  readonly input: string;
  readonly output: string;
  readonly type: string;
  readonly file_type: number;
  readonly threads: number;
  /** Parameters (elements of all tensors). */
  readonly elements: number;
  /** Tensor data bytes before and after (the input's types vs the output's). */
  readonly bytes_in: number;
  readonly bytes_out: number;
  readonly bpw_in: number;
  readonly bpw_out: number;
  readonly file_size: number;
  readonly seconds: number;
  readonly fallbacks: number;
  readonly requantized: boolean;
  readonly by_type: Readonly<Record<string, { tensors: number; elements: number; bytes: number }>>;
  readonly tensors: readonly TensorReport[];
  readonly calibration?: {
    readonly tokens: number;
    readonly weights: number;
    readonly awq: CalibrationResult["awq"];
    readonly seconds: number;
  };
  readonly warnings: readonly string[];
}

export async function quantizeModel(o: QuantizeOptions): Promise<QuantizeReport> {
  const t0 = performance.now();
  const warnings: string[] = [];
  const warn = (m: string): void => {
    warnings.push(m);
    o.onWarning?.(m);
  };
  const threads = o.threads ?? os.availableParallelism();
  if (!Number.isInteger(threads) || threads < 1 || threads > 256) {
    throw new UsageError("invalid thread count", { expected: "an integer in [1, 256]", got: String(threads) });
  }
  const file = openModelFile(o.input);
  let pool: QuantPool | undefined;
  try {
    const plans = planFile(file, o);
    const tensors = file.weights.tensors;
    for (const p of plans) if (p.fallback !== undefined) warn(`${p.name}: ${p.fallback}`);
    const requant = plans.filter((p) => p.quantizable && isQuantized(p.from) && p.from !== p.to);
    if (requant.length > 0) {
      const from = [...new Set(requant.map((p) => ggmlTypeName(p.from)))].join(", ");
      warn(`requantizing: the input is already quantized (${from}); its weights are dequantized and quantized again, which loses more than quantizing the F16/F32 model`);
    }

    const outMeta = outputMetadata(file, o.spec, warn);
    let calibration: CalibrationResult | undefined = o.calibrated;
    let calibSeconds = 0;
    if (o.calibration !== undefined) {
      const tc = performance.now();
      calibration = await calibrate(o.input, plans, o.spec, { ...o.calibration, threads }, o.onCalibration, warn);
      calibSeconds = (performance.now() - tc) / 1000;
    }

    pool = await QuantPool.create(threads);
    const slab = slabBuffers(tensors, plans);
    const reports: TensorReport[] = [];
    const writerTensors: GgufWriterTensor[] = tensors.map((info, i) => {
      const plan = plans[i]!;
      return {
        name: info.name,
        type: plan.to,
        dims: info.dims,
        data: (write: (chunk: Uint8Array) => void) => {
          const ts = performance.now();
          const calibrated = writeTensor(file, info, plan, calibration, pool!, slab, write);
          reports.push({
            name: info.name,
            dims: info.dims,
            from: ggmlTypeName(plan.from),
            to: ggmlTypeName(plan.to),
            bytes_in: info.nbytes,
            bytes_out: tensorBytes(plan.to, info.dims),
            ...(plan.reason === undefined ? {} : { reason: plan.reason }),
            ...(plan.fallback === undefined ? {} : { fallback: plan.fallback }),
            calibrated,
            seconds: (performance.now() - ts) / 1000,
          });
          o.onTensor?.(i + 1, tensors.length, info.name);
        },
      };
    });
    const written = writeGguf(o.output, outMeta, writerTensors);

    let elements = 0;
    let bytesIn = 0;
    let bytesOut = 0;
    const byType: Record<string, { tensors: number; elements: number; bytes: number }> = {};
    for (const r of reports) {
      const n = r.dims.reduce((a, b) => a * b, 1);
      elements += n;
      bytesIn += r.bytes_in;
      bytesOut += r.bytes_out;
      const e = (byType[r.to] ??= { tensors: 0, elements: 0, bytes: 0 });
      e.tensors++;
      e.elements += n;
      e.bytes += r.bytes_out;
    }
    return {
      input: o.input,
      output: o.output,
      type: o.spec.name,
      file_type: o.spec.ftype,
      threads,
      elements,
      bytes_in: bytesIn,
      bytes_out: bytesOut,
      bpw_in: (bytesIn * 8) / elements,
      bpw_out: (bytesOut * 8) / elements,
      file_size: written.fileSize,
      seconds: (performance.now() - t0) / 1000,
      fallbacks: plans.filter((p) => p.fallback !== undefined).length,
      requantized: requant.length > 0,
      by_type: byType,
      tensors: reports,
      ...(calibration === undefined
        ? {}
        : { calibration: { tokens: calibration.tokens, weights: calibration.importance.size, awq: calibration.awq, seconds: calibSeconds } }),
      warnings,
    };
  } finally {
    file.weights.close();
    await pool?.close();
  }
}

type PlanOptions = Pick<QuantizeOptions, "spec" | "overrides" | "outputType" | "embeddingType" | "pure" | "calibration" | "calibrated">;

/** Every tensor's type for a quantization of `file` (recipe.ts with the model's shape). */
function planFile(file: ModelFile, o: PlanOptions): TensorPlan[] {
  const { config } = resolveModel(file.metadata, file.weights.get("token_embd.weight")?.dims[1]);
  return planTypes(file.weights.tensors, {
    spec: o.spec,
    nLayers: config.nLayers,
    nGqa: config.nHeads / config.nKvHeads,
    arch: config.arch,
    overrides: o.overrides ?? [],
    ...(o.outputType === undefined ? {} : { outputType: o.outputType }),
    ...(o.embeddingType === undefined ? {} : { embeddingType: o.embeddingType }),
    ...(o.pure === undefined ? {} : { pure: o.pure }),
    hasImatrix: o.calibration !== undefined || o.calibrated !== undefined,
  });
}

/** The plan quantizeModel would follow for `input` (e.g. to calibrate once with calibrate()). */
export function planQuantization(input: string, o: PlanOptions): TensorPlan[] {
  const file = openModelFile(input);
  try {
    return planFile(file, o);
  } finally {
    file.weights.close();
  }
}

/** The input's metadata with the new file type (and, for Hugging Face folders, the tokenizer). */
function outputMetadata(file: ModelFile, spec: FileTypeSpec, warn: (m: string) => void): Metadata {
  const out = new Metadata(file.path, new Map(file.metadata.entries));
  for (const k of ["split.no", "split.count", "split.tensors.count"]) out.entries.delete(k);
  if (file.kind === "hf") {
    for (const [k, e] of hfTokenizerMetadata(file, warn).entries) out.entries.set(k, e);
  }
  out.set("general.quantization_version", GgufValueType.UINT32, QNT_VERSION);
  out.set("general.file_type", GgufValueType.UINT32, spec.ftype);
  return out;
}

interface Slab {
  readonly src: Float32Array;
  readonly dst: Uint8Array;
  scratch: Uint8Array;
}

/** Shared buffers big enough for one slab of any tensor. */
function slabBuffers(tensors: readonly TensorInfo[], plans: readonly TensorPlan[]): Slab {
  let maxSrc = 1;
  let maxDst = 1;
  tensors.forEach((t, i) => {
    const { cols, rows } = rowShape(t);
    const n = Math.min(rows, Math.max(1, Math.floor(SLAB_VALUES / cols)));
    const f = getFormat(plans[i]!.to);
    maxSrc = Math.max(maxSrc, n * cols);
    maxDst = Math.max(maxDst, n * (cols / f.blockSize) * f.typeSize);
  });
  return {
    src: new Float32Array(new SharedArrayBuffer(maxSrc * 4)),
    dst: new Uint8Array(new SharedArrayBuffer(maxDst)),
    scratch: new Uint8Array(0),
  };
}

/** Stream one tensor into `write`. Returns whether importance weights were used. */
function writeTensor(
  file: ModelFile,
  info: TensorInfo,
  plan: TensorPlan,
  cal: CalibrationResult | undefined,
  pool: QuantPool,
  slab: Slab,
  write: (chunk: Uint8Array) => void,
): boolean {
  const { cols, rows } = rowShape(info);
  const transform = cal?.transforms.get(info.name);
  const perSlab = Math.min(rows, Math.max(1, Math.floor(SLAB_VALUES / cols)));
  if (plan.from === plan.to && transform === undefined) {
    // Same type, nothing to change: copy the bytes (llama.cpp does the same).
    const rowBytes = info.nbytes / rows;
    for (let r = 0; r < rows; r += perSlab) {
      const n = Math.min(perSlab, rows - r);
      const buf = slab.dst.subarray(0, n * rowBytes);
      file.weights.readInto(info.name, r * rowBytes, buf);
      write(buf);
    }
    return false;
  }
  const f = getFormat(plan.to);
  const dstRowBytes = (cols / f.blockSize) * f.typeSize;
  const qw = plan.quantizable ? (cal?.importance.get(info.name) ?? null) : null;
  let qwShared: Float32Array | null = null;
  if (qw !== null && qw.length === cols) {
    qwShared = new Float32Array(new SharedArrayBuffer(cols * 4));
    qwShared.set(qw);
  }
  for (let r = 0; r < rows; r += perSlab) {
    const n = Math.min(perSlab, rows - r);
    const src = slab.src.subarray(0, n * cols);
    slab.scratch = readRowsF32(file.weights, info, r, n, src, slab.scratch);
    applyTransform(transform, src, r, n, cols);
    if (plan.to === GgmlType.F32) {
      write(new Uint8Array(src.buffer, 0, n * cols * 4));
      continue;
    }
    pool.run(plan.to, slab.src, n, cols, slab.dst, dstRowBytes, qwShared);
    write(slab.dst.subarray(0, n * dstRowBytes));
  }
  return qwShared !== null;
}
