/** The public tokenizer interface, shared by the GGUF and tokenizer.json implementations. */

export interface EncodeOptions {
  /** Add BOS/EOS per the file's settings (`addBos`/`addEos`). Default false. */
  addSpecial?: boolean;
  /**
   * Recognise special/control token text like "<|im_start|>" in the input. Default false: such
   * text stays text. NOTE: user-defined tokens (GGUF type 4, non-special added tokens) are always
   * recognised, as llama.cpp and Hugging Face do.
   */
  parseSpecial?: boolean;
  /**
   * With parseSpecial: ranges [start, end) of the input (UTF-16 offsets) where no special or
   * added token text is recognised (e.g. user message contents inside a rendered chat template).
   * The text is still tokenized as one string, so boundaries tokenize as without the ranges.
   */
  plainRanges?: readonly (readonly [number, number])[];
}

export interface DecodeOptions {
  /** Drop a leading BOS (if `addBos`) and a trailing EOS (if `addEos`), like llama_detokenize. */
  removeSpecial?: boolean;
  /** Render control tokens as their text instead of nothing. */
  unparseSpecial?: boolean;
}

export interface StreamDecoder {
  /** Push one token; returns the text completed so far that was not returned yet. */
  push(id: number): string;
  /** End of stream: returns what was held back (incomplete UTF-8 becomes U+FFFD). */
  flush(): string;
}

export interface Tokenizer {
  /**
   * "spm": SentencePiece-style vocabulary (▁ for spaces, byte-fallback tokens); "bpe": byte-level
   * BPE (GPT-2 alphabet).
   */
  readonly kind: "spm" | "bpe";
  readonly vocabSize: number;
  readonly bosId: number | undefined;
  readonly eosId: number | undefined;
  /** The file's setting (tokenizer.ggml.add_bos_token, or the model kind's default as llama.cpp decides). */
  readonly addBos: boolean;
  readonly addEos: boolean;
  /** End-of-generation ids: eos, eot, eom and the control tokens llama.cpp treats as EOG. */
  readonly eogIds: ReadonlySet<number>;
  /**
   * Token ids of `text`. NOTE: lone UTF-16 surrogates are encoded as U+FFFD, which is what
   * llama.cpp receives from a JavaScript string through node-llama-cpp (N-API's UTF-8 conversion).
   */
  encode(text: string, opts?: EncodeOptions): number[];
  /** Text of a token sequence; invalid UTF-8 becomes U+FFFD. */
  decode(ids: readonly number[], opts?: DecodeOptions): string;
  /** Raw bytes of one token, like llama_token_to_piece (no leading-space stripping). */
  tokenToPiece(id: number, opts?: { unparseSpecial?: boolean }): Uint8Array;
  /**
   * Lossless streaming decode: the pushed texts plus flush() equal decode(all ids) (with the same
   * unparseSpecial), and incomplete UTF-8 sequences are held back instead of becoming U+FFFD.
   */
  createStreamDecoder(opts?: { unparseSpecial?: boolean }): StreamDecoder;
  /** The vocabulary entry as stored. */
  tokenText(id: number): string;
  isControl(id: number): boolean;
}
