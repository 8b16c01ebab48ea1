/**
 * Test-only GGUF metadata reader: parses the header and key/value section of a GGUF file into a
 * `Metadata`. The real reader lives in src/formats/gguf (another module); the tokenizer tests only
 * need the metadata, and must not depend on work in progress elsewhere.
 */
import { readFileSync } from "node:fs";
import { GgufValueType, Metadata, type MetaScalar, type MetaValue } from "../../src/formats/metadata.js";

class Cursor {
  private off = 0;
  private readonly view: DataView;
  // NOTE: ignoreBOM, or a token that is exactly U+FEFF decodes to "" (Llama vocabularies have one).
  private readonly utf8 = new TextDecoder("utf-8", { ignoreBOM: true });
  constructor(private readonly buf: Uint8Array) {
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }
  private need(n: number): void {
    if (this.off + n > this.buf.length) throw new Error(`GGUF truncated at ${this.off}`);
  }
  u8(): number { this.need(1); return this.view.getUint8(this.off++); }
  i8(): number { this.need(1); return this.view.getInt8(this.off++); }
  u16(): number { this.need(2); const v = this.view.getUint16(this.off, true); this.off += 2; return v; }
  i16(): number { this.need(2); const v = this.view.getInt16(this.off, true); this.off += 2; return v; }
  u32(): number { this.need(4); const v = this.view.getUint32(this.off, true); this.off += 4; return v; }
  i32(): number { this.need(4); const v = this.view.getInt32(this.off, true); this.off += 4; return v; }
  f32(): number { this.need(4); const v = this.view.getFloat32(this.off, true); this.off += 4; return v; }
  f64(): number { this.need(8); const v = this.view.getFloat64(this.off, true); this.off += 8; return v; }
  u64(): number | bigint {
    this.need(8);
    const v = this.view.getBigUint64(this.off, true);
    this.off += 8;
    return v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
  }
  i64(): number | bigint {
    this.need(8);
    const v = this.view.getBigInt64(this.off, true);
    this.off += 8;
    return v <= BigInt(Number.MAX_SAFE_INTEGER) && v >= BigInt(Number.MIN_SAFE_INTEGER) ? Number(v) : v;
  }
  count(): number {
    const n = this.u64();
    if (typeof n !== "number" || n > this.buf.length) throw new Error(`GGUF: bad count ${String(n)}`);
    return n;
  }
  str(): string {
    const n = this.count();
    this.need(n);
    const s = this.utf8.decode(this.buf.subarray(this.off, this.off + n));
    this.off += n;
    return s;
  }
}

function readScalar(c: Cursor, type: GgufValueType): MetaScalar {
  switch (type) {
    case GgufValueType.UINT8: return c.u8();
    case GgufValueType.INT8: return c.i8();
    case GgufValueType.UINT16: return c.u16();
    case GgufValueType.INT16: return c.i16();
    case GgufValueType.UINT32: return c.u32();
    case GgufValueType.INT32: return c.i32();
    case GgufValueType.FLOAT32: return c.f32();
    case GgufValueType.FLOAT64: return c.f64();
    case GgufValueType.BOOL: return c.u8() !== 0;
    case GgufValueType.STRING: return c.str();
    case GgufValueType.UINT64: return c.u64();
    case GgufValueType.INT64: return c.i64();
    default: throw new Error(`GGUF: unexpected scalar type ${type}`);
  }
}

export function readGgufMetadata(path: string): Metadata {
  const c = new Cursor(readFileSync(path));
  if (c.u32() !== 0x46554747) throw new Error(`${path}: not a GGUF file`);
  const version = c.u32();
  if (version < 2) throw new Error(`${path}: GGUF v${version} not supported by the test reader`);
  c.u64(); // tensor count
  const nKv = c.count();
  const meta = new Metadata(path);
  for (let i = 0; i < nKv; i++) {
    const key = c.str();
    const type = c.u32() as GgufValueType;
    if (type === GgufValueType.ARRAY) {
      const et = c.u32() as GgufValueType;
      const n = c.count();
      if (et === GgufValueType.ARRAY) throw new Error(`${path}: nested arrays not supported by the test reader`);
      const arr: MetaScalar[] = new Array<MetaScalar>(n);
      for (let j = 0; j < n; j++) arr[j] = readScalar(c, et);
      meta.set(key, type, arr as MetaValue, et);
    } else {
      meta.set(key, type, readScalar(c, type));
    }
  }
  return meta;
}
