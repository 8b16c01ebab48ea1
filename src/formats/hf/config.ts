import { ModelFormatError, UnsupportedError } from "../../errors.js";
import { isPlainObject } from "../json.js";
import { GgufValueType, Metadata } from "../metadata.js";
import { HParams, describe } from "./hparams.js";
import { hfModelName } from "./model-name.js";
import { llama3RopeFactors } from "./rope.js";
import { addSpecialTokens } from "./special-tokens.js";

/** What the loader needs besides the metadata. */
export interface HfArchitecture {
  /** config.json `architectures[0]`. */
  readonly hfArch: "LlamaForCausalLM" | "MistralForCausalLM" | "Qwen2ForCausalLM";
  readonly ggufArch: "llama" | "qwen2";
  /** Undo HF's rotate-half permutation of q_proj/k_proj (llama family only). */
  readonly permuteQK: boolean;
  readonly blockCount: number;
  readonly nHead: number;
  readonly nHeadKv: number;
  /** llama3 rope scaling factors, to expose as rope_freqs.weight. */
  readonly ropeFreqs: Float32Array | undefined;
}

export interface HfConfigSources {
  /** config.json. */
  readonly config: unknown;
  readonly configPath: string;
  /** Folder name (general.name fallback). */
  readonly dirName: string;
  readonly tokenizerJson: unknown;
  readonly tokenizerConfig: unknown;
  readonly generationConfig: unknown;
  /** chat_template.jinja text or chat_template.json's template, if present. */
  readonly chatTemplateFile?: unknown;
}

const ARCHES: ReadonlyMap<string, { ggufArch: "llama" | "qwen2"; permuteQK: boolean }> = new Map([
  ["LlamaForCausalLM", { ggufArch: "llama", permuteQK: true }],
  ["MistralForCausalLM", { ggufArch: "llama", permuteQK: true }],
  ["Qwen2ForCausalLM", { ggufArch: "qwen2", permuteQK: false }],
]);

const MAX_U32 = 0xffffffff;

/**
 * Translates config.json (+ tokenizer files) into the GGUF metadata convert_hf_to_gguf.py writes
 * for LlamaModel / Qwen2Model (minus the vocabulary arrays, which the tokenizer layer reads from
 * tokenizer.json). Keys are added in the converter's order.
 */
export function translateHfConfig(src: HfConfigSources): { metadata: Metadata; arch: HfArchitecture } {
  const file = src.configPath;
  if (!isPlainObject(src.config)) {
    throw new ModelFormatError("config.json is not a JSON object", { file, expected: "an object", got: describe(src.config) });
  }
  const hp = new HParams(src.config, file);
  const archs = src.config.architectures;
  const hfArch = Array.isArray(archs) && typeof archs[0] === "string" ? archs[0] : undefined;
  const known = hfArch === undefined ? undefined : ARCHES.get(hfArch);
  if (hfArch === undefined || known === undefined) {
    throw new UnsupportedError(`"${file}": architecture ${hfArch ?? "(none)"} is not supported`, {
      expected: [...ARCHES.keys()].join(", "),
      got: hfArch ?? `architectures = ${describe(archs)}`,
    });
  }
  const { ggufArch, permuteQK } = known;
  const a = ggufArch;
  const md = new Metadata(file);
  const u32 = (key: string, v: number, field: string): void => {
    if (v > MAX_U32) throw new ModelFormatError("config value too large", { file, field, expected: `<= ${MAX_U32}`, got: String(v) });
    md.set(key, GgufValueType.UINT32, v);
  };
  const f32 = (key: string, v: number): void => md.set(key, GgufValueType.FLOAT32, Math.fround(v));

  md.set("general.architecture", GgufValueType.STRING, a);
  md.set("general.type", GgufValueType.STRING, "model");
  const name = hfModelName(src.config._name_or_path, src.dirName);
  if (name !== undefined) md.set("general.name", GgufValueType.STRING, name);

  const blockCount = hp.int(["n_layers", "num_hidden_layers", "n_layer", "num_layers"]);
  u32(`${a}.block_count`, blockCount, "num_hidden_layers");
  const nCtx = hp.optInt(["max_position_embeddings", "n_ctx", "n_positions", "max_length", "max_sequence_length", "model_max_length"]);
  if (nCtx !== undefined) u32(`${a}.context_length`, nCtx, "max_position_embeddings");
  const nEmbd = hp.int(["hidden_size", "n_embd", "dim"]);
  u32(`${a}.embedding_length`, nEmbd, "hidden_size");
  const nFf = hp.int(["prefix_dense_intermediate_size", "dense_intermediate_size", "intermediate_size", "n_inner", "hidden_dim"]);
  u32(`${a}.feed_forward_length`, nFf, "intermediate_size");
  const nHead = hp.int(["num_attention_heads", "n_head", "n_heads"]);
  u32(`${a}.attention.head_count`, nHead, "num_attention_heads");
  const nHeadKvSet = hp.optInt(["num_key_value_heads", "n_kv_heads"]);
  if (nHeadKvSet !== undefined) u32(`${a}.attention.head_count_kv`, nHeadKvSet, "num_key_value_heads");
  const nHeadKv = nHeadKvSet ?? nHead;
  if (nHead % nHeadKv !== 0) {
    throw new ModelFormatError("bad config value", { file, field: "num_key_value_heads", expected: `a divisor of ${nHead}`, got: String(nHeadKv) });
  }

  if (hfArch === "MistralForCausalLM" || (hfArch === "Qwen2ForCausalLM" && src.config.use_sliding_window === true)) {
    const sw = src.config.sliding_window;
    if (sw !== null && sw !== undefined && !(typeof sw === "number" && nCtx !== undefined && sw >= nCtx)) {
      throw new UnsupportedError(`"${file}": sliding-window attention is not supported`, {
        expected: "sliding_window null or >= max_position_embeddings",
        got: `sliding_window ${describe(sw)}, context ${nCtx ?? "unset"}`,
      });
    }
  }

  const headDimSet = hp.optInt(["head_dim"]);
  const headDim = headDimSet ?? Math.floor(nEmbd / nHead);
  const rope = ropeParameters(src.config, hp);
  let ropeFreqs: Float32Array | undefined;
  const ropeType = rope.rope_type ?? rope.type;
  if (ropeType !== undefined && ropeType !== null && ropeType !== "default") {
    const factor = rope.factor;
    if (ropeType === "linear") {
      if (typeof factor !== "number" || !Number.isFinite(factor) || factor <= 0) {
        throw new ModelFormatError("bad rope scaling factor", { file, field: "rope_scaling.factor", expected: "a positive number", got: describe(factor) });
      }
      md.set(`${a}.rope.scaling.type`, GgufValueType.STRING, "linear");
      f32(`${a}.rope.scaling.factor`, factor);
    } else if (typeof ropeType === "string" && ropeType.toLowerCase() === "llama3" && ggufArch === "llama") {
      ropeFreqs = llama3RopeFactors({
        base: ropeNumber(rope, "rope_theta", 10000, file),
        dim: headDim,
        factor: ropeNumber(rope, "factor", 8, file),
        lowFreqFactor: ropeNumber(rope, "low_freq_factor", 1, file),
        highFreqFactor: ropeNumber(rope, "high_freq_factor", 4, file),
        originalContext: ropeNumber(rope, "original_max_position_embeddings", 8192, file),
      });
    } else {
      throw new UnsupportedError(`"${file}": rope scaling type ${describe(ropeType)} is not supported`, {
        expected: "no scaling, linear or llama3 (llama family)",
        got: describe(ropeType),
      });
    }
  }
  if (rope.rope_theta !== undefined && rope.rope_theta !== null) f32(`${a}.rope.freq_base`, ropeNumber(rope, "rope_theta", 0, file));
  const eps = hp.optFloat(["rms_norm_eps", "norm_eps"]);
  if (eps !== undefined) f32(`${a}.attention.layer_norm_rms_epsilon`, eps);
  // NOTE: the converter writes key/value_length whenever config.json has head_dim, even when it
  // equals hidden_size / heads.
  if (headDimSet !== undefined) {
    u32(`${a}.attention.key_length`, headDimSet, "head_dim");
    u32(`${a}.attention.value_length`, headDimSet, "head_dim");
  }
  const vocabSize = hp.optInt(["vocab_size"]);
  if (ggufArch === "llama") {
    if (vocabSize === undefined) {
      throw new ModelFormatError("missing config value", { file, field: "vocab_size", expected: "a positive integer", got: "missing" });
    }
    u32(`${a}.vocab_size`, vocabSize, "vocab_size");
    u32(`${a}.rope.dimension_count`, headDim, "head_dim");
  }

  addSpecialTokens(md, {
    config: src.config,
    tokenizerJson: src.tokenizerJson,
    tokenizerConfig: src.tokenizerConfig,
    generationConfig: src.generationConfig,
    vocabSize,
    chatTemplateFile: src.chatTemplateFile,
  });

  return {
    metadata: md,
    arch: { hfArch: hfArch as HfArchitecture["hfArch"], ggufArch, permuteQK, blockCount, nHead, nHeadKv, ropeFreqs },
  };
}

/**
 * The converter's `rope_parameters`: config `rope_parameters` (transformers >= 5) or
 * `rope_scaling`, with the global `rope_theta` mirrored in when absent.
 */
function ropeParameters(config: Record<string, unknown>, hp: HParams): Record<string, unknown> {
  const rp = config.rope_parameters ?? config.rope_scaling;
  const out: Record<string, unknown> = isPlainObject(rp) ? { ...rp } : {};
  if (isPlainObject(out.full_attention)) return { ...out.full_attention };
  if (out.rope_theta === undefined) {
    const theta = hp.find(["global_rope_theta", "rope_global_theta", "rope_theta_global", "rope_theta", "rotary_emb_base"]);
    if (theta !== undefined) out.rope_theta = theta.value;
  }
  if (out.rope_type === undefined && out.type !== undefined) out.rope_type = out.type;
  if (out.original_max_position_embeddings === undefined && config.original_max_position_embeddings !== undefined) {
    out.original_max_position_embeddings = config.original_max_position_embeddings;
  }
  return out;
}

function ropeNumber(rope: Record<string, unknown>, key: string, fallback: number, file: string): number {
  const v = rope[key];
  if (v === undefined || v === null) return fallback;
  if (typeof v !== "number" || !Number.isFinite(v) || v <= 0) {
    throw new ModelFormatError("bad rope parameter", { file, field: key, expected: "a positive number", got: describe(v) });
  }
  return v;
}
