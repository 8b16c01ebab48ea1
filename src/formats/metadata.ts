import { ModelFormatError } from "../errors.js";

/** GGUF metadata value type ids (gguf.h `enum gguf_type`). */
export enum GgufValueType {
  UINT8 = 0,
  INT8 = 1,
  UINT16 = 2,
  INT16 = 3,
  UINT32 = 4,
  INT32 = 5,
  FLOAT32 = 6,
  BOOL = 7,
  STRING = 8,
  ARRAY = 9,
  UINT64 = 10,
  INT64 = 11,
  FLOAT64 = 12,
}

/**
 * A decoded metadata value. Integers are `number` when exactly representable (|v| <= 2^53) and
 * `bigint` otherwise. Arrays keep their element type in `MetaEntry.elementType`.
 */
export type MetaScalar = string | number | bigint | boolean;
export type MetaValue = MetaScalar | readonly MetaScalar[] | readonly (readonly MetaScalar[])[];

export interface MetaEntry {
  readonly type: GgufValueType;
  /** For ARRAY: the element type (nested arrays: ARRAY). */
  readonly elementType?: GgufValueType;
  readonly value: MetaValue;
}

/**
 * Model metadata with GGUF key names ("llama.embedding_length", "tokenizer.ggml.tokens"...).
 * GGUF files fill it directly; Hugging Face folders are translated into the same keys, so every
 * layer above src/formats sees one vocabulary of keys.
 */
export class Metadata {
  readonly entries: Map<string, MetaEntry>;
  /** Where the metadata came from, for error messages. */
  readonly source: string;

  constructor(source: string, entries: Map<string, MetaEntry> = new Map()) {
    this.source = source;
    this.entries = entries;
  }

  has(key: string): boolean {
    return this.entries.has(key);
  }

  get(key: string): MetaValue | undefined {
    return this.entries.get(key)?.value;
  }

  set(key: string, type: GgufValueType, value: MetaValue, elementType?: GgufValueType): void {
    this.entries.set(key, elementType === undefined ? { type, value } : { type, elementType, value });
  }

  private fail(key: string, expected: string, got: unknown): never {
    throw new ModelFormatError("bad metadata value", {
      file: this.source,
      field: key,
      expected,
      got: got === undefined ? "missing key" : describe(got),
    });
  }

  string(key: string): string;
  string(key: string, fallback: string): string;
  string(key: string, fallback?: string): string {
    const v = this.get(key);
    if (v === undefined && fallback !== undefined) return fallback;
    if (typeof v !== "string") this.fail(key, "a string", v);
    return v;
  }

  optString(key: string): string | undefined {
    const v = this.get(key);
    if (v === undefined) return undefined;
    if (typeof v !== "string") this.fail(key, "a string", v);
    return v;
  }

  /** A non-negative safe integer within [min, max]. */
  uint(key: string, opts: { fallback?: number; min?: number; max?: number } = {}): number {
    const v = this.get(key);
    if (v === undefined && opts.fallback !== undefined) return opts.fallback;
    const min = opts.min ?? 0;
    const max = opts.max ?? Number.MAX_SAFE_INTEGER;
    if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max) {
      this.fail(key, `an integer in [${min}, ${max}]`, v);
    }
    return v;
  }

  optUint(key: string, opts: { min?: number; max?: number } = {}): number | undefined {
    return this.has(key) ? this.uint(key, opts) : undefined;
  }

  /** A finite number. */
  float(key: string, fallback?: number): number {
    const v = this.get(key);
    if (v === undefined && fallback !== undefined) return fallback;
    if (typeof v !== "number" || !Number.isFinite(v)) this.fail(key, "a finite number", v);
    return v;
  }

  optFloat(key: string): number | undefined {
    return this.has(key) ? this.float(key) : undefined;
  }

  bool(key: string, fallback: boolean): boolean {
    const v = this.get(key);
    if (v === undefined) return fallback;
    if (typeof v !== "boolean") this.fail(key, "a bool", v);
    return v;
  }

  stringArray(key: string): readonly string[] {
    const v = this.get(key);
    if (!Array.isArray(v) || !v.every((x) => typeof x === "string")) this.fail(key, "an array of strings", v);
    return v as readonly string[];
  }

  numberArray(key: string): readonly number[] {
    const v = this.get(key);
    if (!Array.isArray(v) || !v.every((x) => typeof x === "number")) this.fail(key, "an array of numbers", v);
    return v as readonly number[];
  }

  optNumberArray(key: string): readonly number[] | undefined {
    return this.has(key) ? this.numberArray(key) : undefined;
  }
}

function describe(v: unknown): string {
  if (Array.isArray(v)) return `array[${v.length}]`;
  if (typeof v === "string") return JSON.stringify(v.length > 40 ? v.slice(0, 40) + "…" : v);
  return `${typeof v} ${String(v)}`;
}
