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

/** Edge cases every tokenizer test runs (whitespace, digits, contractions, scripts, invalid UTF-16...). */
export const EDGE_CASES: readonly string[] = [
  "",
  " ",
  "  ",
  "   ",
  "\t",
  "\n",
  "\n\n",
  " \n ",
  "a  b",
  "a   b ",
  "  leading",
  "trailing  ",
  "tab\there\t\tmany\t",
  "x\r\ny\r\n\r\nz",
  "new\n\n\nlines\n",
  "    four\n\tTab",
  "123",
  "1234567",
  "12 345 6789 ١٢٣",
  "3.14159",
  "don't you'll we've I'm she's they're it'd",
  "DON'T YOU'LL We'Ve I'M",
  "x 's y 're z 've",
  " ' ",
  "a ' b",
  "hello . world , yes ? no !",
  "  ,  ",
  "emoji 🦙🚀😶‍🌫️ ✅",
  "中文测试，你好世界",
  "日本語のテキスト",
  "한국어 텍스트",
  "combining e\u0301 a\u0308 n\u0303 a\u0300\u0301\u0302",
  "Ω≈ç√∫˜µ≤≥÷",
  "\u00a0nbsp\u2003emsp\u3000ideo",
  "\u0085next\u2028line",
  "\ufeffbom",
  "\u200b zero width",
  "ﬁ ligature",
  "Ｆｕｌｌｗｉｄｔｈ",
  "𝔾𝕠𝕠𝕕 𝕞𝕠𝕣𝕟𝕚𝕟𝕘",
  "مرحبا بالعالم",
  "Привет мир",
  "!!!???... $+<=>^~|`",
  "CamelCaseWord HTTPServer",
  "\u2581 meta ▁▁",
  "0x41 <0x41>",
  // invalid UTF-16: lone surrogates
  "\ud800abc",
  "abc\udc00",
  "\udc00\ud800",
  "a\ud83dz",
  // special-token text in user content
  "<s>hello</s>",
  "<|endoftext|>",
  "<unk>",
  " <s> x",
  "<|im_start|>user\nhi<|im_end|>",
  "<|end|>\n<|user|>  spaced  <|assistant|>",
  "text<|endoftext|>more<|endoftext|>",
];

/** Lines of the shared corpora: `n` TinyStories lines and `n` Shakespeare lines. */
export function corpusLines(n: number): string[] {
  const stories = readFileSync(join(DATA, "tinystories_valid_head.txt"), "utf8")
    .split("\n")
    .filter((l) => l.length > 0)
    .slice(0, n);
  const shakes = readFileSync(join(DATA, "tinyshakespeare.txt"), "utf8").split("\n").slice(0, n);
  return [...stories, ...shakes];
}

/** The GPT-2 GGUF vocabulary rewritten as a byte-level BPE tokenizer.json. */
export function gpt2TokenizerJson(m: Metadata): unknown {
  const tokens = m.stringArray("tokenizer.ggml.tokens");
  const vocab: Record<string, number> = {};
  tokens.forEach((t, i) => {
    vocab[t] = i;
  });
  return {
    version: "1.0",
    added_tokens: [{ id: 50256, content: "<|endoftext|>", single_word: false, lstrip: false, rstrip: false, normalized: true, special: true }],
    normalizer: null,
    pre_tokenizer: { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: true },
    post_processor: { type: "ByteLevel", add_prefix_space: true, trim_offsets: false, use_regex: true },
    decoder: { type: "ByteLevel", add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: "BPE",
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: "",
      end_of_word_suffix: "",
      fuse_unk: false,
      byte_fallback: false,
      vocab,
      // Half of the merges as "a b" strings, half as pairs: both forms must load.
      merges: m.stringArray("tokenizer.ggml.merges").map((s, i) => (i % 2 === 0 ? s : s.split(" "))),
    },
  };
}
