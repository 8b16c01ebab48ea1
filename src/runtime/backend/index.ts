/**
 * The lane backend: loads a model into N lanes (this thread + N-1 workers) and runs forward
 * passes over batches. This is the engine's compute seam: another backend (e.g. ONNX Runtime)
 * would offer the same `forward(batch) -> logits`.
 */
import { Worker } from "node:worker_threads";
import { SlimError, InternalError, assert } from "../../errors.js";
import type { ModelFile } from "../../formats/weights.js";
import { type KernelSet, type KvType, kvRowBytes } from "../../kernels/kernel-set.js";
import { createKernels, createRefKernels, loadKernelModule } from "../../kernels/index.js";
import { getFamily } from "../../models/index.js";
import { type Batch, type BatchCapacity, BatchLayout } from "./batch.js";
import { Lane } from "./lane.js";
import { type LoadProgress, loadWeights } from "./load.js";
import { type LanePlan, type PlannedMatrix, RecordingSpace, kvRowOffset, layoutLanes } from "./plan.js";
import { Command, LaneAborted, LaneSync } from "./sync.js";

export type KernelMode = "wasm" | "ref";

export interface BackendOptions {
  readonly threads: number;
  readonly capacity: BatchCapacity;
  readonly kvTokens: number;
  readonly kvBlockSize: number;
  /** Precision of the KV cache. Default f32. */
  readonly kvType?: KvType;
  /** Longest sequence, in positions. */
  readonly maxContext: number;
  readonly kernels?: KernelMode;
  /** "auto" (default): relaxed SIMD when the runtime supports it. */
  readonly simd?: "auto" | "on" | "off";
  readonly onProgress?: LoadProgress;
}

/** What a worker lane receives (structured-cloned). */
export interface LaneInit {
  readonly index: number;
  readonly plan: LanePlan;
  readonly config: unknown;
  readonly memories: readonly WebAssembly.Memory[];
  readonly ctrl: SharedArrayBuffer;
  readonly module: WebAssembly.Module | undefined;
  readonly kernelMode: KernelMode;
  readonly startGeneration: number;
}

export function makeKernels(mode: KernelMode, module: WebAssembly.Module | undefined, memory: WebAssembly.Memory): KernelSet {
  if (mode === "ref" || module === undefined) return createRefKernels(memory);
  return createKernels(module, memory);
}

export class LaneBackend {
  private closed = false;

  private constructor(
    readonly plan: LanePlan,
    readonly memories: readonly WebAssembly.Memory[],
    private readonly lane0: Lane<unknown>,
    private readonly sync: LaneSync,
    private readonly batchLayout: BatchLayout,
    private readonly workers: readonly Worker[],
    readonly relaxedSimd: boolean,
  ) {}

  static async create(file: ModelFile, familyName: string, config: unknown, opts: BackendOptions): Promise<LaneBackend> {
    const family = getFamily(familyName);
    const nLanes = opts.threads;
    const rec = new RecordingSpace(file.weights, nLanes);
    family.declare(config, rec);
    const plan = layoutLanes(rec, familyName, {
      nLanes,
      capacity: opts.capacity,
      kvTokens: opts.kvTokens,
      kvBlockSize: opts.kvBlockSize,
      maxContext: opts.maxContext,
      ...(opts.kvType === undefined ? {} : { kvType: opts.kvType }),
    });
    const memories = plan.lanes.map((l) => new WebAssembly.Memory({ initial: l.pages, maximum: l.pages, shared: true }));
    loadWeights(plan, file.weights, memories, opts.onProgress);

    const mode = opts.kernels ?? "wasm";
    const loaded = mode === "wasm" ? await loadKernelModule({ relaxed: opts.simd === "on" ? "on" : opts.simd === "off" ? "off" : "auto" }) : undefined;
    const batchLayout = new BatchLayout(plan.capacity);
    const ctrl = new SharedArrayBuffer(batchLayout.words * 4);
    const sync = new LaneSync(new Int32Array(ctrl), nLanes);
    const workers: Worker[] = [];
    const ready: Promise<void>[] = [];
    for (let i = 1; i < nLanes; i++) {
      const init: LaneInit = { index: i, plan, config, memories, ctrl, module: loaded?.module, kernelMode: mode, startGeneration: 0 };
      const w = new Worker(new URL("./worker.js", import.meta.url), { workerData: init });
      workers.push(w);
      ready.push(
        new Promise((resolve, reject) => {
          w.once("message", (m: { type: string; message?: string }) => {
            if (m.type === "ready") resolve();
            else reject(new InternalError(m.message ?? "worker failed"));
          });
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
    for (const w of workers) w.unref();
    const kernels = makeKernels(mode, loaded?.module, memories[0]!);
    const lane0 = new Lane(0, plan, family, config, kernels, memories, sync, batchLayout);
    return new LaneBackend(plan, memories, lane0, sync, batchLayout, workers, loaded?.relaxed ?? false);
  }

  /** See Lane.matmulObserver (runs on this thread, lane 0). */
  setMatmulObserver(fn: ((w: PlannedMatrix, x: Float32Array, rows: number) => void) | undefined): void {
    this.lane0.matmulObserver = fn;
  }

  get kernelName(): string {
    return this.lane0.kernels.name;
  }

  /** Bytes of all lanes' memories. */
  get memoryBytes(): number {
    return this.plan.lanes.reduce((s, l) => s + l.pages * 65536, 0);
  }

  /**
   * Copy the cached keys and values of positions [0, n) of KV block `src` into block `dst`, in
   * every layer and lane (between forward passes only: the workers are idle then, and lane 0
   * writes their memories directly).
   */
  copyKvRows(src: number, dst: number, n: number): void {
    if (this.closed) throw new InternalError("copyKvRows on a closed backend");
    const kv = this.plan.kv;
    assert(src >= 0 && src < kv.nBlocks && dst >= 0 && dst < kv.nBlocks && src !== dst, "copyKvRows: bad block");
    assert(Number.isInteger(n) && n >= 0 && n <= kv.blockSize, "copyKvRows: bad row count");
    const rows = n * kvRowBytes(kv.kvType, kv.headDim);
    for (let lane = 0; lane < this.plan.nLanes; lane++) {
      const [h0, h1] = kv.headRanges[lane]!;
      const bytes = new Uint8Array(this.memories[lane]!.buffer);
      const layout = this.plan.lanes[lane]!;
      for (const pool of [...layout.kCache, ...layout.vCache]) {
        for (let j = 0; j < h1 - h0; j++) {
          const from = pool + kvRowOffset(kv, j, src, 0);
          bytes.copyWithin(pool + kvRowOffset(kv, j, dst, 0), from, from + rows);
        }
      }
    }
  }

  /**
   * Run one forward pass. Returns the logits of `batch.outputRows`, [R][vocab], as a view that
   * stays valid until the next call.
   */
  forward(batch: Batch): Float32Array {
    if (this.closed) throw new InternalError("forward on a closed backend");
    this.batchLayout.write(this.sync.ctrl, batch);
    this.sync.publish(Command.FORWARD);
    try {
      this.lane0.forward();
    } catch (e) {
      if (e instanceof LaneAborted) throw new InternalError(e.message);
      if (!(e instanceof SlimError)) this.sync.abort(e instanceof Error ? e.message : String(e));
      throw e;
    }
    return this.lane0.outputView();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.sync.publish(Command.EXIT);
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}
