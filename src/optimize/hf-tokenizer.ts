/**
 * The GGUF tokenizer metadata of a Hugging Face folder (tokenizer.json converted by
 * src/tokenizer/to-gguf.ts), checked: the GGUF tokenizer must turn a probe text into exactly the
 * same ids as tokenizer.json does. For byte-level vocabularies the pre-tokenizer name is the
 * first candidate that passes the check.
 */
import { UnsupportedError } from "../errors.js";
import { GgufValueType, Metadata } from "../formats/metadata.js";
import type { ModelFile } from "../formats/weights.js";
import { type Tokenizer, ggufTokenizerFromJson, tokenizerFromJson, tokenizerFromMetadata } from "../tokenizer/index.js";

/**
 * Probe texts: whitespace runs, digits, contractions, punctuation, code, several scripts and
 * emoji (the kinds of text on which pre-tokenizers differ).
 */
export const PROBE_TEXTS: readonly string[] = [
  "Once upon a time, there was a little girl named Lily. She loved to play outside!",
  "\n \n\n \n\n\n \t \t\t \t\n  \n   \n    \n     \n",
  "I've been 'told he's there, 'RE you sure? 'M not sure I'll make it, 'D you like tea? We'Ve a'lL",
  "3 33 333 3333 33333 333333 3.14159 1,000,000 -42 0x1F 2024-11-26",
  "def f(x):\n    return x ** 2  # square\n\nfor i in range(10): print(f(i))",
  "------======= ''''''```````\"\"\"\"......!!!!!!?????? ~~~ $$$ %%% &&& ***",
  "нещо на Български; Ελληνικά; العربية; עברית; 我想在apple工作1314151天～; 日本語のテキスト",
  "🚀 (normal) 😶‍🌫️ (multiple emojis concatenated) ✅ 🦙🦙",
  "  leading and trailing spaces   \r\n windows\r\nlines\t\ttabs",
];

/** Metadata entries to add to the GGUF (tokenizer.ggml.*). */
export function hfTokenizerMetadata(file: ModelFile, warn: (m: string) => void): Metadata {
  const vocabSize = file.metadata.get(`${file.metadata.string("general.architecture")}.vocab_size`);
  const exp = ggufTokenizerFromJson(file.tokenizerJson, file.tokenizerConfig, typeof vocabSize === "number" ? vocabSize : undefined, `${file.path}/tokenizer.json`);
  const reference = tokenizerFromJson(file.tokenizerJson, file.tokenizerConfig, file.path);
  const candidates = exp.kind === "gpt2" ? exp.preCandidates : [undefined];
  let firstMismatch: string | undefined;
  for (const pre of candidates) {
    const md = new Metadata(file.path, new Map(exp.metadata.entries));
    if (pre !== undefined) md.set("tokenizer.ggml.pre", GgufValueType.STRING, pre);
    // The special-token keys the loader translated from the tokenizer files.
    for (const [k, e] of file.metadata.entries) if (k.startsWith("tokenizer.")) md.entries.set(k, e);
    let tok: Tokenizer;
    try {
      tok = tokenizerFromMetadata(md);
    } catch (e) {
      if (e instanceof UnsupportedError) continue;
      throw e;
    }
    const diff = firstDifference(reference, tok);
    if (diff === undefined) {
      if (pre !== undefined && pre !== candidates[0]) warn(`tokenizer: pre-tokenizer "${pre}" chosen by probe tokenization (the structural guess "${candidates[0]}" tokenized differently)`);
      return md;
    }
    firstMismatch ??= `${pre === undefined ? "" : `pre-tokenizer "${pre}": `}${diff}`;
  }
  warn(`tokenizer: the GGUF tokenizer does not tokenize exactly like tokenizer.json (${firstMismatch ?? "no candidate"}); the output may tokenize differently`);
  const md = new Metadata(file.path, new Map(exp.metadata.entries));
  if (exp.kind === "gpt2") md.set("tokenizer.ggml.pre", GgufValueType.STRING, exp.preCandidates[0] ?? "default");
  for (const [k, e] of file.metadata.entries) if (k.startsWith("tokenizer.")) md.entries.set(k, e);
  return md;
}

/** The first probe text the two tokenizers encode differently, described; undefined if none. */
export function firstDifference(a: Tokenizer, b: Tokenizer, texts: readonly string[] = PROBE_TEXTS): string | undefined {
  for (const text of texts) {
    const x = a.encode(text, { addSpecial: true });
    const y = b.encode(text, { addSpecial: true });
    let i = 0;
    while (i < x.length && i < y.length && x[i] === y[i]) i++;
    if (i < x.length || i < y.length) {
      return `${JSON.stringify(text.slice(0, 24))}...: token ${i} is ${y[i] ?? "missing"}, tokenizer.json gives ${x[i] ?? "none"}`;
    }
  }
  return undefined;
}
