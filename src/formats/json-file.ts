import * as fs from "node:fs";
import { FileError, ModelFormatError } from "../errors.js";
import { FdFile } from "./file.js";
import { parseJsonStrict } from "./json.js";
import { FATAL_UTF8 } from "./byte-reader.js";

/**
 * Reads and parses a JSON file of at most `maxBytes`. Returns undefined when the file does not
 * exist and `optional` is set. Duplicate keys are rejected only with `strict` (Python's json,
 * which Hugging Face uses, keeps the last one).
 */
export function readJsonFile(path: string, opts: { maxBytes: number; optional?: boolean; strict?: boolean }): unknown {
  if (opts.optional === true && !fs.existsSync(path)) return undefined;
  const file = FdFile.open(path);
  try {
    if (file.size > opts.maxBytes) {
      throw new ModelFormatError("JSON file too large", { file: path, expected: `at most ${opts.maxBytes} bytes`, got: `${file.size} bytes` });
    }
    const bytes = new Uint8Array(file.size);
    if (file.read(0, bytes) !== bytes.length) throw new FileError(`cannot read "${path}": short read`);
    if (opts.strict === true) return parseJsonStrict(bytes, path, "JSON file");
    let text: string;
    try {
      text = FATAL_UTF8.decode(bytes);
    } catch {
      throw new ModelFormatError("file is not valid UTF-8", { file: path, expected: "UTF-8 JSON", got: "invalid byte sequence" });
    }
    try {
      return JSON.parse(text) as unknown;
    } catch (e) {
      throw new ModelFormatError("file is not valid JSON", { file: path, expected: "JSON", got: e instanceof Error ? e.message.split("\n")[0] : "a parse error" });
    }
  } finally {
    file.close();
  }
}
