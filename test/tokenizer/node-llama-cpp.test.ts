/**
 * Live oracle: node-llama-cpp (llama.cpp compiled) on the same files. Compares encode (with and
 * without special-token parsing), decode (with and without rendering control tokens), token
 * attributes (control, EOG) and BOS/EOS settings, for the four GGUF vocabularies and for the
 * GPT-2 vocabulary relabelled with one pre-tokenizer per code path (every supported pre-tokenizer
 * type passed this check once; the test keeps one per code path to stay fast).
 */
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { GgufValueType, Metadata, type MetaScalar } from "../../src/formats/metadata.js";
import { tokenizerFromMetadata, type Tokenizer } from "../../src/tokenizer/index.js";
import { corpusLines, DATA, EDGE_CASES, haveModels, LLAMA2_TINY, meta, readVocabCases, STORIES, VOCAB_GPT2, VOCAB_PHI3 } from "./fixtures.js";
import { withKeys, writeVocabGguf } from "./gguf-write.js";

type NlcModule = typeof import("node-llama-cpp");
type Token = import("node-llama-cpp").Token;
type Llama = Awaited<ReturnType<NlcModule["getLlama"]>>;
type LlamaModel = Awaited<ReturnType<Llama["loadModel"]>>;

let llama: Llama | undefined;
let skipReason: string | false = haveModels ? false : "shared models not present";

before(async () => {
  if (skipReason !== false) return;
  try {
    const nlc: NlcModule = await import("node-llama-cpp");
    llama = await nlc.getLlama({ gpu: false, build: "never", skipDownload: true, logLevel: nlc.LlamaLogLevel.error });
  } catch (e) {
    skipReason = `node-llama-cpp unavailable: ${String(e)}`;
  }
});

after(async () => {
  await llama?.dispose();
});

async function withModel<T>(path: string, fn: (m: LlamaModel) => T): Promise<T> {
  assert.ok(llama !== undefined);
  const m = await llama.loadModel({ modelPath: path, vocabOnly: true });
  try {
    return fn(m);
  } finally {
    await m.dispose();
  }
}

const texts = (extra: readonly string[] = []): string[] => [...readVocabCases(VOCAB_PHI3).map((c) => c.text), ...EDGE_CASES, ...corpusLines(150), ...extra];

interface Tally {
  encode: number;
  encodeSpecial: number;
  decode: number;
  decodeSpecial: number;
  total: number;
  failures: string[];
}

function compare(model: LlamaModel, tok: Tokenizer, strings: readonly string[]): Tally {
  const t: Tally = { encode: 0, encodeSpecial: 0, decode: 0, decodeSpecial: 0, total: strings.length, failures: [] };
  const check = (ok: boolean, what: string, s: string, got: unknown, want: unknown): number => {
    if (!ok && t.failures.length < 10) t.failures.push(`${what} ${JSON.stringify(s)}: got ${JSON.stringify(got)}, want ${JSON.stringify(want)}`);
    return ok ? 1 : 0;
  };
  for (const s of strings) {
    const want = Array.from(model.tokenize(s, false));
    const got = tok.encode(s);
    t.encode += check(JSON.stringify(got) === JSON.stringify(want), "encode", s, got, want);
    const wantS = Array.from(model.tokenize(s, true));
    const gotS = tok.encode(s, { parseSpecial: true });
    t.encodeSpecial += check(JSON.stringify(gotS) === JSON.stringify(wantS), "encode(parseSpecial)", s, gotS, wantS);
    const wd = model.detokenize(want, false);
    const gd = tok.decode(want);
    t.decode += check(gd === wd, "decode", s, gd, wd);
    const wds = model.detokenize(wantS, true);
    const gds = tok.decode(wantS, { unparseSpecial: true });
    t.decodeSpecial += check(gds === wds, "decode(unparseSpecial)", s, gds, wds);
  }
  return t;
}

function assertAll(name: string, t: Tally): void {
  assert.deepEqual(t.failures, [], `${name}: ${JSON.stringify({ ...t, failures: undefined })}`);
  assert.equal(t.encode, t.total);
  assert.equal(t.encodeSpecial, t.total);
  assert.equal(t.decode, t.total);
  assert.equal(t.decodeSpecial, t.total);
}

function compareVocab(model: LlamaModel, tok: Tokenizer): void {
  assert.equal(tok.bosId ?? null, model.tokens.bos);
  assert.equal(tok.eosId ?? null, model.tokens.eos);
  assert.equal(tok.addBos, model.tokens.shouldPrependBosToken);
  assert.equal(tok.addEos, model.tokens.shouldAppendEosToken);
  const eog: number[] = [];
  const ctlDiff: number[] = [];
  for (let id = 0; id < tok.vocabSize; id++) {
    if (model.isEogToken(id as Token)) eog.push(id);
    if (model.getTokenAttributes(id as Token).control !== tok.isControl(id)) ctlDiff.push(id);
  }
  assert.deepEqual([...tok.eogIds].sort((a, b) => a - b), eog, "EOG ids");
  assert.deepEqual(ctlDiff, [], "control attribute differs");
  // Single-token decoding (llama_token_to_piece through detokenize), a sample of ids.
  const step = Math.max(1, Math.floor(tok.vocabSize / 2000));
  for (let id = 0; id < tok.vocabSize; id += step) {
    for (const special of [false, true]) {
      assert.equal(tok.decode([id], { unparseSpecial: special }), model.detokenize([id as Token], special), `token ${id} special=${special}`);
    }
  }
}

describe("node-llama-cpp agrees", { timeout: 60_000 }, () => {
  for (const [name, path] of [
    ["gpt-2", VOCAB_GPT2],
    ["phi-3", VOCAB_PHI3],
    ["llama-2-tiny-random", LLAMA2_TINY],
    ["stories260K", STORIES],
  ] as const) {
    it(`${name}: encode/decode on ~400 strings, with and without special tokens`, async (t) => {
      if (skipReason !== false) return t.skip(skipReason);
      const tok = tokenizerFromMetadata(meta(path));
      const tally = await withModel(path, (m) => {
        compareVocab(m, tok);
        return compare(m, tok, texts());
      });
      assert.ok(tally.total >= 400, `${tally.total} strings`);
      assertAll(name, tally);
    });
  }

  it("long inputs (200 KB of each corpus, whole) agree: merge loops and segmentation at scale", async (t) => {
    if (skipReason !== false) return t.skip(skipReason);
    const inputs = ["tinyshakespeare.txt", "tinystories_valid_head.txt"].map((f) => readFileSync(join(DATA, f), "utf8").slice(0, 200_000));
    for (const path of [VOCAB_GPT2, VOCAB_PHI3, STORIES]) {
      const tok = tokenizerFromMetadata(meta(path));
      await withModel(path, (m) => {
        for (const text of inputs) {
          const want = Array.from(m.tokenize(text, false));
          const got = tok.encode(text);
          assert.equal(got.length, want.length, path);
          assert.deepEqual(got, want, path);
          assert.equal(tok.decode(want), m.detokenize(want, false), path);
        }
      });
    }
  });

  it("special-token detection: EOG/EOT/FIM by text, gpt-oss and <|end|> rules, user-defined, LSTRIP, flags", async (t) => {
    if (skipReason !== false) return t.skip(skipReason);
    /** `base` with some token texts and types replaced and some keys set. */
    const variant = (base: Metadata, texts: Record<number, string>, types: Record<number, number>, keys: [string, GgufValueType, MetaScalar][]): Metadata => {
      const m = new Metadata("variant.gguf", new Map(base.entries));
      const toks = [...base.stringArray("tokenizer.ggml.tokens")];
      for (const [id, text] of Object.entries(texts)) toks[Number(id)] = text;
      m.set("tokenizer.ggml.tokens", GgufValueType.ARRAY, toks, GgufValueType.STRING);
      const tt = [...base.numberArray("tokenizer.ggml.token_type")];
      for (const [id, ty] of Object.entries(types)) tt[Number(id)] = ty;
      m.set("tokenizer.ggml.token_type", GgufValueType.ARRAY, tt, GgufValueType.INT32);
      for (const [k, ty, v] of keys) m.set(k, ty, v);
      return m;
    };
    const cases: [string, Metadata, string[]][] = [
      [
        "gpt-2 with chat/FIM tokens",
        variant(
          meta(VOCAB_GPT2),
          { 50200: "<|fim_prefix|>", 50201: "<|eot_id|>", 50202: "<|im_end|>", 50203: "<|eom_id|>", 50204: "<|channel|>", 50205: "<|end|>", 50206: "<|return|>", 50207: "<|call|>", 50208: "<|file_sep|>", 50209: "<unused_control>" },
          { 50209: 3, 50210: 4 },
          [],
        ),
        ["<|im_end|> <|eot_id|><|channel|>x<|end|>", "hello<|fim_prefix|>  <|file_sep|>", `a${meta(VOCAB_GPT2).stringArray("tokenizer.ggml.tokens")[50210] ?? ""}b`],
      ],
      [
        "phi-3 with a user-defined token and an LSTRIP [MASK] (modern-bert name)",
        variant(meta(VOCAB_PHI3), { 32010: "[MASK]" }, { 450: 4, 32010: 3 }, [["general.name", GgufValueType.STRING, "modern-bert x"]]),
        ["a  [MASK]  b", `x${meta(VOCAB_PHI3).stringArray("tokenizer.ggml.tokens")[450] ?? ""}y`],
      ],
      [
        "phi-3 with eot id, add_eos and no space prefix",
        variant(meta(VOCAB_PHI3), {}, {}, [
          ["tokenizer.ggml.eot_token_id", GgufValueType.UINT32, 32007],
          ["tokenizer.ggml.add_eos_token", GgufValueType.BOOL, true],
          ["tokenizer.ggml.add_space_prefix", GgufValueType.BOOL, false],
        ]),
        [],
      ],
    ];
    const dir = mkdtempSync(join(tmpdir(), "slimlm-tok-"));
    try {
      for (const [i, [name, m, extra]] of cases.entries()) {
        const path = join(dir, `s${i}.gguf`);
        writeVocabGguf(path, m);
        const tok = tokenizerFromMetadata(m);
        const tally = await withModel(path, (model) => {
          compareVocab(model, tok);
          return compare(model, tok, [...EDGE_CASES, ...extra]);
        });
        assertAll(name, tally);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("gpt-2 vocabulary relabelled with one pre-tokenizer per code path (tokenizer.ggml.pre rewritten)", async (t) => {
    if (skipReason !== false) return t.skip(skipReason);
    const dir = mkdtempSync(join(tmpdir(), "slimlm-tok-"));
    try {
      const base = meta(VOCAB_GPT2);
      const strings = [...readVocabCases(VOCAB_GPT2).map((c) => c.text), ...EDGE_CASES, ...corpusLines(15)];
      // A missing tokenizer.ggml.pre means "default", which is in the list.
      const variants: [string, Metadata][] = [];
      // One pre-tokenizer per distinct code path: custom splitters (llama3, qwen2, qwen35, newlines),
      // regexes on the collapsed text, regexes on code points, flags (ignore_merges, add_bos, no BOS).
      for (const pre of [
        "default", "llama-bpe", "qwen2", "qwen35", "smollm", "deepseek-llm", "deepseek-v3",
        "chatglm-bpe", "poro-chat", "gpt-4o", "chameleon", "laguna",
      ]) {
        variants.push([pre, withKeys(base, { "tokenizer.ggml.pre": { type: GgufValueType.STRING, value: pre } })]);
      }
      // A flag override too: add_bos_token on a BPE vocabulary.
      variants.push(["gpt-2+add_bos", withKeys(base, { "tokenizer.ggml.add_bos_token": { type: GgufValueType.BOOL, value: true } })]);
      for (const [i, [name, m]] of variants.entries()) {
        const path = join(dir, `v${i}.gguf`);
        writeVocabGguf(path, m);
        const tok = tokenizerFromMetadata(m);
        const tally = await withModel(path, (model) => {
          assert.equal(tok.addBos, model.tokens.shouldPrependBosToken, name);
          assert.equal(tok.bosId ?? null, model.tokens.bos, name);
          return compare(model, tok, strings);
        });
        assertAll(name, tally);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
