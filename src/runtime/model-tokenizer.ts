import type { ModelFile } from "../formats/weights.js";
import { type Tokenizer, tokenizerFromJson, tokenizerFromMetadata } from "../tokenizer/index.js";

/** A model's tokenizer: tokenizer.json for Hugging Face folders, GGUF metadata otherwise. */
export function tokenizerFor(file: ModelFile): Tokenizer {
  return file.tokenizerJson !== undefined
    ? tokenizerFromJson(file.tokenizerJson, file.tokenizerConfig, file.path)
    : tokenizerFromMetadata(file.metadata);
}
