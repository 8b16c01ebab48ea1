/**
 * Worker threads running the reference quantizers (src/tensor) on chunks of rows, for `synth`:
 * the K-quant references take ~0.3 s per million values on one thread.
 */
import { Worker } from "node:worker_threads";
import { InternalError, UsageError } from "../errors.js";
import type { GgmlType } from "../tensor/ggml-type.js";
import { getFormat } from "../tensor/registry.js";

/** A job as the worker receives it; `values` is transferred (the caller loses it). */
export interface QuantizeJob {
  readonly id: number;
  readonly type: GgmlType;
  readonly values: Float32Array;
  readonly rows: number;
  readonly cols: number;
}

export type QuantizeReply = { readonly id: number; readonly bytes: Uint8Array } | { readonly id: number; readonly error: string };

interface Pending {
  readonly resolve: (b: Uint8Array) => void;
  readonly reject: (e: Error) => void;
  readonly worker: number;
}

export class QuantizePool {
  private readonly workers: Worker[] = [];
  private readonly load: number[] = [];
  private readonly pending = new Map<number, Pending>();
  private nextId = 0;
  private failure: Error | undefined;

  constructor(readonly size: number) {
    for (let i = 0; i < size; i++) {
      const w = new Worker(new URL("./quantize-worker.js", import.meta.url));
      w.on("message", (m: QuantizeReply) => this.settle(m));
      w.on("error", (e: Error) => this.fail(new InternalError(`quantize worker: ${e.message}`)));
      w.on("exit", (code) => {
        if (code !== 0 && this.failure === undefined && this.pending.size > 0) this.fail(new InternalError(`quantize worker exited with code ${code}`));
      });
      this.workers.push(w);
      this.load.push(0);
    }
  }

  /** Quantize `rows` rows of `cols` values; `values` is transferred to the worker. */
  quantize(type: GgmlType, values: Float32Array, rows: number, cols: number): Promise<Uint8Array> {
    if (this.failure !== undefined) return Promise.reject(this.failure);
    let best = 0;
    for (let i = 1; i < this.load.length; i++) if (this.load[i]! < this.load[best]!) best = i;
    const id = this.nextId++;
    this.load[best]!++;
    const job: QuantizeJob = { id, type, values, rows, cols };
    return new Promise<Uint8Array>((resolve, reject) => {
      this.pending.set(id, { resolve, reject, worker: best });
      this.workers[best]!.postMessage(job, [values.buffer as ArrayBuffer]);
    });
  }

  private settle(m: QuantizeReply): void {
    const p = this.pending.get(m.id);
    if (p === undefined) return;
    this.pending.delete(m.id);
    this.load[p.worker]!--;
    if ("error" in m) p.reject(new InternalError(`quantize worker: ${m.error}`));
    else p.resolve(m.bytes);
  }

  private fail(e: Error): void {
    this.failure ??= e;
    for (const p of this.pending.values()) p.reject(e);
    this.pending.clear();
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}

/** Quantize `rows` rows of `cols` values of `src` into `type` blocks (reference quantizer). */
export function quantizeRows(type: GgmlType, src: Float32Array, rows: number, cols: number, out?: Uint8Array): Uint8Array {
  const fmt = getFormat(type);
  const quantize = fmt.quantizeRowRef;
  if (quantize === undefined) throw new UsageError(`cannot write ${fmt.name} tensors`);
  const rowBytes = (cols / fmt.blockSize) * fmt.typeSize;
  const dst = out ?? new Uint8Array(rows * rowBytes);
  for (let i = 0; i < rows; i++) quantize(src.subarray(i * cols, (i + 1) * cols), dst.subarray(i * rowBytes, (i + 1) * rowBytes), cols);
  return dst.subarray(0, rows * rowBytes);
}
