import { ModelFormatError } from "../../errors.js";
import type { RandomAccessFile } from "../file.js";
import { readExactly, type TensorSlot } from "../weight-source.js";
import type { TensorInfo } from "../weights.js";

/**
 * Row `r` of the GGUF-order tensor is row `sourceRow(r)` of the Hugging Face one.
 *
 * HF stores Q/K for rotate-half RoPE; convert_hf_to_gguf.py's LlamaModel.permute restores the
 * interleaved (adjacent pairs) order llama.cpp's normal RoPE expects:
 *   w.reshape(n_head, 2, hd/2, ...).swapaxes(1, 2).reshape(w.shape)
 * so GGUF row h*hd + 2i + j comes from HF row h*hd + j*hd/2 + i (i < hd/2, j ∈ {0, 1}).
 */
export function sourceRow(r: number, headDim: number): number {
  const h = Math.floor(r / headDim);
  const rem = r - h * headDim;
  const i = rem >> 1;
  const j = rem & 1;
  return h * headDim + j * (headDim >> 1) + i;
}

/**
 * A Q or K projection (weight or bias) read in GGUF row order from HF storage at `offset`.
 * Rows are the outermost HF dimension (the last GGUF dim). Any byte range can be read.
 */
export function permutedSlot(info: TensorInfo, file: RandomAccessFile, offset: number, nHead: number): TensorSlot {
  const rows = info.dims[info.dims.length - 1] as number;
  if (rows % (2 * nHead) !== 0) {
    throw new ModelFormatError("Q/K rows not divisible into heads of even size", {
      file: file.path,
      field: info.name,
      expected: `rows multiple of 2 × ${nHead} heads`,
      got: `${rows} rows`,
    });
  }
  const headDim = rows / nHead;
  const rowBytes = info.nbytes / rows;
  return {
    info,
    read(byteOffset, dst) {
      let done = 0;
      while (done < dst.length) {
        const pos = byteOffset + done;
        const r = Math.floor(pos / rowBytes);
        const within = pos - r * rowBytes;
        const n = Math.min(rowBytes - within, dst.length - done);
        readExactly(file, offset + sourceRow(r, headDim) * rowBytes + within, dst.subarray(done, done + n));
        done += n;
      }
    },
  };
}
