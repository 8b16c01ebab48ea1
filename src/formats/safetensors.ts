import { ModelFormatError, UnsupportedError } from "../errors.js";
import { GgmlType } from "../tensor/ggml-type.js";
import { ByteReader } from "./byte-reader.js";
import { FdFile, type RandomAccessFile } from "./file.js";
import { isPlainObject, parseJsonStrict } from "./json.js";
import { SlotWeightSource, fileSpanSlot } from "./weight-source.js";
import type { TensorInfo, WeightSource } from "./weights.js";

/*
 * safetensors layout: u64 LE header length N | N bytes of UTF-8 JSON (may end in spaces) | data.
 * The JSON maps tensor names to {dtype, shape (outermost first), data_offsets [begin, end)} with
 * offsets relative to the data section, plus an optional "__metadata__" string→string map.
 * The spec requires the data section to be fully covered without holes or overlaps.
 */

/** The safetensors reference implementation's limit on N. */
export const MAX_SAFETENSORS_HEADER = 100_000_000;
const MAX_RANK = 16;

/** Bits per element of every dtype the format defines. */
const DTYPE_BITS: ReadonlyMap<string, number> = new Map([
  ["BOOL", 8],
  ["F4", 4],
  ["F6_E2M3", 6],
  ["F6_E3M2", 6],
  ["U8", 8],
  ["I8", 8],
  ["F8_E5M2", 8],
  ["F8_E4M3", 8],
  ["F8_E8M0", 8],
  ["I16", 16],
  ["U16", 16],
  ["F16", 16],
  ["BF16", 16],
  ["I32", 32],
  ["U32", 32],
  ["F32", 32],
  ["C64", 64],
  ["F64", 64],
  ["I64", 64],
  ["U64", 64],
]);

/** Dtypes that map onto GGML types we compute with (after conversion above this layer). */
const MODEL_DTYPES: ReadonlyMap<string, GgmlType> = new Map([
  ["F32", GgmlType.F32],
  ["F16", GgmlType.F16],
  ["BF16", GgmlType.BF16],
]);

export interface SafetensorsTensor {
  readonly name: string;
  readonly dtype: string;
  /** As stored: row-major, outermost dimension first. */
  readonly shape: readonly number[];
  /** Absolute file offset and byte length of the data. */
  readonly fileOffset: number;
  readonly nbytes: number;
}

export interface SafetensorsHeader {
  readonly path: string;
  readonly fileSize: number;
  /** Absolute offset of the data section (8 + N). */
  readonly dataOffset: number;
  /** Sorted by offset. */
  readonly tensors: readonly SafetensorsTensor[];
  readonly metadata: Readonly<Record<string, string>> | undefined;
}

/** Parses and validates a safetensors header (every offset, shape and size is checked). */
export function parseSafetensors(file: RandomAccessFile): SafetensorsHeader {
  const path = file.path;
  function fail(message: string, field: string | undefined, expected: string, got: string): never {
    throw new ModelFormatError(message, field === undefined ? { file: path, expected, got } : { file: path, field, expected, got });
  }
  if (file.size < 8) fail("not a safetensors file", undefined, "an 8-byte header length", `${file.size}-byte file`);
  const r = new ByteReader(file);
  r.context = "the safetensors header length";
  const n = r.u64();
  if (n > BigInt(Math.min(MAX_SAFETENSORS_HEADER, file.size - 8))) {
    fail("bad safetensors header length", undefined, `at most ${Math.min(MAX_SAFETENSORS_HEADER, file.size - 8)} bytes`, `${n} bytes`);
  }
  const headerLen = Number(n);
  r.context = "the safetensors header";
  const bytes = r.bytes(headerLen);
  if (bytes[0] !== 0x7b /* { */) fail("bad safetensors header", undefined, "a JSON object", headerLen === 0 ? "an empty header" : `first byte 0x${(bytes[0] ?? 0).toString(16)}`);
  const json = parseJsonStrict(bytes, path, "safetensors header");
  if (!isPlainObject(json)) fail("bad safetensors header", undefined, "a JSON object", "another JSON value");

  const dataOffset = 8 + headerLen;
  const dataSize = file.size - dataOffset;
  let metadata: Record<string, string> | undefined;
  const raw: { name: string; dtype: string; shape: number[]; begin: number; end: number }[] = [];
  for (const [name, entry] of Object.entries(json)) {
    if (name === "__metadata__") {
      if (!isPlainObject(entry) || !Object.values(entry).every((v) => typeof v === "string")) {
        fail("bad __metadata__", "__metadata__", "an object of strings", describe(entry));
      }
      metadata = entry as Record<string, string>;
      continue;
    }
    if (name.length === 0) fail("empty tensor name", '""', "a non-empty name", '""');
    if (!isPlainObject(entry)) fail("bad tensor entry", name, "an object {dtype, shape, data_offsets}", describe(entry));
    const { dtype, shape, data_offsets: offsets } = entry;
    if (typeof dtype !== "string") fail("bad dtype", name, "a dtype string", describe(dtype));
    const bits = DTYPE_BITS.get(dtype);
    if (bits === undefined) fail("unknown dtype", name, `one of ${[...DTYPE_BITS.keys()].join(", ")}`, JSON.stringify(dtype.slice(0, 20)));
    if (!Array.isArray(shape) || shape.length > MAX_RANK || !shape.every(isSafeUint)) {
      fail("bad shape", name, `an array of at most ${MAX_RANK} non-negative integers`, describe(shape));
    }
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isSafeUint)) {
      fail("bad data_offsets", name, "[begin, end] non-negative integers", describe(offsets));
    }
    const [begin, end] = offsets as [number, number];
    if (begin > end || end > dataSize) fail("data_offsets outside the data section", name, `begin <= end <= ${dataSize}`, `[${begin}, ${end}]`);
    let count = 1n;
    for (const d of shape as number[]) count *= BigInt(d);
    const nbits = count * BigInt(bits);
    if (nbits % 8n !== 0n) fail("tensor size not a whole number of bytes", name, "shape × dtype bits multiple of 8", `${nbits} bits`);
    if (nbits / 8n !== BigInt(end - begin)) {
      fail("tensor size does not match data_offsets", name, `${end - begin} bytes (data_offsets span)`, `${nbits / 8n} bytes for ${dtype} [${(shape as number[]).join(", ")}]`);
    }
    raw.push({ name, dtype, shape: shape as number[], begin, end });
  }
  raw.sort((a, b) => a.begin - b.begin || a.end - b.end);
  // NOTE: the spec requires the tensors to cover the data section exactly, without holes; the
  // reference implementation rejects anything else, including trailing bytes.
  let expectedBegin = 0;
  for (const t of raw) {
    if (t.begin !== expectedBegin) {
      fail(t.begin < expectedBegin ? "overlapping tensor data" : "hole in the tensor data", t.name, `data_offsets begin ${expectedBegin}`, String(t.begin));
    }
    expectedBegin = t.end;
  }
  if (expectedBegin !== dataSize) fail("data section size mismatch", undefined, `${expectedBegin} bytes of tensor data`, `${dataSize} bytes after the header`);
  return {
    path,
    fileSize: file.size,
    dataOffset,
    tensors: raw.map((t) => ({ name: t.name, dtype: t.dtype, shape: t.shape, fileOffset: dataOffset + t.begin, nbytes: t.end - t.begin })),
    metadata,
  };
}

function isSafeUint(v: unknown): v is number {
  return typeof v === "number" && Number.isSafeInteger(v) && v >= 0;
}

function describe(v: unknown): string {
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 60 ? s.slice(0, 60) + "…" : s;
}

/**
 * A safetensors tensor as a TensorInfo named `name`: GGUF dims (ne0 first, i.e. the shape
 * reversed). Throws UnsupportedError for dtypes other than F32/F16/BF16, empty tensors and rank > 4.
 */
export function safetensorsTensorInfo(path: string, t: SafetensorsTensor, name: string = t.name): TensorInfo {
  const type = MODEL_DTYPES.get(t.dtype);
  if (type === undefined) {
    throw new UnsupportedError(`"${path}": ${t.name}: safetensors dtype ${t.dtype} is not supported`, {
      expected: "F32, F16 or BF16",
      got: t.dtype,
      hint: "convert the checkpoint to float16/bfloat16/float32",
    });
  }
  if (t.shape.length > 4 || t.shape.some((d) => d === 0)) {
    throw new UnsupportedError(`"${path}": ${t.name}: tensor shape [${t.shape.join(", ")}] is not supported`, {
      expected: "1 to 4 non-zero dimensions",
      got: `[${t.shape.join(", ")}]`,
    });
  }
  const dims = t.shape.length === 0 ? [1] : [...t.shape].reverse();
  return { name, type, dims, nbytes: t.nbytes };
}

export interface SafetensorsFile {
  readonly header: SafetensorsHeader;
  /** Tensors under their safetensors names, dims in GGUF order. */
  readonly weights: WeightSource;
}

/** Opens one .safetensors file (every tensor must have a supported dtype). */
export function openSafetensors(path: string): SafetensorsFile {
  const file = FdFile.open(path);
  try {
    return safetensorsFile(file);
  } catch (e) {
    file.close();
    throw e;
  }
}

export function safetensorsFile(file: RandomAccessFile): SafetensorsFile {
  const header = parseSafetensors(file);
  const slots = header.tensors.map((t) => fileSpanSlot(safetensorsTensorInfo(file.path, t), file, t.fileOffset));
  return { header, weights: new SlotWeightSource(file.path, slots, () => file.close()) };
}
