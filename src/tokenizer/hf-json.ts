/**
 * Tokenizers from a Hugging Face tokenizer.json (+ tokenizer_config.json), with the semantics of
 * the `tokenizers` crate: added-token splitting, normalizer, pre-tokenizer, BPE model,
 * post-processor (BOS/EOS), decoder chain.
 */
import { ModelFormatError, UnsupportedError } from "../errors.js";
import { BpeMerges, BpeWordMerger } from "./bpe.js";
import {
  compileDecoder,
  compileNormalizer,
  compilePreTokenizer,
  type DecoderSpec,
  type DecToken,
  type Normalizer,
  type PreTokenizer,
} from "./hf-components.js";
import { isObject, type JsonObject, JsonReader } from "./json-read.js";
import { type AddedText, maskRanges, partitionLeftmostLongest } from "./special-split.js";
import { BytePipeline, decodePieces } from "./stream-decoder.js";
import type { DecodeOptions, EncodeOptions, StreamDecoder, Tokenizer } from "./types.js";
import { hex2, toWellFormed, utf8Encode } from "./unicode.js";
import { checkTokenId, EMPTY_BYTES, EOG_TEXTS } from "./vocab.js";

const MAX_TOKENS = 1 << 24;
const MAX_MERGES = 1 << 24;
const WORD_CACHE_LIMIT = 100_000;
const WORD_CACHE_MAX_LEN = 64;
/** Words longer than this are cut into independent segments before merging (see bpeWord). */
const SEGMENT_MIN_LEN = 128;
const META = "\u2581";

// Token kinds by id.
const HOLE = 0;
const MODEL = 1;
const ADDED = 2;
const ADDED_SPECIAL = 3;

const BOS_NAMES = ["<s>", "<|begin_of_text|>", "<bos>", "<|startoftext|>"];
const EOS_NAMES = ["</s>", "<|end_of_text|>", "<|endoftext|>", "<eos>", "<|im_end|>"];

export function tokenizerFromJson(tokenizerJson: unknown, tokenizerConfig?: unknown, source = "tokenizer.json"): Tokenizer {
  return HfTokenizer.fromJson(tokenizerJson, tokenizerConfig, source);
}

interface PostProcess {
  prefix: number[];
  suffix: number[];
}

function tokenContent(r: JsonReader, v: unknown, field: string): string | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v === "string") return v;
  if (isObject(v)) return r.string(v["content"], field + ".content");
  return r.fail(field, "a token string or {content}", v);
}

export class HfTokenizer implements Tokenizer {
  readonly kind: "spm" | "bpe";
  readonly vocabSize: number;
  readonly bosId: number | undefined;
  readonly eosId: number | undefined;
  readonly addBos: boolean;
  readonly addEos: boolean;
  readonly eogIds: ReadonlySet<number>;

  private readonly texts: string[];
  private readonly kinds: Uint8Array;
  private readonly vocab: Map<string, number>;
  private readonly merger: BpeWordMerger;
  private readonly byteFallback: boolean;
  private readonly byteIds = new Int32Array(256).fill(-1);
  private readonly unkId: number | undefined;
  private readonly fuseUnk: boolean;
  private readonly ignoreMerges: boolean;
  private readonly normalizer: Normalizer;
  private readonly preTokenizer: PreTokenizer;
  private readonly decoder: DecoderSpec;
  private readonly addedAll: readonly AddedText[];
  private readonly addedPlain: readonly AddedText[];
  private readonly prefix: readonly number[];
  private readonly suffix: readonly number[];
  private readonly wordCache = new Map<string, readonly number[]>();
  private readonly segmentCache = new Map<string, readonly number[]>();
  // Pieces as rendered after the first position (Metaspace treats position 0 differently).
  private readonly pieceCache: (Uint8Array | undefined)[];
  /** UTF-16 units some token has right before a U+2581; undefined: never cut words. */
  private readonly joinsMeta: Set<number> | undefined;

  private constructor(root: JsonObject, config: JsonObject | undefined, r: JsonReader) {
    const model = r.object(root["model"], "model");
    const type = model["type"] === undefined ? (model["merges"] !== undefined ? "BPE" : undefined) : r.string(model["type"], "model.type");
    if (type !== "BPE") {
      throw new UnsupportedError(`unsupported tokenizer.json model: ${type ?? "unknown"}`, {
        expected: "model.type BPE",
        got: String(type),
      });
    }
    const dropout = model["dropout"];
    if (dropout !== undefined && dropout !== null && dropout !== 0) {
      throw new UnsupportedError("unsupported tokenizer.json BPE option: dropout", { expected: "null", got: String(dropout) });
    }
    for (const k of ["continuing_subword_prefix", "end_of_word_suffix"]) {
      const v = model[k];
      if (v !== undefined && v !== null && v !== "") {
        throw new UnsupportedError(`unsupported tokenizer.json BPE option: ${k}`, { expected: "null", got: JSON.stringify(v) });
      }
    }

    // Vocabulary: the model's, then the added tokens (which may extend or alias it).
    const rawVocab = r.object(model["vocab"], "model.vocab");
    const vocab = new Map<string, number>();
    let size = 0;
    const byId = new Map<number, string>();
    for (const [text, idv] of Object.entries(rawVocab)) {
      const id = r.uint(idv, `model.vocab[${JSON.stringify(text)}]`, MAX_TOKENS - 1);
      const prev = byId.get(id);
      if (prev !== undefined) r.fail(`model.vocab[${JSON.stringify(text)}]`, "unique ids", `id ${id} also used by ${JSON.stringify(prev)}`);
      byId.set(id, text);
      vocab.set(text, id);
      if (id + 1 > size) size = id + 1;
    }
    const added: { id: number; text: string; special: boolean; lstrip: boolean; rstrip: boolean; singleWord: boolean }[] = [];
    const rawAdded = root["added_tokens"] === undefined || root["added_tokens"] === null ? [] : r.array(root["added_tokens"], "added_tokens");
    rawAdded.forEach((a, i) => {
      const f = `added_tokens[${i}]`;
      const o = r.object(a, f);
      const id = r.uint(o["id"], f + ".id", MAX_TOKENS - 1);
      added.push({
        id,
        text: r.string(o["content"], f + ".content"),
        special: r.bool(o["special"], f + ".special", false),
        lstrip: r.bool(o["lstrip"], f + ".lstrip", false),
        rstrip: r.bool(o["rstrip"], f + ".rstrip", false),
        singleWord: r.bool(o["single_word"], f + ".single_word", false),
      });
      if (id + 1 > size) size = id + 1;
    });
    if (size === 0) r.fail("model.vocab", "a non-empty vocabulary", "0 tokens");
    this.vocabSize = size;
    this.texts = new Array<string>(size).fill("");
    this.kinds = new Uint8Array(size);
    for (const [text, id] of vocab) {
      this.texts[id] = text;
      this.kinds[id] = MODEL;
    }
    for (const a of added) {
      this.texts[a.id] = a.text;
      this.kinds[a.id] = a.special ? ADDED_SPECIAL : ADDED;
    }
    this.vocab = vocab;
    this.pieceCache = new Array<Uint8Array | undefined>(size);
    const toAdded = (a: (typeof added)[number]): AddedText => ({ id: a.id, text: a.text, lstrip: a.lstrip, rstrip: a.rstrip, singleWord: a.singleWord });
    this.addedAll = added.map(toAdded);
    this.addedPlain = added.filter((a) => !a.special).map(toAdded);

    // Model options and merges.
    this.byteFallback = r.bool(model["byte_fallback"], "model.byte_fallback", false);
    this.fuseUnk = r.bool(model["fuse_unk"], "model.fuse_unk", false);
    this.ignoreMerges = r.bool(model["ignore_merges"], "model.ignore_merges", false);
    const unk = r.optString(model["unk_token"], "model.unk_token");
    if (unk !== undefined) {
      const id = vocab.get(unk);
      if (id === undefined) r.fail("model.unk_token", "a token of model.vocab", unk);
      this.unkId = id;
    }
    for (let b = 0; b < 256; b++) this.byteIds[b] = vocab.get(`<0x${hex2(b)}>`) ?? -1;

    const rawMerges = model["merges"] === undefined || model["merges"] === null ? [] : r.array(model["merges"], "model.merges");
    if (rawMerges.length > MAX_MERGES) r.fail("model.merges", `at most ${MAX_MERGES} merges`, `${rawMerges.length}`);
    const merges = new BpeMerges(vocab, size);
    rawMerges.forEach((m, rank) => {
      const f = `model.merges[${rank}]`;
      let a: string;
      let b: string;
      if (typeof m === "string") {
        const pos = m.indexOf(" ");
        if (pos === -1) r.fail(f, 'a merge "left right"', m);
        a = m.slice(0, pos);
        b = m.slice(pos + 1);
      } else {
        const pair = r.array(m, f);
        if (pair.length !== 2) r.fail(f, "a pair [left, right]", pair);
        a = r.string(pair[0], f + "[0]");
        b = r.string(pair[1], f + "[1]");
      }
      const ia = vocab.get(a);
      const ib = vocab.get(b);
      const ic = vocab.get(a + b);
      if (ia === undefined || ib === undefined || ic === undefined) {
        throw new ModelFormatError("merge refers to a token missing from the vocabulary", {
          file: r.source,
          field: f,
          expected: "left, right and their concatenation in model.vocab",
          got: JSON.stringify([a, b]),
        });
      }
      merges.add(ia, ib, ic, rank);
    });
    // NOTE: Hugging Face collects merges into a HashMap: a repeated pair keeps its last rank.
    merges.finish("last");
    this.merger = new BpeWordMerger(merges);

    // Long words (SentencePiece-style tokenizers without a pre-tokenizer see the whole text as one
    // word) are cut before a U+2581 whose preceding character never precedes one inside a token:
    // every merge result is a token, so no merge can cross such a cut. A '>' before U+2581 could be
    // the end of a byte-fallback or unknown-token text, which does not show in the input: then we
    // never cut.
    let joins: Set<number> | undefined = vocab.has(META) ? new Set<number>() : undefined;
    for (const t of vocab.keys()) {
      if (joins === undefined) break;
      for (let i = t.indexOf(META, 1); i !== -1; i = t.indexOf(META, i + 1)) {
        const c = t.charCodeAt(i - 1);
        if (c === 0x3e) {
          joins = undefined;
          break;
        }
        joins.add(c);
      }
    }
    this.joinsMeta = joins;

    this.normalizer = compileNormalizer(r, root["normalizer"]);
    const pre = compilePreTokenizer(r, root["pre_tokenizer"]);
    this.preTokenizer = pre.fn;
    this.decoder = compileDecoder(r, root["decoder"]);
    const post = this.compilePostProcessor(r, root["post_processor"], "post_processor");
    this.kind = this.byteFallback || pre.metaspace || this.decoder.metaspace ? "spm" : "bpe";

    // BOS/EOS: tokenizer_config.json first, then the post-processor template, then common names.
    const cr = new JsonReader(r.source.replace(/tokenizer\.json$/, "tokenizer_config.json"));
    const idOf = (text: string | undefined): number | undefined => {
      if (text === undefined) return undefined;
      for (const a of added) if (a.text === text) return a.id;
      return vocab.get(text);
    };
    const byName = (names: readonly string[]): number | undefined => {
      for (const n of names) {
        const id = idOf(n);
        if (id !== undefined) return id;
      }
      return undefined;
    };
    const cfgBos = config === undefined ? undefined : tokenContent(cr, config["bos_token"], "bos_token");
    const cfgEos = config === undefined ? undefined : tokenContent(cr, config["eos_token"], "eos_token");
    const bos = idOf(cfgBos) ?? post.prefix[0] ?? byName(BOS_NAMES);
    const eos = idOf(cfgEos) ?? post.suffix[post.suffix.length - 1] ?? byName(EOS_NAMES);
    this.bosId = bos;
    this.eosId = eos;
    const cfgAddBos = config?.["add_bos_token"];
    const cfgAddEos = config?.["add_eos_token"];
    if (cfgAddBos !== undefined || cfgAddEos !== undefined) {
      // transformers rebuilds the template from these flags (LlamaTokenizerFast.update_post_processor).
      this.addBos = cr.bool(cfgAddBos, "add_bos_token", bos !== undefined && post.prefix.includes(bos));
      this.addEos = cr.bool(cfgAddEos, "add_eos_token", eos !== undefined && post.suffix.includes(eos));
      if (this.addBos && bos === undefined) cr.fail("add_bos_token", "a bos_token", "none");
      if (this.addEos && eos === undefined) cr.fail("add_eos_token", "an eos_token", "none");
      this.prefix = this.addBos && bos !== undefined ? [bos] : [];
      this.suffix = this.addEos && eos !== undefined ? [eos] : [];
    } else {
      this.addBos = bos !== undefined && post.prefix.includes(bos);
      this.addEos = eos !== undefined && post.suffix.includes(eos);
      this.prefix = post.prefix;
      this.suffix = post.suffix;
    }

    const eog = new Set<number>();
    if (eos !== undefined) eog.add(eos);
    for (const t of EOG_TEXTS) {
      const id = idOf(t);
      if (id !== undefined) eog.add(id);
    }
    this.eogIds = eog;
  }

  static fromJson(tokenizerJson: unknown, tokenizerConfig: unknown, source: string): HfTokenizer {
    const r = new JsonReader(source);
    const root = r.object(tokenizerJson, "(root)");
    let config: JsonObject | undefined;
    if (tokenizerConfig !== undefined && tokenizerConfig !== null) {
      config = new JsonReader(source.replace(/tokenizer\.json$/, "tokenizer_config.json")).object(tokenizerConfig, "(root)");
    }
    return new HfTokenizer(root, config, r);
  }

  private compilePostProcessor(r: JsonReader, v: unknown, field: string): PostProcess {
    if (v === undefined || v === null) return { prefix: [], suffix: [] };
    const o = r.object(v, field);
    const type = r.string(o["type"], field + ".type");
    switch (type) {
      case "ByteLevel":
        return { prefix: [], suffix: [] };
      case "Sequence": {
        let prefix: number[] = [];
        let suffix: number[] = [];
        r.array(o["processors"], field + ".processors").forEach((p, i) => {
          const pp = this.compilePostProcessor(r, p, `${field}.processors[${i}]`);
          prefix = [...pp.prefix, ...prefix];
          suffix = [...suffix, ...pp.suffix];
        });
        return { prefix, suffix };
      }
      case "RobertaProcessing":
      case "BertProcessing": {
        const pairId = (k: string): number => {
          const p = r.array(o[k], `${field}.${k}`);
          return r.uint(p[1], `${field}.${k}[1]`, this.vocabSize - 1);
        };
        return { prefix: [pairId("cls")], suffix: [pairId("sep")] };
      }
      case "TemplateProcessing": {
        const specials = r.object(o["special_tokens"] ?? {}, field + ".special_tokens");
        const prefix: number[] = [];
        const suffix: number[] = [];
        let seenA = false;
        r.array(o["single"], field + ".single").forEach((piece, i) => {
          const f = `${field}.single[${i}]`;
          const po = r.object(piece, f);
          if (po["Sequence"] !== undefined) {
            seenA = true;
            return;
          }
          const st = r.object(po["SpecialToken"], f + ".SpecialToken");
          const name = r.string(st["id"], f + ".SpecialToken.id");
          const entry = r.object(specials[name], `${field}.special_tokens[${JSON.stringify(name)}]`);
          const ids = r.array(entry["ids"], `${field}.special_tokens[${JSON.stringify(name)}].ids`).map((x, k) =>
            r.uint(x, `${field}.special_tokens[${JSON.stringify(name)}].ids[${k}]`, this.vocabSize - 1),
          );
          (seenA ? suffix : prefix).push(...ids);
        });
        return { prefix, suffix };
      }
      default:
        throw new UnsupportedError(`unsupported tokenizer.json post-processor: ${type}`, {
          expected: "TemplateProcessing, ByteLevel, RobertaProcessing, BertProcessing or Sequence",
          got: type,
        });
    }
  }

  // ---- encoding ----

  encode(text: string, opts: EncodeOptions = {}): number[] {
    const s = toWellFormed(text);
    const frags = partitionLeftmostLongest(maskRanges(s, opts.plainRanges), opts.parseSpecial === true ? this.addedAll : this.addedPlain);
    const out: number[] = [];
    const addSpecial = opts.addSpecial === true;
    if (addSpecial) out.push(...this.prefix);
    for (const f of frags) {
      if ("token" in f) {
        out.push(f.token);
        continue;
      }
      const normalized = this.normalizer(s.slice(f.start, f.end));
      if (normalized.length === 0) continue;
      for (const p of this.preTokenizer([{ text: normalized, atStart: f.start === 0 }])) {
        if (p.text.length > 0) this.encodeWord(p.text, out);
      }
    }
    if (addSpecial) out.push(...this.suffix);
    return out;
  }

  private encodeWord(word: string, out: number[]): void {
    const cached = this.wordCache.get(word);
    if (cached !== undefined) {
      for (const id of cached) out.push(id);
      return;
    }
    const ids = this.bpeWord(word);
    if (word.length <= WORD_CACHE_MAX_LEN) {
      if (this.wordCache.size >= WORD_CACHE_LIMIT) this.wordCache.clear();
      this.wordCache.set(word, ids);
    }
    for (const id of ids) out.push(id);
  }

  /** tokenizers `BPE::tokenize`: ignore_merges, then merge_word + merge_all. */
  private bpeWord(word: string): readonly number[] {
    if (this.ignoreMerges) {
      const id = this.vocab.get(word);
      if (id !== undefined) return [id];
    }
    const joins = this.joinsMeta;
    if (word.length < SEGMENT_MIN_LEN || joins === undefined) return this.mergeWord(word);
    const out: number[] = [];
    let seg = 0;
    const emit = (piece: string): void => {
      let ids = piece.length <= WORD_CACHE_MAX_LEN ? this.segmentCache.get(piece) : undefined;
      if (ids === undefined) {
        ids = this.mergeWord(piece);
        if (piece.length <= WORD_CACHE_MAX_LEN) {
          if (this.segmentCache.size >= WORD_CACHE_LIMIT) this.segmentCache.clear();
          this.segmentCache.set(piece, ids);
        }
      }
      for (const id of ids) out.push(id);
    };
    for (let i = word.indexOf(META, 1); i !== -1; i = word.indexOf(META, i + 1)) {
      if (joins.has(word.charCodeAt(i - 1))) continue;
      emit(word.slice(seg, i));
      seg = i;
    }
    emit(seg === 0 ? word : word.slice(seg));
    return out;
  }

  private mergeWord(word: string): number[] {
    const syms: number[] = [];
    let unkPending = false;
    const flushUnk = (): void => {
      if (unkPending && this.unkId !== undefined) syms.push(this.unkId);
      unkPending = false;
    };
    for (const ch of word) {
      const id = this.vocab.get(ch);
      if (id !== undefined) {
        flushUnk();
        syms.push(id);
        continue;
      }
      if (this.byteFallback) {
        const bytes = utf8Encode(ch);
        const ids: number[] = [];
        for (const b of bytes) {
          const bid = this.byteIds[b] as number;
          if (bid < 0) break;
          ids.push(bid);
        }
        if (ids.length === bytes.length) {
          // NOTE: tokenizers does not flush a pending unknown token here, so it lands after
          // these bytes; kept for fidelity.
          syms.push(...ids);
          continue;
        }
      }
      if (this.unkId === undefined) continue; // no unk token: the character is dropped
      if (unkPending && this.fuseUnk) continue;
      flushUnk();
      unkPending = true;
    }
    flushUnk();
    const a = Int32Array.from(syms);
    const spans = new Int32Array(a.length).fill(1);
    const n = this.merger.merge(a, spans, a.length);
    return Array.from(a.subarray(0, n));
  }

  // ---- decoding ----

  private isRendered(id: number, unparseSpecial: boolean): boolean {
    const k = this.kinds[id] as number;
    return k !== HOLE && (k !== ADDED_SPECIAL || unparseSpecial);
  }

  private render(id: number, index: number): Uint8Array {
    let t: DecToken = this.texts[id] as string;
    for (const step of this.decoder.steps) t = step(t, index);
    return typeof t === "string" ? utf8Encode(t) : t;
  }

  /** The bytes of one token as the decoder chain renders it at position `index`. */
  private pieceAt(id: number, index: number): Uint8Array {
    let bytes: Uint8Array;
    if (index === 0) bytes = this.render(id, 0);
    else {
      const hit = this.pieceCache[id];
      bytes = hit ?? this.render(id, 1);
      if (hit === undefined) this.pieceCache[id] = bytes;
    }
    if (!this.decoder.joinWithSpace || index === 0) return bytes;
    const out = new Uint8Array(bytes.length + 1);
    out[0] = 0x20;
    out.set(bytes, 1);
    return out;
  }

  tokenToPiece(id: number, opts: { unparseSpecial?: boolean } = {}): Uint8Array {
    checkTokenId(id, this.vocabSize);
    if (!this.isRendered(id, opts.unparseSpecial === true)) return new Uint8Array(0);
    // Position 1: a token as it appears after the first one (Metaspace keeps its space).
    return this.render(id, 1).slice();
  }

  decode(ids: readonly number[], opts: DecodeOptions = {}): string {
    let start = 0;
    let end = ids.length;
    if (opts.removeSpecial === true && this.addBos && end > 0 && ids[0] === this.bosId) start = 1;
    if (opts.removeSpecial === true && this.addEos && end > start && ids[end - 1] === this.eosId) end--;
    const unparse = opts.unparseSpecial === true;
    const pieces: Uint8Array[] = [];
    let index = 0;
    for (let i = start; i < end; i++) {
      const id = ids[i] as number;
      checkTokenId(id, this.vocabSize);
      if (!this.isRendered(id, unparse)) continue;
      pieces.push(this.pieceAt(id, index++));
    }
    return decodePieces({ stripStart: this.decoder.stripStart, stripEnd: this.decoder.stripEnd }, pieces);
  }

  createStreamDecoder(opts: { unparseSpecial?: boolean } = {}): StreamDecoder {
    const unparse = opts.unparseSpecial === true;
    const pipeline = new BytePipeline({ stripStart: this.decoder.stripStart, stripEnd: this.decoder.stripEnd });
    let index = 0;
    return {
      push: (id: number): string => {
        checkTokenId(id, this.vocabSize);
        if (!this.isRendered(id, unparse)) return pipeline.push(EMPTY_BYTES);
        return pipeline.push(this.pieceAt(id, index++));
      },
      flush: (): string => pipeline.flush(),
    };
  }

  tokenText(id: number): string {
    checkTokenId(id, this.vocabSize);
    return this.texts[id] as string;
  }

  isControl(id: number): boolean {
    checkTokenId(id, this.vocabSize);
    return this.kinds[id] === ADDED_SPECIAL;
  }
}
