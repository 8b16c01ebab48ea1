/**
 * Hand-assembled GGUF bytes for corruption tests, written field by field independently of
 * src/formats/gguf/encode.ts so the reader is not only tested against its own writer.
 */

export class Raw {
  private readonly parts: number[] = [];
  u8(v: number): this {
    this.parts.push(v & 0xff);
    return this;
  }
  u32(v: number): this {
    for (let i = 0; i < 4; i++) this.parts.push((v >>> (8 * i)) & 0xff);
    return this;
  }
  u64(v: bigint | number): this {
    let b = BigInt.asUintN(64, BigInt(v));
    for (let i = 0; i < 8; i++) {
      this.parts.push(Number(b & 0xffn));
      b >>= 8n;
    }
    return this;
  }
  raw(b: Uint8Array | readonly number[]): this {
    for (const x of b) this.parts.push(x);
    return this;
  }
  str(s: string, lengthOverride?: bigint | number): this {
    const b = Buffer.from(s, "utf8");
    this.u64(lengthOverride ?? b.length);
    return this.raw(b);
  }
  padTo(alignment: number): this {
    while (this.parts.length % alignment !== 0) this.parts.push(0);
    return this;
  }
  zeros(n: number): this {
    for (let i = 0; i < n; i++) this.parts.push(0);
    return this;
  }
  get length(): number {
    return this.parts.length;
  }
  bytes(): Uint8Array {
    return Uint8Array.from(this.parts);
  }
}

export interface CraftKv {
  key: string;
  /** Writes type + value. */
  write: (r: Raw) => void;
}

export interface CraftTensor {
  name: string;
  dims: readonly (bigint | number)[];
  nDims?: number;
  type: number;
  offset: bigint | number;
}

export interface CraftOptions {
  magic?: number;
  version?: number;
  nTensors?: bigint | number;
  nKv?: bigint | number;
  kvs?: CraftKv[];
  tensors?: CraftTensor[];
  alignment?: number;
  /** Bytes of data section after the aligned header. */
  dataBytes?: number;
}

export const kvU32 = (key: string, v: number): CraftKv => ({ key, write: (r) => r.u32(4).u32(v) });
export const kvStr = (key: string, v: string): CraftKv => ({ key, write: (r) => r.u32(8).str(v) });

/** A GGUF image; defaults make a valid file with the given kvs/tensors. */
export function craft(o: CraftOptions = {}): Uint8Array {
  const kvs = o.kvs ?? [kvStr("general.architecture", "llama")];
  const tensors = o.tensors ?? [];
  const r = new Raw();
  r.u32(o.magic ?? 0x46554747).u32(o.version ?? 3).u64(o.nTensors ?? tensors.length).u64(o.nKv ?? kvs.length);
  for (const kv of kvs) {
    r.str(kv.key);
    kv.write(r);
  }
  for (const t of tensors) {
    r.str(t.name);
    r.u32(t.nDims ?? t.dims.length);
    for (const d of t.dims) r.u64(d);
    r.u32(t.type);
    r.u64(t.offset);
  }
  if (tensors.length > 0) r.padTo(o.alignment ?? 32);
  r.zeros(o.dataBytes ?? 0);
  return r.bytes();
}
