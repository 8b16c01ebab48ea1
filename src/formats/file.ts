import * as fs from "node:fs";
import { FileError, assert } from "../errors.js";

/**
 * Positioned byte access to a file or an in-memory image of one. Readers only ever go through this
 * interface, so the same parser runs on a real file (which may be larger than 4 GiB) and on a
 * Uint8Array (fuzzing).
 */
export interface RandomAccessFile {
  /** Name for error messages (a path, or "<memory>"). */
  readonly path: string;
  /** Bytes in the file. Always < 2^53. */
  readonly size: number;
  /**
   * Read up to `dst.length` bytes at `position` into `dst`; returns the count read (less only at
   * end of file). `dst` may be a view on a SharedArrayBuffer.
   */
  read(position: number, dst: Uint8Array): number;
  close(): void;
}

/** Largest single read handed to the OS. NOTE: fs.readSync rejects lengths >= 2^31. */
export const MAX_READ_CHUNK = 1 << 30;

/** An open file read with fs.readSync at explicit positions (no shared file cursor). */
export class FdFile implements RandomAccessFile {
  readonly path: string;
  readonly size: number;
  private fd: number | undefined;
  /** Set once fs.readSync refused a SharedArrayBuffer-backed view (older Node versions). */
  private needsBounce = false;

  private constructor(path: string, fd: number, size: number) {
    this.path = path;
    this.fd = fd;
    this.size = size;
  }

  static open(path: string): FdFile {
    let fd: number;
    try {
      fd = fs.openSync(path, "r");
    } catch (e) {
      throw fileError(path, "cannot open", e);
    }
    try {
      const st = fs.fstatSync(fd);
      if (st.isDirectory()) {
        throw new FileError(`cannot read "${path}": it is a directory`, { hint: "pass a model file" });
      }
      if (!Number.isSafeInteger(st.size)) throw new FileError(`cannot read "${path}": size not representable`);
      return new FdFile(path, fd, st.size);
    } catch (e) {
      fs.closeSync(fd);
      throw e instanceof FileError ? e : fileError(path, "cannot stat", e);
    }
  }

  read(position: number, dst: Uint8Array): number {
    assert(this.fd !== undefined, `read after close: ${this.path}`);
    assert(Number.isSafeInteger(position) && position >= 0, "bad read position");
    let done = 0;
    while (done < dst.length) {
      const len = Math.min(dst.length - done, MAX_READ_CHUNK);
      const n = this.readChunk(dst.subarray(done, done + len), position + done);
      if (n === 0) break;
      done += n;
    }
    return done;
  }

  private readChunk(dst: Uint8Array, position: number): number {
    const fd = this.fd;
    assert(fd !== undefined, "closed");
    try {
      if (!this.needsBounce || !(dst.buffer instanceof SharedArrayBuffer)) {
        try {
          return fs.readSync(fd, dst, 0, dst.length, position);
        } catch (e) {
          // NOTE: Node has accepted SharedArrayBuffer views here since v14; keep a bounce-buffer
          // path anyway in case a runtime refuses them (ERR_INVALID_ARG_TYPE).
          if (!(dst.buffer instanceof SharedArrayBuffer) || !isInvalidArgType(e)) throw e;
          this.needsBounce = true;
        }
      }
      const bounce = Buffer.allocUnsafe(Math.min(dst.length, 1 << 24));
      let done = 0;
      while (done < dst.length) {
        const len = Math.min(bounce.length, dst.length - done);
        const n = fs.readSync(fd, bounce, 0, len, position + done);
        if (n === 0) break;
        dst.set(bounce.subarray(0, n), done);
        done += n;
      }
      return done;
    } catch (e) {
      throw fileError(this.path, "read failed", e);
    }
  }

  close(): void {
    if (this.fd !== undefined) {
      const fd = this.fd;
      this.fd = undefined;
      fs.closeSync(fd);
    }
  }
}

function isInvalidArgType(e: unknown): boolean {
  return e instanceof TypeError && (e as NodeJS.ErrnoException).code === "ERR_INVALID_ARG_TYPE";
}

/** An in-memory file image (for fuzzing and tests). */
export class BufferFile implements RandomAccessFile {
  readonly path: string;
  readonly size: number;
  private readonly bytes: Uint8Array;

  constructor(bytes: Uint8Array, path = "<memory>") {
    this.bytes = bytes;
    this.size = bytes.length;
    this.path = path;
  }

  read(position: number, dst: Uint8Array): number {
    assert(Number.isSafeInteger(position) && position >= 0, "bad read position");
    if (position >= this.size) return 0;
    const n = Math.min(dst.length, this.size - position);
    dst.set(this.bytes.subarray(position, position + n));
    return n;
  }

  close(): void {}
}

/** A FileError with a one-line message from a Node fs error. */
export function fileError(path: string, what: string, e: unknown): FileError {
  const err = e as NodeJS.ErrnoException;
  const code = typeof err?.code === "string" ? err.code : undefined;
  const reason =
    code === "ENOENT"
      ? "no such file or directory"
      : code === "EACCES" || code === "EPERM"
        ? "permission denied"
        : code === "EISDIR"
          ? "is a directory"
          : code === "ENOTDIR"
            ? "a parent is not a directory"
            : code === "ENOSPC"
              ? "no space left on device"
              : code === "EROFS"
                ? "read-only file system"
                : code ?? (e instanceof Error ? e.message.split("\n")[0] : String(e));
  const hint =
    code === "ENOENT"
      ? "check the path"
      : code === "EACCES" || code === "EPERM"
        ? "check the file permissions"
        : code === "ENOSPC"
          ? "free some disk space"
          : undefined;
  return new FileError(`${what} "${path}": ${reason}`, hint === undefined ? { cause: e } : { hint, cause: e });
}
