/**
 * The machine a measurement ran on: CPU, cores, memory, runtime, relaxed SIMD, and the read
 * bandwidth from WebAssembly (bandwidth.ts), cached per machine and runtime because it takes a
 * few seconds to measure.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import v8 from "node:v8";
import { loadKernelModule } from "../kernels/index.js";
import { type BandwidthResult, defaultThreadCounts, measureReadBandwidth, probeBytesFromEnv, relaxedProbeBytes } from "./bandwidth.js";

export interface SysInfo {
  readonly cpu_model: string;
  /** Cores this process may use (os.availableParallelism()). */
  readonly cores: number;
  readonly memory_bytes: number;
  readonly platform: string;
  readonly arch: string;
  readonly node: string;
  readonly v8: string;
  /** "native": relaxed SIMD validates as is; "flag": with --experimental-wasm-relaxed-simd (slimlm sets it); "no". */
  readonly relaxed_simd: "native" | "flag" | "no";
  /** The kernel flavour an engine would use here ("wasm-relaxed" or "wasm-simd"). */
  readonly kernels: string;
  readonly read_bandwidth: ReadBandwidth;
}

export interface ReadBandwidth {
  readonly probe_bytes: number;
  readonly measured_at: string;
  /** Whether the figures came from the cache file. */
  readonly cached: boolean;
  /** One entry per measured thread count, ascending. */
  readonly by_threads: readonly BandwidthResult[];
}

interface CacheEntry {
  readonly probe_bytes: number;
  readonly measured_at: string;
  readonly by_threads: BandwidthResult[];
}

interface CacheFile {
  readonly version: 1;
  readonly entries: Record<string, CacheEntry>;
}

/** $XDG_CACHE_HOME/slimlm (or ~/.cache/slimlm). */
export function slimlmCacheDir(): string {
  const xdg = process.env.XDG_CACHE_HOME;
  return path.join(xdg !== undefined && xdg !== "" ? xdg : path.join(os.homedir(), ".cache"), "slimlm");
}

function cachePath(): string {
  return path.join(slimlmCacheDir(), "sysinfo.json");
}

function cpuModel(): string {
  return os.cpus()[0]?.model.trim() ?? "unknown";
}

/** The cache key: what the bandwidth depends on (and the probe size, which changes what is measured). */
function cacheKey(probeBytes: number): string {
  return `${cpuModel()} | ${os.availableParallelism()} cores | node ${process.version} | ${probeBytes} bytes`;
}

function readCache(): CacheFile {
  try {
    const v = JSON.parse(fs.readFileSync(cachePath(), "utf8")) as Partial<CacheFile>;
    if (v.version === 1 && typeof v.entries === "object" && v.entries !== null) return { version: 1, entries: v.entries };
  } catch {
    // missing or unreadable: measure again
  }
  return { version: 1, entries: {} };
}

function writeCache(c: CacheFile): void {
  // NOTE: best effort (read-only home, full disk): the figures are still returned.
  try {
    fs.mkdirSync(path.dirname(cachePath()), { recursive: true });
    const tmp = `${cachePath()}.${process.pid}.tmp`;
    fs.writeFileSync(tmp, JSON.stringify(c, null, 2) + "\n");
    fs.renameSync(tmp, cachePath());
  } catch {
    // ignore
  }
}

export function relaxedSimdSupport(): "native" | "flag" | "no" {
  const bytes = relaxedProbeBytes();
  if (WebAssembly.validate(bytes)) return "native";
  v8.setFlagsFromString("--experimental-wasm-relaxed-simd");
  return WebAssembly.validate(bytes) ? "flag" : "no";
}

export interface BandwidthOptions {
  /** Measure again even if cached. */
  readonly refresh?: boolean;
  readonly onMeasure?: (threads: number) => void;
}

/**
 * Read bandwidth at each of `threads` (cached; missing thread counts are measured and added).
 * Probe size: 1 GiB, or SLIMLM_PROBE_MIB.
 */
export async function readBandwidth(threads: readonly number[], opts: BandwidthOptions = {}): Promise<ReadBandwidth> {
  const probeBytes = probeBytesFromEnv();
  const key = cacheKey(probeBytes);
  const cache = readCache();
  const old = opts.refresh ? undefined : cache.entries[key];
  const have = new Map((old?.by_threads ?? []).map((r) => [r.threads, r]));
  const missing = [...new Set(threads)].filter((t) => !have.has(t)).sort((a, b) => a - b);
  let measuredAt = old?.measured_at;
  if (missing.length > 0) {
    for (const r of await measureReadBandwidth(missing, { bytes: probeBytes, ...(opts.onMeasure ? { onProgress: opts.onMeasure } : {}) })) have.set(r.threads, r);
    measuredAt = new Date().toISOString();
    const entry: CacheEntry = { probe_bytes: probeBytes, measured_at: measuredAt, by_threads: [...have.values()].sort((a, b) => a.threads - b.threads) };
    writeCache({ version: 1, entries: { ...readCache().entries, [key]: entry } });
  }
  return {
    probe_bytes: probeBytes,
    measured_at: measuredAt!,
    cached: missing.length === 0,
    by_threads: [...have.values()].filter((r) => threads.includes(r.threads)).sort((a, b) => a.threads - b.threads),
  };
}

/** Everything `slimlm sysinfo` reports; bandwidth at 1 thread and at every core. */
export async function sysInfo(opts: BandwidthOptions & { readonly threads?: readonly number[] } = {}): Promise<SysInfo> {
  const relaxed = relaxedSimdSupport();
  const kernels = (await loadKernelModule()).relaxed ? "wasm-relaxed" : "wasm-simd";
  return {
    cpu_model: cpuModel(),
    cores: os.availableParallelism(),
    memory_bytes: os.totalmem(),
    platform: process.platform,
    arch: process.arch,
    node: process.version,
    v8: process.versions.v8,
    relaxed_simd: relaxed,
    kernels,
    read_bandwidth: await readBandwidth(opts.threads ?? defaultThreadCounts(), opts),
  };
}
