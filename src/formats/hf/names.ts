/**
 * Hugging Face Llama/Mistral/Qwen2 tensor names → GGUF names (gguf-py's tensor_mapping for these
 * architectures). Returns null for tensors the converter drops, undefined for unknown names.
 */
export function ggufTensorName(hfName: string, blockCount: number): string | null | undefined {
  if (/\.rotary_emb\.inv_freq$|\.attention\.masked_bias$|\.attention\.bias$/.test(hfName)) return null;
  const fixed = FIXED.get(hfName);
  if (fixed !== undefined) return fixed;
  const m = /^model\.layers\.(\d+)\.(.+)\.(weight|bias)$/.exec(hfName);
  const blk = m?.[1];
  const part = m?.[2];
  const suffix = m?.[3];
  if (blk === undefined || part === undefined || suffix === undefined) return undefined;
  const n = Number(blk);
  if (String(n) !== blk || n >= blockCount) return undefined;
  const g = LAYER.get(part);
  return g === undefined ? undefined : `blk.${n}.${g}.${suffix}`;
}

const FIXED: ReadonlyMap<string, string> = new Map([
  ["model.embed_tokens.weight", "token_embd.weight"],
  ["model.norm.weight", "output_norm.weight"],
  ["lm_head.weight", "output.weight"],
]);

const LAYER: ReadonlyMap<string, string> = new Map([
  ["self_attn.q_proj", "attn_q"],
  ["self_attn.k_proj", "attn_k"],
  ["self_attn.v_proj", "attn_v"],
  ["self_attn.o_proj", "attn_output"],
  ["mlp.gate_proj", "ffn_gate"],
  ["mlp.up_proj", "ffn_up"],
  ["mlp.down_proj", "ffn_down"],
  ["input_layernorm", "attn_norm"],
  ["post_attention_layernorm", "ffn_norm"],
]);
