/**
 * llama.cpp's BPE pre-tokenizer (`unicode_regex_split`): a list of regexes, each refining the
 * split of the previous one. Three regexes have hand-written splitters in llama.cpp (GPT-2,
 * Llama 3, Qwen 2); they are ported here position for position, because their behaviour is
 * defined by that code, not by the regex text. Any other regex runs as llama.cpp runs it through
 * std::regex: on a "collapsed" text where every non-ASCII code point becomes one placeholder
 * character per Unicode class, or on the plain code points when the regex has no `\p{..}`.
 */
import { assert } from "../errors.js";
import {
  codepointsOf,
  cptCategory,
  CPT_LETTER,
  CPT_MARK,
  CPT_NUMBER,
  CPT_PUNCTUATION,
  CPT_SYMBOL,
  isWhitespaceCp,
} from "./unicode.js";

// Per-position flags: the class bit, plus WS for whitespace. 0 means "outside the region".
const WS = 0x100;

const CH_APOS = 0x27;
const CH_SPACE = 0x20;
const CH_CR = 0x0d;
const CH_LF = 0x0a;
const OUT_OF_RANGE = -1;

export const REGEX_GPT2 = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)";
const REGEX_LLAMA3_ORIG =
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
export const REGEX_LLAMA3 =
  "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
export const REGEX_QWEN2 =
  "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
export const REGEX_QWEN35 =
  "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?[\\p{L}\\p{M}]+|\\p{N}| ?[^\\s\\p{L}\\p{M}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
export const REGEX_NEWLINES = "[^\\n]+|[\\n]+";

/** The text being split: code points and their flags, plus UTF-16 offsets to cut words. */
interface SplitText {
  readonly cpts: Uint32Array;
  readonly flags: Uint16Array;
}

/** A splitter refines `offsets` (lengths in code points of consecutive regions). */
type Splitter = (t: SplitText, offsets: readonly number[]) => number[];

function lower(c: number): number {
  // NOTE: llama.cpp lower-cases with the full Unicode table, but only the ASCII letters s t m d
  // r e v l matter here and no other code point lower-cases to them.
  return c >= 0x41 && c <= 0x5a ? c + 32 : c;
}

/**
 * The shared skeleton of the three hand-written splitters. `variant` selects the differences:
 * gpt2 (" ?\p{L}+ | ?\p{N}+", case-sensitive contractions), llama3 (\p{N}{1,3}), qwen2 (\p{N})
 * and qwen35 (qwen2 with marks counted as letters).
 */
function customSplit(variant: "gpt2" | "llama3" | "qwen2" | "qwen35"): Splitter {
  const letterBits = variant === "qwen35" ? CPT_LETTER | CPT_MARK : CPT_LETTER;
  return (t, offsets) => {
    const { cpts, flags } = t;
    const out: number[] = [];
    let start = 0;
    for (const len of offsets) {
      const ini = start;
      const end = start + len;
      start = end;
      const cpt = (p: number): number => (p >= ini && p < end ? (cpts[p] as number) : OUT_OF_RANGE);
      const fl = (p: number): number => (p >= ini && p < end ? (flags[p] as number) : 0);
      let prevEnd = ini;
      const add = (e: number): number => {
        const n = e - prevEnd;
        if (n > 0) out.push(n);
        prevEnd = e;
        return n;
      };
      const isL = (f: number): boolean => (f & letterBits) !== 0;
      const isN = (f: number): boolean => (f & CPT_NUMBER) !== 0;
      const isWLN = (f: number): boolean => (f & (WS | letterBits | CPT_NUMBER)) !== 0;

      let pos = ini;
      while (pos < end) {
        const c = cpt(pos);
        const f = fl(pos);

        // 's|'t|'re|'ve|'m|'ll|'d (case-insensitive for llama3/qwen2)
        if (c === CH_APOS && pos + 1 < end) {
          const next = variant === "gpt2" ? cpt(pos + 1) : lower(cpt(pos + 1));
          if (next === 0x73 || next === 0x74 || next === 0x6d || next === 0x64) {
            pos += add(pos + 2);
            continue;
          }
          if (pos + 2 < end) {
            const nn = variant === "gpt2" ? cpt(pos + 2) : lower(cpt(pos + 2));
            if ((next === 0x72 && nn === 0x65) || (next === 0x76 && nn === 0x65) || (next === 0x6c && nn === 0x6c)) {
              pos += add(pos + 3);
              continue;
            }
          }
        }

        if (variant === "gpt2") {
          let f2 = c === CH_SPACE ? fl(pos + 1) : f;
          // <space>?\p{L}+
          if (isL(f2)) {
            if (c === CH_SPACE) pos++;
            while (isL(f2)) f2 = fl(++pos);
            add(pos);
            continue;
          }
          // <space>?\p{N}+
          if (isN(f2)) {
            if (c === CH_SPACE) pos++;
            while (isN(f2)) f2 = fl(++pos);
            add(pos);
            continue;
          }
          // <space>?[^\s\p{L}\p{N}]+
          if (!isWLN(f2) && f2 !== 0) {
            if (c === CH_SPACE) pos++;
            while (!isWLN(f2) && f2 !== 0) f2 = fl(++pos);
            add(pos);
            continue;
          }
          let nws = 0;
          while ((fl(pos + nws) & WS) !== 0) nws++;
          // \s+(?!\S)
          if (nws > 1 && cpt(pos + nws) !== OUT_OF_RANGE) {
            pos += nws - 1;
            add(pos);
            continue;
          }
          // \s+
          if (nws > 0) {
            pos += nws;
            add(pos);
            continue;
          }
          add(++pos);
          continue;
        }

        // [^\r\n\p{L}\p{N}]?\p{L}+
        if (!(c === CH_CR || c === CH_LF || isN(f))) {
          if (isL(f) || isL(fl(pos + 1))) {
            pos++;
            while (isL(fl(pos))) pos++;
            add(pos);
            continue;
          }
        }
        if (isN(f)) {
          if (variant === "llama3") {
            // \p{N}{1,3}
            let ini2 = pos;
            while (isN(fl(pos))) {
              if (++pos - ini2 >= 3) {
                add(pos);
                ini2 = pos;
              }
            }
            add(pos);
          } else {
            // \p{N}
            pos++;
            add(pos);
          }
          continue;
        }
        // <space>?[^\s\p{L}\p{N}]+[\r\n]*
        // NOTE: llama.cpp tests the flags of the current position (not f2) for "in range" here.
        let f2 = c === CH_SPACE ? fl(pos + 1) : f;
        if (!isWLN(f2) && f !== 0) {
          if (c === CH_SPACE) pos++;
          while (!isWLN(f2) && f2 !== 0) f2 = fl(++pos);
          let c2 = cpt(pos);
          while (c2 === CH_CR || c2 === CH_LF) c2 = cpt(++pos);
          add(pos);
          continue;
        }
        let nws = 0;
        let lastRN = 0;
        while ((fl(pos + nws) & WS) !== 0) {
          const c2 = cpt(pos + nws);
          if (c2 === CH_CR || c2 === CH_LF) lastRN = pos + nws + 1;
          nws++;
        }
        // \s*[\r\n]+
        if (lastRN > 0) {
          pos = lastRN;
          add(pos);
          continue;
        }
        // \s+(?!\S)
        if (nws > 1 && cpt(pos + nws) !== OUT_OF_RANGE) {
          pos += nws - 1;
          add(pos);
          continue;
        }
        // \s+
        if (nws > 0) {
          pos += nws;
          add(pos);
          continue;
        }
        add(++pos);
      }
    }
    return out;
  };
}

const splitNewlines: Splitter = (t, offsets) => {
  const out: number[] = [];
  let start = 0;
  for (const len of offsets) {
    let pos = start;
    const end = start + len;
    while (pos < end) {
      const isNl = t.cpts[pos] === CH_LF;
      const runStart = pos;
      while (pos < end && (t.cpts[pos] === CH_LF) === isNl) pos++;
      out.push(pos - runStart);
    }
    start = end;
  }
  return out;
};

const CUSTOM = new Map<string, Splitter>([
  [REGEX_GPT2, customSplit("gpt2")],
  [REGEX_LLAMA3_ORIG, customSplit("llama3")],
  [REGEX_LLAMA3, customSplit("llama3")],
  [REGEX_QWEN2, customSplit("qwen2")],
  [REGEX_QWEN35, customSplit("qwen35")],
  [REGEX_NEWLINES, splitNewlines],
]);

// The Unicode classes a regex may use, and their placeholder in the collapsed text.
const UCAT: ReadonlyMap<string, { ph: string; ascii: string }> = new Map([
  ["\\p{N}", { ph: "\u00d1", ascii: "0-9" }],
  ["\\p{L}", { ph: "\u00d2", ascii: "A-Za-z" }],
  ["\\p{P}", { ph: "\u00d3", ascii: "!-#%-*,-/:-;?-@\\[-\\]_\\{\\}" }],
  ["\\p{M}", { ph: "\u00d4", ascii: "" }],
  ["\\p{S}", { ph: "\u00d5", ascii: "\\$\\+<->\\^`\\|\\~" }],
  ["\\p{Lu}", { ph: "\u00d2", ascii: "A-Za-z" }],
  ["\\p{Ll}", { ph: "\u00d2", ascii: "A-Za-z" }],
  ["\\p{Lt}", { ph: "\u00d2", ascii: "A-Za-z" }],
  ["\\p{Lm}", { ph: "\u00d2", ascii: "A-Za-z" }],
  ["\\p{Lo}", { ph: "\u00d2", ascii: "A-Za-z" }],
]);

function usesCategories(re: string): boolean {
  for (const k of UCAT.keys()) if (re.includes(k)) return true;
  return false;
}

// NOTE: std::regex's `\s` is C isspace (ASCII); JavaScript's also matches U+00A0, U+FEFF... The
// texts handed to these regexes already carry non-ASCII whitespace as \v, so only the ASCII set
// may match, as in llama.cpp.
const ASCII_WS_CLASS_BODY = "\\t\\n\\v\\f\\r ";

function translateSpaceEscapes(re: string): string {
  let out = "";
  let inside = false;
  for (let i = 0; i < re.length; i++) {
    const ch = re[i] as string;
    if (ch === "\\" && i + 1 < re.length) {
      const nx = re[i + 1] as string;
      if (nx === "s") {
        out += inside ? ASCII_WS_CLASS_BODY : `[${ASCII_WS_CLASS_BODY}]`;
      } else if (nx === "S") {
        assert(!inside, "\\S inside a character class is not supported");
        out += `[^${ASCII_WS_CLASS_BODY}]`;
      } else {
        out += ch + nx;
      }
      i++;
      continue;
    }
    if (ch === "[" && !inside) inside = true;
    else if (ch === "]" && inside) inside = false;
    out += ch;
  }
  return out;
}

/** The regex llama.cpp runs on the collapsed text (its \p{..} replaced by placeholder classes). */
function collapseRegex(re: string): string {
  let out = "";
  let inside = false;
  for (let i = 0; i < re.length; i++) {
    const ch = re[i] as string;
    if (ch === "[" && (i === 0 || re[i - 1] !== "\\")) {
      out += "[";
      inside = true;
      continue;
    }
    if (inside && ch === "]" && re[i - 1] !== "\\") {
      out += "]";
      inside = false;
      continue;
    }
    if (ch === "\\" && i + 3 < re.length && re[i + 1] === "p" && re[i + 2] === "{") {
      const close = re.indexOf("}", i + 3);
      if (close !== -1 && close <= i + 10) {
        const cat = UCAT.get(re.slice(i, close + 1));
        if (cat !== undefined) {
          out += inside ? cat.ph + cat.ascii : `[${cat.ph}${cat.ascii}]`;
          i = close;
          continue;
        }
      }
    }
    out += ch;
  }
  return out;
}

/** A std::regex-style splitter: matches and the gaps between them each become a region. */
function regexSplitter(re: string): Splitter {
  const collapsed = usesCategories(re);
  if (collapsed) {
    for (const ch of re) {
      if ((ch.codePointAt(0) ?? 0) >= 128) throw new Error("regex mixes unicode classes and non-ASCII text");
    }
  }
  const js = new RegExp(translateSpaceEscapes(collapsed ? collapseRegex(re) : re), collapsed ? "g" : "gu");
  return (t, offsets) => {
    // One string unit per code point in the collapsed form; the plain form keeps surrogate pairs.
    let text = "";
    let unitToCp: Int32Array | undefined;
    if (collapsed) {
      const parts: string[] = [];
      for (let i = 0; i < t.cpts.length; i++) {
        const cp = t.cpts[i] as number;
        const f = t.flags[i] as number;
        if (cp < 128) parts.push(String.fromCharCode(cp));
        else if (f & WS) parts.push("\u000b");
        else if (f & CPT_NUMBER) parts.push("\u00d1");
        else if (f & CPT_LETTER) parts.push("\u00d2");
        else if (f & CPT_PUNCTUATION) parts.push("\u00d3");
        else if (f & CPT_MARK) parts.push("\u00d4");
        else if (f & CPT_SYMBOL) parts.push("\u00d5");
        else parts.push("\u00d0");
      }
      text = parts.join("");
    } else {
      const parts: string[] = [];
      for (let i = 0; i < t.cpts.length; i++) {
        const cp = t.cpts[i] as number;
        parts.push(cp > 0x7f && ((t.flags[i] as number) & WS) !== 0 ? "\u000b" : String.fromCodePoint(cp));
      }
      text = parts.join("");
      unitToCp = new Int32Array(text.length + 1);
      let cp = 0;
      for (let u = 0; u < text.length; u++) {
        unitToCp[u] = cp;
        const c = text.charCodeAt(u);
        if (!(c >= 0xd800 && c <= 0xdbff)) cp++;
      }
      unitToCp[text.length] = cp;
    }
    const cpToUnit = (cp: number): number => {
      if (unitToCp === undefined) return cp;
      // Binary search: the first unit whose code point index is cp.
      let lo = 0;
      let hi = text.length;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if ((unitToCp[mid] as number) < cp) lo = mid + 1;
        else hi = mid;
      }
      return lo;
    };
    const unitCp = (u: number): number => (unitToCp === undefined ? u : (unitToCp[u] as number));

    const out: number[] = [];
    let start = 0;
    for (const len of offsets) {
      const u0 = cpToUnit(start);
      const region = text.slice(u0, cpToUnit(start + len));
      js.lastIndex = 0;
      let prev = 0; // code points into the region
      for (let m = js.exec(region); m !== null; m = js.exec(region)) {
        const ms = unitCp(u0 + m.index) - start;
        const me = unitCp(u0 + m.index + m[0].length) - start;
        if (ms > prev) out.push(ms - prev);
        out.push(me - ms);
        prev = me;
        if (m[0].length === 0) js.lastIndex++;
      }
      if (prev < len) out.push(len - prev);
      start += len;
    }
    return out;
  };
}

/** A compiled llama.cpp pre-tokenizer: its regexes, in order. */
export class LlamaPreTokenizer {
  private readonly splitters: readonly Splitter[];

  constructor(readonly regexes: readonly string[]) {
    this.splitters = regexes.map((re) => CUSTOM.get(re) ?? regexSplitter(re));
  }

  /** Split `text` (well-formed) into words, as `unicode_regex_split` does before byte encoding. */
  split(text: string): string[] {
    if (text.length === 0) return [];
    const cpts = codepointsOf(text);
    const flags = new Uint16Array(cpts.length);
    for (let i = 0; i < cpts.length; i++) {
      const cp = cpts[i] as number;
      flags[i] = cptCategory(cp) | (isWhitespaceCp(cp) ? WS : 0);
    }
    let offsets: number[] = [cpts.length];
    for (const s of this.splitters) offsets = s({ cpts, flags }, offsets);

    const words: string[] = [];
    let u = 0;
    let cp = 0;
    for (const len of offsets) {
      const u0 = u;
      for (let k = 0; k < len; k++) u += (cpts[cp + k] as number) > 0xffff ? 2 : 1;
      cp += len;
      words.push(text.slice(u0, u));
    }
    assert(cp === cpts.length, "pre-tokenizer offsets do not cover the text");
    return words;
  }
}
