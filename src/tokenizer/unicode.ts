/**
 * Unicode helpers shared by the tokenizers: llama.cpp's code point classes, the GPT-2 byte <->
 * character table, UTF-8 encoding of JavaScript strings.
 */
import { assert } from "../errors.js";
import { CATEGORY_RUNS } from "./unicode-data.js";

// Class bits, as in llama.cpp unicode.h (one class per code point).
export const CPT_UNDEFINED = 0x01;
export const CPT_NUMBER = 0x02;
export const CPT_LETTER = 0x04;
export const CPT_SEPARATOR = 0x08;
export const CPT_MARK = 0x10;
export const CPT_PUNCTUATION = 0x20;
export const CPT_SYMBOL = 0x40;
export const CPT_CONTROL = 0x80;

const MAX_CODEPOINT = 0x110000;

let categories: Uint8Array | undefined;

function categoryTable(): Uint8Array {
  if (categories !== undefined) return categories;
  const table = new Uint8Array(MAX_CODEPOINT);
  let pos = 0;
  const re = /([A-H])([0-9a-z]+)/g;
  for (const m of CATEGORY_RUNS.matchAll(re)) {
    const bit = 1 << ((m[1] ?? "A").charCodeAt(0) - 65);
    const n = parseInt(m[2] ?? "0", 36);
    table.fill(bit, pos, pos + n);
    pos += n;
  }
  assert(pos === MAX_CODEPOINT, `unicode category runs cover ${pos} code points`);
  categories = table;
  return table;
}

/**
 * The class bit of a code point (never 0 for a valid code point: unassigned ones are
 * CPT_UNDEFINED). llama.cpp's "flags of a position outside the text" are 0; callers use 0 for that.
 */
export function cptCategory(cp: number): number {
  return cp < MAX_CODEPOINT ? (categoryTable()[cp] ?? CPT_UNDEFINED) : CPT_UNDEFINED;
}

/** Unicode White_Space, the set llama.cpp uses for its `\s` (includes U+0085, excludes U+FEFF). */
export function isWhitespaceCp(cp: number): boolean {
  if (cp <= 0x20) return cp === 0x20 || (cp >= 0x09 && cp <= 0x0d);
  if (cp < 0x85) return false;
  return (
    cp === 0x85 ||
    cp === 0xa0 ||
    cp === 0x1680 ||
    (cp >= 0x2000 && cp <= 0x200a) ||
    cp === 0x2028 ||
    cp === 0x2029 ||
    cp === 0x202f ||
    cp === 0x205f ||
    cp === 0x3000
  );
}

/** C `isspace` in the "C" locale, which llama.cpp applies byte by byte (ASCII only). */
export function isAsciiSpace(c: number): boolean {
  return c === 0x20 || (c >= 0x09 && c <= 0x0d);
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/**
 * Replace lone surrogates by U+FFFD.
 *
 * NOTE: this is exactly what llama.cpp sees when node-llama-cpp hands it a JavaScript string
 * (N-API's UTF-8 conversion writes U+FFFD for an unpaired surrogate), so encode() matches it.
 */
export function toWellFormed(s: string): string {
  // Fast path: most text has no surrogates at all.
  if (!/[\uD800-\uDFFF]/.test(s)) return s;
  return s.replace(LONE_SURROGATE, "\uFFFD");
}

const encoder = new TextEncoder();

/** UTF-8 bytes of a well-formed string. */
export function utf8Encode(s: string): Uint8Array {
  return encoder.encode(s);
}

/** Code points of a well-formed string. */
export function codepointsOf(s: string): Uint32Array {
  const out = new Uint32Array(s.length);
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        out[n++] = ((c - 0xd800) << 10) + (d - 0xdc00) + 0x10000;
        i++;
        continue;
      }
    }
    out[n++] = c;
  }
  return out.subarray(0, n);
}

/** Number of UTF-8 bytes of a code point. */
export function utf8Len(cp: number): number {
  return cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
}

// GPT-2 byte-level alphabet: printable bytes map to themselves, the others to U+0100 and up.
const BYTE_TO_CP = new Uint16Array(256);
const CP_TO_BYTE = new Map<number, number>();
{
  let n = 0;
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
    const cp = printable ? b : 256 + n++;
    BYTE_TO_CP[b] = cp;
    CP_TO_BYTE.set(cp, b);
  }
}

/** The GPT-2 byte-level character of a byte. */
export function byteToChar(b: number): string {
  return String.fromCharCode(BYTE_TO_CP[b] ?? 0);
}

/** The byte a GPT-2 byte-level character stands for, or -1. */
export function charToByte(cp: number): number {
  return CP_TO_BYTE.get(cp) ?? -1;
}

const BYTE_CHARS: readonly string[] = Array.from(BYTE_TO_CP, (cp) => String.fromCharCode(cp));

/** Byte-level encoding of a well-formed string: its UTF-8 bytes, each as a GPT-2 alphabet character. */
export function byteLevelEncode(s: string): string {
  let out = "";
  const n = s.length;
  for (let i = 0; i < n; i++) {
    let c = s.charCodeAt(i);
    if (c < 0x80) {
      out += BYTE_CHARS[c] as string;
      continue;
    }
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < n) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        c = ((c - 0xd800) << 10) + (d - 0xdc00) + 0x10000;
        i++;
      }
    }
    if (c < 0x800) {
      out += (BYTE_CHARS[0xc0 | (c >> 6)] as string) + (BYTE_CHARS[0x80 | (c & 0x3f)] as string);
    } else if (c < 0x10000) {
      out += (BYTE_CHARS[0xe0 | (c >> 12)] as string) + (BYTE_CHARS[0x80 | ((c >> 6) & 0x3f)] as string) + (BYTE_CHARS[0x80 | (c & 0x3f)] as string);
    } else {
      out +=
        (BYTE_CHARS[0xf0 | (c >> 18)] as string) +
        (BYTE_CHARS[0x80 | ((c >> 12) & 0x3f)] as string) +
        (BYTE_CHARS[0x80 | ((c >> 6) & 0x3f)] as string) +
        (BYTE_CHARS[0x80 | (c & 0x3f)] as string);
    }
  }
  return out;
}

/** Two-digit upper-case hex, as in "<0x0A>". */
export function hex2(b: number): string {
  return (b < 16 ? "0" : "") + b.toString(16).toUpperCase();
}
