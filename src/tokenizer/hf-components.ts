/**
 * Hugging Face tokenizers pipeline components compiled from tokenizer.json: normalizers,
 * pre-tokenizers and decoders, with the semantics of the Rust `tokenizers` crate.
 */
import { UnsupportedError } from "../errors.js";
import { onigToJs } from "./hf-regex.js";
import type { JsonReader } from "./json-read.js";
import { byteLevelEncode, charToByte, codepointsOf, utf8Encode } from "./unicode.js";

export type Normalizer = (s: string) => string;

/** A pre-token: its text, and whether it starts at offset 0 of the original input. */
export interface PreToken {
  readonly text: string;
  readonly atStart: boolean;
}
export type PreTokenizer = (pieces: PreToken[]) => PreToken[];

const GPT2_PATTERN = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

function unsupported(kind: string, type: string): never {
  throw new UnsupportedError(`unsupported tokenizer.json ${kind}: ${type}`, {
    expected: `a ${kind} slimlm implements`,
    got: type,
  });
}

// Rust char::is_whitespace is Unicode White_Space.
const RUST_WS = /[\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]/u;

function isRustWhitespace(ch: string): boolean {
  return RUST_WS.test(ch);
}

function trimRustWhitespace(s: string, left: boolean, right: boolean): string {
  const chars = [...s];
  let a = 0;
  let b = chars.length;
  if (left) while (a < b && isRustWhitespace(chars[a] as string)) a++;
  if (right) while (b > a && isRustWhitespace(chars[b - 1] as string)) b--;
  return chars.slice(a, b).join("");
}

/** A `Replace`/`Split` pattern: {"String": "..."} or {"Regex": "..."}. */
function readPattern(r: JsonReader, v: unknown, field: string): { literal: string } | { regex: RegExp } {
  const o = r.object(v, field);
  if (o["String"] !== undefined) return { literal: r.string(o["String"], field + ".String") };
  if (o["Regex"] !== undefined) return { regex: onigToJs(r.string(o["Regex"], field + ".Regex")) };
  return r.fail(field, '{"String": ...} or {"Regex": ...}', o);
}

export function compileNormalizer(r: JsonReader, v: unknown, field = "normalizer"): Normalizer {
  if (v === null || v === undefined) return (s) => s;
  const o = r.object(v, field);
  const type = r.string(o["type"], field + ".type");
  switch (type) {
    case "Sequence": {
      const parts = r.array(o["normalizers"], field + ".normalizers").map((x, i) => compileNormalizer(r, x, `${field}.normalizers[${i}]`));
      return (s) => parts.reduce((acc, f) => f(acc), s);
    }
    case "Prepend": {
      const p = r.string(o["prepend"], field + ".prepend");
      return (s) => (s.length > 0 ? p + s : s);
    }
    case "Replace": {
      const pat = readPattern(r, o["pattern"], field + ".pattern");
      const content = r.string(o["content"], field + ".content");
      if ("literal" in pat) return pat.literal.length === 0 ? (s) => s : (s) => s.replaceAll(pat.literal, content);
      return (s) => s.replace(pat.regex, () => content);
    }
    case "NFC":
    case "NFD":
    case "NFKC":
    case "NFKD":
      return (s) => s.normalize(type);
    case "Lowercase":
      return (s) => s.toLowerCase();
    case "Strip": {
      const left = r.bool(o["strip_left"], field + ".strip_left", true);
      const right = r.bool(o["strip_right"], field + ".strip_right", true);
      return (s) => trimRustWhitespace(s, left, right);
    }
    case "StripAccents":
      return (s) => s.replace(/\p{Mn}/gu, "");
    default:
      return unsupported("normalizer", type);
  }
}

type Behavior = "Removed" | "Isolated" | "MergedWithPrevious" | "MergedWithNext" | "Contiguous";

function readBehavior(r: JsonReader, v: unknown, field: string, fallback: Behavior): Behavior {
  if (v === undefined || v === null) return fallback;
  const b = r.string(v, field);
  if (b === "Removed" || b === "Isolated" || b === "MergedWithPrevious" || b === "MergedWithNext" || b === "Contiguous") return b;
  return r.fail(field, "Removed, Isolated, MergedWithPrevious, MergedWithNext or Contiguous", b);
}

/** Ranges of `s` (UTF-16 [start, end)) with their match flag, covering `s` in order. */
type Span = [number, number, boolean];

function regexSpans(s: string, re: RegExp): Span[] {
  const out: Span[] = [];
  let prev = 0;
  re.lastIndex = 0;
  for (let m = re.exec(s); m !== null; m = re.exec(s)) {
    if (m[0].length === 0) {
      // NOTE: empty matches split nothing; skip them (Hugging Face would emit empty pieces).
      re.lastIndex += (s.codePointAt(m.index) ?? 0) > 0xffff ? 2 : 1;
      continue;
    }
    if (m.index > prev) out.push([prev, m.index, false]);
    out.push([m.index, m.index + m[0].length, true]);
    prev = m.index + m[0].length;
  }
  if (prev < s.length) out.push([prev, s.length, false]);
  return out;
}

function literalSpans(s: string, lit: string): Span[] {
  const out: Span[] = [];
  if (lit.length === 0) return s.length > 0 ? [[0, s.length, false]] : [];
  let prev = 0;
  for (let i = s.indexOf(lit); i !== -1; i = s.indexOf(lit, i + lit.length)) {
    if (i > prev) out.push([prev, i, false]);
    out.push([i, i + lit.length, true]);
    prev = i + lit.length;
  }
  if (prev < s.length) out.push([prev, s.length, false]);
  return out;
}

function charSpans(s: string, pred: (ch: string) => boolean): Span[] {
  const out: Span[] = [];
  let prev = 0;
  let i = 0;
  for (const ch of s) {
    if (pred(ch)) {
      if (i > prev) out.push([prev, i, false]);
      out.push([i, i + ch.length, true]);
      prev = i + ch.length;
    }
    i += ch.length;
  }
  if (prev < s.length) out.push([prev, s.length, false]);
  return out;
}

/** Hugging Face SplitDelimiterBehavior applied to the spans of one pre-token. */
function applyBehavior(spans: Span[], behavior: Behavior): [number, number][] {
  const out: [number, number][] = [];
  switch (behavior) {
    case "Removed":
      for (const [a, b, m] of spans) if (!m) out.push([a, b]);
      break;
    case "Isolated":
      for (const [a, b] of spans) out.push([a, b]);
      break;
    case "MergedWithPrevious": {
      let prevMatch = false;
      for (const [a, b, m] of spans) {
        const last = out[out.length - 1];
        if (m && !prevMatch && last !== undefined) last[1] = b;
        else out.push([a, b]);
        prevMatch = m;
      }
      break;
    }
    case "MergedWithNext": {
      let nextMatch = false;
      const rev: [number, number][] = [];
      for (let k = spans.length - 1; k >= 0; k--) {
        const [a, b, m] = spans[k] as Span;
        const last = rev[rev.length - 1];
        if (m && !nextMatch && last !== undefined) last[0] = a;
        else rev.push([a, b]);
        nextMatch = m;
      }
      for (let k = rev.length - 1; k >= 0; k--) out.push(rev[k] as [number, number]);
      break;
    }
    case "Contiguous": {
      let prevMatch = false;
      for (const [a, b, m] of spans) {
        const last = out[out.length - 1];
        if (m === prevMatch && last !== undefined) last[1] = b;
        else out.push([a, b]);
        prevMatch = m;
      }
      break;
    }
  }
  return out.filter(([a, b]) => b > a);
}

/** Isolated regex split (matches and the gaps between them), without intermediate arrays. */
function isolatedRegexSplit(pieces: PreToken[], re: RegExp, map: (s: string) => string): PreToken[] {
  const out: PreToken[] = [];
  for (const p of pieces) {
    const s = p.text;
    let prev = 0;
    re.lastIndex = 0;
    for (let m = re.exec(s); m !== null; m = re.exec(s)) {
      const len = m[0].length;
      if (len === 0) {
        re.lastIndex += (s.codePointAt(m.index) ?? 0) > 0xffff ? 2 : 1;
        continue;
      }
      if (m.index > prev) out.push({ text: map(s.slice(prev, m.index)), atStart: p.atStart && prev === 0 });
      out.push({ text: map(m[0]), atStart: p.atStart && m.index === 0 });
      prev = m.index + len;
    }
    if (prev < s.length) out.push({ text: map(prev === 0 ? s : s.slice(prev)), atStart: p.atStart && prev === 0 });
  }
  return out;
}

function splitEach(pieces: PreToken[], split: (s: string) => [number, number][]): PreToken[] {
  const out: PreToken[] = [];
  for (const p of pieces) {
    for (const [a, b] of split(p.text)) out.push({ text: p.text.slice(a, b), atStart: p.atStart && a === 0 });
  }
  return out;
}

const PUNCT = /[\p{P}!-/:-@[-`{-~]/u;

export interface PreTokenizerInfo {
  readonly fn: PreTokenizer;
  /** Uses the GPT-2 byte-level alphabet (ByteLevel present). */
  readonly byteLevel: boolean;
  /** Uses a SentencePiece meta-space (Metaspace present). */
  readonly metaspace: boolean;
}

export function compilePreTokenizer(r: JsonReader, v: unknown, field = "pre_tokenizer"): PreTokenizerInfo {
  if (v === null || v === undefined) return { fn: (p) => p, byteLevel: false, metaspace: false };
  const o = r.object(v, field);
  const type = r.string(o["type"], field + ".type");
  switch (type) {
    case "Sequence": {
      const parts = r.array(o["pretokenizers"], field + ".pretokenizers").map((x, i) => compilePreTokenizer(r, x, `${field}.pretokenizers[${i}]`));
      return {
        fn: (p) => parts.reduce((acc, f) => f.fn(acc), p),
        byteLevel: parts.some((x) => x.byteLevel),
        metaspace: parts.some((x) => x.metaspace),
      };
    }
    case "ByteLevel": {
      const addPrefix = r.bool(o["add_prefix_space"], field + ".add_prefix_space", true);
      const useRegex = r.bool(o["use_regex"], field + ".use_regex", true);
      const re = onigToJs(GPT2_PATTERN);
      return {
        fn: (pieces) => {
          const withPrefix = addPrefix ? pieces.map((p) => (p.text.startsWith(" ") ? p : { text: " " + p.text, atStart: p.atStart })) : pieces;
          if (useRegex) return isolatedRegexSplit(withPrefix, re, byteLevelEncode);
          return withPrefix.map((p) => ({ text: byteLevelEncode(p.text), atStart: p.atStart }));
        },
        byteLevel: true,
        metaspace: false,
      };
    }
    case "Split": {
      const pat = readPattern(r, o["pattern"], field + ".pattern");
      const behavior = readBehavior(r, o["behavior"], field + ".behavior", "Isolated");
      const invert = r.bool(o["invert"], field + ".invert", false);
      const spans = (s: string): Span[] => {
        const sp = "literal" in pat ? literalSpans(s, pat.literal) : regexSpans(s, pat.regex);
        return invert ? sp.map(([a, b, m]) => [a, b, !m] as Span) : sp;
      };
      return { fn: (p) => splitEach(p, (s) => applyBehavior(spans(s), behavior)), byteLevel: false, metaspace: false };
    }
    case "Digits": {
      const individual = r.bool(o["individual_digits"], field + ".individual_digits", false);
      const isNum = (ch: string): boolean => /\p{N}/u.test(ch);
      return {
        fn: (p) => splitEach(p, (s) => applyBehavior(charSpans(s, isNum), individual ? "Isolated" : "Contiguous")),
        byteLevel: false,
        metaspace: false,
      };
    }
    case "Metaspace": {
      const rep = r.char(o["replacement"] ?? "\u2581", field + ".replacement");
      let scheme: "always" | "never" | "first";
      if (o["prepend_scheme"] !== undefined && o["prepend_scheme"] !== null) {
        const s = r.string(o["prepend_scheme"], field + ".prepend_scheme");
        if (s !== "always" && s !== "never" && s !== "first") r.fail(field + ".prepend_scheme", "always, never or first", s);
        scheme = s;
      } else scheme = r.bool(o["add_prefix_space"], field + ".add_prefix_space", true) ? "always" : "never";
      const split = r.bool(o["split"], field + ".split", true);
      return {
        fn: (pieces) => {
          const out: PreToken[] = [];
          for (const p of pieces) {
            let t = p.text.replaceAll(" ", rep);
            if (!t.startsWith(rep) && (scheme === "always" || (scheme === "first" && p.atStart))) t = rep + t;
            if (!split) out.push({ text: t, atStart: p.atStart });
            else {
              for (const [a, b] of applyBehavior(literalSpans(t, rep), "MergedWithNext")) {
                out.push({ text: t.slice(a, b), atStart: p.atStart && a === 0 });
              }
            }
          }
          return out;
        },
        byteLevel: false,
        metaspace: true,
      };
    }
    case "Whitespace": {
      const re = onigToJs("\\w+|[^\\w\\s]+");
      return {
        fn: (p) => splitEach(p, (s) => applyBehavior(regexSpans(s, re).map(([a, b, m]) => [a, b, !m] as Span), "Removed")),
        byteLevel: false,
        metaspace: false,
      };
    }
    case "WhitespaceSplit":
      return { fn: (p) => splitEach(p, (s) => applyBehavior(charSpans(s, isRustWhitespace), "Removed")), byteLevel: false, metaspace: false };
    case "CharDelimiterSplit": {
      const d = r.char(o["delimiter"], field + ".delimiter");
      return { fn: (p) => splitEach(p, (s) => applyBehavior(charSpans(s, (ch) => ch === d), "Removed")), byteLevel: false, metaspace: false };
    }
    case "Punctuation": {
      const behavior = readBehavior(r, o["behavior"], field + ".behavior", "Isolated");
      return { fn: (p) => splitEach(p, (s) => applyBehavior(charSpans(s, (ch) => PUNCT.test(ch)), behavior)), byteLevel: false, metaspace: false };
    }
    default:
      return unsupported("pre-tokenizer", type);
  }
}

// ---- decoders ----

/** A token on its way through the decoder chain: text, or bytes once a byte decoder ran. */
export type DecToken = string | Uint8Array;

export interface DecoderSpec {
  /** Per-token steps; `index` is the position among the tokens handed to the decoder. */
  readonly steps: readonly ((t: DecToken, index: number) => DecToken)[];
  /** After Fuse/ByteLevel: Strip at the start and end of the whole text. */
  readonly stripStart: { readonly byte: number; readonly count: number } | undefined;
  readonly stripEnd: { readonly byte: number; readonly count: number } | undefined;
  /** No decoder at all: Hugging Face joins the tokens with spaces. */
  readonly joinWithSpace: boolean;
  readonly metaspace: boolean;
  readonly byteLevel: boolean;
}

const BYTE_TOKEN = /^<0x([0-9A-Fa-f]{2})>$/;

function stripChars(t: DecToken, content: string, start: number, stop: number): DecToken {
  if (typeof t === "string") {
    const chars = [...t];
    let a = 0;
    let b = chars.length;
    while (a < start && a < b && chars[a] === content) a++;
    let k = 0;
    while (k < stop && b > a && chars[b - 1] === content) {
      b--;
      k++;
    }
    return chars.slice(a, b).join("");
  }
  const cb = utf8Encode(content);
  if (cb.length !== 1) return t;
  let a = 0;
  let b = t.length;
  while (a < start && a < b && t[a] === cb[0]) a++;
  let k = 0;
  while (k < stop && b > a && t[b - 1] === cb[0]) {
    b--;
    k++;
  }
  return t.subarray(a, b);
}

export function compileDecoder(r: JsonReader, v: unknown): DecoderSpec {
  const steps: ((t: DecToken, index: number) => DecToken)[] = [];
  let fused = false;
  let stripStart: { byte: number; count: number } | undefined;
  let stripEnd: { byte: number; count: number } | undefined;
  let metaspace = false;
  let byteLevel = false;
  const afterFuse = (type: string): void => {
    if (fused) {
      throw new UnsupportedError(`unsupported tokenizer.json decoder: ${type} after Fuse/ByteLevel`, {
        expected: "per-token decoders before Fuse, and only Strip after it",
        got: type,
      });
    }
  };
  const add = (d: unknown, field: string): void => {
    const o = r.object(d, field);
    const type = r.string(o["type"], field + ".type");
    switch (type) {
      case "Sequence":
        r.array(o["decoders"], field + ".decoders").forEach((x, i) => add(x, `${field}.decoders[${i}]`));
        return;
      case "ByteLevel":
        afterFuse(type);
        byteLevel = true;
        steps.push((t) => {
          if (typeof t !== "string") return t;
          const bytes: number[] = [];
          for (const cp of codepointsOf(t)) {
            const b = charToByte(cp);
            if (b < 0) return utf8Encode(t);
            bytes.push(b);
          }
          return Uint8Array.from(bytes);
        });
        fused = true;
        return;
      case "Replace": {
        afterFuse(type);
        const pat = readPattern(r, o["pattern"], field + ".pattern");
        const content = r.string(o["content"], field + ".content");
        steps.push((t) => {
          if (typeof t !== "string") return t;
          if ("literal" in pat) return pat.literal.length === 0 ? t : t.replaceAll(pat.literal, content);
          return t.replace(pat.regex, () => content);
        });
        return;
      }
      case "ByteFallback":
        afterFuse(type);
        steps.push((t) => {
          if (typeof t !== "string") return t;
          const m = BYTE_TOKEN.exec(t);
          return m === null ? t : Uint8Array.of(parseInt(m[1] as string, 16));
        });
        return;
      case "Fuse":
        fused = true;
        return;
      case "Strip": {
        const content = r.char(o["content"], field + ".content");
        const start = r.uint(o["start"] ?? 0, field + ".start", 1 << 20);
        const stop = r.uint(o["stop"] ?? 0, field + ".stop", 1 << 20);
        if (!fused) {
          steps.push((t) => stripChars(t, content, start, stop));
          return;
        }
        const cb = utf8Encode(content);
        if (cb.length !== 1 || (stripStart !== undefined && start > 0) || (stripEnd !== undefined && stop > 0)) {
          return unsupported("decoder", "Strip of a non-ASCII character (or repeated) after Fuse");
        }
        if (start > 0) stripStart = { byte: cb[0] as number, count: start };
        if (stop > 0) stripEnd = { byte: cb[0] as number, count: stop };
        return;
      }
      case "Metaspace": {
        afterFuse(type);
        metaspace = true;
        const rep = r.char(o["replacement"] ?? "\u2581", field + ".replacement");
        let prepend: boolean;
        if (o["prepend_scheme"] !== undefined && o["prepend_scheme"] !== null) {
          prepend = r.string(o["prepend_scheme"], field + ".prepend_scheme") !== "never";
        } else prepend = r.bool(o["add_prefix_space"], field + ".add_prefix_space", true);
        // NOTE: Hugging Face drops every replacement character of the first token, not only a
        // leading one.
        steps.push((t, index) => (typeof t !== "string" ? t : t.replaceAll(rep, index === 0 && prepend ? "" : " ")));
        return;
      }
      default:
        unsupported("decoder", type);
    }
  };
  if (v === null || v === undefined) {
    return { steps, stripStart, stripEnd, joinWithSpace: true, metaspace, byteLevel };
  }
  add(v, "decoder");
  return { steps, stripStart, stripEnd, joinWithSpace: false, metaspace, byteLevel };
}

