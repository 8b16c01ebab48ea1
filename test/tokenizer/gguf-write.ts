/**
 * Test-only GGUF writer for vocabulary files: metadata only, zero tensors. Lets the tests hand
 * node-llama-cpp variants of a vocabulary (another pre-tokenizer, other flags).
 */
import { writeFileSync } from "node:fs";
import { GgufValueType, Metadata, type MetaScalar } from "../../src/formats/metadata.js";

class Out {
  private chunks: Buffer[] = [];
  u32(v: number): void {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(v);
    this.chunks.push(b);
  }
  u64(v: number | bigint): void {
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(BigInt(v));
    this.chunks.push(b);
  }
  str(s: string): void {
    const b = Buffer.from(s, "utf8");
    this.u64(b.length);
    this.chunks.push(b);
  }
  scalar(type: GgufValueType, v: MetaScalar): void {
    const b = Buffer.alloc(8);
    switch (type) {
      case GgufValueType.UINT8: b.writeUInt8(Number(v)); this.chunks.push(b.subarray(0, 1)); return;
      case GgufValueType.INT8: b.writeInt8(Number(v)); this.chunks.push(b.subarray(0, 1)); return;
      case GgufValueType.UINT16: b.writeUInt16LE(Number(v)); this.chunks.push(b.subarray(0, 2)); return;
      case GgufValueType.INT16: b.writeInt16LE(Number(v)); this.chunks.push(b.subarray(0, 2)); return;
      case GgufValueType.UINT32: b.writeUInt32LE(Number(v)); this.chunks.push(b.subarray(0, 4)); return;
      case GgufValueType.INT32: b.writeInt32LE(Number(v)); this.chunks.push(b.subarray(0, 4)); return;
      case GgufValueType.FLOAT32: b.writeFloatLE(Number(v)); this.chunks.push(b.subarray(0, 4)); return;
      case GgufValueType.FLOAT64: b.writeDoubleLE(Number(v)); this.chunks.push(b); return;
      case GgufValueType.BOOL: b.writeUInt8(v === true ? 1 : 0); this.chunks.push(b.subarray(0, 1)); return;
      case GgufValueType.UINT64: b.writeBigUInt64LE(BigInt(v)); this.chunks.push(b); return;
      case GgufValueType.INT64: b.writeBigInt64LE(BigInt(v)); this.chunks.push(b); return;
      case GgufValueType.STRING: this.str(String(v)); return;
      default: throw new Error(`cannot write GGUF type ${type}`);
    }
  }
  bytes(): Buffer {
    return Buffer.concat(this.chunks);
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
