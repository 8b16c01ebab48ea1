export type { DecodeOptions, EncodeOptions, StreamDecoder, Tokenizer } from "./types.js";
export { tokenizerFromMetadata } from "./gguf.js";
export { tokenizerFromJson } from "./hf-json.js";
export { ggufTokenizerFromJson, type GgufTokenizerExport } from "./to-gguf.js";
