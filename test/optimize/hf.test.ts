/**
 * Hugging Face folders in, GGUF out: the tokenizer.json becomes GGUF tokenizer metadata that
 * tokenizes exactly as tokenizer.json does (our two tokenizers, and llama.cpp on the file), and the
 * weights are the same as quantizing the equivalent GGUF. Two vocabulary kinds:
 * SentencePiece-style BPE with byte fallback (stories260K-hf) and byte-level BPE (a 2257-token
 * cut of the GPT-2 vocabulary, in a random-weight BF16 model written here).
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { openGguf } from "../../src/formats/gguf/index.js";
import { fileTypeSpec } from "../../src/optimize/quant-types.js";
import { quantizeModel } from "../../src/optimize/quantize.js";
import { Engine } from "../../src/runtime/engine.js";
import { f32ToBf16 } from "../../src/tensor/f16.js";
import { tokenizerFromJson, tokenizerFromMetadata } from "../../src/tokenizer/index.js";
import { buildSafetensors, type StEntry } from "../formats/helpers.js";
import { loadLlamaCpp } from "../helpers/llama-cpp.js";
import { STORIES_GGUF, STORIES_HF, teacherForcedArgmax } from "../helpers/slimlm.js";
import { EDGE_CASES, VOCAB_GPT2, corpusLines, meta } from "../tokenizer/fixtures.js";
import { uniform } from "./data.js";

/** A cut of GPT-2's vocabulary: the 256 byte tokens, the first n merges and <|endoftext|>. */
function smallGpt2TokenizerJson(n: number): unknown {
  const m = meta(VOCAB_GPT2);
  const tokens = m.stringArray("tokenizer.ggml.tokens");
  const vocab: Record<string, number> = {};
  for (let i = 0; i < 256 + n; i++) vocab[tokens[i]!] = i;
  return {
    version: "1.0",
    added_tokens: [{ id: 256 + n, content: "<|endoftext|>", single_word: false, lstrip: false, rstrip: false, normalized: true, special: true }],
    normalizer: null,
    pre_tokenizer: { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: true },
    post_processor: { type: "ByteLevel", add_prefix_space: true, trim_offsets: false, use_regex: true },
    decoder: { type: "ByteLevel", add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: "BPE", dropout: null, unk_token: null, continuing_subword_prefix: "", end_of_word_suffix: "", fuse_unk: false, byte_fallback: false,
      vocab,
      merges: m.stringArray("tokenizer.ggml.merges").slice(0, n),
    },
  };
}

/** A random-weight LlamaForCausalLM folder (BF16 safetensors, tied embeddings). */
function writeHfFolder(dir: string, tokenizerJson: unknown, tokenizerConfig: unknown, vocab: number, eos: number): void {
  const D = 64;
  const F = 128;
  const L = 2;
  const entries: StEntry[] = [];
  let seed = 1;
  const tensor = (name: string, shape: number[], std: number, ones = false): void => {
    const n = shape.reduce((a, b) => a * b, 1);
    const v = uniform(n, seed++);
    const b = new Uint8Array(2 * n);
    for (let i = 0; i < n; i++) {
      const h = f32ToBf16(ones ? 1 : v[i]! * std * Math.sqrt(3));
      b[2 * i] = h & 0xff;
      b[2 * i + 1] = h >> 8;
    }
    entries.push({ name, dtype: "BF16", shape, data: b });
  };
  tensor("model.embed_tokens.weight", [vocab, D], 1);
  for (let l = 0; l < L; l++) {
    const p = `model.layers.${l}`;
    tensor(`${p}.input_layernorm.weight`, [D], 0, true);
    tensor(`${p}.self_attn.q_proj.weight`, [D, D], 1 / 8);
    tensor(`${p}.self_attn.k_proj.weight`, [D / 2, D], 1 / 8);
    tensor(`${p}.self_attn.v_proj.weight`, [D / 2, D], 1 / 8);
    tensor(`${p}.self_attn.o_proj.weight`, [D, D], 1 / 8);
    tensor(`${p}.post_attention_layernorm.weight`, [D], 0, true);
    tensor(`${p}.mlp.gate_proj.weight`, [F, D], 1 / 8);
    tensor(`${p}.mlp.up_proj.weight`, [F, D], 1 / 8);
    tensor(`${p}.mlp.down_proj.weight`, [D, F], 1 / 11);
  }
  tensor("model.norm.weight", [D], 0, true);
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, "model.safetensors"), buildSafetensors(entries));
  fs.writeFileSync(path.join(dir, "tokenizer.json"), JSON.stringify(tokenizerJson));
  fs.writeFileSync(path.join(dir, "tokenizer_config.json"), JSON.stringify(tokenizerConfig));
  fs.writeFileSync(
    path.join(dir, "config.json"),
    JSON.stringify({
      architectures: ["LlamaForCausalLM"], model_type: "llama", vocab_size: vocab, hidden_size: D, intermediate_size: F,
      num_hidden_layers: L, num_attention_heads: 4, num_key_value_heads: 2, max_position_embeddings: 1024, rms_norm_eps: 1e-5,
      rope_theta: 10000, tie_word_embeddings: true, bos_token_id: eos, eos_token_id: eos, torch_dtype: "bfloat16",
    }),
  );
}

describe("Hugging Face folder -> GGUF", () => {
  let dir: string;
  let gpt2Dir: string;
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "slimlm-qhf-"));
    gpt2Dir = path.join(dir, "gpt2-small-vocab");
    writeHfFolder(gpt2Dir, smallGpt2TokenizerJson(2000), { bos_token: "<|endoftext|>", eos_token: "<|endoftext|>", clean_up_tokenization_spaces: true }, 2304, 2256);
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  async function check(folder: string, label: string, kind: string, pre: string | undefined): Promise<string> {
    const out = path.join(dir, `${label}.gguf`);
    const r = await quantizeModel({ input: folder, output: out, spec: fileTypeSpec("q8_0"), threads: 2 });
    assert.deepEqual(r.warnings.filter((w) => w.startsWith("tokenizer")), []);
    const g = openGguf(out);
    const md = g.metadata;
    g.weights.close();
    assert.equal(md.string("tokenizer.ggml.model"), kind);
    if (pre !== undefined) assert.equal(md.string("tokenizer.ggml.pre"), pre);
    const json = JSON.parse(fs.readFileSync(path.join(folder, "tokenizer.json"), "utf8")) as unknown;
    const config = JSON.parse(fs.readFileSync(path.join(folder, "tokenizer_config.json"), "utf8")) as unknown;
    const fromJson = tokenizerFromJson(json, config);
    const fromGguf = tokenizerFromMetadata(md);
    const texts = [...corpusLines(150), ...EDGE_CASES];
    for (const t of texts) assert.deepEqual(fromGguf.encode(t, { addSpecial: true }), fromJson.encode(t, { addSpecial: true }), JSON.stringify(t));

    const ref = await loadLlamaCpp(out, { contextSize: 256 });
    const engine = await Engine.load(out, { threads: 2, contextSize: 256 });
    try {
      for (const t of texts.slice(0, 60)) assert.deepEqual(ref.tokenize(t), engine.tokenizer.encode(t), JSON.stringify(t));
      const prompt = engine.tokenizer.encode("Once upon a time, there was a little", { addSpecial: true });
      const expected = await ref.greedy(prompt, 24);
      const ids = [...prompt, ...expected];
      const theirs = await ref.teacherForced(ids, prompt.length);
      const ours = teacherForcedArgmax(engine, ids, prompt.length);
      const agree = ours.filter((id, i) => id === theirs[i]!.argmax).length / ours.length;
      assert.ok(agree >= 0.95, `${label}: top-1 agreement ${agree}`);
    } finally {
      await engine.close();
      await ref.dispose();
    }
    return out;
  }

  it("stories260K-hf (SentencePiece-style BPE, byte fallback): tokenizer and weights as the GGUF", async () => {
    const out = await check(STORIES_HF, "stories-hf", "llama", "default");
    const ggufOut = path.join(dir, "stories-gguf.gguf");
    await quantizeModel({ input: STORIES_GGUF, output: ggufOut, spec: fileTypeSpec("q8_0"), threads: 2 });
    const a = openGguf(out);
    const b = openGguf(ggufOut);
    try {
      for (const t of b.weights.tensors) {
        const u = a.weights.get(t.name)!;
        assert.equal(u.type, t.type, t.name);
        const x = new Uint8Array(t.nbytes);
        const y = new Uint8Array(u.nbytes);
        b.weights.readInto(t.name, 0, x);
        a.weights.readInto(t.name, 0, y);
        assert.ok(Buffer.compare(x, y) === 0, t.name);
      }
    } finally {
      a.weights.close();
      b.weights.close();
    }
  });

  it("byte-level BPE (GPT-2 vocabulary cut), BF16 weights, vocabulary padded to the model's size", async () => {
    const out = await check(gpt2Dir, "gpt2-hf", "gpt2", "gpt-2");
    const g = openGguf(out);
    try {
      const tokens = g.metadata.stringArray("tokenizer.ggml.tokens");
      assert.equal(tokens.length, 2304);
      assert.equal(tokens[2300], "[PAD2300]");
      assert.equal(g.metadata.numberArray("tokenizer.ggml.token_type")[2256], 3);
      assert.equal(g.weights.get("blk.0.attn_norm.weight")!.type, 0);
    } finally {
      g.weights.close();
    }
  });
});
