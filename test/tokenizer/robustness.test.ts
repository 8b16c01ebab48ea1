/**
 * Bad input and scale: malformed or unsupported vocabularies fail with SlimErrors that say what
 * was expected, ids are range-checked, lone surrogates and special-token text are handled as
 * documented, and megabyte inputs stay fast.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { ModelFormatError, UnsupportedError, UsageError } from "../../src/errors.js";
import { GgufValueType, Metadata, type MetaScalar } from "../../src/formats/metadata.js";
import { tokenizerFromJson, tokenizerFromMetadata, type Tokenizer } from "../../src/tokenizer/index.js";
import { DATA, haveModels, LLAMA2_TINY, meta, STORIES, VOCAB_GPT2, VOCAB_PHI3 } from "./fixtures.js";

const skip = haveModels ? false : "shared models not present";

type Entry = [string, GgufValueType, MetaScalar | readonly MetaScalar[], GgufValueType?];

function metaOf(entries: Entry[]): Metadata {
  const m = new Metadata("synthetic.gguf");
  for (const [k, t, v, et] of entries) m.set(k, t, v, et);
  return m;
}

const S = GgufValueType.STRING;
const A = GgufValueType.ARRAY;

/** A tiny SentencePiece-style vocabulary: <unk> <s> </s>, byte tokens for 'a' and 'b', pieces. */
function tinySpm(extra: Entry[] = []): Metadata {
  const tokens = ["<unk>", "<s>", "</s>", "<0x61>", "<0x62>", "\u2581", "a", "b", "\u2581a", "ab", "\u2581ab", "<tool>"];
  const types = [2, 3, 3, 6, 6, 1, 1, 1, 1, 1, 1, 4];
  const scores = [0, 0, 0, 0, 0, -1, -2, -3, -1.5, -1, -0.5, 0];
  return metaOf([
    ["tokenizer.ggml.model", S, "llama"],
    ["tokenizer.ggml.tokens", A, tokens, S],
    ["tokenizer.ggml.scores", A, scores, GgufValueType.FLOAT32],
    ["tokenizer.ggml.token_type", A, types, GgufValueType.INT32],
    ...extra,
  ]);
}

function throwsWith<T extends Error>(fn: () => unknown, cls: new (...a: never[]) => T, re: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof cls, `expected ${cls.name}, got ${String(e)}`);
    assert.match((e as Error).message, re);
    return true;
  });
}

describe("GGUF metadata validation", () => {
  it("a tiny synthetic SPM vocabulary works, user-defined tokens split even without parseSpecial", () => {
    const tok = tokenizerFromMetadata(tinySpm());
    assert.deepEqual(tok.encode("ab"), [10]);
    assert.deepEqual(tok.encode("a b"), [8, 5, 7]);
    // <tool> is user-defined (type 4): recognised in text like llama.cpp does.
    assert.deepEqual(tok.encode("a<tool>b"), [8, 11, 5, 7]);
    // <s> is control: text unless parseSpecial.
    assert.ok(!tok.encode("<s>").includes(1));
    assert.deepEqual(tok.encode("<s>", { parseSpecial: true }), [1]);
    assert.equal(tok.decode([8, 11, 5, 7]), "a<tool> b");
  });

  it("missing or unsupported tokenizer models", () => {
    throwsWith(() => tokenizerFromMetadata(metaOf([])), ModelFormatError, /tokenizer\.ggml\.model/);
    for (const [model, re] of [
      ["bert", /WordPiece/],
      ["t5", /Unigram/],
      ["rwkv", /RWKV/],
      ["something", /unknown tokenizer model "something"/],
    ] as const) {
      throwsWith(() => tokenizerFromMetadata(metaOf([["tokenizer.ggml.model", S, model]])), UnsupportedError, re);
    }
  });

  it("BPE: unknown or unimplemented pre-tokenizer, missing merges", { skip }, () => {
    const base = meta(VOCAB_GPT2);
    const variant = (changes: Record<string, MetaScalar | undefined>): Metadata => {
      const m = new Metadata("variant.gguf", new Map(base.entries));
      for (const [k, v] of Object.entries(changes)) {
        if (v === undefined) m.entries.delete(k);
        else m.set(k, S, v);
      }
      return m;
    };
    throwsWith(() => tokenizerFromMetadata(variant({ "tokenizer.ggml.pre": "no-such-pre" })), UnsupportedError, /no-such-pre/);
    throwsWith(() => tokenizerFromMetadata(variant({ "tokenizer.ggml.pre": "kimi-k2" })), UnsupportedError, /not implemented/);
    throwsWith(() => tokenizerFromMetadata(variant({ "tokenizer.ggml.merges": undefined })), ModelFormatError, /merges/);
  });

  it("array shapes are checked against the vocabulary", () => {
    const short = tinySpm([["tokenizer.ggml.scores", A, [0, 0], GgufValueType.FLOAT32]]);
    throwsWith(() => tokenizerFromMetadata(short), ModelFormatError, /fewer scores than tokens/);
    const badTypes = tinySpm([["tokenizer.ggml.token_type", A, ["x"], S]]);
    throwsWith(() => tokenizerFromMetadata(badTypes), ModelFormatError, /token_type/);
    const notArray = tinySpm([["tokenizer.ggml.tokens", S, "abc"]]);
    throwsWith(() => tokenizerFromMetadata(notArray), ModelFormatError, /tokenizer\.ggml\.tokens/);
    const dup = tinySpm([["tokenizer.ggml.tokens", A, ["<unk>", "<s>", "</s>", "<0x61>", "<0x62>", "b", "c", "d", "e", "f", "g", "c"], S]]);
    throwsWith(() => tokenizerFromMetadata(dup), ModelFormatError, /duplicate token/);
    const empty = tinySpm([["tokenizer.ggml.tokens", A, [], S]]);
    throwsWith(() => tokenizerFromMetadata(empty), ModelFormatError, /vocabulary size/);
    const nanScore = tinySpm([["tokenizer.ggml.scores", A, Array.from({ length: 12 }, () => Number.NaN), GgufValueType.FLOAT32]]);
    throwsWith(() => tokenizerFromMetadata(nanScore), ModelFormatError, /score/);
    const badId = tinySpm([["tokenizer.ggml.bos_token_id", S, "one"]]);
    throwsWith(() => tokenizerFromMetadata(badId), ModelFormatError, /bos_token_id/);
  });

  it("special ids outside the vocabulary are ignored, like llama.cpp", () => {
    const tok = tokenizerFromMetadata(tinySpm([["tokenizer.ggml.bos_token_id", GgufValueType.UINT32, 4294967295]]));
    assert.equal(tok.bosId, 1);
  });

  it("no byte token for a character: <unk> (llama.cpp would throw)", () => {
    const tok = tokenizerFromMetadata(tinySpm());
    assert.deepEqual(tok.encode("c"), [5, 0]);
  });
});

describe("ids and text edge cases", { skip }, () => {
  const all = (): Tokenizer[] => [VOCAB_GPT2, VOCAB_PHI3, STORIES].map((p) => tokenizerFromMetadata(meta(p)));

  it("token ids are range-checked everywhere", () => {
    for (const tok of all()) {
      for (const bad of [-1, 1.5, tok.vocabSize, Number.NaN]) {
        throwsWith(() => tok.decode([bad]), UsageError, /token id out of range/);
        throwsWith(() => tok.tokenToPiece(bad), UsageError, /token id/);
        throwsWith(() => tok.tokenText(bad), UsageError, /token id/);
        throwsWith(() => tok.isControl(bad), UsageError, /token id/);
        throwsWith(() => tok.createStreamDecoder().push(bad), UsageError, /token id/);
      }
    }
  });

  it("lone surrogates encode as U+FFFD", () => {
    for (const tok of all()) {
      assert.deepEqual(tok.encode("a\ud800b"), tok.encode("a\ufffdb"));
      assert.deepEqual(tok.encode("\udc00"), tok.encode("\ufffd"));
      assert.deepEqual(tok.encode("\ud83d\ude00"), tok.encode("😀"));
    }
  });

  it("special-token text in user content stays text unless parseSpecial", () => {
    const gpt2 = tokenizerFromMetadata(meta(VOCAB_GPT2));
    assert.ok(!gpt2.encode("x<|endoftext|>y").includes(50256));
    assert.deepEqual(gpt2.encode("<|endoftext|>", { parseSpecial: true }), [50256]);
    assert.equal(gpt2.decode([50256]), "");
    assert.equal(gpt2.decode([50256], { unparseSpecial: true }), "<|endoftext|>");
    assert.ok(gpt2.isControl(50256));
    assert.ok(gpt2.eogIds.has(50256));
    const phi3 = tokenizerFromMetadata(meta(VOCAB_PHI3));
    const end = phi3.encode("<|end|>", { parseSpecial: true });
    assert.equal(end.length, 1);
    assert.ok(phi3.eogIds.has(end[0] as number), "<|end|> is end-of-generation");
    assert.ok(phi3.eogIds.has(32000));
  });

  it("addSpecial adds BOS per the file, removeSpecial drops it again", () => {
    const tok = tokenizerFromMetadata(meta(LLAMA2_TINY));
    const ids = tok.encode("Hello", { addSpecial: true });
    assert.equal(ids[0], 1);
    assert.equal(tok.decode(ids, { removeSpecial: true }), " Hello"); // llama.cpp keeps the space once BOS is removed
    assert.equal(tok.decode(ids.slice(1)), "Hello");
    const gpt2 = tokenizerFromMetadata(meta(VOCAB_GPT2));
    assert.deepEqual(gpt2.encode("Hello", { addSpecial: true }), gpt2.encode("Hello"));
  });

  it("tokenToPiece returns raw bytes (byte tokens, ▁ as space, control text only when asked)", () => {
    const tok = tokenizerFromMetadata(meta(STORIES));
    assert.deepEqual(tok.tokenToPiece(0xe2 + 3), Uint8Array.of(0xe2));
    assert.equal(Buffer.from(tok.tokenToPiece(1)).toString(), "");
    assert.equal(Buffer.from(tok.tokenToPiece(1, { unparseSpecial: true })).toString(), "<s>");
    const the = tok.encode("the").at(-1) as number;
    assert.equal(tok.tokenText(the).startsWith("\u2581"), true);
    assert.equal(Buffer.from(tok.tokenToPiece(the)).toString().startsWith(" "), true);
    // A copy: callers may not corrupt the cache.
    tok.tokenToPiece(the).fill(0);
    assert.equal(Buffer.from(tok.tokenToPiece(the)).toString().startsWith(" "), true);
  });
});

describe("scale", { skip }, () => {
  const MB = 1 << 20;
  const shakespeare = (): string => readFileSync(join(DATA, "tinyshakespeare.txt"), "utf8").slice(0, MB);

  for (const [name, path] of [
    ["gpt-2 (50k byte-level BPE)", VOCAB_GPT2],
    ["phi-3 (32k SPM)", VOCAB_PHI3],
    ["llama-2 (32k SPM)", LLAMA2_TINY],
  ] as const) {
    it(`${name}: 1 MB of text in well under a second, and back`, () => {
      const tok = tokenizerFromMetadata(meta(path));
      const text = shakespeare();
      const t0 = performance.now();
      const ids = tok.encode(text);
      const ms = performance.now() - t0;
      assert.ok(ms < 1000, `encode took ${ms.toFixed(0)} ms`);
      assert.ok(ids.length > 200_000);
      if (tok.kind === "spm") assert.equal(tok.decode(ids), text);
    });
  }

  it("pathological inputs (no spaces, one long whitespace run, emoji) stay bounded", () => {
    // A quarter megabyte each: the merge loops are O(n log n), so this bounds the megabyte case too.
    const Q = MB / 4;
    const inputs = ["a".repeat(Q), " ".repeat(Q), "\n".repeat(Q / 2), "🦙".repeat(Q / 4), "9".repeat(Q)];
    for (const path of [VOCAB_GPT2, VOCAB_PHI3]) {
      const tok = tokenizerFromMetadata(meta(path));
      for (const s of inputs) {
        const t0 = performance.now();
        const ids = tok.encode(s);
        const ms = performance.now() - t0;
        assert.ok(ms < 1000, `${path} ${JSON.stringify(s.slice(0, 2))}… took ${ms.toFixed(0)} ms`);
        assert.ok(ids.length > 0);
      }
    }
  });

  it("many special tokens in a megabyte input (parseSpecial)", () => {
    const tok = tokenizerFromMetadata(meta(VOCAB_PHI3));
    const text = "<|user|>hi there<|end|>\n<|assistant|>".repeat(30_000);
    const t0 = performance.now();
    const ids = tok.encode(text, { parseSpecial: true });
    assert.ok(performance.now() - t0 < 2000);
    assert.equal(ids.filter((id) => tok.isControl(id)).length, 90_000);
  });
});

describe("tokenizer.json validation", () => {
  const minimal = (patch: Record<string, unknown> = {}, model: Record<string, unknown> = {}): unknown => ({
    model: { type: "BPE", vocab: { a: 0, b: 1, ab: 2, "<unk>": 3 }, merges: ["a b"], unk_token: "<unk>", ...model },
    ...patch,
  });

  it("a minimal BPE works", () => {
    const tok = tokenizerFromJson(minimal());
    assert.deepEqual(tok.encode("abab"), [2, 2]);
    assert.deepEqual(tok.encode("abc"), [2, 3]);
    assert.equal(tok.decode([2, 0]), "ab a"); // no decoder: tokens joined with spaces, as tokenizers does
  });

  it("unsupported components are named", () => {
    throwsWith(() => tokenizerFromJson({ model: { type: "WordPiece", vocab: {} } }), UnsupportedError, /WordPiece/);
    throwsWith(() => tokenizerFromJson({ model: { type: "Unigram", vocab: [] } }), UnsupportedError, /Unigram/);
    throwsWith(() => tokenizerFromJson(minimal({ normalizer: { type: "Precompiled", precompiled_charsmap: "" } })), UnsupportedError, /normalizer: Precompiled/);
    throwsWith(() => tokenizerFromJson(minimal({ pre_tokenizer: { type: "BertPreTokenizer" } })), UnsupportedError, /pre-tokenizer: BertPreTokenizer/);
    throwsWith(() => tokenizerFromJson(minimal({ decoder: { type: "WordPiece", prefix: "##" } })), UnsupportedError, /decoder: WordPiece/);
    throwsWith(() => tokenizerFromJson(minimal({ post_processor: { type: "Mystery" } })), UnsupportedError, /post-processor: Mystery/);
    throwsWith(() => tokenizerFromJson(minimal({}, { dropout: 0.1 })), UnsupportedError, /dropout/);
    throwsWith(() => tokenizerFromJson(minimal({}, { continuing_subword_prefix: "##" })), UnsupportedError, /continuing_subword_prefix/);
    throwsWith(
      () => tokenizerFromJson(minimal({ pre_tokenizer: { type: "Split", pattern: { Regex: "(?x) a" }, behavior: "Isolated" } })),
      UnsupportedError,
      /regex/,
    );
  });

  it("malformed files are ModelFormatErrors that point at the field", () => {
    throwsWith(() => tokenizerFromJson(null), ModelFormatError, /\(root\)/);
    throwsWith(() => tokenizerFromJson({ model: { type: "BPE", vocab: [] } }), ModelFormatError, /model\.vocab/);
    throwsWith(() => tokenizerFromJson(minimal({}, { merges: ["a c"] })), ModelFormatError, /model\.merges\[0\]/);
    throwsWith(() => tokenizerFromJson(minimal({}, { merges: ["ab"] })), ModelFormatError, /model\.merges\[0\]/);
    throwsWith(() => tokenizerFromJson(minimal({}, { vocab: { a: 0, b: 0 } })), ModelFormatError, /unique ids/);
    throwsWith(() => tokenizerFromJson(minimal({}, { vocab: { a: -1 } })), ModelFormatError, /model\.vocab/);
    throwsWith(() => tokenizerFromJson(minimal({}, { unk_token: "<nope>" })), ModelFormatError, /unk_token/);
    throwsWith(() => tokenizerFromJson(minimal({ added_tokens: [{ id: "x", content: "y" }] })), ModelFormatError, /added_tokens\[0\]\.id/);
  });
});
