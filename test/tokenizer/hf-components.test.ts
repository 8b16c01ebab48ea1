/**
 * tokenizer.json components against the behaviour documented and tested in Hugging Face
 * tokenizers, plus whole pipelines cross-checked with the llama.cpp-verified GGUF tokenizers.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { GgufValueType, type Metadata } from "../../src/formats/metadata.js";
import { compileDecoder, compilePreTokenizer, type PreToken } from "../../src/tokenizer/hf-components.js";
import { onigToJs } from "../../src/tokenizer/hf-regex.js";
import { tokenizerFromJson, tokenizerFromMetadata } from "../../src/tokenizer/index.js";
import { JsonReader } from "../../src/tokenizer/json-read.js";
import { corpusLines, EDGE_CASES, haveModels, meta, readVocabCases, VOCAB_GPT2 } from "./fixtures.js";
import { withKeys } from "./gguf-write.js";

const r = new JsonReader("test/tokenizer.json");
const pre = (cfg: unknown, text: string, atStart = true): string[] =>
  compilePreTokenizer(r, cfg)
    .fn([{ text, atStart }])
    .map((p: PreToken) => p.text);

describe("Oniguruma -> JavaScript regex", () => {
  it("(?i:...) groups, possessive quantifiers, Unicode \\s and script names", () => {
    const re = onigToJs("(?i:'s|'ll)|\\p{L}++|\\s+");
    assert.deepEqual("It'S we'LL go\u0085x".match(re), ["It", "'S", " ", "we", "'LL", " ", "go", "\u0085", "x"]);
    const han = onigToJs("\\p{Han}+");
    assert.deepEqual("ab漢字c".match(han), ["漢字"]);
    // U+FEFF is whitespace for JavaScript's \s, not for Oniguruma's.
    assert.equal("\ufeff".match(onigToJs("\\s")), null);
    assert.deepEqual("a-b".match(onigToJs("[\\-]")), ["-"]);
    assert.deepEqual("x'y".match(onigToJs("\\'")), ["'"]);
  });
});

describe("pre-tokenizers", () => {
  const split = (behavior: string): unknown => ({ type: "Split", pattern: { String: "-" }, behavior, invert: false });
  it("Split: the five delimiter behaviours (tokenizers' documented example)", () => {
    const s = "the-final--countdown";
    assert.deepEqual(pre(split("Removed"), s), ["the", "final", "countdown"]);
    assert.deepEqual(pre(split("Isolated"), s), ["the", "-", "final", "-", "-", "countdown"]);
    assert.deepEqual(pre(split("MergedWithPrevious"), s), ["the-", "final-", "-", "countdown"]);
    assert.deepEqual(pre(split("MergedWithNext"), s), ["the", "-final", "-", "-countdown"]);
    assert.deepEqual(pre(split("Contiguous"), s), ["the", "-", "final", "--", "countdown"]);
  });

  it("Split with a regex and invert", () => {
    const cfg = { type: "Split", pattern: { Regex: "\\w+" }, behavior: "Removed", invert: true };
    assert.deepEqual(pre(cfg, "hey, you!"), ["hey", "you"]);
  });

  it("Metaspace: prepend schemes and split", () => {
    const ms = (scheme: string, splitOn = true): unknown => ({ type: "Metaspace", replacement: "\u2581", prepend_scheme: scheme, split: splitOn });
    assert.deepEqual(pre(ms("always"), "Hey   friend!"), ["\u2581Hey", "\u2581", "\u2581", "\u2581friend!"]);
    assert.deepEqual(pre(ms("first", false), "Hey my friend ", true), ["\u2581Hey\u2581my\u2581friend\u2581"]);
    assert.deepEqual(pre(ms("first", false), "how\u2581are", false), ["how\u2581are"]);
    assert.deepEqual(pre(ms("never"), "a b"), ["a", "\u2581b"]);
    // Legacy form.
    assert.deepEqual(pre({ type: "Metaspace", replacement: "\u2581", add_prefix_space: true }, "Hey friend!"), ["\u2581Hey", "\u2581friend!"]);
  });

  it("ByteLevel, Digits, Whitespace, WhitespaceSplit, Punctuation, Sequence", () => {
    assert.deepEqual(pre({ type: "ByteLevel", add_prefix_space: false, use_regex: true }, "Hello my friend, how?"), [
      "Hello",
      "\u0120my",
      "\u0120friend",
      ",",
      "\u0120how",
      "?",
    ]);
    assert.deepEqual(pre({ type: "ByteLevel", add_prefix_space: true, use_regex: false }, "é"), ["\u0120\u00c3\u00a9"]);
    assert.deepEqual(pre({ type: "Digits", individual_digits: true }, "a123b"), ["a", "1", "2", "3", "b"]);
    assert.deepEqual(pre({ type: "Digits", individual_digits: false }, "a123b"), ["a", "123", "b"]);
    assert.deepEqual(pre({ type: "Whitespace" }, "Hey man!! ok"), ["Hey", "man", "!!", "ok"]);
    assert.deepEqual(pre({ type: "WhitespaceSplit" }, "Hey  man!!\tok"), ["Hey", "man!!", "ok"]);
    assert.deepEqual(pre({ type: "Punctuation" }, "Hey, you!"), ["Hey", ",", " you", "!"]);
    assert.deepEqual(
      pre({ type: "Sequence", pretokenizers: [{ type: "WhitespaceSplit" }, { type: "Digits", individual_digits: true }] }, "a12 b3"),
      ["a", "1", "2", "b", "3"],
    );
  });
});

describe("decoders", () => {
  const dec = (cfg: unknown, tokens: string[]): string => {
    const d = compileDecoder(r, cfg);
    const bytes: number[] = [];
    tokens.forEach((t0, i) => {
      let t: string | Uint8Array = t0;
      for (const s of d.steps) t = s(t, i);
      const b = typeof t === "string" ? Buffer.from(t, "utf8") : t;
      if (d.joinWithSpace && i > 0) bytes.push(0x20);
      bytes.push(...b);
    });
    let out = Buffer.from(bytes).toString("utf8");
    if (d.stripStart !== undefined) {
      for (let k = 0; k < d.stripStart.count && out.charCodeAt(0) === d.stripStart.byte; k++) out = out.slice(1);
    }
    return out;
  };

  it("Metaspace drops the replacement in the first token (all of them, as tokenizers does)", () => {
    const cfg = { type: "Metaspace", replacement: "\u2581", prepend_scheme: "always" };
    assert.equal(dec(cfg, ["\u2581Hey", "\u2581friend!"]), "Hey friend!");
    assert.equal(dec({ ...cfg, prepend_scheme: "never" }, ["\u2581Hey", "\u2581friend!"]), " Hey friend!");
  });

  it("Replace + ByteFallback + Fuse + Strip (legacy Llama)", () => {
    const cfg = {
      type: "Sequence",
      decoders: [
        { type: "Replace", pattern: { String: "\u2581" }, content: " " },
        { type: "ByteFallback" },
        { type: "Fuse" },
        { type: "Strip", content: " ", start: 1, stop: 0 },
      ],
    };
    assert.equal(dec(cfg, ["\u2581caf", "<0xC3>", "<0xA9>", "\u2581ok"]), "café ok");
  });

  it("ByteLevel decoder keeps tokens outside the alphabet as text", () => {
    assert.equal(dec({ type: "ByteLevel" }, ["Hello", "\u0120there", "\u0120", "[PA D]"]), "Hello there [PA D]");
  });

  it("no decoder joins tokens with spaces", () => {
    assert.equal(dec(null, ["a", "b"]), "a b");
  });

  it("Strip after Fuse at both ends, streamed and whole", () => {
    const tok = tokenizerFromJson({
      model: { type: "BPE", vocab: { " ": 0, a: 1, "  ": 2 }, merges: [[" ", " "]] },
      decoder: { type: "Sequence", decoders: [{ type: "Fuse" }, { type: "Strip", content: " ", start: 2, stop: 1 }] },
    });
    const ids = [0, 0, 0, 1, 0, 1, 2];
    assert.equal(tok.decode(ids), " a a ");
    const d = tok.createStreamDecoder();
    const parts = ids.map((id) => d.push(id));
    parts.push(d.flush());
    assert.equal(parts.join(""), " a a ");
    assert.equal(parts.at(-1), " "); // one of the two trailing spaces was held back until the end
  });
});

describe("whole tokenizer.json pipelines vs the llama.cpp-verified GGUF tokenizers", { skip: haveModels ? false : "shared models not present" }, () => {
  const gpt2Json = (m: Metadata, preTokenizer: unknown, ignoreMerges: boolean): unknown => {
    const vocab: Record<string, number> = {};
    m.stringArray("tokenizer.ggml.tokens").forEach((t, i) => {
      vocab[t] = i;
    });
    return {
      model: { type: "BPE", vocab, merges: m.stringArray("tokenizer.ggml.merges"), ignore_merges: ignoreMerges },
      added_tokens: [{ id: 50256, content: "<|endoftext|>", special: true }],
      pre_tokenizer: preTokenizer,
      decoder: { type: "ByteLevel" },
    };
  };
  const splitThenBytes = (regex: string): unknown => ({
    type: "Sequence",
    pretokenizers: [
      { type: "Split", pattern: { Regex: regex }, behavior: "Isolated", invert: false },
      { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: false },
    ],
  });

  for (const [name, ggufPre, regex, ignoreMerges] of [
    [
      "Llama 3 (Split with (?i:...) + ByteLevel)",
      "llama-bpe",
      "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
      true,
    ],
    [
      "Qwen 2 (Split + ByteLevel)",
      "qwen2",
      "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
      false,
    ],
  ] as const) {
    it(`${name} encodes like llama.cpp's ${ggufPre}`, () => {
      const base = meta(VOCAB_GPT2);
      const gguf = tokenizerFromMetadata(withKeys(base, { "tokenizer.ggml.pre": { type: GgufValueType.STRING, value: ggufPre } }));
      const hf = tokenizerFromJson(gpt2Json(base, splitThenBytes(regex), ignoreMerges));
      for (const s of [...readVocabCases(VOCAB_GPT2).map((c) => c.text), ...EDGE_CASES, ...corpusLines(150)]) {
        assert.deepEqual(hf.encode(s), gguf.encode(s), JSON.stringify(s));
        assert.deepEqual(hf.encode(s, { parseSpecial: true }), gguf.encode(s, { parseSpecial: true }), JSON.stringify(s));
      }
    });
  }

  it("added tokens: special only with parseSpecial, non-special always, lstrip/rstrip", () => {
    const base = meta(VOCAB_GPT2);
    const json = gpt2Json(base, { type: "ByteLevel", add_prefix_space: false, use_regex: true }, false) as { added_tokens: unknown[] };
    json.added_tokens.push({ id: 50257, content: "<tool>", special: false, lstrip: true, rstrip: true });
    json.added_tokens.push({ id: 50258, content: "<|im_start|>", special: true });
    const tok = tokenizerFromJson(json, { bos_token: null, eos_token: { content: "<|endoftext|>" }, add_bos_token: false });
    assert.equal(tok.vocabSize, 50259);
    assert.equal(tok.eosId, 50256);
    const ids = tok.encode("a  <tool>  b<|im_start|>");
    assert.deepEqual(ids.slice(0, 3), [64, 50257, 65]); // "a", <tool> eating the spaces, "b"
    assert.ok(!ids.includes(50258));
    assert.ok(tok.encode("<|im_start|>", { parseSpecial: true }).includes(50258));
    assert.equal(tok.decode([50258]), "");
    assert.equal(tok.decode([50258], { unparseSpecial: true }), "<|im_start|>");
    assert.equal(tok.isControl(50258), true);
    assert.equal(tok.isControl(50257), false);
  });

  it("tokenizer_config.json add_bos_token/add_eos_token override the template", () => {
    const base = meta(VOCAB_GPT2);
    const json = {
      ...(gpt2Json(base, { type: "ByteLevel", add_prefix_space: false }, false) as object),
      post_processor: {
        type: "TemplateProcessing",
        single: [{ SpecialToken: { id: "<|endoftext|>", type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }],
        special_tokens: { "<|endoftext|>": { id: "<|endoftext|>", ids: [50256], tokens: ["<|endoftext|>"] } },
      },
    };
    const viaTemplate = tokenizerFromJson(json);
    assert.equal(viaTemplate.addBos, true);
    assert.deepEqual(viaTemplate.encode("hi", { addSpecial: true }), [50256, 5303]);
    const overridden = tokenizerFromJson(json, { add_bos_token: false, add_eos_token: true, eos_token: "<|endoftext|>" });
    assert.equal(overridden.addBos, false);
    assert.equal(overridden.addEos, true);
    assert.deepEqual(overridden.encode("hi", { addSpecial: true }), [5303, 50256]);
    assert.equal(overridden.decode([5303, 50256], { removeSpecial: true }), "hi");
  });
});
