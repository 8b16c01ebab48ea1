import * as fs from "node:fs";
import { FileError, ModelFormatError, UsageError } from "../errors.js";
import { FdFile, fileError } from "./file.js";
import { GGUF_MAGIC_BYTES } from "./gguf/constants.js";
import { ggufModelFile } from "./gguf/open.js";
import { openHfFolder } from "./hf/open.js";
import type { ModelFile } from "./weights.js";

export * from "./gguf/index.js";
export * from "./hf/index.js";
export { parseSafetensors, openSafetensors, safetensorsFile, safetensorsTensorInfo, MAX_SAFETENSORS_HEADER } from "./safetensors.js";
export type { SafetensorsHeader, SafetensorsTensor, SafetensorsFile } from "./safetensors.js";
export { FdFile, BufferFile, type RandomAccessFile } from "./file.js";
export { GgufValueType, Metadata, type MetaEntry, type MetaScalar, type MetaValue } from "./metadata.js";
export type { ModelFile, TensorInfo, WeightSource } from "./weights.js";

/**
 * Opens a model: a folder is a Hugging Face model folder, a file must be GGUF (checked by its
 * magic). The caller closes it with `weights.close()`.
 */
export function openModelFile(path: string): ModelFile {
  let st: fs.Stats;
  try {
    st = fs.statSync(path);
  } catch (e) {
    const err = fileError(path, "cannot open model", e);
    if ((e as NodeJS.ErrnoException).code === "ENOENT") {
      throw new FileError(`cannot open model "${path}": no such file or folder`, {
        hint: "pass a .gguf file or a Hugging Face model folder",
        cause: e,
      });
    }
    throw err;
  }
  if (st.isDirectory()) return openHfFolder(path);
  const file = FdFile.open(path);
  try {
    const magic = new Uint8Array(4);
    const n = file.read(0, magic);
    if (n === 4 && magic.every((b, i) => b === GGUF_MAGIC_BYTES[i])) return ggufModelFile(file);
    if (path.toLowerCase().endsWith(".safetensors")) {
      throw new UsageError(`"${path}" is a single safetensors file`, {
        hint: "pass the Hugging Face folder that holds it with config.json and tokenizer.json",
      });
    }
    throw new ModelFormatError("unknown model file format", {
      file: path,
      expected: 'a GGUF file (magic "GGUF") or a Hugging Face folder',
      got: n < 4 ? `a ${n}-byte file` : `magic ${JSON.stringify(String.fromCharCode(...magic))}`,
    });
  } catch (e) {
    file.close();
    throw e;
  }
}
