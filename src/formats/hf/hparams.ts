import { ModelFormatError } from "../../errors.js";

/** config.json, with convert_hf_to_gguf.py's `find_hparam` semantics. */
export class HParams {
  constructor(
    readonly raw: Readonly<Record<string, unknown>>,
    readonly file: string,
  ) {}

  /** Value of the first of `keys` present (null counts as absent, as in the converter's checks). */
  find(keys: readonly string[]): { key: string; value: unknown } | undefined {
    for (const key of keys) {
      if (Object.hasOwn(this.raw, key)) {
        const value = this.raw[key];
        return value === null || value === undefined ? undefined : { key, value };
      }
    }
    return undefined;
  }

  private bad(key: string, expected: string, value: unknown): never {
    throw new ModelFormatError("bad config value", { file: this.file, field: key, expected, got: describe(value) });
  }

  /** A positive safe integer, or undefined when none of `keys` is set. */
  optInt(keys: readonly string[]): number | undefined {
    const f = this.find(keys);
    if (f === undefined) return undefined;
    if (typeof f.value !== "number" || !Number.isSafeInteger(f.value) || f.value < 1) this.bad(f.key, "a positive integer", f.value);
    return f.value;
  }

  int(keys: readonly string[]): number {
    const v = this.optInt(keys);
    if (v === undefined) {
      throw new ModelFormatError("missing config value", { file: this.file, field: keys.join(" | "), expected: "a positive integer", got: "missing" });
    }
    return v;
  }

  /** A finite number, or undefined. */
  optFloat(keys: readonly string[]): number | undefined {
    const f = this.find(keys);
    if (f === undefined) return undefined;
    if (typeof f.value !== "number" || !Number.isFinite(f.value)) this.bad(f.key, "a finite number", f.value);
    return f.value;
  }
}

export function describe(v: unknown): string {
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 60 ? s.slice(0, 60) + "…" : s;
}
