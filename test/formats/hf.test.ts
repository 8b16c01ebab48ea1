import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { FileError, ModelFormatError, UnsupportedError } from "../../src/errors.js";
import { GgmlType } from "../../src/tensor/ggml-type.js";
import { openGguf } from "../../src/formats/gguf/open.js";
import { openHfFolder } from "../../src/formats/hf/open.js";
import { idToTitle, hfModelName } from "../../src/formats/hf/model-name.js";
import { sourceRow } from "../../src/formats/hf/permute.js";
import { llama3RopeFactors } from "../../src/formats/hf/rope.js";
import { openSafetensors } from "../../src/formats/safetensors.js";
import { GgufValueType } from "../../src/formats/metadata.js";
import { STORIES_GGUF, STORIES_HF, buildSafetensors, prng, randomBytes, throwsA, tmpDir, type StEntry } from "./helpers.js";

function readAll(w: { readInto(n: string, o: number, d: Uint8Array): void; get(n: string): { nbytes: number } | undefined }, name: string): Uint8Array {
  const info = w.get(name);
  assert.ok(info !== undefined, name);
  const b = new Uint8Array(info.nbytes);
  w.readInto(name, 0, b);
  return b;
}

test("stories260K-hf: every tensor equals stories260K.gguf byte for byte (Q/K un-permuted)", () => {
  const g = openGguf(STORIES_GGUF);
  const h = openHfFolder(STORIES_HF);
  try {
    assert.equal(h.kind, "hf");
    assert.equal(h.weights.tensors.length, 48);
    for (const t of g.weights.tensors) {
      const u = h.weights.get(t.name);
      assert.ok(u !== undefined, t.name);
      assert.equal(u.type, t.type, t.name);
      assert.deepEqual(u.dims, t.dims, t.name);
      assert.equal(u.nbytes, t.nbytes, t.name);
      assert.ok(Buffer.compare(readAll(g.weights, t.name), readAll(h.weights, t.name)) === 0, t.name);
    }
    // Arbitrary byte ranges of permuted tensors (crossing rows, unaligned to elements).
    const rand = prng(11);
    for (const name of ["blk.0.attn_q.weight", "blk.3.attn_k.weight"]) {
      const ref = readAll(g.weights, name);
      for (let i = 0; i < 200; i++) {
        const off = Math.floor(rand() * ref.length);
        const len = Math.floor(rand() * Math.min(700, ref.length - off + 1));
        const got = new Uint8Array(len);
        h.weights.readInto(name, off, got);
        assert.deepEqual(got, ref.subarray(off, off + len), `${name} [${off}, ${off + len})`);
      }
    }
  } finally {
    g.weights.close();
    h.weights.close();
  }
});

test("stories260K-hf metadata: the keys convert_hf_to_gguf.py writes", () => {
  const h = openHfFolder(STORIES_HF);
  try {
    const md = h.metadata;
    const want: [string, GgufValueType, unknown][] = [
      ["general.architecture", GgufValueType.STRING, "llama"],
      ["general.type", GgufValueType.STRING, "model"],
      ["general.name", GgufValueType.STRING, "stories260K Hf"],
      ["llama.block_count", GgufValueType.UINT32, 5],
      ["llama.context_length", GgufValueType.UINT32, 512],
      ["llama.embedding_length", GgufValueType.UINT32, 64],
      ["llama.feed_forward_length", GgufValueType.UINT32, 172],
      ["llama.attention.head_count", GgufValueType.UINT32, 8],
      ["llama.attention.head_count_kv", GgufValueType.UINT32, 4],
      ["llama.rope.freq_base", GgufValueType.FLOAT32, 10000],
      ["llama.attention.layer_norm_rms_epsilon", GgufValueType.FLOAT32, Math.fround(1e-5)],
      ["llama.attention.key_length", GgufValueType.UINT32, 8],
      ["llama.attention.value_length", GgufValueType.UINT32, 8],
      ["llama.vocab_size", GgufValueType.UINT32, 512],
      ["llama.rope.dimension_count", GgufValueType.UINT32, 8],
      ["tokenizer.ggml.bos_token_id", GgufValueType.UINT32, 1],
      ["tokenizer.ggml.eos_token_id", GgufValueType.UINT32, 2],
      ["tokenizer.ggml.unknown_token_id", GgufValueType.UINT32, 0],
      ["tokenizer.ggml.add_bos_token", GgufValueType.BOOL, true],
      ["tokenizer.ggml.add_eos_token", GgufValueType.BOOL, false],
      ["general.file_type", GgufValueType.UINT32, 0],
    ];
    assert.deepEqual(
      [...md.entries.entries()].map(([k, e]) => [k, e.type, e.value]),
      want,
    );
    // The same values as the llama2.c-converted GGUF where both define them.
    const g = openGguf(STORIES_GGUF);
    for (const k of ["llama.embedding_length", "llama.block_count", "llama.attention.head_count", "llama.attention.head_count_kv", "llama.rope.dimension_count", "llama.attention.layer_norm_rms_epsilon", "llama.feed_forward_length", "tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id"]) {
      assert.equal(md.get(k), g.metadata.get(k), k);
    }
    g.weights.close();
    assert.ok(typeof h.tokenizerJson === "object" && h.tokenizerJson !== null);
    assert.ok(typeof h.tokenizerConfig === "object");
    assert.equal(h.fileSize, fs.statSync(path.join(STORIES_HF, "model.safetensors")).size);
  } finally {
    h.weights.close();
  }
});

test("sourceRow matches LlamaModel.permute (reshape, swapaxes(1,2), reshape)", () => {
  for (const [rows, nHead] of [[8, 1], [16, 2], [64, 8], [32, 4], [24, 3]] as const) {
    const hd = rows / nHead;
    // permute(w)[h][i][j] = w.reshape(nHead, 2, hd/2)[h][j][i]
    const expected: number[] = [];
    for (let h = 0; h < nHead; h++) for (let i = 0; i < hd / 2; i++) for (let j = 0; j < 2; j++) expected.push(h * hd + j * (hd / 2) + i);
    assert.deepEqual(Array.from({ length: rows }, (_, r) => sourceRow(r, hd)), expected);
  }
});

// ---- synthetic folders ----

interface FolderSpec {
  config: Record<string, unknown>;
  shards?: Record<string, StEntry[]>;
  tensors?: StEntry[];
  index?: Record<string, unknown>;
  tokenizer?: unknown;
  tokenizerConfig?: unknown;
  generationConfig?: unknown;
}

function writeFolder(dir: string, s: FolderSpec): string {
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, "config.json"), JSON.stringify(s.config));
  fs.writeFileSync(path.join(dir, "tokenizer.json"), JSON.stringify(s.tokenizer ?? { version: "1.0", added_tokens: [], model: { type: "BPE", vocab: {} } }));
  if (s.tokenizerConfig !== undefined) fs.writeFileSync(path.join(dir, "tokenizer_config.json"), JSON.stringify(s.tokenizerConfig));
  if (s.generationConfig !== undefined) fs.writeFileSync(path.join(dir, "generation_config.json"), JSON.stringify(s.generationConfig));
  if (s.tensors !== undefined) fs.writeFileSync(path.join(dir, "model.safetensors"), buildSafetensors(s.tensors));
  if (s.shards !== undefined) {
    const weightMap: Record<string, string> = {};
    for (const [file, entries] of Object.entries(s.shards)) {
      fs.writeFileSync(path.join(dir, file), buildSafetensors(entries));
      for (const e of entries) weightMap[e.name] = file;
    }
    fs.writeFileSync(path.join(dir, "model.safetensors.index.json"), JSON.stringify(s.index ?? { metadata: {}, weight_map: weightMap }));
  }
  return dir;
}

/** Tiny llama-family config: 2 layers, hidden 16, 4 heads of 4, 2 KV heads. */
function tinyConfig(over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    architectures: ["LlamaForCausalLM"],
    hidden_size: 16,
    intermediate_size: 24,
    num_hidden_layers: 2,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    max_position_embeddings: 128,
    rms_norm_eps: 1e-6,
    rope_theta: 10000,
    vocab_size: 10,
    ...over,
  };
}

function tinyTensors(seed: number, dtype = "F32", opts: { bias?: boolean; lmHead?: boolean } = {}): StEntry[] {
  const rand = prng(seed);
  const es = dtype === "F32" ? 4 : 2;
  const t = (name: string, shape: number[]): StEntry => ({ name, dtype, shape, data: randomBytes(rand, shape.reduce((a, b) => a * b, 1) * es) });
  const out = [t("model.embed_tokens.weight", [10, 16]), t("model.norm.weight", [16])];
  if (opts.lmHead !== false) out.push(t("lm_head.weight", [10, 16]));
  for (let l = 0; l < 2; l++) {
    const p = `model.layers.${l}`;
    out.push(t(`${p}.self_attn.q_proj.weight`, [16, 16]), t(`${p}.self_attn.k_proj.weight`, [8, 16]), t(`${p}.self_attn.v_proj.weight`, [8, 16]), t(`${p}.self_attn.o_proj.weight`, [16, 16]));
    if (opts.bias === true) out.push(t(`${p}.self_attn.q_proj.bias`, [16]), t(`${p}.self_attn.k_proj.bias`, [8]), t(`${p}.self_attn.v_proj.bias`, [8]));
    out.push(t(`${p}.mlp.gate_proj.weight`, [24, 16]), t(`${p}.mlp.up_proj.weight`, [24, 16]), t(`${p}.mlp.down_proj.weight`, [16, 24]));
    out.push(t(`${p}.input_layernorm.weight`, [16]), t(`${p}.post_attention_layernorm.weight`, [16]));
  }
  return out;
}

/** Rows of `e` (outermost dim) reordered by LlamaModel.permute. */
function permuteRef(e: StEntry, nHead: number): Uint8Array {
  const rows = e.shape[0] as number;
  const rowBytes = e.data.length / rows;
  const out = new Uint8Array(e.data.length);
  for (let r = 0; r < rows; r++) {
    const src = sourceRow(r, rows / nHead);
    out.set(e.data.subarray(src * rowBytes, (src + 1) * rowBytes), r * rowBytes);
  }
  return out;
}

test("sharded folder: weight_map shards, same tensors as a single file; missing shard is a clear error", () => {
  const root = tmpDir("hf-shards");
  try {
    const single = openSafetensors(path.join(STORIES_HF, "model.safetensors"));
    const entries: StEntry[] = single.header.tensors.map((t) => ({ name: t.name, dtype: t.dtype, shape: t.shape, data: readAll(single.weights, t.name) }));
    single.weights.close();
    const half = Math.floor(entries.length / 2);
    const dir = path.join(root, "stories-sharded");
    const shards = { "model-00001-of-00002.safetensors": entries.slice(0, half), "model-00002-of-00002.safetensors": entries.slice(half) };
    const base = (n: string) => fs.readFileSync(path.join(STORIES_HF, n), "utf8");
    fs.mkdirSync(dir);
    for (const n of ["config.json", "tokenizer.json", "tokenizer_config.json", "generation_config.json"]) fs.writeFileSync(path.join(dir, n), base(n));
    const weightMap: Record<string, string> = {};
    for (const [file, es] of Object.entries(shards)) {
      fs.writeFileSync(path.join(dir, file), buildSafetensors(es));
      for (const e of es) weightMap[e.name] = file;
    }
    fs.writeFileSync(path.join(dir, "model.safetensors.index.json"), JSON.stringify({ metadata: { total_size: 0 }, weight_map: weightMap }));

    const h = openHfFolder(dir);
    const g = openGguf(STORIES_GGUF);
    assert.deepEqual(h.shards, Object.keys(shards));
    for (const t of g.weights.tensors) assert.ok(Buffer.compare(readAll(g.weights, t.name), readAll(h.weights, t.name)) === 0, t.name);
    assert.equal(h.metadata.get("general.name"), "Stories Sharded");
    h.weights.close();
    g.weights.close();

    fs.renameSync(path.join(dir, "model-00002-of-00002.safetensors"), path.join(root, "moved"));
    throwsA(() => openHfFolder(dir), FileError, /missing weight shard .*model-00002-of-00002\.safetensors.* listed in model\.safetensors\.index\.json/);
    fs.renameSync(path.join(root, "moved"), path.join(dir, "model-00002-of-00002.safetensors"));

    const idx = path.join(dir, "model.safetensors.index.json");
    fs.writeFileSync(idx, JSON.stringify({ weight_map: { ...weightMap, "model.norm.weight": "model-00001-of-00002.safetensors" } }));
    throwsA(() => openHfFolder(dir), ModelFormatError, /model\.norm\.weight: tensor listed in the index is missing from its shard/);
    fs.writeFileSync(idx, JSON.stringify({ weight_map: { ...weightMap, x: "../../etc/passwd" } }));
    throwsA(() => openHfFolder(dir), ModelFormatError, /bad shard file name/);
    fs.writeFileSync(idx, "{}");
    throwsA(() => openHfFolder(dir), ModelFormatError, /weight_map/);
    // A corrupt shard is reported with the shard's path.
    fs.writeFileSync(idx, JSON.stringify({ weight_map: weightMap }));
    fs.writeFileSync(path.join(dir, "model-00001-of-00002.safetensors"), new Uint8Array(10));
    throwsA(() => openHfFolder(dir), ModelFormatError, /model-00001-of-00002\.safetensors: bad safetensors header/);
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});

test("Llama with biases and BF16: Q/K weights and biases permuted, others passed through", () => {
  const root = tmpDir("hf-llama");
  try {
    const tensors = tinyTensors(5, "BF16", { bias: true });
    const dir = writeFolder(path.join(root, "m"), { config: tinyConfig({ attention_bias: true, torch_dtype: "bfloat16" }), tensors });
    const h = openHfFolder(dir);
    try {
      const by = new Map(tensors.map((e) => [e.name, e]));
      const get = (n: string) => by.get(n) as StEntry;
      assert.deepEqual(readAll(h.weights, "blk.1.attn_q.weight"), permuteRef(get("model.layers.1.self_attn.q_proj.weight"), 4));
      assert.deepEqual(readAll(h.weights, "blk.1.attn_k.weight"), permuteRef(get("model.layers.1.self_attn.k_proj.weight"), 2));
      assert.deepEqual(readAll(h.weights, "blk.0.attn_q.bias"), permuteRef(get("model.layers.0.self_attn.q_proj.bias"), 4));
      assert.deepEqual(readAll(h.weights, "blk.0.attn_k.bias"), permuteRef(get("model.layers.0.self_attn.k_proj.bias"), 2));
      assert.deepEqual(readAll(h.weights, "blk.0.attn_v.weight"), get("model.layers.0.self_attn.v_proj.weight").data);
      assert.deepEqual(readAll(h.weights, "blk.0.attn_v.bias"), get("model.layers.0.self_attn.v_proj.bias").data);
      assert.deepEqual(readAll(h.weights, "blk.0.attn_output.weight"), get("model.layers.0.self_attn.o_proj.weight").data);
      assert.deepEqual(readAll(h.weights, "blk.1.ffn_down.weight"), get("model.layers.1.mlp.down_proj.weight").data);
      assert.deepEqual(h.weights.get("blk.1.ffn_down.weight")?.dims, [24, 16]);
      assert.deepEqual(h.weights.get("blk.0.attn_k.weight")?.dims, [16, 8]);
      assert.ok(h.weights.tensors.every((t) => t.type === GgmlType.BF16));
      assert.equal(h.metadata.get("general.file_type"), 32);
      assert.equal(h.metadata.has("llama.attention.key_length"), false, "no head_dim in config");
      assert.equal(h.metadata.get("llama.rope.dimension_count"), 4);
      assert.deepEqual(
        h.weights.tensors.map((t) => t.name).filter((n) => !n.startsWith("blk.")),
        ["output.weight", "token_embd.weight", "output_norm.weight"],
      );
    } finally {
      h.weights.close();
    }
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});

test("Qwen2: arch qwen2, no Q/K permutation, biases mapped, tied embeddings have no output.weight", () => {
  const root = tmpDir("hf-qwen2");
  try {
    const tensors = tinyTensors(9, "F16", { bias: true, lmHead: false });
    const dir = writeFolder(path.join(root, "Qwen2.5-0.5B-Instruct"), {
      config: tinyConfig({ architectures: ["Qwen2ForCausalLM"], tie_word_embeddings: true, use_sliding_window: false, sliding_window: 32768, rope_theta: 1000000 }),
      tensors,
      tokenizer: { added_tokens: [{ id: 8, content: "<|endoftext|>" }, { id: 9, content: "<|im_end|>" }] },
      tokenizerConfig: { eos_token: "<|im_end|>", pad_token: "<|endoftext|>", bos_token: null, chat_template: "{% for m in messages %}{{m.content}}{% endfor %}" },
      generationConfig: { bos_token_id: 8, eos_token_id: [9, 8] },
    });
    const h = openHfFolder(dir);
    try {
      const md = h.metadata;
      assert.equal(md.get("general.architecture"), "qwen2");
      assert.equal(md.get("general.name"), "Qwen2.5 0.5B Instruct");
      assert.equal(md.get("qwen2.rope.freq_base"), 1000000);
      assert.equal(md.has("qwen2.vocab_size"), false);
      assert.equal(md.has("qwen2.rope.dimension_count"), false);
      assert.equal(md.get("tokenizer.ggml.eos_token_id"), 9);
      assert.equal(md.get("tokenizer.ggml.padding_token_id"), 8);
      assert.equal(md.get("tokenizer.ggml.bos_token_id"), 8, "from generation_config");
      assert.equal(md.get("tokenizer.chat_template"), "{% for m in messages %}{{m.content}}{% endfor %}");
      assert.equal(md.get("general.file_type"), 1);
      const q = tensors.find((e) => e.name === "model.layers.0.self_attn.q_proj.weight") as StEntry;
      assert.deepEqual(readAll(h.weights, "blk.0.attn_q.weight"), q.data);
      const kb = tensors.find((e) => e.name === "model.layers.1.self_attn.k_proj.bias") as StEntry;
      assert.deepEqual(readAll(h.weights, "blk.1.attn_k.bias"), kb.data);
      assert.equal(h.weights.get("output.weight"), undefined);
    } finally {
      h.weights.close();
    }
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});

/** The llama3 factors in float64, for comparison. */
function llama3Ref(base: number, dim: number, factor: number, low: number, high: number, old: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < dim; i += 2) {
    const freq = 1 / Math.pow(base, i / dim);
    const wavelen = (2 * Math.PI) / freq;
    if (wavelen < old / high) out.push(1);
    else if (wavelen > old / low) out.push(factor);
    else {
      const smooth = (old / wavelen - low) / (high - low);
      out.push(1 / ((1 - smooth) / factor + smooth));
    }
  }
  return out;
}

test("rope scaling: llama3 → rope_freqs.weight; linear → keys; others unsupported", () => {
  // Llama 3.1 8B parameters.
  const f = llama3RopeFactors({ base: 500000, dim: 128, factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalContext: 8192 });
  const ref = llama3Ref(500000, 128, 8, 1, 4, 8192);
  assert.equal(f.length, 64);
  f.forEach((v, i) => assert.ok(Math.abs(v - (ref[i] as number)) <= 1e-6 * (ref[i] as number), `factor ${i}: ${v} vs ${ref[i]}`));
  assert.equal(f[0], 1);
  assert.equal(f[63], 8);
  assert.ok(f.some((v) => v > 1 && v < 8));

  const root = tmpDir("hf-rope");
  try {
    const rope = { rope_type: "llama3", factor: 32, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 64 };
    const dir = writeFolder(path.join(root, "l3"), { config: tinyConfig({ rope_scaling: rope, rope_theta: 500000 }), tensors: tinyTensors(2) });
    const h = openHfFolder(dir);
    const info = h.weights.get("rope_freqs.weight");
    assert.deepEqual(info, { name: "rope_freqs.weight", type: GgmlType.F32, dims: [2], nbytes: 8 });
    assert.equal(h.weights.tensors[0]?.name, "rope_freqs.weight", "generated tensors come first, as in the converter");
    const got = new Float32Array(readAll(h.weights, "rope_freqs.weight").buffer);
    assert.deepEqual(Array.from(got), Array.from(llama3RopeFactors({ base: 500000, dim: 4, factor: 32, lowFreqFactor: 1, highFreqFactor: 4, originalContext: 64 })));
    assert.equal(h.metadata.has("llama.rope.scaling.type"), false);
    h.weights.close();

    // transformers >= 5 spells it rope_parameters, with rope_theta inside.
    const dir5 = writeFolder(path.join(root, "l3v5"), { config: tinyConfig({ rope_parameters: { ...rope, rope_theta: 500000 }, rope_theta: undefined }), tensors: tinyTensors(2) });
    const h5 = openHfFolder(dir5);
    assert.equal(h5.metadata.get("llama.rope.freq_base"), 500000);
    assert.ok(h5.weights.get("rope_freqs.weight") !== undefined);
    h5.weights.close();

    const lin = writeFolder(path.join(root, "lin"), { config: tinyConfig({ rope_scaling: { type: "linear", factor: 2.5 } }), tensors: tinyTensors(2) });
    const hl = openHfFolder(lin);
    assert.equal(hl.metadata.get("llama.rope.scaling.type"), "linear");
    assert.equal(hl.metadata.get("llama.rope.scaling.factor"), 2.5);
    assert.equal(hl.metadata.entries.get("llama.rope.scaling.factor")?.type, GgufValueType.FLOAT32);
    hl.weights.close();

    for (const type of ["yarn", "dynamic", "longrope"]) {
      const d = writeFolder(path.join(root, type), { config: tinyConfig({ rope_scaling: { rope_type: type, factor: 4, original_max_position_embeddings: 64 } }), tensors: tinyTensors(2) });
      throwsA(() => openHfFolder(d), UnsupportedError, new RegExp(`rope scaling type "${type}"`));
    }
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});

test("Mistral: sliding window only when it covers the context; special tokens from tokenizer_config", () => {
  const root = tmpDir("hf-mistral");
  try {
    const tok = { added_tokens: [{ id: 1, content: "<s>" }, { id: 2, content: "</s>" }, { id: 0, content: "<unk>" }], post_processor: { type: "TemplateProcessing", single: [{ SpecialToken: { id: "<s>" } }, { Sequence: { id: "A" } }] } };
    const ok = writeFolder(path.join(root, "ok"), {
      config: tinyConfig({ architectures: ["MistralForCausalLM"], sliding_window: null, bos_token_id: 5, eos_token_id: 6 }),
      tensors: tinyTensors(3),
      tokenizer: tok,
      tokenizerConfig: { bos_token: { content: "<s>" }, eos_token: "</s>", unk_token: "<unk>", add_prefix_space: false },
    });
    const h = openHfFolder(ok);
    assert.equal(h.metadata.get("general.architecture"), "llama");
    assert.equal(h.metadata.get("tokenizer.ggml.bos_token_id"), 1, "tokenizer_config wins over config.json");
    assert.equal(h.metadata.get("tokenizer.ggml.eos_token_id"), 2);
    assert.equal(h.metadata.get("tokenizer.ggml.unknown_token_id"), 0);
    assert.equal(h.metadata.get("tokenizer.ggml.add_bos_token"), true, "from TemplateProcessing");
    assert.equal(h.metadata.get("tokenizer.ggml.add_space_prefix"), false);
    h.weights.close();
    const wide = writeFolder(path.join(root, "wide"), { config: tinyConfig({ architectures: ["MistralForCausalLM"], sliding_window: 128 }), tensors: tinyTensors(3) });
    openHfFolder(wide).weights.close();
    const swa = writeFolder(path.join(root, "swa"), { config: tinyConfig({ architectures: ["MistralForCausalLM"], sliding_window: 64 }), tensors: tinyTensors(3) });
    throwsA(() => openHfFolder(swa), UnsupportedError, /sliding-window/);
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});

test("folder errors: missing files, unsupported architectures, bad configs, unknown tensors", () => {
  const root = tmpDir("hf-errors");
  try {
    throwsA(() => openHfFolder(path.join(root, "nope")), FileError, /no such file/);
    fs.mkdirSync(path.join(root, "empty"));
    throwsA(() => openHfFolder(path.join(root, "empty")), FileError, /has no config\.json/);
    const noTok = path.join(root, "notok");
    writeFolder(noTok, { config: tinyConfig(), tensors: tinyTensors(1) });
    fs.rmSync(path.join(noTok, "tokenizer.json"));
    throwsA(() => openHfFolder(noTok), FileError, /has no tokenizer\.json/);
    const noWeights = writeFolder(path.join(root, "now"), { config: tinyConfig() });
    throwsA(() => openHfFolder(noWeights), FileError, /has no model\.safetensors/);
    fs.writeFileSync(path.join(noWeights, "pytorch_model.bin"), "x");
    throwsA(() => openHfFolder(noWeights), UnsupportedError, /PyTorch \.bin/);
    const gpt2 = writeFolder(path.join(root, "gpt2"), { config: tinyConfig({ architectures: ["GPT2LMHeadModel"] }), tensors: tinyTensors(1) });
    throwsA(() => openHfFolder(gpt2), UnsupportedError, /architecture GPT2LMHeadModel/);
    const badHidden = writeFolder(path.join(root, "bad"), { config: tinyConfig({ hidden_size: "16" }), tensors: tinyTensors(1) });
    throwsA(() => openHfFolder(badHidden), ModelFormatError, /hidden_size: bad config value/);
    const noLayers = writeFolder(path.join(root, "nol"), { config: tinyConfig({ num_hidden_layers: undefined }), tensors: tinyTensors(1) });
    throwsA(() => openHfFolder(noLayers), ModelFormatError, /missing config value/);
    fs.writeFileSync(path.join(noLayers, "config.json"), "{not json");
    throwsA(() => openHfFolder(noLayers), ModelFormatError, /config\.json: file is not valid JSON/);
    const extra = writeFolder(path.join(root, "extra"), {
      config: tinyConfig(),
      tensors: [...tinyTensors(1), { name: "vision_tower.proj.weight", dtype: "F32", shape: [2], data: new Uint8Array(8) }],
    });
    throwsA(() => openHfFolder(extra), UnsupportedError, /vision_tower\.proj\.weight has no GGUF equivalent/);
    const layer9 = writeFolder(path.join(root, "layer9"), {
      config: tinyConfig(),
      tensors: [...tinyTensors(1), { name: "model.layers.9.input_layernorm.weight", dtype: "F32", shape: [16], data: new Uint8Array(64) }],
    });
    throwsA(() => openHfFolder(layer9), UnsupportedError, /model\.layers\.9/);
    const invFreq = writeFolder(path.join(root, "invfreq"), {
      config: tinyConfig(),
      tensors: [...tinyTensors(1), { name: "model.layers.0.self_attn.rotary_emb.inv_freq", dtype: "F32", shape: [2], data: new Uint8Array(8) }],
    });
    const hi = openHfFolder(invFreq);
    assert.equal(hi.weights.tensors.some((t) => t.name.includes("inv_freq") || t.name.includes("rotary")), false);
    hi.weights.close();
    const i64 = writeFolder(path.join(root, "i64"), {
      config: tinyConfig(),
      tensors: [...tinyTensors(1).filter((t) => t.name !== "model.norm.weight"), { name: "model.norm.weight", dtype: "I64", shape: [16], data: new Uint8Array(128) }],
    });
    throwsA(() => openHfFolder(i64), UnsupportedError, /model\.norm\.weight: safetensors dtype I64/);
    const oddHeads = writeFolder(path.join(root, "odd"), {
      config: tinyConfig({ num_attention_heads: 16, num_key_value_heads: 8 }),
      tensors: tinyTensors(1),
    });
    throwsA(() => openHfFolder(oddHeads), ModelFormatError, /attn_k\.weight: Q\/K rows not divisible/);
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});

test("general.name heuristics follow gguf-py id_to_title", () => {
  assert.equal(idToTitle("stories260K-hf"), "stories260K Hf");
  assert.equal(idToTitle("tiny-llama-v1.1"), "Tiny Llama v1.1");
  assert.equal(idToTitle("Llama-3.2-1B-Instruct"), "Llama 3.2 1B Instruct");
  assert.equal(idToTitle("mistral-7b-instruct"), "Mistral 7b Instruct");
  assert.equal(idToTitle("qwen2.5-coder"), "Qwen2.5 Coder");
  assert.equal(hfModelName("meta-llama/Llama-3.2-1B-Instruct", "snapshot"), "Llama 3.2 1B Instruct");
  assert.equal(hfModelName("/home/me/models/x", "my-model"), "My Model");
});

test("chat templates: tokenizer_config string or list, chat_template.jinja fallback", () => {
  const root = tmpDir("hf-chat");
  try {
    const jinja = writeFolder(path.join(root, "jinja"), { config: tinyConfig(), tensors: tinyTensors(4), tokenizerConfig: { add_bos_token: false } });
    fs.writeFileSync(path.join(jinja, "chat_template.jinja"), "{{ messages[0].content }}\n");
    const h = openHfFolder(jinja);
    assert.equal(h.metadata.get("tokenizer.chat_template"), "{{ messages[0].content }}\n");
    assert.equal(h.metadata.get("tokenizer.ggml.add_bos_token"), false);
    h.weights.close();

    // Without tokenizer_config.json the converter reads no template at all.
    fs.rmSync(path.join(jinja, "tokenizer_config.json"));
    const h2 = openHfFolder(jinja);
    assert.equal(h2.metadata.has("tokenizer.chat_template"), false);
    h2.weights.close();

    const list = writeFolder(path.join(root, "list"), {
      config: tinyConfig(),
      tensors: tinyTensors(4),
      tokenizerConfig: { chat_template: [{ name: "default", template: "D" }, { name: "tool use", template: "T" }, { name: "rag", template: "R" }] },
    });
    const h3 = openHfFolder(list);
    assert.equal(h3.metadata.get("tokenizer.chat_template"), "D");
    assert.equal(h3.metadata.get("tokenizer.chat_template.tool_use"), "T");
    assert.equal(h3.metadata.get("tokenizer.chat_template.rag"), "R");
    assert.deepEqual(h3.metadata.get("tokenizer.chat_templates"), ["tool_use", "rag"]);
    h3.weights.close();
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});
