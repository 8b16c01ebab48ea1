/** Model families by name, and the architecture → family map. */
import { UnsupportedError } from "../errors.js";
import type { Metadata } from "../formats/metadata.js";
import { type LlamaConfig, llamaConfigFromMetadata } from "./config.js";
import { llama } from "./llama.js";
import type { ModelFamily } from "./ops.js";

export type { LlamaConfig } from "./config.js";
export type * from "./ops.js";

// NOTE: families are stored type-erased; each family's declare/forward agree on their own types.
const FAMILIES: ReadonlyMap<string, ModelFamily<unknown, unknown>> = new Map([
  [llama.name, llama as unknown as ModelFamily<unknown, unknown>],
]);

export function getFamily(name: string): ModelFamily<unknown, unknown> {
  const f = FAMILIES.get(name);
  if (f === undefined) throw new UnsupportedError(`unknown model family "${name}"`);
  return f;
}

/** The family and config for a model's metadata. */
export function resolveModel(meta: Metadata, vocabFromTensor: number | undefined): { family: string; config: LlamaConfig } {
  // Only the Llama family exists so far; its config reader rejects other architectures by name.
  return { family: llama.name, config: llamaConfigFromMetadata(meta, vocabFromTensor) };
}
