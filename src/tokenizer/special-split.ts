/**
 * Splitting input text around special-token text before the model runs on the pieces in between.
 */
import { isAsciiSpace } from "./unicode.js";

/** A piece of input: either a token recognised from its text, or a text range [start, end). */
export type Fragment = { readonly token: number } | { readonly start: number; readonly end: number };

export interface SpecialText {
  readonly id: number;
  readonly text: string;
  /** Eat whitespace to the left of a match (ASCII isspace, as llama.cpp). */
  readonly lstrip: boolean;
  /** Eat whitespace to the right of a match. */
  readonly rstrip: boolean;
}

/**
 * llama.cpp `tokenizer_st_partition`: the special tokens are tried one after the other, in the
 * given order (llama.cpp: longest text first), each splitting every remaining text fragment at
 * all its non-overlapping occurrences, left to right.
 */
export function partitionSequential(text: string, specials: readonly SpecialText[]): Fragment[] {
  let frags: Fragment[] = text.length > 0 ? [{ start: 0, end: text.length }] : [];
  for (const sp of specials) {
    const t = sp.text;
    // Cheap rejection: most special tokens do not occur at all.
    if (t.length === 0 || text.indexOf(t) === -1) continue;
    const next: Fragment[] = [];
    // Fragments come in text order, so an occurrence found past one fragment is the first
    // candidate of the next ones: searching again from scratch would be quadratic.
    let occ = -1;
    for (const f of frags) {
      if (!("start" in f)) {
        next.push(f);
        continue;
      }
      let pos = f.start;
      const end = f.end;
      for (;;) {
        if (occ !== -2 && occ < pos) occ = text.indexOf(t, pos);
        if (occ === -1) occ = -2; // no occurrence left anywhere
        const m = occ;
        if (m < 0 || m + t.length > end) {
          if (pos < end) next.push({ start: pos, end });
          break;
        }
        let leftEnd = m;
        if (sp.lstrip) while (leftEnd > pos && isAsciiSpace(text.charCodeAt(leftEnd - 1))) leftEnd--;
        if (leftEnd > pos) next.push({ start: pos, end: leftEnd });
        next.push({ token: sp.id });
        pos = m + t.length;
        if (sp.rstrip) while (pos < end && isAsciiSpace(text.charCodeAt(pos))) pos++;
      }
    }
    frags = next;
  }
  return frags;
}

export interface AddedText extends SpecialText {
  /** Only match when not inside a word (Hugging Face `single_word`). */
  readonly singleWord: boolean;
}

const WORD_CHAR = /[\p{L}\p{N}\p{M}\p{Pc}]/u;

/**
 * Hugging Face AddedVocabulary splitting: one left-to-right scan, at each position the longest
 * added token that matches (leftmost-longest), with lstrip/rstrip eating Unicode whitespace.
 */
export function partitionLeftmostLongest(text: string, added: readonly AddedText[]): Fragment[] {
  const frags: Fragment[] = [];
  if (text.length === 0) return frags;
  if (added.length === 0) return [{ start: 0, end: text.length }];
  const byFirst = new Map<number, AddedText[]>();
  const firstMask = new Uint8Array(65536);
  for (const a of added) {
    if (a.text.length === 0) continue;
    const c = a.text.charCodeAt(0);
    firstMask[c] = 1;
    const list = byFirst.get(c);
    if (list === undefined) byFirst.set(c, [a]);
    else list.push(a);
  }
  for (const list of byFirst.values()) list.sort((x, y) => y.text.length - x.text.length);

  let textStart = 0;
  let i = 0;
  while (i < text.length) {
    const c0 = text.charCodeAt(i);
    if (firstMask[c0] === 0) {
      i++;
      continue;
    }
    const list = byFirst.get(c0);
    let hit: AddedText | undefined;
    if (list !== undefined) {
      for (const a of list) {
        if (!text.startsWith(a.text, i)) continue;
        if (a.singleWord) {
          const before = i > 0 ? text[i - 1] : undefined;
          const after = text[i + a.text.length];
          if ((before !== undefined && WORD_CHAR.test(before)) || (after !== undefined && WORD_CHAR.test(after))) continue;
        }
        hit = a;
        break;
      }
    }
    if (hit === undefined) {
      i++;
      continue;
    }
    let leftEnd = i;
    if (hit.lstrip) while (leftEnd > textStart && /\s/u.test(text[leftEnd - 1] ?? "")) leftEnd--;
    if (leftEnd > textStart) frags.push({ start: textStart, end: leftEnd });
    frags.push({ token: hit.id });
    i += hit.text.length;
    if (hit.rstrip) while (i < text.length && /\s/u.test(text[i] ?? "")) i++;
    textStart = i;
  }
  if (textStart < text.length) frags.push({ start: textStart, end: text.length });
  return frags;
}

/**
 * `text` with every code unit inside `ranges` replaced by U+FFFF (a noncharacter no token text
 * contains), so special-token matching skips those ranges while offsets stay the same.
 */
export function maskRanges(text: string, ranges: readonly (readonly [number, number])[] | undefined): string {
  if (ranges === undefined || ranges.length === 0) return text;
  const sorted = [...ranges].sort((a, b) => a[0] - b[0]);
  let out = "";
  let pos = 0;
  for (const [a, b] of sorted) {
    const start = Math.max(pos, Math.min(a, text.length));
    const end = Math.max(start, Math.min(b, text.length));
    out += text.slice(pos, start) + "\uffff".repeat(end - start);
    pos = end;
  }
  return out + text.slice(pos);
}
