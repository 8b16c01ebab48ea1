/** Token attributes and helpers shared by both tokenizer implementations. */
import { UsageError } from "../errors.js";

// llama.h `llama_token_attr` bits.
export const ATTR_UNDEFINED = 0;
export const ATTR_UNKNOWN = 1 << 0;
export const ATTR_UNUSED = 1 << 1;
export const ATTR_NORMAL = 1 << 2;
export const ATTR_CONTROL = 1 << 3;
export const ATTR_USER_DEFINED = 1 << 4;
export const ATTR_BYTE = 1 << 5;
export const ATTR_NORMALIZED = 1 << 6;
export const ATTR_LSTRIP = 1 << 7;
export const ATTR_RSTRIP = 1 << 8;
export const ATTR_SINGLE_WORD = 1 << 9;

/** GGUF `tokenizer.ggml.token_type` values (llama.h `llama_token_type`) -> attributes. */
export function attrFromTokenType(t: number): number {
  switch (t) {
    case 1:
      return ATTR_NORMAL;
    case 2:
      return ATTR_UNKNOWN;
    case 3:
      return ATTR_CONTROL;
    case 4:
      return ATTR_USER_DEFINED;
    case 5:
      return ATTR_UNUSED;
    case 6:
      return ATTR_BYTE;
    default:
      return ATTR_UNDEFINED;
  }
}

/**
 * Texts llama.cpp marks as end-of-generation (and forces to control type) wherever they appear in
 * a vocabulary (llama-vocab.cpp, "maintain a list of tokens that cause end-of-generation").
 */
export const EOG_TEXTS: ReadonlySet<string> = new Set([
  "<|eot_id|>",
  "<|im_end|>",
  "<|end|>",
  "<|return|>",
  "<|call|>",
  "<|flush|>",
  "<|calls|>",
  "<end_of_turn>",
  "<|endoftext|>",
  "</s>",
  "<|eom_id|>",
  "<EOT>",
  "_<EOT>",
  "[EOT]",
  "[EOS]",
  "<|end_of_text|>",
  "<end_of_utterance>",
  "<eos>",
  "<turn|>",
  "<|tool_response>",
  "<｜end▁of▁sentence｜>",
  "[e~[",
]);

/** Throw a UsageError unless `id` is a token id of a vocabulary of `n` tokens. */
export function checkTokenId(id: number, n: number): void {
  if (!Number.isInteger(id) || id < 0 || id >= n) {
    throw new UsageError("token id out of range", { expected: `an integer in [0, ${n - 1}]`, got: String(id) });
  }
}

export const EMPTY_BYTES = new Uint8Array(0);

/** Concatenate byte pieces. */
export function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}
