/** "GGUF" read as a little-endian u32. */
export const GGUF_MAGIC = 0x46554747;
export const GGUF_MAGIC_BYTES = Uint8Array.of(0x47, 0x47, 0x55, 0x46);
/** Version written by our writer. Versions 2 and 3 share one layout (v1 had 32-bit counts). */
export const GGUF_VERSION = 3;
export const GGUF_DEFAULT_ALIGNMENT = 32;
export const GGUF_KEY_ALIGNMENT = "general.alignment";
/** ggml's GGML_MAX_NAME is 64 bytes including the NUL terminator. */
export const GGML_MAX_NAME = 64;
export const GGML_MAX_DIMS = 4;

/**
 * Bounds applied while parsing. Each is far above anything real files use, and low enough that the
 * memory a hostile header can make us allocate stays bounded (see fuzz.test.ts).
 */
export interface GgufLimits {
  /** Bytes in a metadata key. */
  readonly maxKeyBytes: number;
  /** Bytes in one string value (chat templates are the largest real ones, ~100 KB). */
  readonly maxStringBytes: number;
  /** Elements in one metadata array (real vocabularies: up to ~260k). */
  readonly maxArrayElements: number;
  /** Elements over all metadata arrays of a file. A u8 array element costs 8 bytes as a JS number. */
  readonly maxTotalArrayElements: number;
  readonly maxKv: number;
  readonly maxTensors: number;
  readonly maxAlignment: number;
}

export const DEFAULT_GGUF_LIMITS: GgufLimits = {
  maxKeyBytes: 4096,
  maxStringBytes: 64 << 20,
  maxArrayElements: 1 << 24,
  maxTotalArrayElements: 1 << 25,
  maxKv: 1 << 20,
  maxTensors: 1 << 20,
  maxAlignment: 1 << 24,
};

/** Smallest possible encoded KV entry: key length u64, 1-byte key, type u32, 1-byte value. */
export const MIN_KV_BYTES = 8 + 1 + 4 + 1;
/** Smallest possible tensor info: name length u64, 1-byte name, n_dims u32, 1 dim u64, type u32, offset u64. */
export const MIN_TENSOR_INFO_BYTES = 8 + 1 + 4 + 8 + 4 + 8;
