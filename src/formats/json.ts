import { ModelFormatError } from "../errors.js";
import { FATAL_UTF8 } from "./byte-reader.js";

/**
 * JSON text → value, for files we read (safetensors headers, config.json...). Rejects invalid
 * UTF-8 and duplicate object keys (JSON.parse silently keeps the last one).
 */
export function parseJsonStrict(bytes: Uint8Array, file: string, what: string): unknown {
  let text: string;
  try {
    text = FATAL_UTF8.decode(bytes);
  } catch {
    throw new ModelFormatError(`${what} is not valid UTF-8`, { file, expected: "UTF-8 JSON", got: "invalid byte sequence" });
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new ModelFormatError(`${what} is not valid JSON`, {
      file,
      expected: "JSON",
      got: e instanceof Error ? e.message.split("\n")[0] : "a parse error",
    });
  }
  const dup = findDuplicateKey(text);
  if (dup !== undefined) {
    throw new ModelFormatError(`duplicate key in ${what}`, { file, field: dup, expected: "unique keys", got: "the key twice in one object" });
  }
  return value;
}

/**
 * First key that appears twice in one object of `text`, which must be valid JSON. A linear scan
 * with an explicit stack (no recursion, so no stack overflow on deep nesting).
 */
export function findDuplicateKey(text: string): string | undefined {
  // One frame per open container: the keys seen (objects) or undefined (arrays).
  const stack: (Set<string> | undefined)[] = [];
  let expectKey = false;
  let i = 0;
  const n = text.length;
  while (i < n) {
    const c = text.charCodeAt(i);
    if (c === 0x22 /* " */) {
      let j = i + 1;
      for (;;) {
        const d = text.charCodeAt(j);
        if (d === 0x5c /* \ */) j += 2;
        else if (d === 0x22) break;
        else j++;
      }
      if (expectKey) {
        const keys = stack[stack.length - 1];
        if (keys !== undefined) {
          const raw = text.slice(i + 1, j);
          const key = raw.includes("\\") ? (JSON.parse(text.slice(i, j + 1)) as string) : raw;
          if (keys.has(key)) return key;
          keys.add(key);
        }
        expectKey = false;
      }
      i = j + 1;
      continue;
    }
    if (c === 0x7b /* { */) {
      stack.push(new Set());
      expectKey = true;
    } else if (c === 0x5b /* [ */) {
      stack.push(undefined);
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
      stack.pop();
    } else if (c === 0x2c /* , */) {
      expectKey = stack[stack.length - 1] !== undefined;
    }
    i++;
  }
  return undefined;
}

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}
