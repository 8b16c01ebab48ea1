/**
 * One quantization job as the pool hands it to its threads: `nRows` rows of `nPerRow` f32 values
 * in `src`, quantized to `type` into `dst` (`dstRowBytes` per row), optionally weighted by `qw`
 * (`nPerRow` importances). Every buffer is a SharedArrayBuffer; threads take `rowsPerGrab` rows at
 * a time from the job's own counters, so each row is quantized exactly once by whichever thread
 * grabs it, and the output does not depend on the number of threads.
 */
import type { GgmlType } from "../tensor/ggml-type.js";
import { quantizeRow } from "./weighted.js";

/** Int32 slots of a job's control block. */
export const JOB = { NEXT: 0, DONE: 1, ERROR: 2, WORDS: 4 } as const;

export interface QuantJob {
  readonly ctrl: SharedArrayBuffer;
  readonly type: GgmlType;
  readonly nRows: number;
  readonly nPerRow: number;
  readonly rowsPerGrab: number;
  readonly src: SharedArrayBuffer;
  readonly dst: SharedArrayBuffer;
  readonly dstRowBytes: number;
  readonly qw: SharedArrayBuffer | undefined;
}

/** Grab and quantize rows until the job has none left. Returns the rows this thread did. */
export function workOn(job: QuantJob): number {
  const ctrl = new Int32Array(job.ctrl);
  const src = new Float32Array(job.src);
  const dst = new Uint8Array(job.dst);
  const qw = job.qw === undefined ? null : new Float32Array(job.qw, 0, job.nPerRow);
  let mine = 0;
  for (;;) {
    const r0 = Atomics.add(ctrl, JOB.NEXT, job.rowsPerGrab);
    if (r0 >= job.nRows) return mine;
    const r1 = Math.min(job.nRows, r0 + job.rowsPerGrab);
    try {
      for (let r = r0; r < r1; r++) {
        quantizeRow(
          job.type,
          src.subarray(r * job.nPerRow, (r + 1) * job.nPerRow),
          dst.subarray(r * job.dstRowBytes, (r + 1) * job.dstRowBytes),
          job.nPerRow,
          qw,
        );
      }
    } catch (e) {
      Atomics.store(ctrl, JOB.ERROR, 1);
      throw e;
    } finally {
      Atomics.add(ctrl, JOB.DONE, r1 - r0);
      Atomics.notify(ctrl, JOB.DONE);
    }
    mine += r1 - r0;
  }
}
