/**
 * Worker threads that quantize rows together with the calling thread. `run` is synchronous (the
 * calling thread works too, then sleeps in Atomics.wait until the job is done), so it can be used
 * from the GGUF writer's synchronous data callbacks.
 */
import { Worker } from "node:worker_threads";
import { InternalError } from "../errors.js";
import type { GgmlType } from "../tensor/ggml-type.js";
import { JOB, type QuantJob, workOn } from "./quant-job.js";

/** Values per grab: ~16K values (llama.cpp's chunk size), at least one row. */
const VALUES_PER_GRAB = 16384;

export class QuantPool {
  private lastError: string | undefined;

  private constructor(private readonly workers: readonly Worker[]) {
    for (const w of workers) {
      w.on("message", (m: { type?: string; message?: string }) => {
        if (m.type === "error") this.lastError = m.message;
      });
      w.unref();
    }
  }

  /**
   * A pool of `threads` threads in all (the caller's plus threads - 1 workers), resolved once every
   * worker has loaded. NOTE: a worker only starts while the creating thread's event loop runs, so
   * the pool must be awaited before `run` blocks this thread.
   */
  static async create(threads: number): Promise<QuantPool> {
    const workers: Worker[] = [];
    const ready: Promise<void>[] = [];
    for (let i = 1; i < threads; i++) {
      const w = new Worker(new URL("./quant-worker.js", import.meta.url));
      workers.push(w);
      ready.push(
        new Promise((resolve, reject) => {
          w.once("message", (m: { type?: string }) => (m.type === "ready" ? resolve() : reject(new InternalError("quantization worker failed to start"))));
          w.once("error", reject);
        }),
      );
    }
    try {
      await Promise.all(ready);
    } catch (e) {
      await Promise.all(workers.map((w) => w.terminate()));
      throw e;
    }
    return new QuantPool(workers);
  }

  get threads(): number {
    return this.workers.length + 1;
  }

  /**
   * Quantize rows [0, nRows) of `src` (rows of nPerRow floats) into `dst` (dstRowBytes per row).
   * All three arrays must be views at offset 0 of SharedArrayBuffers (reused between jobs).
   */
  run(type: GgmlType, src: Float32Array, nRows: number, nPerRow: number, dst: Uint8Array, dstRowBytes: number, qw: Float32Array | null): void {
    if (nRows === 0) return;
    const job: QuantJob = {
      // NOTE: a fresh control block per job: a worker that picks up a job late finds its counter
      // exhausted and does nothing, instead of stealing rows of the next job.
      ctrl: new SharedArrayBuffer(JOB.WORDS * 4),
      type,
      nRows,
      nPerRow,
      rowsPerGrab: Math.max(1, Math.floor(VALUES_PER_GRAB / nPerRow)),
      src: src.buffer as SharedArrayBuffer,
      dst: dst.buffer as SharedArrayBuffer,
      dstRowBytes,
      qw: qw === null ? undefined : (qw.buffer as SharedArrayBuffer),
    };
    const ctrl = new Int32Array(job.ctrl);
    for (const w of this.workers) w.postMessage(job);
    workOn(job);
    for (;;) {
      const done = Atomics.load(ctrl, JOB.DONE);
      if (Atomics.load(ctrl, JOB.ERROR) !== 0) throw new InternalError(`quantization worker failed: ${this.lastError ?? "unknown error"}`);
      if (done >= nRows) return;
      Atomics.wait(ctrl, JOB.DONE, done, 200);
    }
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}
