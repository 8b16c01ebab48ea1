/**
 * The matrix products of training on the WebAssembly kernels, split over lanes (this thread and
 * worker threads). Every product is brought to the kernels' form C[M,N] = A'[M,K] . B'[N,K]^T:
 *
 *   abT  C = A B^T   A' = A            B' = rows of B
 *   ab   C = A B     A' = A            B' = columns of B   (B^T)
 *   aTb  C = A^T B   A' = A^T          B' = columns of B
 *
 * Training buffers live in one SharedArrayBuffer arena (`make`). Each lane owns a WebAssembly
 * memory (its kernels keep their scratch there): for a product it copies (or transposes) A' into
 * its memory, packs its share of B's rows (the kernels' packed F32 layout), runs the kernel and
 * writes its columns of C back into the arena. Lanes own disjoint columns of C, so nothing races.
 * Small products run on this thread alone.
 */
import { Worker } from "node:worker_threads";
import { InternalError, assert } from "../errors.js";
import { loadKernelModule } from "../kernels/index.js";
import { CTRL, Command, LaneSync } from "../runtime/backend/sync.js";
import { type Matmul, refMatmul } from "./ops/matmul.js";
import { type Job, MatmulLane, columnsOf } from "./ops/matmul-lane.js";
import type { Floats } from "./ops/tensor-ops.js";

export interface TrainMatmul {
  readonly name: string;
  readonly matmul: Matmul;
  /** Allocate a training buffer (in the arena, when there is one). */
  readonly make: (n: number) => Float32Array;
  close(): void;
}

/** Job words in the control block, after the synchronisation words. */
export const JOB = { OP: CTRL.BATCH, M: CTRL.BATCH + 1, N: CTRL.BATCH + 2, K: CTRL.BATCH + 3, ACC: CTRL.BATCH + 4, A: CTRL.BATCH + 5, B: CTRL.BATCH + 6, C: CTRL.BATCH + 7, A_T: CTRL.BATCH + 8, B_COLS: CTRL.BATCH + 9, WORDS: CTRL.BATCH + 16 } as const;

/** Below this many multiply-adds a product runs on one thread (dispatch costs more). */
const PARALLEL_MIN_MACS = 1 << 21;

class ArenaAllocator {
  used = 0;
  constructor(readonly arena: Float32Array) {}
  make(n: number): Float32Array {
    assert(this.used + n <= this.arena.length, () => `training arena too small: ${this.used + n} > ${this.arena.length} floats`);
    const v = this.arena.subarray(this.used, this.used + n);
    this.used += n + ((16 - ((this.used + n) % 16)) % 16); // 64-byte aligned
    return v;
  }
}

export interface MatmulPoolOptions {
  readonly threads: number;
  /** Floats the arena must hold (size it with a counting dry run of the model). */
  readonly arenaFloats: number;
}

/** A pool of lanes over one arena. */
export class MatmulPool implements TrainMatmul {
  readonly name: string;
  readonly matmul: Matmul;
  readonly arena: Float32Array;
  private readonly alloc: ArenaAllocator;
  private readonly lane0: MatmulLane;
  private readonly sync: LaneSync;
  private readonly workers: Worker[];

  private constructor(arena: Float32Array, lane0: MatmulLane, sync: LaneSync, workers: Worker[], relaxed: boolean) {
    this.arena = arena;
    this.alloc = new ArenaAllocator(arena);
    this.lane0 = lane0;
    this.sync = sync;
    this.workers = workers;
    this.name = `wasm matmul (${relaxed ? "relaxed SIMD" : "SIMD128"}, ${workers.length + 1} thread${workers.length > 0 ? "s" : ""})`;
    const run = (c: Floats, a: Floats, b: Floats, M: number, N: number, K: number, acc: boolean, aT: boolean, bCols: boolean): void => {
      this.product({ M, N, K, acc, a: this.offsetOf(a), b: this.offsetOf(b), c: this.offsetOf(c), aT, bCols });
    };
    this.matmul = {
      abT: (c, a, b, M, N, K, acc) => run(c, a, b, M, N, K, acc, false, false),
      ab: (c, a, b, M, N, K, acc) => run(c, a, b, M, N, K, acc, false, true),
      aTb: (c, a, b, M, N, K, acc) => run(c, a, b, M, N, K, acc, true, true),
    };
  }

  static async create(o: MatmulPoolOptions): Promise<MatmulPool> {
    const { module, relaxed } = await loadKernelModule();
    const arena = new Float32Array(new SharedArrayBuffer(Math.ceil(o.arenaFloats / 16) * 64 + 64));
    const ctrl = new Int32Array(new SharedArrayBuffer(JOB.WORDS * 4));
    const sync = new LaneSync(ctrl, o.threads);
    const workers: Worker[] = [];
    const ready: Promise<void>[] = [];
    for (let i = 1; i < o.threads; i++) {
      const w = new Worker(new URL("./matmul-worker.js", import.meta.url), { workerData: { module, arena, ctrl, index: i, lanes: o.threads } });
      workers.push(w);
      ready.push(
        new Promise((resolve, reject) => {
          w.once("message", () => resolve());
          w.once("error", reject);
        }),
      );
    }
    await Promise.all(ready);
    for (const w of workers) w.unref();
    return new MatmulPool(arena, new MatmulLane(module, arena), sync, workers, relaxed);
  }

  make = (n: number): Float32Array => this.alloc.make(n);

  private offsetOf(x: Floats): number {
    if (!(x instanceof Float32Array) || x.buffer !== this.arena.buffer) throw new InternalError("training buffer outside the arena");
    return x.byteOffset >> 2;
  }

  private product(j: Job): void {
    const lanes = this.workers.length + 1;
    if (lanes === 1 || j.M * j.N * j.K < PARALLEL_MIN_MACS || j.N < 4 * lanes) {
      this.lane0.run(j, 0, j.N);
      return;
    }
    const c = this.sync.ctrl;
    c[JOB.M] = j.M;
    c[JOB.N] = j.N;
    c[JOB.K] = j.K;
    c[JOB.ACC] = j.acc ? 1 : 0;
    c[JOB.A] = j.a;
    c[JOB.B] = j.b;
    c[JOB.C] = j.c;
    c[JOB.A_T] = j.aT ? 1 : 0;
    c[JOB.B_COLS] = j.bCols ? 1 : 0;
    this.sync.publish(Command.FORWARD);
    const [n0, n1] = columnsOf(j.N, lanes, 0);
    this.lane0.run(j, n0, n1);
    this.sync.barrier(); // every lane has written its columns
  }

  close(): void {
    this.sync.publish(Command.EXIT);
    for (const w of this.workers) void w.terminate();
  }
}

/**
 * The matmul for a training run: the WebAssembly pool (with an arena of `arenaFloats`), or the
 * float64 reference when `SLIMLM_TRAIN_MATMUL=ref`.
 */
export async function trainMatmul(threads: number, arenaFloats: number): Promise<TrainMatmul> {
  if (process.env.SLIMLM_TRAIN_MATMUL === "ref") {
    return { name: "reference matmul (1 thread)", matmul: refMatmul, make: (n) => new Float32Array(n), close() {} };
  }
  return MatmulPool.create({ threads, arenaFloats });
}
