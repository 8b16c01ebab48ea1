/**
 * Tokenizers from GGUF metadata (`tokenizer.ggml.*`), behaving as llama.cpp's `llama_vocab`:
 * "llama" (SentencePiece-style, scores + byte fallback) and "gpt2" (byte-level BPE with merges).
 */
import { assert, ModelFormatError, UnsupportedError } from "../errors.js";
import { GgufValueType, type Metadata } from "../formats/metadata.js";
import { BpeMerges, BpeWordMerger } from "./bpe.js";
import { KNOWN_UNSUPPORTED_PRE, preSpec, type PreSpec } from "./gguf-pre.js";
import { LlamaPreTokenizer } from "./pretokenize.js";
import { maskRanges, partitionSequential, type SpecialText } from "./special-split.js";
import { SpmEncoder } from "./spm.js";
import { BytePipeline, decodePieces } from "./stream-decoder.js";
import type { DecodeOptions, EncodeOptions, StreamDecoder, Tokenizer } from "./types.js";
import { byteToChar, charToByte, codepointsOf, hex2, toWellFormed, utf8Encode } from "./unicode.js";
import {
  ATTR_BYTE,
  ATTR_CONTROL,
  ATTR_LSTRIP,
  ATTR_NORMAL,
  ATTR_RSTRIP,
  ATTR_UNKNOWN,
  ATTR_UNUSED,
  ATTR_USER_DEFINED,
  attrFromTokenType,
  checkTokenId,
  EMPTY_BYTES,
  EOG_TEXTS,
} from "./vocab.js";

const KEY = "tokenizer.ggml.";
/** More tokens than any real vocabulary; guards against absurd metadata. */
const MAX_TOKENS = 1 << 24;
const MAX_MERGES = 1 << 24;
const WORD_CACHE_LIMIT = 100_000;
const WORD_CACHE_MAX_LEN = 64;

const UNSUPPORTED_MODELS: ReadonlyMap<string, string> = new Map([
  ["bert", "WordPiece (BERT)"],
  ["t5", "Unigram (T5)"],
  ["rwkv", "RWKV"],
  ["plamo2", "PLaMo-2"],
  ["gemma4", "Gemma 4 SentencePiece-style BPE"],
  ["hybriddna", "hybrid DNA"],
  ["whitespace", "whitespace-split BPE"],
  ["no_vocab", "no vocabulary"],
  ["none", "no vocabulary"],
]);

// Texts llama.cpp looks for when the metadata does not name these tokens (first match wins;
// llama.cpp walks a hash map, so its "first" is unspecified; we walk ids in order).
const EOT_TEXTS = [
  "<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<|end_of_text|>",
  "<EOT>", "_<EOT>", "[EOT]", "<｜end▁of▁sentence｜>", "<end_of_utterance>",
];
const EOM_TEXTS = ["<|eom_id|>"];
const FIM_PRE_TEXTS = ["<|fim_prefix|>", "<fim-prefix>", "<fim_prefix>", "<｜fim▁begin｜>", "<PRE>", "▁<PRE>", "<|code_prefix|>", "<|prefix|>"];
const FIM_SUF_TEXTS = ["<|fim_suffix|>", "<fim-suffix>", "<fim_suffix>", "<｜fim▁hole｜>", "<SUF>", "▁<SUF>", "<|code_suffix|>", "<|suffix|>"];
const FIM_MID_TEXTS = ["<|fim_middle|>", "<fim-middle>", "<fim_middle>", "<｜fim▁end｜>", "<MID>", "▁<MID>", "<|code_middle|>", "<|middle|>"];
const FIM_PAD_TEXTS = ["<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]"];
const FIM_REP_TEXTS = ["<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>"];
const FIM_SEP_TEXTS = ["<|file_sep|>"];

interface SpecialIds {
  bos: number | undefined;
  eos: number | undefined;
  eot: number | undefined;
  eom: number | undefined;
  unk: number | undefined;
  fimPre: number | undefined;
  fimSuf: number | undefined;
  fimMid: number | undefined;
  fimPad: number | undefined;
  fimRep: number | undefined;
  fimSep: number | undefined;
}

function fail(meta: Metadata, field: string, message: string, expected: string, got: string, hint?: string): never {
  throw new ModelFormatError(message, {
    file: meta.source,
    field,
    expected,
    got,
    ...(hint === undefined ? {} : { hint }),
  });
}

function arrayOf(meta: Metadata, key: string, types: readonly GgufValueType[], what: string): readonly unknown[] | undefined {
  const e = meta.entries.get(key);
  if (e === undefined) return undefined;
  if (e.type !== GgufValueType.ARRAY || e.elementType === undefined || !types.includes(e.elementType) || !Array.isArray(e.value)) {
    fail(meta, key, "bad tokenizer array", what, e.type === GgufValueType.ARRAY ? `array of type ${String(e.elementType)}` : `type ${e.type}`);
  }
  return e.value as readonly unknown[];
}

/** An optional token id key: ids outside the vocabulary are ignored, as llama.cpp does. */
function readId(meta: Metadata, key: string, n: number, current: number | undefined): number | undefined {
  const v = meta.get(key);
  if (v === undefined) return current;
  if (typeof v === "bigint") return current;
  if (typeof v !== "number" || !Number.isInteger(v)) fail(meta, key, "bad token id", "an integer", typeof v);
  return v >= 0 && v < n ? v : current;
}

export function tokenizerFromMetadata(meta: Metadata): Tokenizer {
  return GgufTokenizer.fromMetadata(meta);
}

export class GgufTokenizer implements Tokenizer {
  readonly kind: "spm" | "bpe";
  readonly vocabSize: number;
  readonly bosId: number | undefined;
  readonly eosId: number | undefined;
  readonly addBos: boolean;
  readonly addEos: boolean;
  readonly eogIds: ReadonlySet<number>;
  readonly addSpacePrefix: boolean;
  readonly cleanSpaces: boolean;
  /** Pre-tokenizer type for BPE vocabularies. */
  readonly pre: PreSpec | undefined;

  private readonly tokens: readonly string[];
  private readonly attrs: Uint16Array;
  private readonly tokenToId: ReadonlyMap<string, number>;
  private readonly specialsAll: readonly SpecialText[];
  private readonly specialsUser: readonly SpecialText[];
  private readonly pieces: (Uint8Array | undefined)[];
  private readonly unkId: number | undefined;
  private readonly source: string;
  // SPM
  private readonly spm: SpmEncoder | undefined;
  // BPE
  private readonly preTokenizer: LlamaPreTokenizer | undefined;
  private readonly merges: BpeMerges | undefined;
  private readonly merger: BpeWordMerger | undefined;
  private readonly byteToPiece = new Int32Array(256).fill(-1);
  private readonly asciiToken = new Int32Array(128).fill(-1);
  private readonly ignoreMerges: boolean;
  private readonly wordCache = new Map<string, readonly number[]>();

  private constructor(init: {
    meta: Metadata;
    kind: "spm" | "bpe";
    tokens: string[];
    tokenToId: Map<string, number>;
    scores: Float32Array;
    attrs: Uint16Array;
    merges: readonly string[] | undefined;
    pre: PreSpec | undefined;
  }) {
    const { meta, kind, tokens, tokenToId, scores, attrs, pre } = init;
    const n = tokens.length;
    this.source = meta.source;
    this.kind = kind;
    this.vocabSize = n;
    this.tokens = tokens;
    this.tokenToId = tokenToId;
    this.attrs = attrs;
    this.pre = pre;
    this.pieces = new Array<Uint8Array | undefined>(n);

    // Defaults by model kind, then the metadata (llama_vocab::impl::load).
    const inRange = (id: number | undefined): number | undefined => (id !== undefined && id < n ? id : undefined);
    const ids: SpecialIds = {
      bos: kind === "spm" ? inRange(1) : pre?.noBos === true ? undefined : inRange(11),
      eos: kind === "spm" ? inRange(2) : inRange(11),
      eot: undefined,
      eom: undefined,
      unk: kind === "spm" ? inRange(0) : undefined,
      fimPre: undefined,
      fimSuf: undefined,
      fimMid: undefined,
      fimPad: undefined,
      fimRep: undefined,
      fimSep: undefined,
    };
    ids.bos = readId(meta, KEY + "bos_token_id", n, ids.bos);
    ids.eos = readId(meta, KEY + "eos_token_id", n, ids.eos);
    ids.eot = readId(meta, KEY + "eot_token_id", n, ids.eot);
    ids.eom = readId(meta, KEY + "eom_token_id", n, ids.eom);
    ids.unk = readId(meta, KEY + "unknown_token_id", n, ids.unk);
    ids.fimPre = readId(meta, KEY + "fim_pre_token_id", n, ids.fimPre);
    ids.fimSuf = readId(meta, KEY + "fim_suf_token_id", n, ids.fimSuf);
    ids.fimMid = readId(meta, KEY + "fim_mid_token_id", n, ids.fimMid);
    ids.fimPad = readId(meta, KEY + "fim_pad_token_id", n, ids.fimPad);
    ids.fimRep = readId(meta, KEY + "fim_rep_token_id", n, ids.fimRep);
    ids.fimSep = readId(meta, KEY + "fim_sep_token_id", n, ids.fimSep);
    ids.fimPre = readId(meta, KEY + "prefix_token_id", n, ids.fimPre);
    ids.fimSuf = readId(meta, KEY + "suffix_token_id", n, ids.fimSuf);
    ids.fimMid = readId(meta, KEY + "middle_token_id", n, ids.fimMid);

    this.addBos = meta.bool(KEY + "add_bos_token", kind === "spm" ? true : pre?.addBos === true);
    this.addEos = meta.bool(KEY + "add_eos_token", false);
    this.addSpacePrefix = meta.bool(KEY + "add_space_prefix", kind === "spm");
    this.cleanSpaces = kind === "bpe" ? pre?.cleanSpaces !== false : false;
    this.ignoreMerges = pre?.ignoreMerges === true;

    this.eogIds = this.detectSpecials(ids);
    this.bosId = ids.bos;
    this.eosId = ids.eos;
    this.unkId = ids.unk;

    // Special-token cache: control, user-defined and unknown tokens, longest text first.
    // NOTE: llama.cpp sorts with std::sort (unstable); equal lengths keep id order here.
    const special: SpecialText[] = [];
    const specialAttr: number[] = [];
    for (let id = 0; id < n; id++) {
      const a = attrs[id] as number;
      if (a & (ATTR_CONTROL | ATTR_USER_DEFINED | ATTR_UNKNOWN)) {
        special.push({ id, text: tokens[id] as string, lstrip: false, rstrip: false });
        specialAttr.push(a);
      }
    }
    this.applyNameAttributes(meta, special);
    const withStrip = special.map((s) => ({
      ...s,
      lstrip: ((attrs[s.id] as number) & ATTR_LSTRIP) !== 0,
      rstrip: ((attrs[s.id] as number) & ATTR_RSTRIP) !== 0,
    }));
    // NOTE: llama.cpp orders by length in UTF-8 bytes, which is not the UTF-16 length order.
    const byteLen = withStrip.map((s) => utf8Encode(s.text).length);
    const order = withStrip.map((_, i) => i);
    order.sort((a, b) => (byteLen[b] as number) - (byteLen[a] as number) || a - b);
    this.specialsAll = order.map((i) => withStrip[i] as SpecialText);
    this.specialsUser = order
      .filter((i) => ((specialAttr[i] as number) & (ATTR_CONTROL | ATTR_UNKNOWN)) === 0)
      .map((i) => withStrip[i] as SpecialText);

    if (kind === "spm") {
      let maxUnits = 0;
      for (const t of tokens) if (t.length > maxUnits) maxUnits = t.length;
      const byteTokens = new Int32Array(256).fill(-1);
      for (let b = 0; b < 256; b++) {
        const id = tokenToId.get(`<0x${hex2(b)}>`) ?? (b < 0x80 ? tokenToId.get(String.fromCharCode(b)) : undefined);
        if (id !== undefined) byteTokens[b] = id;
      }
      this.spm = new SpmEncoder({ tokenToId, scores, size: n, maxTokenUnits: maxUnits, byteTokens, unkId: ids.unk ?? -1 });
      this.preTokenizer = undefined;
      this.merges = undefined;
      this.merger = undefined;
    } else {
      assert(pre !== undefined && init.merges !== undefined, "BPE vocabulary without pre-tokenizer or merges");
      this.spm = undefined;
      this.preTokenizer = new LlamaPreTokenizer(pre.regexes);
      const merges = new BpeMerges(tokenToId, n);
      init.merges.forEach((m, rank) => {
        // llama.cpp splits at the first space after the first character.
        const pos = m.indexOf(" ", 1);
        if (pos === -1) return;
        const first = m.slice(0, pos);
        const second = m.slice(pos + 1);
        merges.add(merges.intern(first), merges.intern(second), merges.intern(first + second), rank);
      });
      merges.finish("first");
      this.merges = merges;
      this.merger = new BpeWordMerger(merges);
      for (let b = 0; b < 256; b++) this.byteToPiece[b] = merges.pieceId(byteToChar(b));
      for (let c = 0; c < 128; c++) this.asciiToken[c] = tokenToId.get(String.fromCharCode(c)) ?? -1;
    }
  }

  static fromMetadata(meta: Metadata): GgufTokenizer {
    const model = meta.optString(KEY + "model");
    if (model === undefined) {
      fail(meta, KEY + "model", "no tokenizer in the metadata", "a tokenizer model (llama, gpt2)", "missing key");
    }
    let kind: "spm" | "bpe";
    let pre: PreSpec | undefined;
    if (model === "llama") kind = "spm";
    else if (model === "gpt2") {
      kind = "bpe";
      const preName = meta.optString(KEY + "pre");
      pre = preSpec(preName);
      if (pre === undefined) {
        throw new UnsupportedError(`unsupported BPE pre-tokenizer "${preName ?? ""}"`, {
          expected: "a pre-tokenizer llama.cpp and slimlm both know (gpt-2, llama-bpe, qwen2, smollm, ...)",
          got: `${KEY}pre = ${JSON.stringify(preName)}${preName !== undefined && KNOWN_UNSUPPORTED_PRE.has(preName) ? " (not implemented in slimlm)" : ""}`,
        });
      }
    } else {
      const what = UNSUPPORTED_MODELS.get(model);
      throw new UnsupportedError(what === undefined ? `unknown tokenizer model "${model}"` : `unsupported tokenizer: ${what}`, {
        expected: `${KEY}model "llama" (SentencePiece-style BPE) or "gpt2" (byte-level BPE)`,
        got: JSON.stringify(model),
      });
    }

    const tokenKey = KEY + "tokens";
    const rawTokens = arrayOf(meta, tokenKey, [GgufValueType.STRING], "an array of strings");
    if (rawTokens === undefined) fail(meta, tokenKey, "no vocabulary", "an array of strings", "missing key");
    const n = rawTokens.length;
    if (n === 0 || n > MAX_TOKENS) fail(meta, tokenKey, "bad vocabulary size", `1..${MAX_TOKENS} tokens`, String(n));

    const rawScores = arrayOf(meta, KEY + "scores", [GgufValueType.FLOAT32, GgufValueType.INT32], "an array of float32 or int32");
    if (rawScores !== undefined && rawScores.length < n) {
      fail(meta, KEY + "scores", "fewer scores than tokens", `at least ${n}`, String(rawScores.length));
    }
    const rawTypes = arrayOf(meta, KEY + "token_type", [GgufValueType.INT32], "an array of int32");
    if (rawTypes !== undefined && rawTypes.length < n) {
      fail(meta, KEY + "token_type", "fewer token types than tokens", `at least ${n}`, String(rawTypes.length));
    }

    const tokens = new Array<string>(n);
    const tokenToId = new Map<string, number>();
    const scores = new Float32Array(n);
    const attrs = new Uint16Array(n);
    for (let i = 0; i < n; i++) {
      const raw = rawTokens[i];
      if (typeof raw !== "string") fail(meta, tokenKey, "bad token", "a string", typeof raw);
      // NOTE: llama.cpp renames empty tokens so that every text maps to one id.
      const t: string = raw.length === 0 ? `[EMPTY_${i}]` : raw;
      if (tokenToId.has(t)) {
        fail(meta, tokenKey, "duplicate token text", "unique token texts", `${JSON.stringify(t)} at ids ${tokenToId.get(t)} and ${i}`);
      }
      tokenToId.set(t, i);
      tokens[i] = t;
      if (rawScores !== undefined) {
        const s = rawScores[i];
        if (typeof s !== "number" || Number.isNaN(s)) fail(meta, KEY + "scores", "bad score", "a number", String(s));
        scores[i] = s;
      }
      if (rawTypes !== undefined) {
        const ty = rawTypes[i];
        if (typeof ty !== "number") fail(meta, KEY + "token_type", "bad token type", "an int32", typeof ty);
        attrs[i] = attrFromTokenType(ty);
      } else attrs[i] = ATTR_NORMAL;
      if (attrs[i] === ATTR_BYTE && t.length < 3) {
        fail(meta, tokenKey, "bad byte token", "byte tokens written <0xXX>", `${JSON.stringify(t)} at id ${i}`);
      }
    }

    let merges: readonly string[] | undefined;
    if (kind === "bpe") {
      const raw = arrayOf(meta, KEY + "merges", [GgufValueType.STRING], "an array of strings");
      if (raw === undefined) fail(meta, KEY + "merges", "BPE vocabulary without merges", "an array of strings", "missing key");
      if (raw.length > MAX_MERGES) fail(meta, KEY + "merges", "too many merges", `at most ${MAX_MERGES}`, String(raw.length));
      merges = raw as readonly string[];
    }
    return new GgufTokenizer({ meta, kind, tokens, tokenToId, scores, attrs, merges, pre });
  }

  /**
   * Find EOT/EOM/FIM tokens by text, force the control type on them and on every EOG-looking
   * token, and build the EOG set, in llama.cpp's order.
   */
  private detectSpecials(ids: SpecialIds): Set<number> {
    const { tokens, attrs, tokenToId } = this;
    const forceControl = (id: number): void => {
      attrs[id] = (attrs[id] as number) | ATTR_CONTROL;
    };
    const find = (texts: readonly string[], current: number | undefined): number | undefined => {
      if (current !== undefined) return current;
      let best: number | undefined;
      for (const t of texts) {
        const id = tokenToId.get(t);
        if (id !== undefined && (best === undefined || id < best)) best = id;
      }
      if (best !== undefined) forceControl(best);
      return best;
    };
    ids.eot = find(EOT_TEXTS, ids.eot);
    ids.eom = find(EOM_TEXTS, ids.eom);
    ids.fimPre = find(FIM_PRE_TEXTS, ids.fimPre);
    ids.fimSuf = find(FIM_SUF_TEXTS, ids.fimSuf);
    ids.fimMid = find(FIM_MID_TEXTS, ids.fimMid);
    ids.fimPad = find(FIM_PAD_TEXTS, ids.fimPad);
    ids.fimRep = find(FIM_REP_TEXTS, ids.fimRep);
    ids.fimSep = find(FIM_SEP_TEXTS, ids.fimSep);

    // Control tokens named "...unused..." are unused.
    for (let id = 0; id < tokens.length; id++) {
      const a = attrs[id] as number;
      if (a & ATTR_CONTROL && (tokens[id] as string).includes("unused")) attrs[id] = a | ATTR_UNUSED;
    }

    const eog = new Set<number>();
    for (const id of [ids.fimPad, ids.fimRep, ids.fimSep]) if (id !== undefined) eog.add(id);
    for (const t of EOG_TEXTS) {
      const id = tokenToId.get(t);
      if (id !== undefined) {
        eog.add(id);
        forceControl(id);
      }
    }
    // gpt-oss: these are always rendered.
    for (const t of ["<|channel|>", "<|message|>", "<|start|>", "<|constrain|>"]) {
      const id = tokenToId.get(t);
      if (id !== undefined) attrs[id] = ATTR_USER_DEFINED;
    }
    for (const id of [ids.eos, ids.eot, ids.eom]) if (id !== undefined) eog.add(id);

    // o200k_harmony / solar-open: "<|end|>" is not EOG when the return/call tokens exist.
    const has = (t: string): boolean => {
      const id = tokenToId.get(t);
      return id !== undefined && eog.has(id);
    };
    const endId = tokenToId.get("<|end|>");
    if (endId !== undefined && eog.has(endId) && ((has("<|return|>") && (has("<|call|>") || has("<|calls|>"))) || ((has("<|call|>") || has("<|calls|>")) && has("<|flush|>")))) {
      eog.delete(endId);
      attrs[endId] = ATTR_USER_DEFINED;
    }
    // gemma4 / paddleocr: "</s>" is not EOG next to "<|tool_response>".
    const sId = tokenToId.get("</s>");
    if (sId !== undefined && eog.has(sId) && has("<|tool_response>")) {
      eog.delete(sId);
      attrs[sId] = ATTR_NORMAL;
    }
    return eog;
  }

  /** llama.cpp's per-model attribute patches, chosen by model name / pre-tokenizer / architecture. */
  private applyNameAttributes(meta: Metadata, special: readonly SpecialText[]): void {
    const { attrs, tokenToId } = this;
    const set = (text: string, bit: number, on: boolean): void => {
      const id = tokenToId.get(text);
      // NOTE: llama.cpp would throw (std::map::at) on a missing token here; we skip it.
      if (id === undefined) return;
      attrs[id] = on ? (attrs[id] as number) | bit : (attrs[id] as number) & ~bit;
    };
    const name = (meta.optString("general.name") ?? "").toLowerCase();
    const pre = meta.optString(KEY + "pre") ?? "";
    const arch = meta.optString("general.architecture") ?? "";
    const any = (s: string, subs: readonly string[]): boolean => subs.some((x) => s.includes(x));
    if (any(pre, ["jina-v2-de", "jina-v2-es", "jina-v2-code"]) || any(arch, ["nomic-bert-moe", "jina-bert-v3"])) {
      set("<mask>", ATTR_LSTRIP, true);
    } else if (any(name, ["phi-3", "phi3"])) {
      for (const s of special) attrs[s.id] = (attrs[s.id] as number) | ATTR_RSTRIP;
      set("</s>", ATTR_RSTRIP, true);
      for (const t of ["<unk>", "<s>", "<|endoftext|>"]) set(t, ATTR_RSTRIP, false);
    } else if (any(name, ["modern-bert"])) {
      set("[MASK]", ATTR_LSTRIP, true);
    }
  }

  // ---- encoding ----

  encode(text: string, opts: EncodeOptions = {}): number[] {
    const s = toWellFormed(text);
    const frags = partitionSequential(maskRanges(s, opts.plainRanges), opts.parseSpecial === true ? this.specialsAll : this.specialsUser);
    const out: number[] = [];
    const addSpecial = opts.addSpecial === true;
    if (addSpecial && this.addBos) out.push(this.requireSpecial(this.bosId, "BOS"));
    if (this.spm !== undefined) {
      // NOTE: llama.cpp prefixes a space to the first text and to every text after a special token.
      let prevSpecial = true;
      const onMissingByte = (b: number): number => this.missingByte(b);
      for (const f of frags) {
        if ("token" in f) {
          out.push(f.token);
          prevSpecial = true;
          continue;
        }
        const piece = (this.addSpacePrefix && prevSpecial ? " " : "") + s.slice(f.start, f.end);
        this.spm.encode(piece.replaceAll(" ", "\u2581"), out, onMissingByte);
        prevSpecial = false;
      }
    } else {
      for (const f of frags) {
        if ("token" in f) out.push(f.token);
        else this.encodeBpeText(s.slice(f.start, f.end), out);
      }
    }
    if (addSpecial && this.addEos) out.push(this.requireSpecial(this.eosId, "EOS"));
    return out;
  }

  private requireSpecial(id: number | undefined, what: string): number {
    if (id === undefined) {
      throw new ModelFormatError(`the vocabulary asks for ${what} but has no ${what} token`, {
        file: this.source,
        field: KEY + (what === "BOS" ? "add_bos_token" : "add_eos_token"),
        hint: "encode without addSpecial",
      });
    }
    return id;
  }

  private missingByte(b: number): number {
    // NOTE: llama.cpp throws here (no <0xXX> token); SentencePiece would emit <unk>, and so do we.
    if (this.unkId !== undefined) return this.unkId;
    throw new ModelFormatError("the vocabulary has no token for a byte of the input", {
      file: this.source,
      field: KEY + "tokens",
      expected: `a byte token <0x${hex2(b)}> or an unknown token`,
      got: "neither",
    });
  }

  private encodeBpeText(text: string, out: number[]): void {
    const pre = this.preTokenizer;
    assert(pre !== undefined, "BPE tokenizer without pre-tokenizer");
    for (const word of pre.split(text)) {
      if (word.length === 0) continue;
      const cached = this.wordCache.get(word);
      if (cached !== undefined) {
        for (const id of cached) out.push(id);
        continue;
      }
      const ids = this.encodeBpeWord(word);
      if (word.length <= WORD_CACHE_MAX_LEN) {
        if (this.wordCache.size >= WORD_CACHE_LIMIT) this.wordCache.clear();
        this.wordCache.set(word, ids);
      }
      for (const id of ids) out.push(id);
    }
  }

  private encodeBpeWord(word: string): number[] {
    const merges = this.merges;
    const merger = this.merger;
    assert(merges !== undefined && merger !== undefined, "BPE tokenizer without merges");
    const bytes = utf8Encode(word);
    if (this.ignoreMerges) {
      let enc = "";
      for (const b of bytes) enc += byteToChar(b);
      const id = this.tokenToId.get(enc);
      if (id !== undefined) return [id];
    }
    const n0 = bytes.length;
    const syms = new Int32Array(n0);
    const spans = new Int32Array(n0);
    for (let i = 0; i < n0; i++) {
      syms[i] = this.byteToPiece[bytes[i] as number] as number;
      spans[i] = 1;
    }
    const n = merger.merge(syms, spans, n0);
    const out: number[] = [];
    let at = 0;
    for (let k = 0; k < n; k++) {
      const pid = syms[k] as number;
      if (pid >= 0 && pid < this.vocabSize) out.push(pid);
      else {
        // llama.cpp: the bytes of the (byte-level encoded) symbol text, each looked up as a
        // one-byte token; only ASCII bytes can match.
        const text = pid >= 0 ? merges.pieceText(pid, (id) => this.tokens[id] ?? "") : byteToChar(bytes[at] as number);
        for (const c of utf8Encode(text)) {
          const id = c < 0x80 ? (this.asciiToken[c] as number) : -1;
          if (id >= 0) out.push(id);
        }
      }
      at += spans[k] as number;
    }
    return out;
  }

  // ---- decoding ----

  /** llama_token_to_piece(special = true), cached. */
  private rawPiece(id: number): Uint8Array {
    const hit = this.pieces[id];
    if (hit !== undefined) return hit;
    const text = this.tokens[id] as string;
    const a = this.attrs[id] as number;
    let p: Uint8Array;
    if (a & (ATTR_UNKNOWN | ATTR_CONTROL | ATTR_USER_DEFINED)) p = utf8Encode(text);
    else if (a & ATTR_NORMAL) p = this.kind === "spm" ? utf8Encode(text.replaceAll("\u2581", " ")) : decodeByteLevel(text);
    else if (a & ATTR_BYTE) p = Uint8Array.of(parseHexByte(text));
    else p = EMPTY_BYTES;
    this.pieces[id] = p;
    return p;
  }

  private piece(id: number, unparseSpecial: boolean): Uint8Array {
    checkTokenId(id, this.vocabSize);
    if (!unparseSpecial && ((this.attrs[id] as number) & (ATTR_UNKNOWN | ATTR_CONTROL)) !== 0) return EMPTY_BYTES;
    return this.rawPiece(id);
  }

  tokenToPiece(id: number, opts: { unparseSpecial?: boolean } = {}): Uint8Array {
    return this.piece(id, opts.unparseSpecial === true).slice();
  }

  decode(ids: readonly number[], opts: DecodeOptions = {}): string {
    let start = 0;
    let end = ids.length;
    let removeSpace = this.addSpacePrefix;
    if (opts.removeSpecial === true && this.addBos && end > 0 && ids[0] === this.bosId) {
      removeSpace = false;
      start = 1;
    }
    if (opts.removeSpecial === true && this.addEos && end > start && ids[end - 1] === this.eosId) end--;
    const unparse = opts.unparseSpecial === true;
    const pieces: Uint8Array[] = [];
    for (let i = start; i < end; i++) {
      const p = this.piece(ids[i] as number, unparse);
      pieces.push(i === start && removeSpace ? lstripSpace(p) : p);
    }
    return decodePieces({ cleanSpaces: this.cleanSpaces }, pieces);
  }

  createStreamDecoder(opts: { unparseSpecial?: boolean } = {}): StreamDecoder {
    const unparse = opts.unparseSpecial === true;
    const pipeline = new BytePipeline({ cleanSpaces: this.cleanSpaces });
    let first = true;
    return {
      push: (id: number): string => {
        let p = this.piece(id, unparse);
        if (first && this.addSpacePrefix) p = lstripSpace(p);
        first = false;
        return pipeline.push(p);
      },
      flush: (): string => pipeline.flush(),
    };
  }

  tokenText(id: number): string {
    checkTokenId(id, this.vocabSize);
    return this.tokens[id] as string;
  }

  isControl(id: number): boolean {
    checkTokenId(id, this.vocabSize);
    return ((this.attrs[id] as number) & ATTR_CONTROL) !== 0;
  }

  /** llama.cpp token attributes (llama_token_attr bits), for tests and tools. */
  tokenAttr(id: number): number {
    checkTokenId(id, this.vocabSize);
    return this.attrs[id] as number;
  }
}

/** Remove one leading space (llama.cpp token_to_piece with lstrip = 1). */
function lstripSpace(p: Uint8Array): Uint8Array {
  return p.length > 0 && p[0] === 0x20 ? p.subarray(1) : p;
}

/** "<0xXX>" -> XX, read like llama.cpp's strtol on the two characters after "<0x". */
function parseHexByte(text: string): number {
  const v = parseInt(text.slice(3, 5), 16);
  return Number.isNaN(v) ? 0 : v & 0xff;
}

/**
 * llama.cpp `llama_decode_text`: each character of a byte-level token back to its byte; a
 * character outside the GPT-2 alphabet is written "[UNK_BYTE_0x<utf8 hex><token text>]".
 */
function decodeByteLevel(text: string): Uint8Array {
  const out: number[] = [];
  for (const cp of codepointsOf(text)) {
    const b = charToByte(cp);
    if (b >= 0) {
      out.push(b);
      continue;
    }
    let s = "[UNK_BYTE_0x";
    for (const c of utf8Encode(String.fromCodePoint(cp))) s += (c < 16 ? "0" : "") + c.toString(16);
    s += text + "]";
    for (const c of utf8Encode(s)) out.push(c);
  }
  return Uint8Array.from(out);
}
