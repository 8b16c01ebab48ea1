import * as fs from "node:fs";
import * as nodePath from "node:path";
import { FileError, ModelFormatError, UnsupportedError } from "../../errors.js";
import { GgmlType } from "../../tensor/ggml-type.js";
import { FdFile, fileError, type RandomAccessFile } from "../file.js";
import { readJsonFile } from "../json-file.js";
import { isPlainObject } from "../json.js";
import { GgufValueType } from "../metadata.js";
import { parseSafetensors, safetensorsTensorInfo, type SafetensorsHeader } from "../safetensors.js";
import { SlotWeightSource, fileSpanSlot, memorySlot, type TensorSlot } from "../weight-source.js";
import type { ModelFile } from "../weights.js";
import { translateHfConfig, type HfArchitecture } from "./config.js";
import { ggufTensorName } from "./names.js";
import { permutedSlot } from "./permute.js";

const MAX_CONFIG_BYTES = 16 << 20;
const MAX_TOKENIZER_BYTES = 256 << 20;
const SINGLE = "model.safetensors";
const INDEX = "model.safetensors.index.json";

export interface HfModelFile extends ModelFile {
  readonly kind: "hf";
  readonly arch: HfArchitecture;
  /** config.json and generation_config.json, parsed. */
  readonly config: Readonly<Record<string, unknown>>;
  readonly generationConfig?: unknown;
  /** Shard file names in load order. */
  readonly shards: readonly string[];
}

/**
 * Opens a Hugging Face model folder (config.json, model.safetensors or a sharded index,
 * tokenizer.json, optional tokenizer_config.json/generation_config.json) as a ModelFile with GGUF
 * metadata keys and GGUF tensor names. Llama-family Q/K are presented in GGUF row order.
 */
export function openHfFolder(dir: string): HfModelFile {
  let st: fs.Stats;
  try {
    st = fs.statSync(dir);
  } catch (e) {
    throw fileError(dir, "cannot open model folder", e);
  }
  if (!st.isDirectory()) throw new FileError(`"${dir}" is not a folder`, { hint: "pass the Hugging Face model folder" });
  const p = (name: string): string => nodePath.join(dir, name);
  if (!fs.existsSync(p("config.json"))) {
    throw new FileError(`"${dir}" has no config.json`, { hint: "pass a Hugging Face model folder (config.json, *.safetensors, tokenizer.json)" });
  }
  const config = readJsonFile(p("config.json"), { maxBytes: MAX_CONFIG_BYTES });
  if (!fs.existsSync(p("tokenizer.json"))) {
    throw new FileError(`"${dir}" has no tokenizer.json`, { hint: "slimlm needs the fast-tokenizer file tokenizer.json (tokenizer.model alone is not supported)" });
  }
  const tokenizerJson = readJsonFile(p("tokenizer.json"), { maxBytes: MAX_TOKENIZER_BYTES });
  const tokenizerConfig = readJsonFile(p("tokenizer_config.json"), { maxBytes: MAX_TOKENIZER_BYTES, optional: true });
  const generationConfig = readJsonFile(p("generation_config.json"), { maxBytes: MAX_CONFIG_BYTES, optional: true });
  const chatTemplateFile = readChatTemplateFile(dir);
  const { metadata, arch } = translateHfConfig({
    config,
    configPath: p("config.json"),
    dirName: nodePath.basename(nodePath.resolve(dir)),
    tokenizerJson,
    tokenizerConfig,
    generationConfig,
    chatTemplateFile,
  });

  const shardNames = listShards(dir);
  const files: RandomAccessFile[] = [];
  const closeAll = (): void => {
    for (const f of files) f.close();
  };
  try {
    const headers: SafetensorsHeader[] = [];
    for (const s of shardNames.shards) {
      const file = openShard(dir, s, shardNames.index);
      files.push(file);
      headers.push(parseSafetensors(file));
    }
    if (shardNames.weightMap !== undefined) checkWeightMap(dir, shardNames.weightMap, shardNames.shards, headers);
    const slots = buildSlots(headers, files, arch);
    const fileType = fileTypeOf(slots);
    metadata.set("general.file_type", GgufValueType.UINT32, fileType);
    const fileSize = files.reduce((n, f) => n + f.size, 0);
    const weights = new SlotWeightSource(dir, slots, closeAll);
    const out: HfModelFile = {
      path: dir,
      kind: "hf",
      fileSize,
      metadata,
      weights,
      tokenizerJson,
      config: config as Record<string, unknown>,
      arch,
      shards: shardNames.shards,
      ...(tokenizerConfig === undefined ? {} : { tokenizerConfig }),
      ...(generationConfig === undefined ? {} : { generationConfig }),
    };
    return out;
  } catch (e) {
    closeAll();
    throw e;
  }
}

/** chat_template.jinja (newer transformers) or chat_template.json, as the converter reads them. */
function readChatTemplateFile(dir: string): unknown {
  const jinja = nodePath.join(dir, "chat_template.jinja");
  if (fs.existsSync(jinja)) {
    const f = FdFile.open(jinja);
    try {
      if (f.size > MAX_CONFIG_BYTES) {
        throw new ModelFormatError("chat template too large", { file: jinja, expected: `at most ${MAX_CONFIG_BYTES} bytes`, got: `${f.size} bytes` });
      }
      const b = new Uint8Array(f.size);
      f.read(0, b);
      return Buffer.from(b.buffer, b.byteOffset, b.length).toString("utf8");
    } finally {
      f.close();
    }
  }
  const json = readJsonFile(nodePath.join(dir, "chat_template.json"), { maxBytes: MAX_CONFIG_BYTES, optional: true });
  return isPlainObject(json) ? json.chat_template : undefined;
}

interface ShardList {
  readonly shards: readonly string[];
  readonly index: string | undefined;
  readonly weightMap: ReadonlyMap<string, string> | undefined;
}

function listShards(dir: string): ShardList {
  if (fs.existsSync(nodePath.join(dir, SINGLE))) return { shards: [SINGLE], index: undefined, weightMap: undefined };
  const indexPath = nodePath.join(dir, INDEX);
  if (!fs.existsSync(indexPath)) {
    const bin = fs.existsSync(nodePath.join(dir, "pytorch_model.bin")) || fs.existsSync(nodePath.join(dir, "pytorch_model.bin.index.json"));
    if (bin) {
      throw new UnsupportedError(`"${dir}": PyTorch .bin weights are not supported`, {
        expected: `${SINGLE} or ${INDEX}`,
        got: "pytorch_model.bin",
        hint: "convert the checkpoint to safetensors",
      });
    }
    throw new FileError(`"${dir}" has no ${SINGLE} or ${INDEX}`, { hint: "download the model's safetensors weights" });
  }
  const index = readJsonFile(indexPath, { maxBytes: MAX_CONFIG_BYTES, strict: true });
  const wm = isPlainObject(index) ? index.weight_map : undefined;
  if (!isPlainObject(wm)) throw new ModelFormatError("missing weight_map", { file: indexPath, field: "weight_map", expected: "an object", got: "none" });
  const weightMap = new Map<string, string>();
  for (const [tensor, shard] of Object.entries(wm)) {
    if (typeof shard !== "string" || shard.length === 0 || shard.includes("/") || shard.includes("\\") || shard === "." || shard === "..") {
      throw new ModelFormatError("bad shard file name", { file: indexPath, field: tensor, expected: "a file name in the model folder", got: JSON.stringify(shard) });
    }
    weightMap.set(tensor, shard);
  }
  const shards = [...new Set(weightMap.values())].sort();
  if (shards.length === 0) throw new ModelFormatError("empty weight_map", { file: indexPath, field: "weight_map", expected: "at least one tensor", got: "{}" });
  return { shards, index: indexPath, weightMap };
}

function openShard(dir: string, name: string, index: string | undefined): FdFile {
  const path = nodePath.join(dir, name);
  if (!fs.existsSync(path)) {
    throw new FileError(`missing weight shard "${path}"${index === undefined ? "" : ` listed in ${nodePath.basename(index)}`}`, {
      hint: "download every shard of the model",
    });
  }
  return FdFile.open(path);
}

function checkWeightMap(dir: string, weightMap: ReadonlyMap<string, string>, shards: readonly string[], headers: readonly SafetensorsHeader[]): void {
  const where = new Map<string, string>();
  headers.forEach((h, i) => {
    for (const t of h.tensors) where.set(t.name, shards[i] as string);
  });
  for (const [tensor, shard] of weightMap) {
    if (where.get(tensor) !== shard) {
      throw new ModelFormatError("tensor listed in the index is missing from its shard", {
        file: nodePath.join(dir, INDEX),
        field: tensor,
        expected: `in ${shard}`,
        got: where.has(tensor) ? `in ${where.get(tensor)}` : "in no shard",
      });
    }
  }
}

function buildSlots(headers: readonly SafetensorsHeader[], files: readonly RandomAccessFile[], arch: HfArchitecture): TensorSlot[] {
  const slots: TensorSlot[] = [];
  const hfNameOf = new Map<string, string>();
  // NOTE: the converter emits generated tensors (rope_freqs) first.
  if (arch.ropeFreqs !== undefined) {
    const bytes = new Uint8Array(arch.ropeFreqs.buffer, arch.ropeFreqs.byteOffset, arch.ropeFreqs.byteLength);
    slots.push(memorySlot({ name: "rope_freqs.weight", type: GgmlType.F32, dims: [arch.ropeFreqs.length], nbytes: bytes.length }, bytes));
  }
  headers.forEach((h, i) => {
    const file = files[i] as RandomAccessFile;
    // safetensors' Python API lists tensors by name; the converter follows that order.
    const sorted = [...h.tensors].sort((x, y) => (x.name < y.name ? -1 : x.name > y.name ? 1 : 0));
    for (const t of sorted) {
      const name = ggufTensorName(t.name, arch.blockCount);
      if (name === null) continue;
      if (name === undefined) {
        throw new UnsupportedError(`"${h.path}": tensor ${t.name} has no GGUF equivalent for ${arch.hfArch}`, {
          expected: "Llama/Qwen2 decoder tensors",
          got: t.name,
        });
      }
      const prev = hfNameOf.get(name);
      if (prev !== undefined) {
        throw new ModelFormatError("tensor appears twice", { file: h.path, field: t.name, expected: "each tensor once over all shards", got: `also ${prev}` });
      }
      hfNameOf.set(name, t.name);
      const info = safetensorsTensorInfo(h.path, t, name);
      const isQ = /\.attn_q\.(weight|bias)$/.test(name);
      const isK = /\.attn_k\.(weight|bias)$/.test(name);
      if (arch.permuteQK && (isQ || isK)) {
        slots.push(permutedSlot(info, file, t.fileOffset, isQ ? arch.nHead : arch.nHeadKv));
      } else {
        slots.push(fileSpanSlot(info, file, t.fileOffset));
      }
    }
  });
  return slots;
}

/** general.file_type (llama_ftype) for passed-through float weights: ALL_F32, MOSTLY_F16, MOSTLY_BF16. */
function fileTypeOf(slots: readonly TensorSlot[]): number {
  const matrices = slots.filter((s) => s.info.dims.length >= 2);
  if (matrices.some((s) => s.info.type === GgmlType.BF16)) return 32;
  if (matrices.some((s) => s.info.type === GgmlType.F16)) return 1;
  return 0;
}
