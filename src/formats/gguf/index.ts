export { parseGguf, alignUp, type GgufHeader, type GgufTensorInfo, type GgufParseOptions } from "./parse.js";
export { openGguf, ggufModelFile, type GgufModelFile } from "./open.js";
export { writeGguf, type GgufWriterTensor, type GgufWriteOptions, type GgufWriteResult, type TensorData } from "./writer.js";
export { encodeGgufHeader, tensorNbytes, type GgufTensorDesc, type EncodedHeader } from "./encode.js";
export { DEFAULT_GGUF_LIMITS, GGUF_DEFAULT_ALIGNMENT, GGUF_VERSION, type GgufLimits } from "./constants.js";
