import { UsageError } from "../../errors.js";
import { AtomicFileWriter } from "../file-writer.js";
import type { Metadata } from "../metadata.js";
import { encodeGgufHeader, type GgufTensorDesc } from "./encode.js";

/**
 * A tensor's bytes: a buffer, or a callback that produces them in order through `write` (any
 * chunking), so tensors larger than memory can be streamed.
 */
export type TensorData = Uint8Array | ((write: (chunk: Uint8Array) => void) => void);

export interface GgufWriterTensor extends GgufTensorDesc {
  readonly data: TensorData;
}

export interface GgufWriteOptions {
  /** Data alignment (power of two); default: metadata `general.alignment`, else 32. */
  readonly alignment?: number;
}

export interface GgufWriteResult {
  readonly fileSize: number;
  readonly dataOffset: number;
  readonly alignment: number;
}

/**
 * Writes a GGUF v3 file. The output appears only once complete (temp file + rename); on any error
 * the temp file is removed. Unwritable paths throw FileError; bad metadata or tensor shapes, or a
 * data callback writing the wrong number of bytes, throw UsageError.
 */
export function writeGguf(
  path: string,
  metadata: Metadata,
  tensors: readonly GgufWriterTensor[],
  opts: GgufWriteOptions = {},
): GgufWriteResult {
  const header = encodeGgufHeader(metadata, tensors, opts.alignment);
  tensors.forEach((t, i) => {
    const n = header.nbytes[i] as number;
    if (t.data instanceof Uint8Array && t.data.length !== n) {
      throw new UsageError(`cannot write tensor "${t.name}": wrong data size`, { expected: `${n} bytes`, got: `${t.data.length} bytes` });
    }
  });
  const out = AtomicFileWriter.create(path);
  try {
    out.write(header.bytes);
    tensors.forEach((t, i) => {
      const n = header.nbytes[i] as number;
      const start = out.written;
      if (t.data instanceof Uint8Array) {
        out.write(t.data);
      } else {
        t.data((chunk) => {
          if (out.written - start + chunk.length > n) {
            throw new UsageError(`cannot write tensor "${t.name}": data callback wrote too much`, { expected: `${n} bytes`, got: `more than ${n}` });
          }
          out.write(chunk);
        });
      }
      const got = out.written - start;
      if (got !== n) {
        throw new UsageError(`cannot write tensor "${t.name}": data callback wrote too little`, { expected: `${n} bytes`, got: `${got} bytes` });
      }
      const end = header.dataOffset + (header.offsets[i] as number) + n;
      const padded = i + 1 < tensors.length ? header.dataOffset + (header.offsets[i + 1] as number) : header.fileSize;
      out.zeros(padded - end);
    });
    out.commit();
  } catch (e) {
    out.abort();
    throw e;
  }
  return { fileSize: header.fileSize, dataOffset: header.dataOffset, alignment: header.alignment };
}
