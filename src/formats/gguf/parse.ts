import { ModelFormatError, UnsupportedError, assert } from "../../errors.js";
import { GgmlType, ggmlTypeName } from "../../tensor/ggml-type.js";
import { ByteReader, FATAL_UTF8, intValue } from "../byte-reader.js";
import type { RandomAccessFile } from "../file.js";
import { GgufValueType, Metadata, type MetaEntry, type MetaScalar } from "../metadata.js";
import { getFormat } from "../../tensor/registry.js";
import { foreignTypeName, isGgmlTypeId } from "../ggml-ids.js";
import type { TensorInfo } from "../weights.js";
import {
  DEFAULT_GGUF_LIMITS,
  GGML_MAX_DIMS,
  GGML_MAX_NAME,
  GGUF_DEFAULT_ALIGNMENT,
  GGUF_KEY_ALIGNMENT,
  GGUF_MAGIC,
  MIN_KV_BYTES,
  MIN_TENSOR_INFO_BYTES,
  type GgufLimits,
} from "./constants.js";

/*
 * GGUF layout (all little-endian; v2 and v3 are identical, v3 only adds big-endian files which
 * we reject):
 *   u32 magic "GGUF" | u32 version | u64 n_tensors | u64 n_kv
 *   n_kv × { string key | u32 value_type | value }
 *     string = u64 byte length + UTF-8 bytes (no NUL)
 *     value  = scalar | ARRAY: u32 element_type + u64 count + count × element
 *   n_tensors × { string name | u32 n_dims | n_dims × u64 ne (ne0 first) | u32 ggml_type | u64 offset }
 *   padding to `general.alignment` (default 32), then the data section; tensor offsets are
 *   relative to its start and multiples of the alignment.
 */

/** One tensor of a GGUF file. */
export interface GgufTensorInfo extends TensorInfo {
  /** Offset of the tensor's data relative to the data section, as stored. */
  readonly relOffset: number;
  /** Absolute file offset of the tensor's first byte. */
  readonly fileOffset: number;
}

export interface GgufHeader {
  readonly version: number;
  readonly metadata: Metadata;
  /** In file order. */
  readonly tensors: readonly GgufTensorInfo[];
  readonly alignment: number;
  /** Absolute file offset of the data section. */
  readonly dataOffset: number;
  readonly fileSize: number;
}

export interface GgufParseOptions {
  readonly limits?: Partial<GgufLimits>;
}

const SCALAR_SIZE: ReadonlyMap<GgufValueType, number> = new Map([
  [GgufValueType.UINT8, 1],
  [GgufValueType.INT8, 1],
  [GgufValueType.UINT16, 2],
  [GgufValueType.INT16, 2],
  [GgufValueType.UINT32, 4],
  [GgufValueType.INT32, 4],
  [GgufValueType.FLOAT32, 4],
  [GgufValueType.BOOL, 1],
  // A string is at least its u64 length.
  [GgufValueType.STRING, 8],
  [GgufValueType.UINT64, 8],
  [GgufValueType.INT64, 8],
  [GgufValueType.FLOAT64, 8],
]);

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

/**
 * Parses and validates a GGUF header: every count, length, dimension and offset is checked
 * against the file size and `limits` before anything is allocated from it.
 * Throws ModelFormatError (or UnsupportedError for valid files using features we lack).
 */
export function parseGguf(file: RandomAccessFile, opts: GgufParseOptions = {}): GgufHeader {
  return new GgufParser(file, { ...DEFAULT_GGUF_LIMITS, ...opts.limits }).parse();
}

class GgufParser {
  private readonly r: ByteReader;
  private readonly path: string;
  private arrayElementsLeft: number;

  constructor(
    private readonly file: RandomAccessFile,
    private readonly limits: GgufLimits,
  ) {
    this.r = new ByteReader(file);
    this.path = file.path;
    this.arrayElementsLeft = limits.maxTotalArrayElements;
  }

  private fail(message: string, field: string | undefined, expected: string, got: string): never {
    throw new ModelFormatError(message, field === undefined ? { file: this.path, expected, got } : { file: this.path, field, expected, got });
  }

  parse(): GgufHeader {
    const r = this.r;
    r.context = "the GGUF magic";
    if (this.file.size < 4) this.fail("not a GGUF file", undefined, 'magic "GGUF"', `${this.file.size}-byte file`);
    const magic = r.u32();
    if (magic !== GGUF_MAGIC) {
      this.fail("not a GGUF file", undefined, 'magic "GGUF"', `0x${magic.toString(16).padStart(8, "0")}`);
    }
    r.context = "the GGUF header";
    const version = r.u32();
    if ((version & 0xffff) === 0 && version !== 0) {
      throw new UnsupportedError(`"${this.path}": big-endian GGUF files are not supported`, {
        expected: "a little-endian GGUF (version 2 or 3)",
        got: `version field 0x${version.toString(16)}`,
        hint: "convert the file on a little-endian machine",
      });
    }
    if (version === 0 || version === 1) {
      throw new UnsupportedError(`"${this.path}": GGUF version ${version} is not supported`, {
        expected: "GGUF version 2 or 3",
        got: `version ${version}`,
        hint: "re-convert the model with a current llama.cpp",
      });
    }
    if (version > 3) {
      throw new UnsupportedError(`"${this.path}": GGUF version ${version} is newer than this slimlm supports`, {
        expected: "GGUF version 2 or 3",
        got: `version ${version}`,
        hint: "upgrade slimlm",
      });
    }
    const nTensorsBig = r.u64();
    const nKvBig = r.u64();
    // Bound both counts by what the rest of the file can possibly hold.
    const remaining = BigInt(r.remaining);
    if (nTensorsBig > BigInt(this.limits.maxTensors) || nTensorsBig * BigInt(MIN_TENSOR_INFO_BYTES) > remaining) {
      this.fail("bad tensor count", "n_tensors", `at most ${Math.min(this.limits.maxTensors, Math.floor(r.remaining / MIN_TENSOR_INFO_BYTES))}`, String(nTensorsBig));
    }
    if (nKvBig > BigInt(this.limits.maxKv) || nKvBig * BigInt(MIN_KV_BYTES) > remaining) {
      this.fail("bad metadata key count", "n_kv", `at most ${Math.min(this.limits.maxKv, Math.floor(r.remaining / MIN_KV_BYTES))}`, String(nKvBig));
    }
    if (nTensorsBig * BigInt(MIN_TENSOR_INFO_BYTES) + nKvBig * BigInt(MIN_KV_BYTES) > remaining) {
      this.fail("header counts exceed the file size", undefined, `n_tensors and n_kv fitting in ${remaining} bytes`, `n_tensors ${nTensorsBig}, n_kv ${nKvBig}`);
    }
    const nTensors = Number(nTensorsBig);
    const nKv = Number(nKvBig);

    const metadata = new Metadata(this.path);
    for (let i = 0; i < nKv; i++) this.readKv(i, metadata);

    const alignment = this.alignment(metadata);

    const tensors: Omit<GgufTensorInfo, "fileOffset">[] = [];
    const names = new Set<string>();
    for (let i = 0; i < nTensors; i++) {
      const t = this.readTensorInfo(i, alignment);
      if (names.has(t.name)) this.fail("duplicate tensor name", t.name, "unique tensor names", `tensor #${i} repeats it`);
      names.add(t.name);
      tensors.push(t);
    }

    // NOTE: llama.cpp only pads to the data section when there are tensors; vocab-only files end
    // right after the metadata.
    let dataOffset = r.position;
    if (nTensors > 0) dataOffset = alignUp(dataOffset, alignment);
    if (dataOffset > this.file.size) {
      this.fail("file truncated before the tensor data", undefined, `data section at offset ${dataOffset}`, `file size ${this.file.size}`);
    }
    const dataSize = this.file.size - dataOffset;
    const out: GgufTensorInfo[] = [];
    for (const t of tensors) {
      if (t.relOffset + t.nbytes > dataSize) {
        this.fail("tensor data outside the file", t.name, `offset + size <= ${dataSize} (data section size)`, `offset ${t.relOffset} + size ${t.nbytes}`);
      }
      out.push({ ...t, fileOffset: dataOffset + t.relOffset });
    }
    checkNoOverlap(out, this.path);
    return { version, metadata, tensors: out, alignment, dataOffset, fileSize: this.file.size };
  }

  /** The u64 just read, exactly (for messages about values above 2^53). */
  private lastU64(): bigint {
    const pos = this.r.position;
    this.r.seek(pos - 8);
    const v = this.r.u64();
    return v;
  }

  private readString(maxBytes: number, what: string, field: string | undefined, fatal: boolean): string {
    const n = this.r.u64n();
    if (n > maxBytes || n > this.r.remaining) {
      this.fail(`bad ${what} length`, field, `at most ${Math.min(maxBytes, this.r.remaining)} bytes`, `${this.lastU64()} bytes`);
    }
    if (!fatal) return this.r.utf8(n, false);
    try {
      return this.r.utf8(n, true);
    } catch (e) {
      if (e instanceof TypeError) this.fail(`${what} is not valid UTF-8`, field, "UTF-8", "invalid byte sequence");
      throw e;
    }
  }

  private readKv(i: number, metadata: Metadata): void {
    const r = this.r;
    r.context = `metadata key #${i}`;
    const key = this.readString(this.limits.maxKeyBytes, "metadata key", `metadata key #${i}`, true);
    if (key.length === 0) this.fail("empty metadata key", `metadata key #${i}`, "a non-empty key", '""');
    if (metadata.has(key)) this.fail("duplicate metadata key", key, "unique keys", `key #${i} repeats it`);
    r.context = `metadata "${key}"`;
    const type = r.u32();
    if (type === GgufValueType.ARRAY) {
      const elementType = r.u32();
      if (elementType === GgufValueType.ARRAY) {
        throw new UnsupportedError(`"${this.path}": ${key}: nested metadata arrays are not supported`, {
          expected: "an array of scalars or strings",
          got: "an array of arrays",
        });
      }
      const elemSize = SCALAR_SIZE.get(elementType);
      if (elemSize === undefined) this.fail("bad metadata array element type", key, "a GGUF value type 0..12", String(elementType));
      const n = r.u64n();
      const maxCount = Math.min(this.limits.maxArrayElements, this.arrayElementsLeft, Math.floor(r.remaining / elemSize));
      if (n > maxCount) {
        this.fail("bad metadata array length", key, `at most ${maxCount} elements (file size and limits)`, `${this.lastU64()} elements`);
      }
      this.arrayElementsLeft -= n;
      const values: MetaScalar[] = new Array<MetaScalar>(n);
      for (let j = 0; j < n; j++) values[j] = this.readScalar(elementType, key);
      metadata.entries.set(key, { type: GgufValueType.ARRAY, elementType, value: values } satisfies MetaEntry);
      return;
    }
    if (!SCALAR_SIZE.has(type)) this.fail("bad metadata value type", key, "a GGUF value type 0..12", String(type));
    metadata.entries.set(key, { type, value: this.readScalar(type, key) });
  }

  private readScalar(type: GgufValueType, key: string): MetaScalar {
    const r = this.r;
    switch (type) {
      case GgufValueType.UINT8:
        return r.u8();
      case GgufValueType.INT8:
        return r.i8();
      case GgufValueType.UINT16:
        return r.u16();
      case GgufValueType.INT16:
        return r.i16();
      case GgufValueType.UINT32:
        return r.u32();
      case GgufValueType.INT32:
        return r.i32();
      case GgufValueType.FLOAT32:
        return r.f32();
      case GgufValueType.BOOL:
        // NOTE: like llama.cpp, any non-zero byte is true.
        return r.u8() !== 0;
      case GgufValueType.STRING:
        // NOTE: values are decoded leniently (U+FFFD for invalid UTF-8): some real vocabularies
        // hold byte fragments. Keys and tensor names must be valid UTF-8.
        return this.readString(this.limits.maxStringBytes, "string value", key, false);
      case GgufValueType.UINT64:
        return intValue(r.u64());
      case GgufValueType.INT64:
        return intValue(r.i64());
      case GgufValueType.FLOAT64:
        return r.f64();
      default:
        assert(false, `unhandled GGUF value type ${type}`);
    }
  }

  private alignment(metadata: Metadata): number {
    const e = metadata.entries.get(GGUF_KEY_ALIGNMENT);
    if (e === undefined) return GGUF_DEFAULT_ALIGNMENT;
    if (e.type !== GgufValueType.UINT32 || typeof e.value !== "number") {
      this.fail("bad alignment type", GGUF_KEY_ALIGNMENT, "a uint32", `GGUF value type ${e.type}`);
    }
    const a = e.value;
    if (a === 0 || (a & (a - 1)) !== 0 || a > this.limits.maxAlignment) {
      this.fail("bad alignment", GGUF_KEY_ALIGNMENT, `a power of two in [1, ${this.limits.maxAlignment}]`, String(a));
    }
    return a;
  }

  private readTensorInfo(i: number, alignment: number): Omit<GgufTensorInfo, "fileOffset"> {
    const r = this.r;
    r.context = `tensor info #${i}`;
    const name = this.readString(GGML_MAX_NAME - 1, "tensor name", `tensor #${i}`, true);
    if (name.length === 0) this.fail("empty tensor name", `tensor #${i}`, "a non-empty name", '""');
    r.context = `tensor info "${name}"`;
    const nDims = r.u32();
    if (nDims < 1 || nDims > GGML_MAX_DIMS) this.fail("bad number of dimensions", name, `1..${GGML_MAX_DIMS}`, String(nDims));
    const dimsBig: bigint[] = [];
    let count = 1n;
    for (let d = 0; d < nDims; d++) {
      const ne = r.u64();
      if (ne < 1n) this.fail("bad dimension", name, "every dimension >= 1", `ne[${d}] = ${ne}`);
      dimsBig.push(ne);
      count *= ne;
      // Keep the product small: anything above this cannot fit any file.
      if (count > MAX_SAFE) this.fail("tensor too large", name, `at most ${MAX_SAFE} elements`, `shape [${dimsBig.join(", ")}...]`);
    }
    const typeId = r.u32();
    if (!isGgmlTypeId(typeId)) this.fail("unknown tensor type", name, "a GGML type id", String(typeId));
    const foreign = foreignTypeName(typeId);
    if (foreign !== undefined) {
      throw new UnsupportedError(`"${this.path}": ${name}: tensor type ${foreign} (id ${typeId}) is not supported`, {
        expected: "a GGML type slimlm implements",
        got: foreign,
        hint: "re-quantize the model to a K-quant (e.g. Q4_K_M) or Q8_0/F16",
      });
    }
    // Known to ggml; throws UnsupportedError naming the tensor if we do not implement it.
    const layout = getFormat(typeId, `"${this.path}": ${name}`);
    const ne0 = dimsBig[0] as bigint;
    if (ne0 % BigInt(layout.blockSize) !== 0n) {
      this.fail("row length not a multiple of the block size", name, `ne[0] multiple of ${layout.blockSize} for ${ggmlTypeName(typeId)}`, String(ne0));
    }
    const nbytesBig = (count / BigInt(layout.blockSize)) * BigInt(layout.typeSize);
    if (nbytesBig > BigInt(this.file.size)) {
      this.fail("tensor larger than the file", name, `at most ${this.file.size} bytes`, `${nbytesBig} bytes`);
    }
    const off = r.u64();
    if (off > BigInt(this.file.size)) this.fail("tensor offset outside the file", name, `at most ${this.file.size}`, String(off));
    const relOffset = Number(off);
    if (relOffset % alignment !== 0) this.fail("misaligned tensor offset", name, `a multiple of ${alignment}`, String(relOffset));
    return {
      name,
      type: typeId as GgmlType,
      dims: dimsBig.map(Number),
      nbytes: Number(nbytesBig),
      relOffset,
    };
  }
}

export function alignUp(n: number, alignment: number): number {
  const rem = n % alignment;
  return rem === 0 ? n : n + (alignment - rem);
}

/** Overlapping tensor data would let one tensor's bytes alias another's. */
function checkNoOverlap(tensors: readonly GgufTensorInfo[], path: string): void {
  const sorted = [...tensors].sort((a, b) => a.relOffset - b.relOffset);
  for (let i = 1; i < sorted.length; i++) {
    const prev = sorted[i - 1] as GgufTensorInfo;
    const cur = sorted[i] as GgufTensorInfo;
    if (prev.relOffset + prev.nbytes > cur.relOffset) {
      throw new ModelFormatError("overlapping tensor data", {
        file: path,
        field: cur.name,
        expected: `offset >= ${prev.relOffset + prev.nbytes} (end of ${prev.name})`,
        got: String(cur.relOffset),
      });
    }
  }
}
