import { ModelFormatError, assert } from "../errors.js";
import type { RandomAccessFile } from "./file.js";

const CHUNK = 1 << 20;
const TWO_53 = 2n ** 53n;

/**
 * Sequential little-endian reader over a RandomAccessFile through a 1 MiB window. Reads past the
 * end throw ModelFormatError ("truncated"); nothing is ever allocated from a length before the
 * caller has checked it against `remaining`.
 */
export class ByteReader {
  readonly file: RandomAccessFile;
  private readonly buf = Buffer.alloc(CHUNK);
  private readonly view = new DataView(this.buf.buffer);
  /** File position of buf[0]. */
  private bufStart = 0;
  /** Valid bytes in buf. */
  private bufLen = 0;
  /** Current file position. */
  private pos: number;
  /** Describes what is being read, for truncation errors. */
  context = "header";

  constructor(file: RandomAccessFile, position = 0) {
    this.file = file;
    this.pos = position;
  }

  get position(): number {
    return this.pos;
  }

  get remaining(): number {
    return Math.max(0, this.file.size - this.pos);
  }

  seek(position: number): void {
    assert(Number.isSafeInteger(position) && position >= 0, "bad seek");
    this.pos = position;
  }

  private truncated(n: number): never {
    throw new ModelFormatError(`file truncated while reading ${this.context}`, {
      file: this.file.path,
      expected: `${n} more byte(s) at offset ${this.pos}`,
      got: `${this.remaining} byte(s) left (file size ${this.file.size})`,
    });
  }

  /** Ensures `n` (<= CHUNK) bytes at pos are in the window; returns their index in buf. */
  private need(n: number): number {
    assert(n <= CHUNK, "window read too large");
    if (n > this.remaining) this.truncated(n);
    if (this.pos < this.bufStart || this.pos + n > this.bufStart + this.bufLen) {
      this.bufStart = this.pos;
      this.bufLen = this.file.read(this.pos, this.buf);
      if (this.bufLen < n) this.truncated(n);
    }
    const i = this.pos - this.bufStart;
    this.pos += n;
    return i;
  }

  u8(): number {
    return this.buf[this.need(1)] as number;
  }
  i8(): number {
    return this.view.getInt8(this.need(1));
  }
  u16(): number {
    return this.view.getUint16(this.need(2), true);
  }
  i16(): number {
    return this.view.getInt16(this.need(2), true);
  }
  u32(): number {
    return this.view.getUint32(this.need(4), true);
  }
  i32(): number {
    return this.view.getInt32(this.need(4), true);
  }
  u64(): bigint {
    return this.view.getBigUint64(this.need(8), true);
  }
  i64(): bigint {
    return this.view.getBigInt64(this.need(8), true);
  }
  /**
   * A u64 as a number: exact below 2^53, approximate (but still >= 2^53) above. For lengths and
   * counts, which are only compared against limits far below 2^53; avoids BigInt in hot loops.
   */
  u64n(): number {
    const i = this.need(8);
    return this.view.getUint32(i + 4, true) * 4294967296 + this.view.getUint32(i, true);
  }
  f32(): number {
    return this.view.getFloat32(this.need(4), true);
  }
  f64(): number {
    return this.view.getFloat64(this.need(8), true);
  }

  /** Copies `n` bytes (n <= remaining, checked) into a new array. */
  bytes(n: number): Uint8Array {
    assert(Number.isSafeInteger(n) && n >= 0, "bad length");
    if (n > this.remaining) this.truncated(n);
    if (n <= CHUNK) {
      const i = this.need(n);
      // NOTE: not buf.slice(): on a Buffer that is a view, which the next refill would overwrite.
      const out = new Uint8Array(n);
      out.set(this.buf.subarray(i, i + n));
      return out;
    }
    const out = new Uint8Array(n);
    if (this.file.read(this.pos, out) !== n) this.truncated(n);
    this.pos += n;
    return out;
  }

  /** Skips `n` bytes (checked against the file size). */
  skip(n: number): void {
    if (n > this.remaining) this.truncated(n);
    this.pos += n;
  }

  /**
   * Decodes `n` UTF-8 bytes. With `fatal`, invalid UTF-8 throws (the caller maps it to an error);
   * otherwise bad sequences become U+FFFD.
   */
  utf8(n: number, fatal: boolean): string {
    if (n > this.remaining) this.truncated(n);
    if (n <= CHUNK) {
      const i = this.need(n);
      if (fatal) return FATAL_UTF8.decode(this.buf.subarray(i, i + n));
      if (n <= 16) {
        // Short ASCII strings (most vocabulary entries): cheaper than a native decode call.
        let s = "";
        for (let k = i; k < i + n; k++) {
          const c = this.buf[k] as number;
          if (c >= 0x80) return this.buf.toString("utf8", i, i + n);
          s += String.fromCharCode(c);
        }
        return s;
      }
      return this.buf.toString("utf8", i, i + n);
    }
    const b = this.bytes(n);
    return fatal ? FATAL_UTF8.decode(b) : Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString("utf8");
  }
}

export const FATAL_UTF8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** A u64/i64 as a number when exactly representable, else the bigint. */
export function intValue(v: bigint): number | bigint {
  return v <= TWO_53 && v >= -TWO_53 ? Number(v) : v;
}
