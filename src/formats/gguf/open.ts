import type { Metadata } from "../metadata.js";
import { FdFile, type RandomAccessFile } from "../file.js";
import { SlotWeightSource, fileSpanSlot } from "../weight-source.js";
import type { ModelFile, WeightSource } from "../weights.js";
import { parseGguf, type GgufHeader, type GgufParseOptions } from "./parse.js";

/** A GGUF model file: the ModelFile view plus the raw header facts. */
export interface GgufModelFile extends ModelFile {
  readonly kind: "gguf";
  readonly header: GgufHeader;
}

/** Opens and validates a GGUF file. The file stays open until `weights.close()`. */
export function openGguf(path: string, opts: GgufParseOptions = {}): GgufModelFile {
  const file = FdFile.open(path);
  try {
    return ggufModelFile(file, opts);
  } catch (e) {
    file.close();
    throw e;
  }
}

/** The same over any RandomAccessFile (an in-memory image for tests and fuzzing). */
export function ggufModelFile(file: RandomAccessFile, opts: GgufParseOptions = {}): GgufModelFile {
  const header = parseGguf(file, opts);
  const weights: WeightSource = new SlotWeightSource(
    file.path,
    header.tensors.map((t) => fileSpanSlot({ name: t.name, type: t.type, dims: t.dims, nbytes: t.nbytes }, file, t.fileOffset)),
    () => file.close(),
  );
  const metadata: Metadata = header.metadata;
  return { path: file.path, kind: "gguf", fileSize: header.fileSize, metadata, weights, header };
}
