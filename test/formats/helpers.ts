/** Shared helpers for the format tests. */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { SlimError } from "../../src/errors.js";
import { GgmlType } from "../../src/tensor/ggml-type.js";
import { getFormat } from "../../src/tensor/registry.js";
import { GgufValueType, Metadata } from "../../src/formats/metadata.js";
import type { GgufWriterTensor } from "../../src/formats/gguf/writer.js";

/** ../shared beside the repository (read in place, never copied into the repo). */
export const SHARED = process.env.SLIMLM_SHARED ?? path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../../../shared");
export const MODELS = path.join(SHARED, "models");
export const STORIES_GGUF = path.join(MODELS, "stories260K.gguf");
export const TINY_RANDOM_GGUF = path.join(MODELS, "llama-2-tiny-random.gguf");
export const STORIES_HF = path.join(MODELS, "derived/stories260K-hf");
export const VOCAB_DIR = path.join(MODELS, "vocab");

export function tmpDir(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `slimlm-${prefix}-`));
}

/** Runs `fn`, asserting it throws an instance of `cls`; returns the error. */
export function throwsA<E extends Error>(fn: () => unknown, cls: abstract new (...args: never[]) => E, pattern?: RegExp): E {
  try {
    fn();
  } catch (e) {
    if (!(e instanceof cls)) throw new Error(`expected ${cls.name}, got ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`);
    if (pattern !== undefined && !pattern.test(e.message)) throw new Error(`message ${JSON.stringify(e.message)} does not match ${pattern}`);
    return e;
  }
  throw new Error(`expected ${cls.name}, but nothing was thrown`);
}

export function isSlimError(e: unknown): e is SlimError {
  return e instanceof SlimError;
}

/** Deterministic PRNG (mulberry32). */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function randomBytes(rand: () => number, n: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = Math.floor(rand() * 256);
  return b;
}

/** Metadata with one key of every GGUF value type, arrays included. */
export function allTypesMetadata(): Metadata {
  const md = new Metadata("test");
  md.set("general.architecture", GgufValueType.STRING, "llama");
  md.set("test.u8", GgufValueType.UINT8, 255);
  md.set("test.i8", GgufValueType.INT8, -128);
  md.set("test.u16", GgufValueType.UINT16, 65535);
  md.set("test.i16", GgufValueType.INT16, -32768);
  md.set("test.u32", GgufValueType.UINT32, 4294967295);
  md.set("test.i32", GgufValueType.INT32, -2147483648);
  md.set("test.f32", GgufValueType.FLOAT32, Math.fround(3.14159));
  md.set("test.bool.t", GgufValueType.BOOL, true);
  md.set("test.bool.f", GgufValueType.BOOL, false);
  md.set("test.string", GgufValueType.STRING, "héllo ✓ 🦙");
  md.set("test.string.empty", GgufValueType.STRING, "");
  md.set("test.u64.small", GgufValueType.UINT64, 42);
  md.set("test.u64.big", GgufValueType.UINT64, 18446744073709551615n);
  md.set("test.i64.small", GgufValueType.INT64, -42);
  md.set("test.i64.big", GgufValueType.INT64, -9223372036854775808n);
  md.set("test.i64.2p53", GgufValueType.INT64, 2 ** 53);
  md.set("test.f64", GgufValueType.FLOAT64, 1e-300);
  md.set("test.arr.str", GgufValueType.ARRAY, ["a", "", "ü", "<s>", "▁the"], GgufValueType.STRING);
  md.set("test.arr.f32", GgufValueType.ARRAY, [0, -1.5, Math.fround(0.1)], GgufValueType.FLOAT32);
  md.set("test.arr.i32", GgufValueType.ARRAY, [1, -2, 3], GgufValueType.INT32);
  md.set("test.arr.u64", GgufValueType.ARRAY, [0, 1, 18446744073709551615n], GgufValueType.UINT64);
  md.set("test.arr.i64", GgufValueType.ARRAY, [-1, 9223372036854775807n], GgufValueType.INT64);
  md.set("test.arr.bool", GgufValueType.ARRAY, [true, false, true], GgufValueType.BOOL);
  md.set("test.arr.u8", GgufValueType.ARRAY, [0, 7, 255], GgufValueType.UINT8);
  md.set("test.arr.f64", GgufValueType.ARRAY, [Math.PI, -0], GgufValueType.FLOAT64);
  md.set("test.arr.empty", GgufValueType.ARRAY, [], GgufValueType.UINT32);
  return md;
}

/** A few small tensors of F32, F16, Q8_0 and Q4_0 with deterministic bytes. */
export function smallTensors(seed = 1): GgufWriterTensor[] {
  const rand = prng(seed);
  return [
    { name: "token_embd.weight", type: GgmlType.F32, dims: [8, 3], data: randomBytes(rand, 8 * 3 * 4) },
    { name: "blk.0.attn_q.weight", type: GgmlType.F16, dims: [5, 2], data: randomBytes(rand, 5 * 2 * 2) },
    { name: "blk.0.ffn_up.weight", type: GgmlType.Q8_0, dims: [64, 2], data: randomBytes(rand, 2 * 2 * 34) },
    { name: "blk.0.ffn_down.weight", type: GgmlType.Q4_0, dims: [32, 3], data: randomBytes(rand, 3 * 18) },
    { name: "output_norm.weight", type: GgmlType.F32, dims: [7], data: randomBytes(rand, 7 * 4) },
  ];
}

export interface StEntry {
  readonly name: string;
  readonly dtype: string;
  readonly shape: readonly number[];
  readonly data: Uint8Array;
}

/** Builds safetensors bytes (tensors laid out in the given order, header padded with spaces to 8). */
export function buildSafetensors(entries: readonly StEntry[], metadata?: Record<string, string>): Uint8Array {
  const header: Record<string, unknown> = {};
  if (metadata !== undefined) header.__metadata__ = metadata;
  let off = 0;
  for (const e of entries) {
    header[e.name] = { dtype: e.dtype, shape: e.shape, data_offsets: [off, off + e.data.length] };
    off += e.data.length;
  }
  let json = JSON.stringify(header);
  while ((8 + Buffer.byteLength(json)) % 8 !== 0) json += " ";
  const hb = Buffer.from(json, "utf8");
  const out = new Uint8Array(8 + hb.length + off);
  new DataView(out.buffer).setBigUint64(0, BigInt(hb.length), true);
  out.set(hb, 8);
  let p = 8 + hb.length;
  for (const e of entries) {
    out.set(e.data, p);
    p += e.data.length;
  }
  return out;
}

/** Builds safetensors bytes from a raw header string and data. */
export function rawSafetensors(headerJson: string, data: Uint8Array, lengthOverride?: bigint): Uint8Array {
  const hb = Buffer.from(headerJson, "utf8");
  const out = new Uint8Array(8 + hb.length + data.length);
  new DataView(out.buffer).setBigUint64(0, lengthOverride ?? BigInt(hb.length), true);
  out.set(hb, 8);
  out.set(data, 8 + hb.length);
  return out;
}

/**
 * A GgmlType the tensor registry does not implement (the registry grows over time, so tests
 * look one up instead of naming it). Undefined once every type is implemented.
 */
export function unimplementedType(): GgmlType | undefined {
  for (const v of Object.values(GgmlType)) {
    if (typeof v !== "number") continue;
    try {
      getFormat(v);
    } catch {
      return v;
    }
  }
  return undefined;
}
