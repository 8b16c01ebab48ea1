/**
 * `slimlm bench`: prefill, decode, time to first token, peak RSS and decode bandwidth of one model
 * file, optionally against llama.cpp (node-llama-cpp) on the same file and thread count. Each
 * engine runs in its own child process (bench-child.ts), one after the other.
 */
import { fork } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { FileError, InternalError, ModelFormatError, ResourceError, UnsupportedError, UsageError } from "../errors.js";
import { openModelFile } from "../formats/index.js";
import type { ModelFile } from "../formats/weights.js";
import { kvCacheBytes, summarize } from "../runtime/info.js";
import type { KvType } from "../kernels/kernel-set.js";
import { tokenizerFor } from "../runtime/model-tokenizer.js";
import type { Tokenizer } from "../tokenizer/index.js";
import type { BenchEngine, BenchJob, BenchReply, BenchRun } from "./bench-protocol.js";
import { readBandwidth } from "./sysinfo.js";

export type { BenchRun } from "./bench-protocol.js";

/** The peer `--compare llama.cpp` runs; other versions run but are reported as such. */
export const PEER_PACKAGE = "node-llama-cpp";
export const PEER_VERSION = "3.21.1";

export interface BenchOptions {
  readonly model: string;
  /** Default: the cores. */
  readonly threads?: number;
  /** Prompt tokens of the prefill measurement (default 512). */
  readonly prefill?: number;
  /** Greedy tokens of the decode measurement, after the first (default 128). */
  readonly decode?: number;
  /** Repetitions; figures are medians (default 3). */
  readonly repeat?: number;
  readonly compare?: "llama.cpp";
  /** KV cache precision for both engines (default: each engine's own, slimlm f32, llama.cpp f16). */
  readonly kvType?: KvType;
  /** Human-readable progress ("measuring slimlm..."). */
  readonly onStatus?: (line: string) => void;
}

type Spread = Record<"prefill_tok_s" | "decode_tok_s" | "ttft_ms", [min: number, max: number]>;

/** One engine's figures: medians over the runs. */
export interface EngineFigures {
  readonly prefill_tok_s: number;
  readonly decode_tok_s: number;
  readonly ttft_ms: number;
  /** Peak resident set of the engine's process, MB (10^6 bytes). */
  readonly peak_rss_mb: number;
  /** bytes_per_token x decode_tok_s, GB/s (10^9 bytes per second). */
  readonly decode_gb_s: number;
  /** decode_gb_s / the read bandwidth measured at the same thread count. */
  readonly bandwidth_fraction: number;
  readonly bytes_per_token: number;
  readonly kernels: string;
  readonly load_ms: number;
  /** [min, max] over the runs. */
  readonly spread: Spread;
  readonly runs: readonly BenchRun[];
}

export interface PeerFigures extends EngineFigures {
  readonly engine: string;
  /** ours / theirs (> 1: we are faster; for ttft and peak RSS, > 1: we take more). */
  readonly ratio_prefill: number;
  readonly ratio_decode: number;
  readonly ratio_ttft: number;
  readonly ratio_peak_rss: number;
}

export interface BenchReport extends EngineFigures {
  readonly model: string;
  readonly file_size: number;
  readonly threads: number;
  readonly prefill_tokens: number;
  readonly decode_tokens: number;
  readonly repeat: number;
  readonly context_size: number;
  readonly batch_size: number;
  /** slimlm's KV cache precision, and its size at context_size positions. */
  readonly kv_type: KvType;
  readonly kv_cache_bytes: number;
  /** Read bandwidth from WebAssembly at `threads` threads (sysinfo), GB/s. */
  readonly read_gb_s: number;
  readonly compare: PeerFigures | null;
}

const BATCH = 512;
const MIN_CONTEXT = 1024;
/** Prompt text for the prefill measurement (repeated to length); its content does not matter for speed. */
const PROMPT_TEXT =
  "Once upon a time, in a small village by the sea, there lived an old fisherman who went out every morning before the sun rose. " +
  "He knew the names of the winds and the moods of the water, and the children of the village would wait for him on the pier to hear his stories. ";

/** The first `n` tokens of the prompt text repeated (BOS first when the model adds one). */
export function benchPrompt(tok: Tokenizer, n: number): number[] {
  let text = PROMPT_TEXT;
  let ids = tok.encode(text, { addSpecial: true });
  while (ids.length < n) {
    text += text;
    ids = tok.encode(text, { addSpecial: true });
  }
  return ids.slice(0, n);
}

/**
 * Weight bytes a file-format engine (llama.cpp) streams per token: every matrix except the
 * embedding lookup, at its stored size. (info's bytes_per_token counts types our kernels do not
 * compute at their dequantized f32 size.)
 */
export function storedBytesPerToken(file: ModelFile): number {
  const tied = file.weights.get("output.weight") === undefined;
  let n = 0;
  for (const t of file.weights.tensors) {
    const matrix = t.dims.length === 2 && t.name !== "rope_freqs.weight";
    if (matrix && !(t.name === "token_embd.weight" && !tied)) n += t.nbytes;
  }
  return n;
}

/** Where node-llama-cpp is installed and its version, or undefined. */
export function findPeer(): { dir: string; version: string } | undefined {
  let entry: string;
  try {
    entry = fileURLToPath(import.meta.resolve(PEER_PACKAGE));
  } catch {
    return undefined;
  }
  for (let dir = path.dirname(entry); dir !== path.dirname(dir); dir = path.dirname(dir)) {
    try {
      const pkg = JSON.parse(fs.readFileSync(path.join(dir, "package.json"), "utf8")) as { name?: string; version?: string };
      if (pkg.name === PEER_PACKAGE) return { dir, version: pkg.version ?? "unknown" };
    } catch {
      // not this level
    }
  }
  return undefined;
}

function peerMissing(detail: string): UsageError {
  return new UsageError(`--compare llama.cpp needs ${PEER_PACKAGE}`, {
    expected: `${PEER_PACKAGE} ${PEER_VERSION} installed`,
    got: detail,
    hint: `npm install --save-dev ${PEER_PACKAGE}@${PEER_VERSION} (the CPU binaries come with the package)`,
  });
}

function positiveInt(name: string, v: number, max: number): number {
  if (!Number.isInteger(v) || v < 1 || v > max) throw new UsageError(`invalid ${name}`, { expected: `an integer in [1, ${max}]`, got: String(v) });
  return v;
}

export async function runBench(o: BenchOptions): Promise<BenchReport> {
  const threads = positiveInt("--threads", o.threads ?? os.availableParallelism(), 64);
  const prefill = positiveInt("--prefill", o.prefill ?? 512, 1 << 16);
  const decode = positiveInt("--decode", o.decode ?? 128, 1 << 16);
  const repeat = positiveInt("--repeat", o.repeat ?? 3, 1000);
  const status = o.onStatus ?? ((): void => undefined);

  const file = openModelFile(o.model);
  let info: ReturnType<typeof summarize>;
  let prompt: number[];
  let storedBytes: number;
  try {
    info = summarize(file);
    prompt = benchPrompt(tokenizerFor(file), prefill);
    storedBytes = storedBytesPerToken(file);
  } finally {
    file.weights.close();
  }
  if (prompt.length < prefill) throw new InternalError(`bench prompt has ${prompt.length} tokens, wanted ${prefill}`);
  let peer: { dir: string; version: string } | undefined;
  if (o.compare !== undefined) {
    if (info.format !== "gguf") {
      throw new UsageError("--compare llama.cpp needs a GGUF file", { expected: "a .gguf file", got: "a Hugging Face folder" });
    }
    peer = findPeer();
    if (peer === undefined) throw peerMissing("not found");
  }
  const contextSize = Math.max(MIN_CONTEXT, Math.max(prefill, decode + 1) + 8);

  const bw = await readBandwidth([threads], { onMeasure: (t) => status(`measuring read bandwidth with ${t} thread(s) (cached afterwards)...`) });
  const readGbS = bw.by_threads.find((r) => r.threads === threads)?.gb_s ?? 0;

  const job = (engine: BenchEngine): BenchJob => ({
    engine,
    model: path.resolve(o.model),
    threads,
    prompt,
    decode,
    repeat,
    contextSize,
    batchSize: BATCH,
    ...(o.kvType === undefined ? {} : { kvType: o.kvType }),
  });
  status(`measuring slimlm: ${threads} thread(s), ${prefill}-token prefill, ${decode}-token decode, ${repeat} run(s)...`);
  const ours = figures(await runChild(job("slimlm")), info.bytes_per_token, readGbS);
  let compare: PeerFigures | null = null;
  if (peer !== undefined) {
    status(`measuring llama.cpp (${PEER_PACKAGE} ${peer.version})...`);
    const theirs = figures(await runChild(job("llama.cpp")), storedBytes, readGbS);
    compare = {
      engine: `${PEER_PACKAGE} ${peer.version}`,
      ...theirs,
      ratio_prefill: ratio(ours.prefill_tok_s, theirs.prefill_tok_s),
      ratio_decode: ratio(ours.decode_tok_s, theirs.decode_tok_s),
      ratio_ttft: ratio(ours.ttft_ms, theirs.ttft_ms),
      ratio_peak_rss: ratio(ours.peak_rss_mb, theirs.peak_rss_mb),
    };
  }
  return {
    model: path.resolve(o.model),
    file_size: info.file_size,
    threads,
    prefill_tokens: prefill,
    decode_tokens: decode,
    repeat,
    context_size: contextSize,
    batch_size: BATCH,
    kv_type: o.kvType ?? "f32",
    kv_cache_bytes: kvCacheBytes(info.config, o.kvType ?? "f32", contextSize),
    read_gb_s: readGbS,
    ...ours,
    compare,
  };
}

function figures(r: Extract<BenchReply, { ok: true }>, bytesPerToken: number, readGbS: number): EngineFigures {
  const med = (k: keyof BenchRun): number => round(median(r.runs.map((x) => x[k])), 2);
  const span = (k: keyof BenchRun): [number, number] => [Math.min(...r.runs.map((x) => x[k])), Math.max(...r.runs.map((x) => x[k]))];
  const decodeTokS = med("decode_tok_s");
  const gbs = (bytesPerToken * decodeTokS) / 1e9;
  return {
    prefill_tok_s: med("prefill_tok_s"),
    decode_tok_s: decodeTokS,
    ttft_ms: med("ttft_ms"),
    peak_rss_mb: r.peak_rss_mb,
    decode_gb_s: round(gbs, 3),
    bandwidth_fraction: readGbS > 0 ? round(gbs / readGbS, 3) : 0,
    bytes_per_token: bytesPerToken,
    kernels: r.kernels,
    load_ms: r.load_ms,
    spread: { prefill_tok_s: span("prefill_tok_s"), decode_tok_s: span("decode_tok_s"), ttft_ms: span("ttft_ms") },
    runs: r.runs,
  };
}

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length === 0 ? 0 : s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

function ratio(a: number, b: number): number {
  return b > 0 ? round(a / b, 3) : 0;
}

function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

const ERRORS: Record<string, new (m: string, d?: { got?: string }) => Error> = {
  model_format: ModelFormatError,
  unsupported: UnsupportedError,
  usage: UsageError,
  resource: ResourceError,
  file: FileError,
};

/** Run one engine in a fresh child process and return its reply. */
function runChild(job: BenchJob): Promise<Extract<BenchReply, { ok: true }>> {
  const child = fork(fileURLToPath(new URL("./bench-child.js", import.meta.url)), [], { stdio: ["ignore", "pipe", "pipe", "ipc"] });
  let tail = "";
  const keep = (d: Buffer): void => {
    tail = (tail + d.toString("utf8")).slice(-4000);
  };
  child.stdout!.on("data", keep);
  child.stderr!.on("data", keep);
  let reply: BenchReply | undefined;
  child.on("message", (m: BenchReply) => {
    reply = m;
  });
  child.send(job);
  return new Promise((resolve, reject) => {
    child.on("error", (e) => reject(new InternalError(`bench: cannot start the ${job.engine} process: ${e.message}`)));
    child.on("exit", (code, signal) => {
      if (reply?.ok === true) return resolve(reply);
      if (reply !== undefined && !reply.ok) {
        if (reply.missing) return reject(peerMissing(reply.message));
        const E = reply.code !== undefined ? ERRORS[reply.code] : undefined;
        if (E !== undefined) return reject(new E(reply.message));
        if (job.engine === "llama.cpp") return reject(new UnsupportedError("llama.cpp could not run this model", { got: reply.message }));
        return reject(new InternalError(`bench (${job.engine}): ${reply.message}`));
      }
      const last = tail.trim().split("\n").slice(-1)[0] ?? "";
      reject(new InternalError(`bench: the ${job.engine} process ended without a result (${signal ?? `exit code ${code}`})${last ? `: ${last}` : ""}`));
    });
  });
}
