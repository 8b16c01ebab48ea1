/**
 * Per-tensor types against llama.cpp's llama_model_quantize (node-llama-cpp 3.21.1's libllama,
 * called from a throwaway C program on random-weight 9-layer models): the tables below are the
 * tensors llama.cpp did not give the base type. slimlm's output files were also byte-identical
 * to llama.cpp's for every type listed (docs/quantization.md).
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { UsageError } from "../../src/errors.js";
import { fileTypeSpec, tensorTypeOf } from "../../src/optimize/quant-types.js";
import { type RecipeTensor, fallbackType, parseOverride, planTypes, useMoreBits } from "../../src/optimize/recipe.js";
import { GgmlType, ggmlTypeName } from "../../src/tensor/ggml-type.js";

/** The tensors of a synthesize()d llama model (dims only). */
function model(o: { layers: number; dim: number; ffn: number; kv: number; vocab: number; tied: boolean }): RecipeTensor[] {
  const t: RecipeTensor[] = [{ name: "token_embd.weight", dims: [o.dim, o.vocab], type: GgmlType.F32 }];
  for (let l = 0; l < o.layers; l++) {
    const b = `blk.${l}`;
    t.push(
      { name: `${b}.attn_norm.weight`, dims: [o.dim], type: GgmlType.F32 },
      { name: `${b}.attn_q.weight`, dims: [o.dim, o.dim], type: GgmlType.F32 },
      { name: `${b}.attn_k.weight`, dims: [o.dim, o.kv], type: GgmlType.F32 },
      { name: `${b}.attn_v.weight`, dims: [o.dim, o.kv], type: GgmlType.F32 },
      { name: `${b}.attn_output.weight`, dims: [o.dim, o.dim], type: GgmlType.F32 },
      { name: `${b}.ffn_norm.weight`, dims: [o.dim], type: GgmlType.F32 },
      { name: `${b}.ffn_gate.weight`, dims: [o.dim, o.ffn], type: GgmlType.F32 },
      { name: `${b}.ffn_up.weight`, dims: [o.dim, o.ffn], type: GgmlType.F32 },
      { name: `${b}.ffn_down.weight`, dims: [o.ffn, o.dim], type: GgmlType.F32 },
    );
  }
  t.push({ name: "output_norm.weight", dims: [o.dim], type: GgmlType.F32 });
  if (!o.tied) t.push({ name: "output.weight", dims: [o.dim, o.vocab], type: GgmlType.F32 });
  return t;
}

const UNTIED = model({ layers: 9, dim: 256, ffn: 768, kv: 64, vocab: 32000, tied: false });
const TIED = model({ layers: 9, dim: 256, ffn: 800, kv: 64, vocab: 32000, tied: true });

/** Tensors (without ".weight") llama.cpp gave a type other than the base, by type. */
const LLAMA_CPP: readonly { model: RecipeTensor[]; label: string; type: string; imatrix?: boolean; expect: Record<string, string[]> }[] = [
  { model: UNTIED, label: "untied", type: "q4_0", expect: { q6_k: ["output"] } },
  { model: UNTIED, label: "untied", type: "q4_0", imatrix: true, expect: { q6_k: ["output"], q4_1: ["blk.0.ffn_down"] } },
  { model: UNTIED, label: "untied", type: "q4_k_s", expect: { q6_k: ["output"], q5_k: ["blk.0.attn_v", "blk.0.ffn_down", "blk.1.attn_v", "blk.2.attn_v", "blk.3.attn_v"] } },
  {
    model: UNTIED, label: "untied", type: "q4_k_m",
    expect: { q6_k: ["output", "blk.0.attn_v", "blk.0.ffn_down", "blk.3.attn_v", "blk.3.ffn_down", "blk.6.attn_v", "blk.6.ffn_down", "blk.7.attn_v", "blk.7.ffn_down", "blk.8.attn_v", "blk.8.ffn_down"] },
  },
  {
    model: UNTIED, label: "untied", type: "q5_k_m",
    expect: { q6_k: ["output", "blk.0.attn_v", "blk.0.ffn_down", "blk.3.attn_v", "blk.3.ffn_down", "blk.6.attn_v", "blk.6.ffn_down", "blk.7.attn_v", "blk.7.ffn_down", "blk.8.attn_v", "blk.8.ffn_down"] },
  },
  { model: UNTIED, label: "untied", type: "q6_k", expect: {} },
  { model: UNTIED, label: "untied", type: "q8_0", expect: {} },
  { model: TIED, label: "tied, ffn 800", type: "q4_0", expect: { q6_k: ["token_embd"] } },
  {
    model: TIED, label: "tied, ffn 800", type: "q4_k_s",
    expect: {
      q6_k: ["token_embd"],
      q5_k: ["blk.0.attn_v", "blk.1.attn_v", "blk.2.attn_v", "blk.3.attn_v"],
      q5_1: ["blk.0.ffn_down"],
      q5_0: ["blk.1.ffn_down", "blk.2.ffn_down", "blk.3.ffn_down", "blk.4.ffn_down", "blk.5.ffn_down", "blk.6.ffn_down", "blk.7.ffn_down", "blk.8.ffn_down"],
    },
  },
  {
    model: TIED, label: "tied, ffn 800", type: "q4_k_m",
    expect: {
      q6_k: ["token_embd", "blk.0.attn_v", "blk.3.attn_v", "blk.6.attn_v", "blk.7.attn_v", "blk.8.attn_v"],
      q8_0: ["blk.0.ffn_down", "blk.3.ffn_down", "blk.6.ffn_down", "blk.7.ffn_down", "blk.8.ffn_down"],
      q5_0: ["blk.1.ffn_down", "blk.2.ffn_down", "blk.4.ffn_down", "blk.5.ffn_down"],
    },
  },
  {
    model: TIED, label: "tied, ffn 800", type: "q5_k_m",
    expect: {
      q6_k: ["token_embd", "blk.0.attn_v", "blk.3.attn_v", "blk.6.attn_v", "blk.7.attn_v", "blk.8.attn_v"],
      q8_0: ["blk.0.ffn_down", "blk.3.ffn_down", "blk.6.ffn_down", "blk.7.ffn_down", "blk.8.ffn_down"],
      q5_1: ["blk.1.ffn_down", "blk.2.ffn_down", "blk.4.ffn_down", "blk.5.ffn_down"],
    },
  },
  { model: TIED, label: "tied, ffn 800", type: "q6_k", expect: { q8_0: [0, 1, 2, 3, 4, 5, 6, 7, 8].map((l) => `blk.${l}.ffn_down`) } },
];

function deviations(model: RecipeTensor[], type: string, opts: Partial<Parameters<typeof planTypes>[1]> = {}): Record<string, string[]> {
  const spec = fileTypeSpec(type);
  const plans = planTypes(model, { spec, nLayers: 9, nGqa: 4, arch: "llama", overrides: [], hasImatrix: false, ...opts });
  const out: Record<string, string[]> = {};
  for (const p of plans) {
    if (!p.quantizable) {
      assert.equal(p.to, GgmlType.F32, `${p.name} stays F32`);
      continue;
    }
    if (p.to !== spec.base) (out[ggmlTypeName(p.to)] ??= []).push(p.name.replace(/\.weight$/, ""));
  }
  return out;
}

function sorted(m: Record<string, string[]>): Record<string, string[]> {
  return Object.fromEntries(Object.entries(m).map(([k, v]) => [k, [...v].sort()]).sort(([a], [b]) => (a! < b! ? -1 : 1)));
}

describe("recipes: the same types as llama.cpp's llama-quantize", () => {
  for (const c of LLAMA_CPP) {
    it(`${c.type}${c.imatrix ? " with an importance matrix" : ""}, 9 layers, ${c.label}`, () => {
      assert.deepEqual(sorted(deviations(c.model, c.type, { hasImatrix: c.imatrix === true })), sorted(c.expect));
    });
  }
});

describe("recipe rules", () => {
  it("use_more_bits: first and last eighth, every third in between", () => {
    const n = 32;
    const picked = Array.from({ length: n }, (_, i) => i).filter((i) => useMoreBits(i, n));
    assert.deepEqual(picked, [0, 1, 2, 3, 6, 9, 12, 15, 18, 21, 24, 27, 28, 29, 30, 31]);
  });

  it("fallbacks: K-quants to 32-blocks, then F16, with a note", () => {
    assert.equal(fallbackType(GgmlType.Q4_K, 256).type, GgmlType.Q4_K);
    assert.equal(fallbackType(GgmlType.Q4_K, 64).type, GgmlType.Q5_0);
    assert.equal(fallbackType(GgmlType.Q5_K, 96).type, GgmlType.Q5_1);
    assert.equal(fallbackType(GgmlType.Q6_K, 64).type, GgmlType.Q8_0);
    assert.equal(fallbackType(GgmlType.Q3_K, 64).type, GgmlType.Q4_0);
    const f = fallbackType(GgmlType.Q4_0, 172);
    assert.equal(f.type, GgmlType.F16);
    assert.match(f.note ?? "", /row length 172 is not a multiple of 32.*f16/);
    assert.match(fallbackType(GgmlType.Q4_K, 64).note ?? "", /falling back to q5_0/);
  });

  it("--tensor-type (first match wins), --output-type, --embedding-type, --pure", () => {
    const overrides = [parseOverride("ATTN_V=q8_0", (t) => tensorTypeOf(t, "x")), parseOverride("attn_.=q5_k", (t) => tensorTypeOf(t, "x"))];
    const d = deviations(UNTIED, "q4_k_m", { overrides, outputType: GgmlType.Q8_0, embeddingType: GgmlType.Q6_K });
    assert.equal(d.q8_0?.filter((n) => n.endsWith("attn_v")).length, 9);
    assert.ok(d.q8_0?.includes("output"));
    assert.ok(d.q6_k?.includes("token_embd"));
    assert.equal(d.q5_k?.filter((n) => /attn_(q|k|output)$/.test(n)).length, 27);
    assert.deepEqual(deviations(UNTIED, "q4_k_m", { pure: true }), {});
  });

  it("the 70B rule: attn_v in Q5_K for 80-layer grouped-query llama models", () => {
    const m = model({ layers: 80, dim: 256, ffn: 768, kv: 32, vocab: 256, tied: false });
    const plans = planTypes(m, { spec: fileTypeSpec("q4_k_s"), nLayers: 80, nGqa: 8, arch: "llama", overrides: [], hasImatrix: false });
    const v = plans.filter((p) => p.name.endsWith("attn_v.weight"));
    assert.ok(v.every((p) => p.to === GgmlType.Q5_K));
  });

  it("bad --type, --tensor-type and type names are usage errors", () => {
    assert.throws(() => fileTypeSpec("q3_k_xl"), (e: unknown) => e instanceof UsageError && /unknown quantization type "q3_k_xl"/.test(e.message));
    assert.throws(() => parseOverride("attn_v", (t) => tensorTypeOf(t, "--tensor-type")), UsageError);
    assert.throws(() => parseOverride("attn_v=q9", (t) => tensorTypeOf(t, "--tensor-type")), /unknown tensor type "q9"/);
    assert.throws(() => parseOverride("(=q8_0", (t) => tensorTypeOf(t, "--tensor-type")), /invalid --tensor-type pattern/);
    assert.equal(fileTypeSpec("Q4_K").name, "q4_k_s");
    assert.equal(fileTypeSpec("q5_k").name, "q5_k_s");
  });
});
