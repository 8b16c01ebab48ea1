import * as fs from "node:fs";
import * as nodePath from "node:path";
import { randomBytes } from "node:crypto";
import { FileError, assert } from "../errors.js";
import { MAX_READ_CHUNK, fileError } from "./file.js";

const BUFFER_BYTES = 4 << 20;

/**
 * Writes a file through a temp file in the same directory, renamed over `path` on `commit()`:
 * readers never see a half-written output. `abort()` (or any failure) removes the temp file.
 */
export class AtomicFileWriter {
  readonly path: string;
  readonly tempPath: string;
  private fd: number | undefined;
  private readonly buf = Buffer.allocUnsafe(BUFFER_BYTES);
  private bufLen = 0;
  /** Bytes accepted so far (buffered or written). */
  written = 0;

  private constructor(path: string, tempPath: string, fd: number) {
    this.path = path;
    this.tempPath = tempPath;
    this.fd = fd;
  }

  static create(path: string): AtomicFileWriter {
    const abs = nodePath.resolve(path);
    let st: fs.Stats | undefined;
    try {
      st = fs.statSync(abs);
    } catch {
      st = undefined;
    }
    if (st?.isDirectory() === true) {
      throw new FileError(`cannot write "${path}": it is a directory`, { hint: "pass a file name" });
    }
    const dir = nodePath.dirname(abs);
    const tempPath = nodePath.join(dir, `.${nodePath.basename(abs)}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`);
    let fd: number;
    try {
      fd = fs.openSync(tempPath, "wx", 0o644);
    } catch (e) {
      throw fileError(path, "cannot write", e);
    }
    return new AtomicFileWriter(path, tempPath, fd);
  }

  write(chunk: Uint8Array): void {
    if (chunk.length === 0) return;
    if (this.bufLen + chunk.length <= this.buf.length) {
      this.buf.set(chunk, this.bufLen);
      this.bufLen += chunk.length;
    } else {
      this.flush();
      if (chunk.length < this.buf.length) {
        this.buf.set(chunk, 0);
        this.bufLen = chunk.length;
      } else {
        this.writeDirect(chunk);
      }
    }
    this.written += chunk.length;
  }

  /** Appends `n` zero bytes. */
  zeros(n: number): void {
    while (n > 0) {
      const k = Math.min(n, this.buf.length);
      if (this.bufLen + k > this.buf.length) this.flush();
      this.buf.fill(0, this.bufLen, this.bufLen + k);
      this.bufLen += k;
      this.written += k;
      n -= k;
    }
  }

  private flush(): void {
    if (this.bufLen > 0) {
      this.writeDirect(this.buf.subarray(0, this.bufLen));
      this.bufLen = 0;
    }
  }

  private writeDirect(b: Uint8Array): void {
    const fd = this.fd;
    assert(fd !== undefined, "write after close");
    try {
      let done = 0;
      while (done < b.length) {
        done += fs.writeSync(fd, b, done, Math.min(b.length - done, MAX_READ_CHUNK));
      }
    } catch (e) {
      throw fileError(this.path, "cannot write", e);
    }
  }

  /** Flushes, syncs and renames the temp file over the destination. */
  commit(): void {
    const fd = this.fd;
    assert(fd !== undefined, "commit after close");
    try {
      this.flush();
      try {
        fs.fsyncSync(fd);
      } catch (e) {
        throw fileError(this.path, "cannot write", e);
      }
      this.fd = undefined;
      fs.closeSync(fd);
      try {
        fs.renameSync(this.tempPath, this.path);
      } catch (e) {
        throw fileError(this.path, "cannot write", e);
      }
    } catch (e) {
      this.abort();
      throw e;
    }
  }

  /** Closes and removes the temp file; safe to call more than once. */
  abort(): void {
    if (this.fd !== undefined) {
      const fd = this.fd;
      this.fd = undefined;
      try {
        fs.closeSync(fd);
      } catch {
        // already failing; the unlink below is what matters
      }
    }
    try {
      fs.unlinkSync(this.tempPath);
    } catch {
      // already gone
    }
  }
}
