/**
 * tokenizer.json (+ tokenizer_config.json) -> GGUF `tokenizer.ggml.*` metadata, for writing a
 * Hugging Face model as GGUF. Two vocabulary kinds, as llama.cpp's convert_hf_to_gguf.py:
 *
 * - "llama" (SentencePiece-style BPE with byte fallback, LlamaHfVocab): tokens by id, byte tokens
 *   `<0xXX>` typed BYTE, special added tokens CONTROL. NOTE: the converter writes the score
 *   -1000 for every token, which makes llama.cpp's SentencePiece merge order arbitrary; we derive
 *   each token's score from the merges instead (-(rank of the first merge that produces it)), so
 *   llama.cpp merges in tokenizer.json's order, and the unknown token is typed UNKNOWN.
 * - "gpt2" (byte-level BPE, `_set_vocab_gpt2`): tokens by id padded to the model's vocabulary
 *   size with `[PAD<i>]` (UNUSED), added tokens CONTROL when special (or when they look special,
 *   e.g. `<|...|>`) else USER_DEFINED, the merges, and `tokenizer.ggml.pre` from the
 *   pre-tokenizer's structure (the converter hashes a probe tokenization instead; the caller
 *   checks the result tokenizes like tokenizer.json and can try other candidates, see
 *   `preCandidates`).
 *
 * Special token ids and add_bos/add_eos are not written here: the Hugging Face loader already
 * translates them (src/formats/hf/special-tokens.ts).
 */
import { ModelFormatError, UnsupportedError } from "../errors.js";
import { GgufValueType, Metadata } from "../formats/metadata.js";
import { isObject, type JsonObject } from "./json-read.js";

/** GGUF token types (llama.h `llama_token_type`). */
const NORMAL = 1;
const UNKNOWN = 2;
const CONTROL = 3;
const USER_DEFINED = 4;
const UNUSED = 5;
const BYTE = 6;

export interface GgufTokenizerExport {
  readonly kind: "llama" | "gpt2";
  /** The tokenizer.ggml.* entries (without the pre-tokenizer for "gpt2": see preCandidates). */
  readonly metadata: Metadata;
  /** For "gpt2": `tokenizer.ggml.pre` values to try, best guess first. */
  readonly preCandidates: readonly string[];
}

interface Added {
  readonly id: number;
  readonly content: string;
  readonly special: boolean;
  readonly normalized: boolean;
}

/**
 * The GGUF tokenizer metadata of a tokenizer.json. `vocabSize`: the model's vocabulary size
 * (config.json vocab_size), which the gpt2 kind pads to.
 */
export function ggufTokenizerFromJson(tokenizerJson: unknown, tokenizerConfig: unknown, vocabSize: number | undefined, source = "tokenizer.json"): GgufTokenizerExport {
  const fail = (field: string, expected: string, got: string): never => {
    throw new ModelFormatError("cannot convert the tokenizer to GGUF", { file: source, field, expected, got });
  };
  if (!isObject(tokenizerJson)) return fail("(root)", "a JSON object", typeof tokenizerJson);
  const model = tokenizerJson["model"];
  if (!isObject(model) || model["type"] !== "BPE") {
    throw new UnsupportedError("only BPE tokenizer.json files can be written as GGUF", {
      expected: "model.type BPE",
      got: isObject(model) ? String(model["type"]) : "no model",
    });
  }
  const vocab = model["vocab"];
  if (!isObject(vocab)) return fail("model.vocab", "an object", typeof vocab);
  const byId = new Map<number, string>();
  for (const [text, id] of Object.entries(vocab)) {
    if (typeof id !== "number" || !Number.isSafeInteger(id) || id < 0) fail(`model.vocab[${JSON.stringify(text)}]`, "a token id", String(id));
    byId.set(id as number, text);
  }
  const added: Added[] = [];
  const addedList = tokenizerJson["added_tokens"];
  if (Array.isArray(addedList)) {
    for (const a of addedList) {
      if (!isObject(a) || typeof a["id"] !== "number" || typeof a["content"] !== "string") continue;
      added.push({ id: a["id"], content: a["content"], special: a["special"] === true, normalized: a["normalized"] === true });
    }
  }
  const merges = mergeList(model["merges"], fail);
  const byteFallback = model["byte_fallback"] === true;
  const decoder = tokenizerJson["decoder"];
  const spmLike = byteFallback && isObject(decoder) && decoder["type"] === "Sequence";
  return spmLike
    ? llamaKind(tokenizerJson, byId, added, merges, tokenizerConfig)
    : gpt2Kind(tokenizerJson, byId, added, merges, tokenizerConfig, vocabSize);
}

/** model.merges as "a b" strings (pairs join with a space; a space inside a part becomes U+0120 as gguf-py does). */
function mergeList(v: unknown, fail: (f: string, e: string, g: string) => never): string[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) return fail("model.merges", "an array", typeof v);
  return v.map((m, i): string => {
    if (typeof m === "string") return m;
    if (Array.isArray(m) && m.length === 2 && typeof m[0] === "string" && typeof m[1] === "string") {
      return `${m[0].replaceAll(" ", "\u0120")} ${m[1].replaceAll(" ", "\u0120")}`;
    }
    return fail(`model.merges[${i}]`, '"a b" or ["a", "b"]', JSON.stringify(m));
  });
}

function llamaKind(
  root: JsonObject,
  byId: ReadonlyMap<number, string>,
  added: readonly Added[],
  merges: readonly string[],
  tokenizerConfig: unknown,
): GgufTokenizerExport {
  const baseSize = byId.size === 0 ? 0 : Math.max(...byId.keys()) + 1;
  const model = root["model"] as JsonObject;
  const unk = typeof model["unk_token"] === "string" ? model["unk_token"] : undefined;
  const specialIds = new Set(added.filter((a) => a.special).map((a) => a.id));
  for (const id of configSpecialIds(tokenizerConfig, added)) specialIds.add(id);
  // A token's score: minus the rank of the first merge producing it, so the SentencePiece-style
  // merge loop (highest score first) follows tokenizer.json's merge order.
  const rank = new Map<string, number>();
  merges.forEach((m, r) => {
    const sp = m.indexOf(" ");
    const t = m.slice(0, sp) + m.slice(sp + 1);
    if (!rank.has(t)) rank.set(t, r);
  });
  const tokens: string[] = [];
  const scores: number[] = [];
  const types: number[] = [];
  for (let id = 0; id < baseSize; id++) {
    const t = byId.get(id);
    if (t === undefined) {
      tokens.push(`[PAD${id}]`);
      scores.push(-1e9);
      types.push(UNUSED);
      continue;
    }
    tokens.push(t);
    const r = rank.get(t);
    // NOTE: a multi-character token no merge produces must not win SentencePiece's bigram search.
    scores.push(r !== undefined ? -r : [...t].length > 1 ? -1e9 : 0);
    types.push(/^<0x[0-9A-Fa-f]{2}>$/.test(t) ? BYTE : t === unk ? UNKNOWN : specialIds.has(id) ? CONTROL : NORMAL);
  }
  for (const a of [...added].sort((x, y) => x.id - y.id)) {
    if (a.id < baseSize) continue;
    while (tokens.length < a.id) {
      tokens.push(`[PAD${tokens.length}]`);
      scores.push(-1e9);
      types.push(UNUSED);
    }
    tokens.push(a.content);
    scores.push(-1000);
    types.push(a.special || specialIds.has(a.id) ? CONTROL : USER_DEFINED);
  }
  const md = new Metadata("tokenizer.json");
  md.set("tokenizer.ggml.model", GgufValueType.STRING, "llama");
  md.set("tokenizer.ggml.pre", GgufValueType.STRING, "default");
  md.set("tokenizer.ggml.tokens", GgufValueType.ARRAY, tokens, GgufValueType.STRING);
  md.set("tokenizer.ggml.scores", GgufValueType.ARRAY, scores.map(Math.fround), GgufValueType.FLOAT32);
  md.set("tokenizer.ggml.token_type", GgufValueType.ARRAY, types, GgufValueType.INT32);
  md.set("tokenizer.ggml.add_space_prefix", GgufValueType.BOOL, addsSpacePrefix(root));
  return { kind: "llama", metadata: md, preCandidates: [] };
}

/** Whether the normalizer/pre-tokenizer prepends "▁" (SentencePiece's add_dummy_prefix). */
function addsSpacePrefix(root: JsonObject): boolean {
  const has = (node: unknown): boolean => {
    if (!isObject(node)) return false;
    if (node["type"] === "Prepend" && node["prepend"] === "\u2581") return true;
    if (node["type"] === "Metaspace") {
      const scheme = node["prepend_scheme"];
      return scheme === undefined ? node["add_prefix_space"] !== false : scheme !== "never";
    }
    for (const k of ["normalizers", "pretokenizers"]) {
      const list = node[k];
      if (Array.isArray(list) && list.some(has)) return true;
    }
    return false;
  };
  return has(root["normalizer"]) || has(root["pre_tokenizer"]);
}

/** Ids of tokenizer_config.json's bos/eos/unk/pad/additional special tokens (transformers' all_special_ids). */
function configSpecialIds(config: unknown, added: readonly Added[]): number[] {
  if (!isObject(config)) return [];
  const contents: string[] = [];
  for (const k of ["bos_token", "eos_token", "unk_token", "pad_token", "sep_token", "cls_token", "mask_token"]) {
    const v = config[k];
    if (typeof v === "string") contents.push(v);
    else if (isObject(v) && typeof v["content"] === "string") contents.push(v["content"]);
  }
  const extra = config["additional_special_tokens"];
  if (Array.isArray(extra)) for (const v of extra) if (typeof v === "string") contents.push(v);
  return contents.flatMap((c) => added.filter((a) => a.content === c).map((a) => a.id));
}

function looksSpecial(t: string): boolean {
  return (
    t === "<pad>" || t === "<mask>" || t === "<2mass>" || t === "[@BOS@]" ||
    (t.startsWith("<|") && t.endsWith("|>")) ||
    (t.startsWith("<\uff5c") && t.endsWith("\uff5c>")) ||
    (t.startsWith("<unused") && t.endsWith(">"))
  );
}

function gpt2Kind(
  root: JsonObject,
  byId: ReadonlyMap<number, string>,
  added: readonly Added[],
  merges: readonly string[],
  tokenizerConfig: unknown,
  vocabSize: number | undefined,
): GgufTokenizerExport {
  const all = new Map(byId);
  for (const a of added) all.set(a.id, a.content);
  const maxId = all.size === 0 ? -1 : Math.max(...all.keys());
  const n = Math.max(vocabSize ?? 0, maxId + 1);
  const addedById = new Map(added.map((a) => [a.id, a]));
  const tokens: string[] = [];
  const types: number[] = [];
  for (let id = 0; id < n; id++) {
    const t = all.get(id);
    if (t === undefined) {
      tokens.push(`[PAD${id}]`);
      types.push(UNUSED);
      continue;
    }
    const a = addedById.get(id);
    if (a === undefined) {
      tokens.push(t);
      types.push(NORMAL);
    } else if (a.special || looksSpecial(t)) {
      tokens.push(t);
      types.push(CONTROL);
    } else {
      tokens.push(t.replaceAll("\u2581", " "));
      types.push(USER_DEFINED);
    }
  }
  const md = new Metadata("tokenizer.json");
  md.set("tokenizer.ggml.model", GgufValueType.STRING, "gpt2");
  md.set("tokenizer.ggml.tokens", GgufValueType.ARRAY, tokens, GgufValueType.STRING);
  md.set("tokenizer.ggml.token_type", GgufValueType.ARRAY, types, GgufValueType.INT32);
  md.set("tokenizer.ggml.merges", GgufValueType.ARRAY, merges, GgufValueType.STRING);
  return { kind: "gpt2", metadata: md, preCandidates: preGuess(root, tokenizerConfig) };
}

// The split regexes of common byte-level tokenizers, as tokenizer.json spells them.
const LLAMA3_SPLIT = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const QWEN2_SPLIT = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

/** Every `tokenizer.ggml.pre` slimlm runs, for the fallback search. */
const ALL_PRE = [
  "gpt-2", "llama-bpe", "qwen2", "smollm", "starcoder", "default", "deepseek-llm", "deepseek-coder", "deepseek-v3",
  "falcon", "mpt", "command-r", "stablelm2", "dbrx", "poro-chat", "bloom", "chatglm-bpe", "viking", "tekken",
  "gpt-4o", "qwen35", "seed-coder", "bailingmoe", "exaone-moe", "minicpm5", "jais-2", "youtu", "chameleon",
];

/** `tokenizer.ggml.pre` values to try for a byte-level tokenizer.json, best guess first. */
function preGuess(root: JsonObject, tokenizerConfig: unknown): string[] {
  const guesses: string[] = [];
  const pre = root["pre_tokenizer"];
  const steps = isObject(pre) ? (pre["type"] === "Sequence" && Array.isArray(pre["pretokenizers"]) ? pre["pretokenizers"] : [pre]) : [];
  const types = steps.map((s) => (isObject(s) ? String(s["type"]) : ""));
  const split = steps.find((s) => isObject(s) && s["type"] === "Split");
  const regex = isObject(split) && isObject(split["pattern"]) ? split["pattern"]["Regex"] : undefined;
  const clean = isObject(tokenizerConfig) ? tokenizerConfig["clean_up_tokenization_spaces"] : undefined;
  if (regex === LLAMA3_SPLIT) guesses.push("llama-bpe");
  else if (regex === QWEN2_SPLIT) guesses.push(clean === true ? "stablelm2" : "qwen2");
  else if (types.length === 2 && types[0] === "Digits" && types[1] === "ByteLevel") guesses.push(clean === false ? "smollm" : "starcoder");
  else if (types.length === 1 && types[0] === "ByteLevel") guesses.push("gpt-2");
  for (const p of ALL_PRE) if (!guesses.includes(p)) guesses.push(p);
  return guesses;
}
