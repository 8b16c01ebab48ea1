/** Paths and oracle-file readers shared by the tokenizer tests. */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { readGgufMetadata } from "./gguf-meta.js";
import type { Metadata } from "../../src/formats/metadata.js";

export const MODELS = "/work/shared/models";
export const DATA = "/work/shared/data";
export const VOCAB_GPT2 = join(MODELS, "vocab/ggml-vocab-gpt-2.gguf");
export const VOCAB_PHI3 = join(MODELS, "vocab/ggml-vocab-phi-3.gguf");
export const VOCAB_BERT = join(MODELS, "vocab/ggml-vocab-bert-bge.gguf");
export const LLAMA2_TINY = join(MODELS, "llama-2-tiny-random.gguf");
export const STORIES = join(MODELS, "stories260K.gguf");
export const STORIES_HF = join(MODELS, "derived/stories260K-hf");
export const STORIES_GOLDEN = join(MODELS, "stories260K.golden.json");

export const haveModels = existsSync(VOCAB_GPT2) && existsSync(STORIES);

const metaCache = new Map<string, Metadata>();
export function meta(path: string): Metadata {
  let m = metaCache.get(path);
  if (m === undefined) {
    m = readGgufMetadata(path);
    metaCache.set(path, m);
  }
  return m;
}

export interface VocabCase {
  readonly text: string;
  readonly ids: number[];
}

/**
 * llama.cpp tests/test-tokenizer-0.cpp: the .inp holds test strings separated by
 * "\n__ggml_vocab_test__\n" (so the newline before and after the marker belong to the separator);
 * the .out holds one line of space-separated ids per string.
 */
export function readVocabCases(ggufPath: string): VocabCase[] {
  const raw = readFileSync(ggufPath + ".inp", "utf8");
  const sep = "\n__ggml_vocab_test__\n";
  const inputs: string[] = [];
  let pos = 0;
  while (pos < raw.length) {
    const next = raw.indexOf(sep, pos);
    if (next === -1) {
      inputs.push(raw.slice(pos));
      break;
    }
    inputs.push(raw.slice(pos, next));
    pos = next + sep.length;
  }
  const outLines = readFileSync(ggufPath + ".out", "utf8").split("\n");
  if (outLines[outLines.length - 1] === "") outLines.pop();
  if (outLines.length !== inputs.length) throw new Error(`${ggufPath}: ${inputs.length} inputs, ${outLines.length} outputs`);
  return inputs.map((text, i) => {
    const o = (outLines[i] ?? "").trim();
    return { text, ids: o === "" ? [] : o.split(" ").map((x) => Number.parseInt(x, 10)) };
  });
}
