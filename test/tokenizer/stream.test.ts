/**
 * Streaming decode: tokens pushed one by one reassemble to decode(all), incomplete UTF-8 is held
 * back (never U+FFFD mid-stream), and llama.cpp's space clean-up (gpt-2) streams exactly like its
 * one-shot loops.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { tokenizerFromJson, tokenizerFromMetadata, type Tokenizer } from "../../src/tokenizer/index.js";
import { BytePipeline } from "../../src/tokenizer/stream-decoder.js";
import {
  corpusLines,
  EDGE_CASES,
  gpt2TokenizerJson,
  haveModels,
  LLAMA2_TINY,
  meta,
  STORIES,
  STORIES_HF,
  VOCAB_GPT2,
  VOCAB_PHI3,
} from "./fixtures.js";

const skip = haveModels ? false : "shared models not present";

function tokenizers(): [string, Tokenizer][] {
  return [
    ["gpt-2", tokenizerFromMetadata(meta(VOCAB_GPT2))],
    ["phi-3", tokenizerFromMetadata(meta(VOCAB_PHI3))],
    ["llama-2", tokenizerFromMetadata(meta(LLAMA2_TINY))],
    ["stories260K", tokenizerFromMetadata(meta(STORIES))],
    [
      "stories260K-hf",
      tokenizerFromJson(
        JSON.parse(readFileSync(join(STORIES_HF, "tokenizer.json"), "utf8")),
        JSON.parse(readFileSync(join(STORIES_HF, "tokenizer_config.json"), "utf8")),
      ),
    ],
    ["gpt-2-hf", tokenizerFromJson(gpt2TokenizerJson(meta(VOCAB_GPT2)))],
  ];
}

function streamAll(tok: Tokenizer, ids: readonly number[], unparseSpecial: boolean): { text: string; pushes: string[] } {
  const d = tok.createStreamDecoder({ unparseSpecial });
  const pushes = ids.map((id) => d.push(id));
  pushes.push(d.flush());
  return { text: pushes.join(""), pushes };
}

describe("stream decoder", { skip }, () => {
  it("reassembles decode(all) for every test string, and emits no U+FFFD for valid text", () => {
    const strings = [...EDGE_CASES, ...corpusLines(100), "naïve café 🦙", "日本語 🦙🚀 ✅", "\u{10ffff}\u{1f600}x"];
    for (const [name, tok] of tokenizers()) {
      for (const s of strings) {
        for (const parseSpecial of [false, true]) {
          const ids = tok.encode(s, { parseSpecial });
          for (const unparseSpecial of [false, true]) {
            const whole = tok.decode(ids, { unparseSpecial });
            const { text, pushes } = streamAll(tok, ids, unparseSpecial);
            assert.equal(text, whole, `${name} ${JSON.stringify(s)} parse=${parseSpecial} unparse=${unparseSpecial}`);
            if (!whole.includes("\ufffd")) {
              assert.ok(!pushes.some((p) => p.includes("\ufffd")), `${name}: U+FFFD mid-stream for ${JSON.stringify(s)}`);
            }
          }
        }
      }
    }
  });

  it("holds back byte-fallback tokens until the character is complete (SPM)", () => {
    const tok = tokenizerFromMetadata(meta(STORIES));
    const ids = tok.encode("🦙");
    // ▁ then the four UTF-8 bytes of U+1F999 as <0xF0> <0x9F> <0xA6> <0x99> (id = byte + 3).
    assert.deepEqual(ids.slice(-4), [0xf0 + 3, 0x9f + 3, 0xa6 + 3, 0x99 + 3]);
    const d = tok.createStreamDecoder();
    const out = ids.map((id) => d.push(id));
    assert.deepEqual(out.slice(-4), ["", "", "", "🦙"]);
    assert.equal(d.flush(), "");
  });

  it("holds back split multi-byte characters (byte-level BPE)", () => {
    const tok = tokenizerFromMetadata(meta(VOCAB_GPT2));
    const ids = tok.encode("🦙");
    assert.ok(ids.length > 1, "GPT-2 splits the llama emoji over several tokens");
    const d = tok.createStreamDecoder();
    const out = ids.map((id) => d.push(id));
    assert.deepEqual(out, [...ids.slice(1).map(() => ""), "🦙"]);
  });

  it("an incomplete sequence at the end becomes U+FFFD only at flush", () => {
    const tok = tokenizerFromMetadata(meta(STORIES));
    const d = tok.createStreamDecoder();
    assert.equal(d.push(0xe2 + 3), "");
    assert.equal(d.push(0x82 + 3), "");
    assert.equal(d.flush(), "\ufffd");
    assert.equal(tok.decode([0xe2 + 3, 0x82 + 3]), "\ufffd");
    assert.equal(tok.decode([0xe2 + 3, 0x41 + 3]), "\ufffdA");
  });
});

/** llama.cpp detokenize clean_spaces, transcribed loop for loop (the reference for the streaming form). */
function cleanSpacesReference(src: readonly number[]): number[] {
  const text = Uint8Array.from(src);
  const at = (i: number): number => text[i] as number;
  let total = text.length;
  const total1 = total;
  total = total > 0 ? 1 : 0;
  for (let i = 1; i < total1; ++i) {
    const x = at(i);
    if (at(i - 1) === 0x20 && (x === 0x3f || x === 0x21 || x === 0x2e || x === 0x2c)) total--;
    text[total++] = x;
  }
  const total2 = total;
  total = total > 0 ? 1 : 0;
  for (let i = 1; i < total2; ++i) {
    const x = at(i);
    if (x === 0x27 && i + 1 < total2 && at(i - 1) === 0x20 && at(i + 1) === 0x20) {
      total--;
      text[++i] = 0;
    }
    text[total++] = x;
  }
  const total3 = total;
  total = total > 0 ? 1 : 0;
  for (let i = 1; i < total3; ++i) {
    const x = at(i);
    if (at(i - 1) === 0x20 && x === 0x27 && i + 1 < total3) {
      const x1 = at(i + 1);
      if (x1 === 0x74 || x1 === 0x64) {
        // " 't", " 'd": kept
      } else if (x1 === 0x73 || x1 === 0x6d) total--;
      else if (i + 2 < total3) {
        const x2 = at(i + 2);
        if ((x1 === 0x72 || x1 === 0x76) && x2 === 0x65) total--;
      }
    }
    text[total++] = x;
  }
  return Array.from(text.subarray(0, total));
}

describe("llama.cpp space clean-up, streamed", () => {
  it("matches the one-shot loops on 50k random strings in random chunks", () => {
    const alphabet = Array.from(" '?!.,smtdlrevax", (c) => c.charCodeAt(0));
    let seed = 12345;
    const rnd = (n: number): number => {
      seed = (Math.imul(seed, 1103515245) + 12345) & 0x7fffffff;
      return seed % n;
    };
    for (let t = 0; t < 50_000; t++) {
      const bytes = Array.from({ length: rnd(14) }, () => alphabet[rnd(alphabet.length)] as number);
      const want = String.fromCharCode(...cleanSpacesReference(bytes));
      const p = new BytePipeline({ cleanSpaces: true });
      let got = "";
      for (let i = 0; i < bytes.length; ) {
        const k = 1 + rnd(3);
        got += p.push(Uint8Array.from(bytes.slice(i, i + k)));
        i += k;
      }
      got += p.flush();
      assert.equal(got, want, JSON.stringify(String.fromCharCode(...bytes)));
    }
  });

  it("gpt-2 decode cleans like llama.cpp", { skip }, () => {
    const tok = tokenizerFromMetadata(meta(VOCAB_GPT2));
    assert.equal(tok.decode(tok.encode("Hello , world ! I 'm here . it 's")), "Hello, world! I'm here. it's");
    assert.equal(tok.decode(tok.encode("a ' b")), "a'b");
  });
});
