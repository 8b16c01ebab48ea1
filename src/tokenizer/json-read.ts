/** Checked access to parsed JSON (tokenizer.json, tokenizer_config.json). */
import { ModelFormatError } from "../errors.js";

export type JsonObject = { readonly [k: string]: unknown };

export function isObject(v: unknown): v is JsonObject {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function describe(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "an array";
  if (typeof v === "string") return JSON.stringify(v.length > 40 ? v.slice(0, 40) + "…" : v);
  return typeof v;
}

/** A reader bound to a file, producing ModelFormatErrors that name the JSON path at fault. */
export class JsonReader {
  constructor(readonly source: string) {}

  fail(field: string, expected: string, got: unknown, message = "bad tokenizer.json value"): never {
    throw new ModelFormatError(message, { file: this.source, field, expected, got: describe(got) });
  }

  object(v: unknown, field: string): JsonObject {
    if (!isObject(v)) this.fail(field, "an object", v);
    return v;
  }

  array(v: unknown, field: string): readonly unknown[] {
    if (!Array.isArray(v)) this.fail(field, "an array", v);
    return v;
  }

  string(v: unknown, field: string): string {
    if (typeof v !== "string") this.fail(field, "a string", v);
    return v;
  }

  optString(v: unknown, field: string): string | undefined {
    return v === undefined || v === null ? undefined : this.string(v, field);
  }

  bool(v: unknown, field: string, fallback: boolean): boolean {
    if (v === undefined || v === null) return fallback;
    if (typeof v !== "boolean") this.fail(field, "a boolean", v);
    return v;
  }

  uint(v: unknown, field: string, max: number): number {
    if (typeof v !== "number" || !Number.isInteger(v) || v < 0 || v > max) this.fail(field, `an integer in [0, ${max}]`, v);
    return v;
  }

  /** A single character (Hugging Face `char` fields). */
  char(v: unknown, field: string): string {
    const s = this.string(v, field);
    if ([...s].length !== 1) this.fail(field, "a single character", v);
    return s;
  }
}
