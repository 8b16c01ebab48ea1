/**
 * llama.cpp's BPE pre-tokenizer selection: `tokenizer.ggml.pre` -> the regex list and the
 * vocabulary flags llama.cpp sets with it (llama-vocab.cpp, `llama_vocab::impl::load` and the
 * `llm_tokenizer_bpe` constructor).
 *
 * NOTE: the regex strings must stay byte-identical to llama.cpp's: three of them select its
 * hand-written splitters (see pretokenize.ts) by string comparison.
 */

/** Regex lists by llama.cpp pre-tokenizer type. */
const REGEXES = {
  // LLAMA3
  LLAMA3: [
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
  ],
  // JAIS2
  JAIS2: [
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s{512}(?!\\S)|\\s{256}(?!\\S)|\\s{128}(?!\\S)|\\s{64}(?!\\S)|\\s{32}(?!\\S)|\\s{16}(?!\\S)|\\s{8}(?!\\S)|\\s{4}(?!\\S)|\\s{1,2}(?!\\S)|\\s{1}",
  ],
  // DBRX, SMAUG
  DBRX: [
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
  ],
  // DEEPSEEK_LLM
  DEEPSEEK_LLM: [
    "[\r\n]",
    "\\s?[A-Za-zµÀ-ÖØ-öø-ƺƼ-ƿǄ-ʓʕ-ʯͰ-ͳͶͷͻ-ͽͿΆΈ-ΊΌΎ-ΡΣ-ϵϷ-ҁҊ-ԯԱ-ՖႠ-ჅᎠ-Ᏽᏸ-ᏽᲐ-ᲺᲽ-Ჿᴀ-ᴫᵫ-ᵷᵹ-ᶚḀ-ἕἘ-Ἕἠ-ὅὈ-Ὅὐ-ὗὙὛὝὟ-ώᾀ-ᾴᾶ-ᾼιῂ-ῄῆ-ῌῐ-ΐῖ-Ίῠ-Ῥῲ-ῴῶ-ῼℂℇℊ-ℓℕℙ-ℝℤΩℨK-ℭℯ-ℴℹℼ-ℿⅅ-ⅉⅎↃↄⰀ-ⱻⱾ-ⳤⳫ-ⳮⳲⳳꙀ-ꙭꚀ-ꚛꜢ-ꝯꝱ-ꞇꞋ-ꞎꭰ-ꮿﬀ-ﬆﬓ-ﬗＡ-Ｚａ-ｚ𐐀-𐑏𐒰-𐓓𐓘-𐓻𐲀-𐲲𐳀-𐳲𑢠-𑣟𞤀-𞥃]+",
    "\\s?[!-/:-~！-／：-～‘-‟　-。]+",
    "\\s+$",
    "[一-龥ࠀ-一가-퟿]+",
    "\\p{N}+",
  ],
  // DEEPSEEK3_LLM, HUNYUAN_DENSE, JOYAI_LLM
  DEEPSEEK3_LLM: [
    "\\p{N}{1,3}",
    "[一-龥぀-ゟ゠-ヿ]+",
    "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+",
  ],
  // YOUTU
  YOUTU: [
    "[가-힣ㄱ-ㆎ]+|[！…“”‘’—：；，、-〿︰-﹏]+|[ㄅ-ㄯ]+|[一-龥぀-ゟ゠-ヿ]+",
    "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
  ],
  // DEEPSEEK_CODER
  DEEPSEEK_CODER: [
    "[\r\n]",
    "\\s?\\p{L}+",
    "\\s?\\p{P}+",
    "[一-龥ࠀ-一가-퟿]+",
    "\\p{N}",
  ],
  // FALCON
  FALCON: [
    "[\\p{P}\\$\\+<=>\\^~\\|`]+",
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)",
    "[0-9][0-9][0-9]",
  ],
  // STARCODER, REFACT, COMMAND_R, SMOLLM, CODESHELL, EXAONE, MINERVA, MELLUM2
  STARCODER: [
    "\\p{N}",
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)",
  ],
  // GPT2, MPT, OLMO, JAIS, TRILLION, GRANITE_DOCLING
  GPT2: [
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)",
  ],
  // QWEN35
  QWEN35: [
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?[\\p{L}\\p{M}]+|\\p{N}| ?[^\\s\\p{L}\\p{M}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
  ],
  // PORO, BLOOM, GPT3_FINNISH
  PORO: [
    " ?[^(\\s|.,!?…。，、।۔،)]+",
  ],
  // CHATGLM4
  CHATGLM4: [
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
  ],
  // VIKING
  VIKING: [
    " ?[^(\\s|.,!?…。，、।۔،)]+",
    "\\p{N}",
  ],
  // TEKKEN
  TEKKEN: [
    "[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))*((?=[\\p{L}])([^A-Z]))+|[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))+((?=[\\p{L}])([^A-Z]))*|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
  ],
  // CHAMELEON
  CHAMELEON: [
    "<sentinel:[0-9]+>",
    "(IMGIMG)((A|B|C|D|E|F|G|H|I){1,4})Z",
    "([\\t\\n]|    |  )",
    "\\p{N}",
    "[\\p{P}!-/:-@\\[-`{-~]",
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)",
  ],
  // GPT4O, MINIMAX_M2
  GPT4O: [
    "[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))*((?=[\\p{L}])([^A-Z]))+(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))+((?=[\\p{L}])([^A-Z]))*(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
  ],
  // GRANITE_EMB_MULTI
  GRANITE_EMB_MULTI: [
    "[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}\\p{M}])([^a-z]))*((?=[\\p{L}\\p{M}])([^A-Z]))+(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}\\p{M}])([^a-z]))+((?=[\\p{L}\\p{M}])([^A-Z]))*(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
  ],
  // BAILINGMOE
  BAILINGMOE: [
    "'(?:[sSdDmMtT]|[lL][lL]|[vV][eE]|[rR][eE])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]|\\s+(?!\\S)|\\s+",
  ],
  // SEED_CODER
  SEED_CODER: [
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1}| ?[^\\s\\p{L}\\p{N}\\r\\n]+|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
  ],
  // STABLELM2, QWEN2, HUNYUAN, SOLAR_OPEN, GROK_2 (the same regex)
  QWEN2: [
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
  ],
  // LAGUNA
  LAGUNA: [
    "[^\\n]+|[\\n]+",
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
  ],
  // EXAONE_MOE
  EXAONE_MOE: [
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?(?:\\p{L}\\p{M}*(?: \\p{L}\\p{M}*)*)+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]?|\\s*[\\r\\n]|\\s+(?!\\S)|\\s+",
  ],
  // MINICPM5
  MINICPM5: [
    "\\p{N}{1,3}",
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}+| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
  ],
  // DEFAULT
  DEFAULT: [
    "[\\p{P}\\$\\+<=>\\^~\\|]+",
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)",
    "\\p{N}+",
    "[0-9][0-9][0-9]",
  ],
} as const satisfies Record<string, readonly string[]>;

export type PreType = keyof typeof REGEXES;

export interface PreSpec {
  readonly type: PreType;
  readonly regexes: readonly string[];
  /** clean_up_tokenization_spaces in detokenize (llama.cpp default true for BPE). */
  readonly cleanSpaces: boolean;
  readonly ignoreMerges: boolean;
  /** Overrides the BPE default add_bos = false. */
  readonly addBos: boolean;
  /** The default BOS id is dropped (chatglm). */
  readonly noBos: boolean;
}

type Flags = Partial<Pick<PreSpec, "cleanSpaces" | "ignoreMerges" | "addBos" | "noBos">>;

const NAMES: ReadonlyArray<readonly [readonly string[], PreType, Flags]> = [
  [["default"], "DEFAULT", {}],
  [["minicpm5"], "MINICPM5", { ignoreMerges: true }],
  [
    ["llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral", "midm-2.0", "lfm2", "jina-v5-nano"],
    "LLAMA3",
    { ignoreMerges: true, addBos: true },
  ],
  [["deepseek-llm"], "DEEPSEEK_LLM", { cleanSpaces: false }],
  [["deepseek-coder"], "DEEPSEEK_CODER", { cleanSpaces: false }],
  [["deepseek-v3", "hunyuan-dense", "joyai-llm"], "DEEPSEEK3_LLM", { cleanSpaces: false }],
  [["youtu"], "YOUTU", { cleanSpaces: false, ignoreMerges: true }],
  [["falcon"], "FALCON", {}],
  [["mpt", "olmo", "jais", "exaone4"], "GPT2", {}],
  [["starcoder", "refact", "codeshell", "exaone", "minerva-7b", "mellum2"], "STARCODER", {}],
  [
    ["gpt-2", "phi-2", "jina-es", "jina-de", "gigachat", "jina-v2-es", "jina-v2-de", "a.x-4.0", "mellum", "modern-bert"],
    "GPT2",
    {},
  ],
  [["jina-v1-en", "jina-v2-code", "roberta-bpe"], "GPT2", {}],
  [["jais-2"], "JAIS2", {}],
  [["command-r", "smollm"], "STARCODER", { cleanSpaces: false }],
  [
    ["qwen2", "deepseek-r1-qwen", "kormo", "f2llmv2", "hunyuan", "grok-2", "solar-open"],
    "QWEN2",
    { cleanSpaces: false },
  ],
  [["qwen35"], "QWEN35", { cleanSpaces: false }],
  [["stablelm2", "megrez"], "QWEN2", {}],
  [["dbrx", "smaug-bpe"], "DBRX", {}],
  [["poro-chat"], "PORO", { cleanSpaces: false }],
  [["bloom", "gpt3-finnish"], "PORO", {}],
  [["glm4", "chatglm-bpe"], "CHATGLM4", { noBos: true }],
  [["viking"], "VIKING", { cleanSpaces: false }],
  [["tekken"], "TEKKEN", { cleanSpaces: false, ignoreMerges: true, addBos: true }],
  [["chameleon"], "CHAMELEON", { cleanSpaces: false, addBos: true }],
  [["exaone-moe"], "EXAONE_MOE", {}],
  [["gpt-4o", "llama4", "kanana2", "talkie", "minimax-m2"], "GPT4O", { cleanSpaces: false }],
  [["granite-embed-multi-97m"], "GRANITE_EMB_MULTI", { cleanSpaces: false, ignoreMerges: true }],
  [["trillion", "granite-docling"], "GPT2", { cleanSpaces: false }],
  [["bailingmoe", "bailingmoe2", "llada-moe"], "BAILINGMOE", { cleanSpaces: false }],
  [["seed-coder"], "SEED_CODER", { cleanSpaces: false }],
  [["laguna"], "LAGUNA", { cleanSpaces: false }],
];

/**
 * Pre-tokenizer names llama.cpp knows but slimlm does not run (custom splitters or tokenizers
 * that are not byte-level BPE).
 */
export const KNOWN_UNSUPPORTED_PRE: ReadonlySet<string> = new Set([
  "gemma4",
  "granite-embed-multi-311m",
  "sarvam-moe",
  "whitespace",
  "tiny_aya",
  "cohere2moe",
  "superbpe",
  "kimi-k2",
  "afmoe",
]);

const BY_NAME = new Map<string, PreSpec>();
for (const [names, type, flags] of NAMES) {
  for (const name of names) {
    BY_NAME.set(name, {
      type,
      regexes: REGEXES[type],
      cleanSpaces: flags.cleanSpaces ?? true,
      ignoreMerges: flags.ignoreMerges ?? false,
      addBos: flags.addBos ?? false,
      noBos: flags.noBos ?? false,
    });
  }
}

/** The spec for a `tokenizer.ggml.pre` value; a missing value means "default". */
export function preSpec(name: string | undefined): PreSpec | undefined {
  return BY_NAME.get(name === undefined || name === "" ? "default" : name);
}
