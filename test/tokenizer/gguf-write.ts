/**
 * Test-only GGUF writer for vocabulary files: metadata only, zero tensors. Lets the tests hand
 * node-llama-cpp variants of a vocabulary (another pre-tokenizer, other flags).
 */
import { writeFileSync } from "node:fs";
import { GgufValueType, Metadata, type MetaScalar } from "../../src/formats/metadata.js";

class Out {
  private buf = Buffer.alloc(1 << 20);
  private off = 0;
  private room(n: number): void {
    if (this.off + n <= this.buf.length) return;
    const b = Buffer.alloc(Math.max(this.buf.length * 2, this.off + n));
    this.buf.copy(b, 0, 0, this.off);
    this.buf = b;
  }
  u32(v: number): void {
    this.room(4);
    this.off = this.buf.writeUInt32LE(v, this.off);
  }
  u64(v: number | bigint): void {
    this.room(8);
    this.off = this.buf.writeBigUInt64LE(BigInt(v), this.off);
  }
  str(s: string): void {
    const n = Buffer.byteLength(s, "utf8");
    this.u64(n);
    this.room(n);
    this.off += this.buf.write(s, this.off, "utf8");
  }
  scalar(type: GgufValueType, v: MetaScalar): void {
    this.room(8);
    const b = this.buf;
    const o = this.off;
    switch (type) {
      case GgufValueType.UINT8: this.off = b.writeUInt8(Number(v), o); return;
      case GgufValueType.INT8: this.off = b.writeInt8(Number(v), o); return;
      case GgufValueType.UINT16: this.off = b.writeUInt16LE(Number(v), o); return;
      case GgufValueType.INT16: this.off = b.writeInt16LE(Number(v), o); return;
      case GgufValueType.UINT32: this.off = b.writeUInt32LE(Number(v), o); return;
      case GgufValueType.INT32: this.off = b.writeInt32LE(Number(v), o); return;
      case GgufValueType.FLOAT32: this.off = b.writeFloatLE(Number(v), o); return;
      case GgufValueType.FLOAT64: this.off = b.writeDoubleLE(Number(v), o); return;
      case GgufValueType.BOOL: this.off = b.writeUInt8(v === true ? 1 : 0, o); return;
      case GgufValueType.UINT64: this.off = b.writeBigUInt64LE(BigInt(v), o); return;
      case GgufValueType.INT64: this.off = b.writeBigInt64LE(BigInt(v), o); return;
      case GgufValueType.STRING: this.str(String(v)); return;
      default: throw new Error(`cannot write GGUF type ${type}`);
    }
  }
  bytes(): Buffer {
    return this.buf.subarray(0, this.off);
  }
}

/** Write `meta` as a GGUF v3 file with no tensors. */
export function writeVocabGguf(path: string, meta: Metadata): void {
  const o = new Out();
  o.u32(0x46554747);
  o.u32(3);
  o.u64(0);
  o.u64(meta.entries.size);
  for (const [key, e] of meta.entries) {
    o.str(key);
    o.u32(e.type);
    if (e.type === GgufValueType.ARRAY) {
      const et = e.elementType ?? GgufValueType.STRING;
      const arr = e.value as readonly MetaScalar[];
      o.u32(et);
      o.u64(arr.length);
      for (const v of arr) o.scalar(et, v);
    } else o.scalar(e.type, e.value as MetaScalar);
  }
  const body = o.bytes();
  const pad = (32 - (body.length % 32)) % 32;
  writeFileSync(path, Buffer.concat([body, Buffer.alloc(pad)]));
}

/** A copy of `meta` with some keys replaced (value undefined: removed). */
export function withKeys(meta: Metadata, changes: Record<string, { type: GgufValueType; value: MetaScalar } | undefined>): Metadata {
  const entries = new Map(meta.entries);
  for (const [k, v] of Object.entries(changes)) {
    if (v === undefined) entries.delete(k);
    else entries.set(k, { type: v.type, value: v.value });
  }
  return new Metadata(meta.source, entries);
}
