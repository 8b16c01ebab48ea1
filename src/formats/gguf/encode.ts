import { UsageError, assert } from "../../errors.js";
import { ggmlTypeName, type GgmlType } from "../../tensor/ggml-type.js";
import { GgufValueType, type MetaEntry, type MetaScalar, type Metadata } from "../metadata.js";
import { getFormat } from "../../tensor/registry.js";
import { GGML_MAX_DIMS, GGML_MAX_NAME, GGUF_DEFAULT_ALIGNMENT, GGUF_KEY_ALIGNMENT, GGUF_MAGIC, GGUF_VERSION } from "./constants.js";
import { alignUp } from "./parse.js";

/** A tensor's identity for the header (no data). */
export interface GgufTensorDesc {
  readonly name: string;
  readonly type: GgmlType;
  /** ne0 first (GGUF order). */
  readonly dims: readonly number[];
}

export interface EncodedHeader {
  /** Header bytes, already padded to the alignment (the data section starts right after). */
  readonly bytes: Uint8Array;
  readonly alignment: number;
  /** Absolute offset of the data section (= bytes.length). */
  readonly dataOffset: number;
  /** Per tensor, in input order: offset relative to the data section and size in bytes. */
  readonly offsets: readonly number[];
  readonly nbytes: readonly number[];
  /** Size of the whole file (data section padded after every tensor). */
  readonly fileSize: number;
}

/** Growable little-endian byte sink. */
class ByteSink {
  private buf = new Uint8Array(1 << 16);
  private view = new DataView(this.buf.buffer);
  length = 0;

  private ensure(n: number): void {
    if (this.length + n <= this.buf.length) return;
    let cap = this.buf.length * 2;
    while (cap < this.length + n) cap *= 2;
    const next = new Uint8Array(cap);
    next.set(this.buf.subarray(0, this.length));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }
  u8(v: number): void {
    this.ensure(1);
    this.view.setUint8(this.length, v);
    this.length += 1;
  }
  i8(v: number): void {
    this.ensure(1);
    this.view.setInt8(this.length, v);
    this.length += 1;
  }
  u16(v: number): void {
    this.ensure(2);
    this.view.setUint16(this.length, v, true);
    this.length += 2;
  }
  i16(v: number): void {
    this.ensure(2);
    this.view.setInt16(this.length, v, true);
    this.length += 2;
  }
  u32(v: number): void {
    this.ensure(4);
    this.view.setUint32(this.length, v, true);
    this.length += 4;
  }
  i32(v: number): void {
    this.ensure(4);
    this.view.setInt32(this.length, v, true);
    this.length += 4;
  }
  u64(v: bigint): void {
    this.ensure(8);
    this.view.setBigUint64(this.length, v, true);
    this.length += 8;
  }
  i64(v: bigint): void {
    this.ensure(8);
    this.view.setBigInt64(this.length, v, true);
    this.length += 8;
  }
  f32(v: number): void {
    this.ensure(4);
    this.view.setFloat32(this.length, v, true);
    this.length += 4;
  }
  f64(v: number): void {
    this.ensure(8);
    this.view.setFloat64(this.length, v, true);
    this.length += 8;
  }
  bytes(b: Uint8Array): void {
    this.ensure(b.length);
    this.buf.set(b, this.length);
    this.length += b.length;
  }
  string(s: string): void {
    const b = Buffer.from(s, "utf8");
    this.u64(BigInt(b.length));
    this.bytes(b);
  }
  padTo(alignment: number): void {
    const n = alignUp(this.length, alignment) - this.length;
    this.ensure(n);
    this.buf.fill(0, this.length, this.length + n);
    this.length += n;
  }
  result(): Uint8Array {
    return this.buf.slice(0, this.length);
  }
}

const INT_RANGES: ReadonlyMap<GgufValueType, readonly [bigint, bigint]> = new Map([
  [GgufValueType.UINT8, [0n, 255n]],
  [GgufValueType.INT8, [-128n, 127n]],
  [GgufValueType.UINT16, [0n, 65535n]],
  [GgufValueType.INT16, [-32768n, 32767n]],
  [GgufValueType.UINT32, [0n, 2n ** 32n - 1n]],
  [GgufValueType.INT32, [-(2n ** 31n), 2n ** 31n - 1n]],
  [GgufValueType.UINT64, [0n, 2n ** 64n - 1n]],
  [GgufValueType.INT64, [-(2n ** 63n), 2n ** 63n - 1n]],
] as const);

function badValue(key: string, expected: string, got: unknown): never {
  throw new UsageError(`cannot write metadata "${key}"`, { expected, got: typeof got === "string" ? JSON.stringify(got.slice(0, 40)) : `${typeof got} ${String(got)}` });
}

function writeScalar(out: ByteSink, key: string, type: GgufValueType, v: MetaScalar): void {
  const range = INT_RANGES.get(type);
  if (range !== undefined) {
    if (!((typeof v === "number" && Number.isInteger(v)) || typeof v === "bigint")) badValue(key, `an integer for GGUF type ${type}`, v);
    const b = BigInt(v);
    if (b < range[0] || b > range[1]) badValue(key, `an integer in [${range[0]}, ${range[1]}]`, v);
    const n = Number(b);
    switch (type) {
      case GgufValueType.UINT8:
        return out.u8(n);
      case GgufValueType.INT8:
        return out.i8(n);
      case GgufValueType.UINT16:
        return out.u16(n);
      case GgufValueType.INT16:
        return out.i16(n);
      case GgufValueType.UINT32:
        return out.u32(n);
      case GgufValueType.INT32:
        return out.i32(n);
      case GgufValueType.UINT64:
        return out.u64(b);
      case GgufValueType.INT64:
        return out.i64(b);
      default:
        assert(false, "int range table");
    }
  }
  switch (type) {
    case GgufValueType.FLOAT32:
      if (typeof v !== "number") badValue(key, "a number", v);
      return out.f32(v);
    case GgufValueType.FLOAT64:
      if (typeof v !== "number") badValue(key, "a number", v);
      return out.f64(v);
    case GgufValueType.BOOL:
      if (typeof v !== "boolean") badValue(key, "a boolean", v);
      return out.u8(v ? 1 : 0);
    case GgufValueType.STRING:
      if (typeof v !== "string") badValue(key, "a string", v);
      return out.string(v);
    default:
      badValue(key, "a GGUF scalar type 0..12 (not ARRAY)", type);
  }
}

function writeEntry(out: ByteSink, key: string, e: MetaEntry): void {
  if (key.length === 0) badValue(key, "a non-empty key", key);
  out.string(key);
  out.u32(e.type);
  if (e.type !== GgufValueType.ARRAY) {
    if (Array.isArray(e.value)) badValue(key, `a scalar of GGUF type ${e.type}`, "an array");
    writeScalar(out, key, e.type, e.value as MetaScalar);
    return;
  }
  const et = e.elementType;
  if (et === undefined || et === GgufValueType.ARRAY) badValue(key, "an array element type other than ARRAY", et);
  if (!Array.isArray(e.value)) badValue(key, "an array", e.value);
  const values = e.value as readonly unknown[];
  out.u32(et);
  out.u64(BigInt(values.length));
  for (const v of values) {
    if (Array.isArray(v)) badValue(key, "scalar elements", "a nested array");
    writeScalar(out, key, et, v as MetaScalar);
  }
}

/** Bytes of a tensor, or throws UsageError for a bad name/shape/type. */
export function tensorNbytes(t: GgufTensorDesc): number {
  const bad = (expected: string, got: string): never => {
    throw new UsageError(`cannot write tensor "${t.name}"`, { expected, got });
  };
  const nameBytes = Buffer.byteLength(t.name, "utf8");
  if (nameBytes === 0 || nameBytes >= GGML_MAX_NAME) bad(`a name of 1..${GGML_MAX_NAME - 1} bytes`, `${nameBytes} bytes`);
  if (t.dims.length < 1 || t.dims.length > GGML_MAX_DIMS) bad(`1..${GGML_MAX_DIMS} dims`, `${t.dims.length}`);
  let count = 1n;
  for (const d of t.dims) {
    if (!Number.isSafeInteger(d) || d < 1) bad("dims >= 1", `[${t.dims.join(", ")}]`);
    count *= BigInt(d);
  }
  const layout = getFormat(t.type, `tensor "${t.name}"`);
  if ((t.dims[0] as number) % layout.blockSize !== 0) bad(`ne0 multiple of ${layout.blockSize} for ${ggmlTypeName(t.type)}`, String(t.dims[0]));
  const nbytes = (count / BigInt(layout.blockSize)) * BigInt(layout.typeSize);
  if (nbytes > BigInt(Number.MAX_SAFE_INTEGER)) bad("a representable size", `${nbytes} bytes`);
  return Number(nbytes);
}

/**
 * Encodes a GGUF v3 header for `metadata` and `tensors`. Tensors are laid out in input order, each
 * padded to the alignment. `alignment` defaults to the metadata's `general.alignment`, else 32;
 * a non-default alignment is always recorded in the written `general.alignment`.
 */
export function encodeGgufHeader(metadata: Metadata, tensors: readonly GgufTensorDesc[], alignment?: number): EncodedHeader {
  const metaAlign = metadata.entries.get(GGUF_KEY_ALIGNMENT);
  const a = alignment ?? (metaAlign !== undefined && typeof metaAlign.value === "number" ? metaAlign.value : GGUF_DEFAULT_ALIGNMENT);
  if (!Number.isSafeInteger(a) || a < 1 || a > 2 ** 31 || (a & (a - 1)) !== 0) {
    throw new UsageError("bad GGUF alignment", { expected: "a power of two", got: String(a) });
  }
  const entries = new Map(metadata.entries);
  if (a !== GGUF_DEFAULT_ALIGNMENT || entries.has(GGUF_KEY_ALIGNMENT)) {
    entries.set(GGUF_KEY_ALIGNMENT, { type: GgufValueType.UINT32, value: a });
  }

  const names = new Set<string>();
  const nbytes: number[] = [];
  const offsets: number[] = [];
  let dataSize = 0;
  for (const t of tensors) {
    if (names.has(t.name)) throw new UsageError(`cannot write tensor "${t.name}": duplicate name`);
    names.add(t.name);
    const n = tensorNbytes(t);
    nbytes.push(n);
    offsets.push(dataSize);
    dataSize = alignUp(dataSize + n, a);
  }

  const out = new ByteSink();
  out.u32(GGUF_MAGIC);
  out.u32(GGUF_VERSION);
  out.u64(BigInt(tensors.length));
  out.u64(BigInt(entries.size));
  for (const [key, e] of entries) writeEntry(out, key, e);
  tensors.forEach((t, i) => {
    out.string(t.name);
    out.u32(t.dims.length);
    for (const d of t.dims) out.u64(BigInt(d));
    out.u32(t.type);
    out.u64(BigInt(offsets[i] as number));
  });
  // NOTE: without tensors there is no data section and no padding (as gguf-py writes vocab-only
  // files; readers do not skip padding then either).
  if (tensors.length > 0) out.padTo(a);
  const bytes = out.result();
  return { bytes, alignment: a, dataOffset: bytes.length, offsets, nbytes, fileSize: bytes.length + dataSize };
}
