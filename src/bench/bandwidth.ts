/**
 * Memory read bandwidth as WebAssembly sees it: a hand-encoded module sums a buffer with 16
 * v128 loads into 8 independent accumulators per 256-byte step, on 1..N worker threads over one
 * shared memory. This is the ceiling for decode, which streams every weight once per token.
 */
import os from "node:os";
import { Worker } from "node:worker_threads";
import { UsageError } from "../errors.js";

/** Bytes read by every pass (split between the threads). */
export const DEFAULT_PROBE_BYTES = 1 << 30;
const PAGE = 65536;
/** Bytes per loop step of the probe (16 x v128). */
const STEP = 256;

function uleb(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n !== 0) b |= 0x80;
    out.push(b);
  } while (n !== 0);
  return out;
}

function section(id: number, body: number[]): number[] {
  return [id, ...uleb(body.length), ...body];
}

function name(s: string): number[] {
  return [s.length, ...Array.from(s, (c) => c.charCodeAt(0))];
}

/**
 * The probe module: imports `env.memory` (shared, up to 4 GiB) and exports
 * `read(start, end) -> i32`, which reads [start, end) (end - start a multiple of 256) and returns
 * a lane of the summed vectors so the loads cannot be dropped.
 */
export function probeModuleBytes(): Uint8Array {
  const I32 = 0x7f;
  const V128 = 0x7b;
  const localGet = (i: number): number[] => [0x20, i];
  const localSet = (i: number): number[] => [0x21, i];
  const v128Load = (offset: number): number[] => [0xfd, 0x00, 4, ...uleb(offset)]; // align 2^4
  const i32x4Add = [0xfd, ...uleb(174)];
  const body: number[] = [
    1, 8, V128, // 8 v128 locals: 2..9
    0x02, 0x40, // block
    0x03, 0x40, // loop
    ...localGet(0), ...localGet(1), 0x4f, 0x0d, 1, // br_if 1 (start >= end)
  ];
  for (let k = 0; k < STEP / 16; k++) {
    const acc = 2 + (k % 8);
    body.push(...localGet(acc), ...localGet(0), ...v128Load(k * 16), ...i32x4Add, ...localSet(acc));
  }
  body.push(...localGet(0), 0x41, ...[0x80, 0x02], 0x6a, ...localSet(0)); // start += 256 (sleb128)
  body.push(0x0c, 0, 0x0b, 0x0b); // br 0; end loop; end block
  body.push(...localGet(2));
  for (let a = 3; a < 10; a++) body.push(...localGet(a), ...i32x4Add);
  body.push(0xfd, 0x1b, 0, 0x0b); // i32x4.extract_lane 0; end
  const code = [1, ...uleb(body.length), ...body];
  return new Uint8Array([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...section(1, [1, 0x60, 2, I32, I32, 1, I32]),
    ...section(2, [1, ...name("env"), ...name("memory"), 0x02, 0x03, ...uleb(1), ...uleb(65536)]),
    ...section(3, [1, 0]),
    ...section(7, [1, ...name("read"), 0x00, 0]),
    ...section(10, code),
  ]);
}

/** A module using `f32x4.relaxed_madd`: validates only where relaxed SIMD is enabled. */
export function relaxedProbeBytes(): Uint8Array {
  const v128Const = [0xfd, 0x0c, ...new Array<number>(16).fill(0)];
  const body = [0, ...v128Const, ...v128Const, ...v128Const, 0xfd, ...uleb(0x105), 0x1a, 0x0b];
  return new Uint8Array([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...section(1, [1, 0x60, 0, 0]),
    ...section(3, [1, 0]),
    ...section(10, [1, ...uleb(body.length), ...body]),
  ]);
}

/** What a probe worker receives. */
export interface ProbeWorkerInit {
  readonly module: WebAssembly.Module;
  readonly memory: WebAssembly.Memory;
  /** [0] generation (bumped to start a pass, -1 to exit), [1] finished workers. */
  readonly ctrl: SharedArrayBuffer;
  readonly start: number;
  readonly end: number;
}

export const CTRL_GEN = 0;
export const CTRL_DONE = 1;

export interface BandwidthResult {
  readonly threads: number;
  /** Median over the passes, GB/s (10^9 bytes per second). */
  readonly gb_s: number;
  readonly min_gb_s: number;
  readonly max_gb_s: number;
  readonly passes: number;
  readonly probe_bytes: number;
}

export interface ProbeOptions {
  /** Bytes read per pass (a multiple of 64 KiB); default 1 GiB or SLIMLM_PROBE_MIB. */
  readonly bytes?: number;
  /** Timed passes per thread count (median reported); default 9. */
  readonly passes?: number;
  readonly onProgress?: (threads: number) => void;
}

/** Probe size: SLIMLM_PROBE_MIB (tests use a few MiB: fast, but it measures the caches) or 1 GiB. */
export function probeBytesFromEnv(): number {
  const v = process.env.SLIMLM_PROBE_MIB;
  if (v === undefined || v === "") return DEFAULT_PROBE_BYTES;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > 4095) {
    throw new UsageError("bad SLIMLM_PROBE_MIB", { expected: "an integer in [1, 4095] (MiB)", got: v });
  }
  return n * 2 ** 20;
}

/**
 * Read bandwidth with each of `threadCounts` worker threads (each reads its own contiguous
 * slice of one shared buffer; a pass ends when the last thread finishes).
 */
export async function measureReadBandwidth(threadCounts: readonly number[], opts: ProbeOptions = {}): Promise<BandwidthResult[]> {
  const bytes = opts.bytes ?? probeBytesFromEnv();
  const passes = opts.passes ?? 9;
  const pages = Math.ceil(bytes / PAGE);
  const memory = new WebAssembly.Memory({ initial: pages, maximum: pages, shared: true });
  // NOTE: fresh pages map to the kernel's shared zero page; reading them would measure the cache,
  // so every page is written first.
  new Uint8Array(memory.buffer).fill(1);
  const module = await WebAssembly.compile(probeModuleBytes());
  const out: BandwidthResult[] = [];
  for (const threads of threadCounts) {
    if (!Number.isInteger(threads) || threads < 1 || threads > 256) {
      throw new UsageError("invalid thread count", { expected: "an integer in [1, 256]", got: String(threads) });
    }
    opts.onProgress?.(threads);
    out.push(await probe(module, memory, pages * PAGE, threads, passes));
  }
  return out;
}

async function probe(module: WebAssembly.Module, memory: WebAssembly.Memory, bytes: number, threads: number, passes: number): Promise<BandwidthResult> {
  const ctrlBuf = new SharedArrayBuffer(8);
  const ctrl = new Int32Array(ctrlBuf);
  const slice = Math.floor(bytes / threads / STEP) * STEP;
  const workers: Worker[] = [];
  const ready: Promise<void>[] = [];
  for (let i = 0; i < threads; i++) {
    const init: ProbeWorkerInit = { module, memory, ctrl: ctrlBuf, start: i * slice, end: (i + 1) * slice };
    const w = new Worker(new URL("./bandwidth-worker.js", import.meta.url), { workerData: init });
    workers.push(w);
    ready.push(
      new Promise<void>((resolve, reject) => {
        w.once("message", () => resolve());
        w.once("error", reject);
      }),
    );
  }
  try {
    await Promise.all(ready);
    const times: number[] = [];
    const warmup = 2;
    for (let p = 0; p < warmup + passes; p++) {
      Atomics.store(ctrl, CTRL_DONE, 0);
      const t0 = performance.now();
      Atomics.add(ctrl, CTRL_GEN, 1);
      Atomics.notify(ctrl, CTRL_GEN);
      // NOTE: the main thread blocks here (Node allows Atomics.wait on it), so it takes no core.
      for (let d = Atomics.load(ctrl, CTRL_DONE); d < threads; d = Atomics.load(ctrl, CTRL_DONE)) Atomics.wait(ctrl, CTRL_DONE, d, 10000);
      const t1 = performance.now();
      if (p >= warmup) times.push(t1 - t0);
    }
    const gbs = times.map((ms) => (slice * threads) / (ms * 1e6)).sort((a, b) => a - b);
    return {
      threads,
      gb_s: round2(gbs[Math.floor(gbs.length / 2)]!),
      min_gb_s: round2(gbs[0]!),
      max_gb_s: round2(gbs[gbs.length - 1]!),
      passes,
      probe_bytes: slice * threads,
    };
  } finally {
    Atomics.store(ctrl, CTRL_GEN, -1);
    Atomics.notify(ctrl, CTRL_GEN);
    await Promise.all(workers.map((w) => w.terminate()));
  }
}

/** The thread counts sysinfo reports: 1 and every core. */
export function defaultThreadCounts(): number[] {
  const n = os.availableParallelism();
  return n > 1 ? [1, n] : [1];
}

function round2(x: number): number {
  return Math.round(x * 100) / 100;
}
