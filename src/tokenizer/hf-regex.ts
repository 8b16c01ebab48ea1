/**
 * Oniguruma (Hugging Face tokenizers) regex syntax -> JavaScript RegExp with the `u` flag.
 *
 * Handled: `(?i:...)` groups (ASCII letters expanded to [xX]; Node 20 has no inline modifiers),
 * possessive quantifiers and atomic groups (made greedy / plain: the same matches for the
 * tokenizer patterns in use, not in general), Unicode `\s` `\d` `\w` `\b` (JavaScript's are ASCII
 * or a different set), script names in `\p{..}`, `\x{HHHH}`, `\A` `\z` `\Z`, and identity escapes
 * that the `u` flag rejects.
 */
import { UnsupportedError } from "../errors.js";

// Unicode White_Space (Oniguruma's \s with a Unicode encoding).
const WS_BODY = "\\t-\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000";
const WORD_BODY = "\\p{L}\\p{M}\\p{Nd}\\p{Pc}";
const SYNTAX = new Set("^$\\.*+?()[]{}|/".split(""));

const propertyCache = new Map<string, string>();

function property(name: string, negated: boolean): string {
  let body = propertyCache.get(name);
  if (body === undefined) {
    body = `\\p{${name}}`;
    try {
      new RegExp(body, "u");
    } catch {
      // Oniguruma accepts script names bare (\p{Han}); JavaScript wants Script=Han.
      body = `\\p{Script=${name}}`;
      try {
        new RegExp(body, "u");
      } catch {
        throw new UnsupportedError(`unsupported Unicode property in a tokenizer regex: \\p{${name}}`);
      }
    }
    propertyCache.set(name, body);
  }
  return negated ? body.replace("\\p{", "\\P{") : body;
}

function caseFold(ch: string, inClass: boolean): string {
  const lower = ch.toLowerCase();
  const upper = ch.toUpperCase();
  if (lower === upper || !/^[A-Za-z]$/.test(ch)) return ch;
  return inClass ? lower + upper : `[${lower}${upper}]`;
}

/** Translate one Oniguruma pattern. Throws UnsupportedError for constructs it cannot map. */
export function onigToJs(pattern: string): RegExp {
  let out = "";
  let inClass = false;
  // Depth of (?i: groups: the parenthesis depths at which each one opened.
  const ciStack: number[] = [];
  let depth = 0;
  const ci = (): boolean => ciStack.length > 0;
  const n = pattern.length;
  for (let i = 0; i < n; i++) {
    const ch = pattern[i] as string;
    if (ch === "\\") {
      const nx = pattern[i + 1];
      if (nx === undefined) throw new UnsupportedError("tokenizer regex ends with a backslash", { got: pattern });
      i++;
      switch (nx) {
        case "s":
          out += inClass ? WS_BODY : `[${WS_BODY}]`;
          break;
        case "S":
          if (inClass) throw new UnsupportedError("\\S inside a character class is not supported", { got: pattern });
          out += `[^${WS_BODY}]`;
          break;
        case "d":
          out += "\\p{Nd}";
          break;
        case "D":
          out += "\\P{Nd}";
          break;
        case "w":
          out += inClass ? WORD_BODY : `[${WORD_BODY}]`;
          break;
        case "W":
          if (inClass) throw new UnsupportedError("\\W inside a character class is not supported", { got: pattern });
          out += `[^${WORD_BODY}]`;
          break;
        case "b":
          if (inClass) out += "\\x08";
          else out += `(?:(?<=[${WORD_BODY}])(?![${WORD_BODY}])|(?<![${WORD_BODY}])(?=[${WORD_BODY}]))`;
          break;
        case "B":
          out += `(?:(?<=[${WORD_BODY}])(?=[${WORD_BODY}])|(?<![${WORD_BODY}])(?![${WORD_BODY}]))`;
          break;
        case "A":
          out += "^";
          break;
        case "z":
        case "Z":
          out += "$";
          break;
        case "p":
        case "P": {
          const close = pattern.indexOf("}", i);
          if (pattern[i + 1] !== "{" || close === -1) throw new UnsupportedError("bad \\p in a tokenizer regex", { got: pattern });
          let name = pattern.slice(i + 2, close);
          let neg = nx === "P";
          if (name.startsWith("^")) {
            neg = !neg;
            name = name.slice(1);
          }
          out += property(name, neg);
          i = close;
          break;
        }
        case "x":
          if (pattern[i + 1] === "{") {
            const close = pattern.indexOf("}", i);
            if (close === -1) throw new UnsupportedError("bad \\x{..} in a tokenizer regex", { got: pattern });
            out += `\\u{${pattern.slice(i + 2, close)}}`;
            i = close;
          } else out += "\\x";
          break;
        case "t":
        case "n":
        case "r":
        case "f":
        case "v":
        case "u":
        case "0":
          out += "\\" + nx;
          break;
        default:
          if (/[0-9]/.test(nx)) out += "\\" + nx; // back-reference
          else if (SYNTAX.has(nx) || (inClass && nx === "-")) out += "\\" + nx;
          else if (/[A-Za-z]/.test(nx)) throw new UnsupportedError(`unsupported escape \\${nx} in a tokenizer regex`, { got: pattern });
          else out += inClass && (nx === "^" || nx === "]") ? "\\" + nx : nx;
      }
      continue;
    }
    if (inClass) {
      if (ch === "]") inClass = false;
      else if (ch === "[") throw new UnsupportedError("nested character classes are not supported", { got: pattern });
      out += ci() ? caseFold(ch, true) : ch;
      continue;
    }
    switch (ch) {
      case "[":
        inClass = true;
        out += ch;
        if (pattern[i + 1] === "^") {
          out += "^";
          i++;
        }
        if (pattern[i + 1] === "]") {
          out += "\\]";
          i++;
        }
        break;
      case "(":
        depth++;
        if (pattern.startsWith("(?i:", i)) {
          ciStack.push(depth);
          out += "(?:";
          i += 3;
        } else if (pattern.startsWith("(?>", i)) {
          out += "(?:";
          i += 2;
        } else if (pattern.startsWith("(?", i) && /^\(\?[imx-]+[:)]/.test(pattern.slice(i, i + 8))) {
          throw new UnsupportedError("inline regex flags other than (?i:...) are not supported", { got: pattern });
        } else out += ch;
        break;
      case ")":
        if (ciStack[ciStack.length - 1] === depth) ciStack.pop();
        depth--;
        out += ch;
        break;
      case "+":
      case "*":
      case "?":
      case "}":
        out += ch;
        // Possessive quantifier (x*+, x++, x?+, x{n}+): JavaScript has none; use the greedy one.
        if (pattern[i + 1] === "+") i++;
        break;
      default:
        out += ci() ? caseFold(ch, false) : ch;
    }
  }
  try {
    return new RegExp(out, "gu");
  } catch (e) {
    throw new UnsupportedError("tokenizer regex cannot be translated to JavaScript", { got: pattern, cause: e });
  }
}
