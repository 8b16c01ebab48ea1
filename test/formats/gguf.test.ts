import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { ModelFormatError, UnsupportedError, SlimError } from "../../src/errors.js";
import { GgmlType, ggmlTypeName } from "../../src/tensor/ggml-type.js";
import { BufferFile } from "../../src/formats/file.js";
import { parseGguf } from "../../src/formats/gguf/parse.js";
import { openGguf, ggufModelFile } from "../../src/formats/gguf/open.js";
import { writeGguf } from "../../src/formats/gguf/writer.js";
import { GgufValueType } from "../../src/formats/metadata.js";
import { STORIES_GGUF, TINY_RANDOM_GGUF, VOCAB_DIR, throwsA, tmpDir, unimplementedType } from "./helpers.js";
import { Raw, craft, kvStr, kvU32, type CraftTensor } from "./gguf-bytes.js";

const parse = (b: Uint8Array) => parseGguf(new BufferFile(b, "crafted.gguf"));
const f32Tensor = (name: string, dims: number[], offset: number): CraftTensor => ({ name, dims, type: GgmlType.F32, offset });

test("stories260K.gguf: header facts from the README", () => {
  const m = openGguf(STORIES_GGUF);
  try {
    assert.equal(m.kind, "gguf");
    assert.equal(m.header.version, 3);
    assert.equal(m.metadata.entries.size, 19);
    assert.equal(m.weights.tensors.length, 48);
    assert.equal(m.header.alignment, 32);
    assert.equal(m.header.dataOffset, 14176);
    assert.equal(m.fileSize, 1185376);
    const md = m.metadata;
    assert.equal(md.string("general.architecture"), "llama");
    assert.equal(md.string("general.name"), "llama");
    assert.equal(md.uint("llama.context_length"), 2048);
    assert.equal(md.uint("llama.embedding_length"), 64);
    assert.equal(md.uint("llama.feed_forward_length"), 172);
    assert.equal(md.uint("llama.block_count"), 5);
    assert.equal(md.uint("llama.attention.head_count"), 8);
    assert.equal(md.uint("llama.attention.head_count_kv"), 4);
    assert.equal(md.uint("llama.rope.dimension_count"), 8);
    assert.equal(md.float("llama.attention.layer_norm_rms_epsilon"), Math.fround(1e-5));
    assert.equal(md.string("tokenizer.ggml.model"), "llama");
    const tokens = md.stringArray("tokenizer.ggml.tokens");
    assert.equal(tokens.length, 512);
    assert.deepEqual(tokens.slice(0, 4), ["<unk>", "<s>", "</s>", "<0x00>"]);
    const scores = md.numberArray("tokenizer.ggml.scores");
    assert.ok(scores[259] === 0);
    assert.equal(scores[511], -252);
    assert.equal(md.entries.get("tokenizer.ggml.scores")?.elementType, GgufValueType.FLOAT32);
    assert.equal(md.entries.get("tokenizer.ggml.token_type")?.elementType, GgufValueType.INT32);
    assert.equal(md.uint("tokenizer.ggml.bos_token_id"), 1);
    assert.equal(md.uint("tokenizer.ggml.eos_token_id"), 2);
    assert.equal(md.uint("tokenizer.ggml.unknown_token_id"), 0);
    assert.equal(md.uint("tokenizer.ggml.padding_token_id"), 4294967295);

    const dims = (n: string) => m.weights.get(n)?.dims;
    assert.deepEqual(dims("token_embd.weight"), [64, 512]);
    assert.deepEqual(dims("output_norm.weight"), [64]);
    assert.deepEqual(dims("output.weight"), [64, 512]);
    for (let b = 0; b < 5; b++) {
      assert.deepEqual(dims(`blk.${b}.attn_q.weight`), [64, 64]);
      assert.deepEqual(dims(`blk.${b}.attn_k.weight`), [64, 32]);
      assert.deepEqual(dims(`blk.${b}.attn_v.weight`), [64, 32]);
      assert.deepEqual(dims(`blk.${b}.attn_output.weight`), [64, 64]);
      assert.deepEqual(dims(`blk.${b}.ffn_gate.weight`), [64, 172]);
      assert.deepEqual(dims(`blk.${b}.ffn_down.weight`), [172, 64]);
      assert.deepEqual(dims(`blk.${b}.ffn_up.weight`), [64, 172]);
      assert.deepEqual(dims(`blk.${b}.attn_norm.weight`), [64]);
      assert.deepEqual(dims(`blk.${b}.ffn_norm.weight`), [64]);
    }
    assert.ok(m.weights.tensors.every((t) => t.type === GgmlType.F32));
    assert.equal(m.weights.tensors.reduce((n, t) => n + t.nbytes / 4, 0), 292800);

    // The tied classifier is stored twice: output.weight equals token_embd.weight.
    const a = new Uint8Array(64 * 512 * 4);
    const b = new Uint8Array(64 * 512 * 4);
    m.weights.readInto("token_embd.weight", 0, a);
    m.weights.readInto("output.weight", 0, b);
    assert.deepEqual(a, b);
    // readInto at an offset matches the file bytes.
    const t = m.header.tensors.find((x) => x.name === "blk.4.ffn_norm.weight");
    assert.ok(t !== undefined);
    const file = fs.readFileSync(STORIES_GGUF);
    const part = new Uint8Array(100);
    m.weights.readInto(t.name, 17, part);
    assert.deepEqual(part, new Uint8Array(file.subarray(t.fileOffset + 17, t.fileOffset + 117)));
  } finally {
    m.weights.close();
  }
});

test("readInto fills a view on a SharedArrayBuffer / WebAssembly memory", () => {
  const m = openGguf(STORIES_GGUF);
  try {
    // NOTE: lib has no WebAssembly typings here; describe the one constructor we use.
    const WA = (globalThis as unknown as { WebAssembly: { Memory: new (d: { initial: number; maximum: number; shared: boolean }) => { buffer: SharedArrayBuffer } } }).WebAssembly;
    const mem = new WA.Memory({ initial: 1, maximum: 4, shared: true });
    assert.ok(mem.buffer instanceof SharedArrayBuffer);
    const dst = new Uint8Array(mem.buffer, 1000, 256);
    m.weights.readInto("output_norm.weight", 0, dst);
    const ref = new Uint8Array(256);
    m.weights.readInto("output_norm.weight", 0, ref);
    assert.deepEqual(new Uint8Array(dst), ref);
    assert.ok(ref.some((x) => x !== 0));
  } finally {
    m.weights.close();
  }
});

test("llama-2-tiny-random.gguf: F16 matrices and F32 norms", () => {
  const m = openGguf(TINY_RANDOM_GGUF);
  try {
    assert.equal(m.metadata.entries.size, 18);
    assert.equal(m.weights.tensors.length, 12);
    assert.equal(m.header.dataOffset, 724416);
    assert.equal(m.metadata.string("general.name"), "LLaMA v2");
    assert.equal(m.metadata.uint("general.file_type"), 1);
    assert.equal(m.metadata.stringArray("tokenizer.ggml.tokens").length, 32000);
    const f16 = m.weights.tensors.filter((t) => t.type === GgmlType.F16).map((t) => t.name).sort();
    assert.equal(f16.length, 9);
    assert.deepEqual(m.weights.get("token_embd.weight")?.dims, [8, 32000]);
    assert.deepEqual(m.weights.get("blk.0.ffn_down.weight")?.dims, [32, 8]);
    const norm = new Float32Array(8);
    m.weights.readInto("output_norm.weight", 0, new Uint8Array(norm.buffer));
    assert.ok(norm.every((x) => x === 1));
    assert.equal(m.weights.tensors.reduce((n, t) => n + t.dims.reduce((a, b) => a * b, 1), 0), 513048);
  } finally {
    m.weights.close();
  }
});

test("vocab-only GGUFs (0 tensors) parse with their key counts", () => {
  const cases: [string, number, string, number][] = [
    ["ggml-vocab-gpt-2.gguf", 16, "gpt2", 50257],
    ["ggml-vocab-phi-3.gguf", 26, "llama", 32064],
    ["ggml-vocab-bert-bge.gguf", 20, "bert", 30522],
  ];
  for (const [file, keys, model, ntok] of cases) {
    const m = openGguf(path.join(VOCAB_DIR, file));
    try {
      assert.equal(m.weights.tensors.length, 0, file);
      assert.equal(m.metadata.entries.size, keys, file);
      assert.equal(m.metadata.string("tokenizer.ggml.model"), model);
      assert.equal(m.metadata.stringArray("tokenizer.ggml.tokens").length, ntok);
    } finally {
      m.weights.close();
    }
  }
  const gpt2 = openGguf(path.join(VOCAB_DIR, "ggml-vocab-gpt-2.gguf"));
  assert.equal(gpt2.metadata.stringArray("tokenizer.ggml.merges").length, 50000);
  gpt2.weights.close();
  const phi3 = openGguf(path.join(VOCAB_DIR, "ggml-vocab-phi-3.gguf"));
  assert.equal(phi3.metadata.bool("tokenizer.ggml.add_bos_token", false), true);
  assert.ok(phi3.metadata.string("tokenizer.chat_template").includes("message"));
  phi3.weights.close();
});

test("real files rewrite byte for byte through the writer", () => {
  const dir = tmpDir("gguf-rewrite");
  try {
    for (const src of [STORIES_GGUF, TINY_RANDOM_GGUF, path.join(VOCAB_DIR, "ggml-vocab-phi-3.gguf"), path.join(VOCAB_DIR, "ggml-vocab-gpt-2.gguf")]) {
      const m = openGguf(src);
      const out = path.join(dir, "out.gguf");
      try {
        writeGguf(
          out,
          m.metadata,
          m.weights.tensors.map((t) => ({
            name: t.name,
            type: t.type,
            dims: t.dims,
            data: (write: (c: Uint8Array) => void) => {
              // Stream in odd-sized chunks to exercise the callback path.
              for (let off = 0; off < t.nbytes; off += 1000) {
                const c = new Uint8Array(Math.min(1000, t.nbytes - off));
                m.weights.readInto(t.name, off, c);
                write(c);
              }
            },
          })),
        );
      } finally {
        m.weights.close();
      }
      assert.ok(Buffer.compare(fs.readFileSync(src), fs.readFileSync(out)) === 0, src);
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test("hand-crafted valid files: empty header, custom alignment, v2", () => {
  assert.equal(parse(craft({ kvs: [], tensors: [] })).tensors.length, 0);
  const v2 = parse(craft({ version: 2, tensors: [f32Tensor("a", [4], 0)], dataBytes: 16 }));
  assert.equal(v2.version, 2);
  const custom = parse(
    craft({
      kvs: [kvU32("general.alignment", 64)],
      tensors: [f32Tensor("a", [4], 0), f32Tensor("b", [4], 64)],
      alignment: 64,
      dataBytes: 80,
    }),
  );
  assert.equal(custom.alignment, 64);
  assert.equal(custom.dataOffset % 64, 0);
  assert.equal(custom.tensors[1]?.fileOffset, custom.dataOffset + 64);
  // The last tensor need not be padded to the alignment.
  assert.equal(parse(craft({ tensors: [f32Tensor("a", [3], 0)], dataBytes: 12 })).tensors[0]?.nbytes, 12);
});

/** Each corruption case of llama.cpp's tests/test-gguf.cpp plus ours: the error class and a message fragment. */
test("corrupt headers fail with a SlimError naming the field", () => {
  const t = (n: string, dims: number[] = [4], offset = 0): CraftTensor => f32Tensor(n, dims, offset);
  const cases: [string, Uint8Array, new (...a: never[]) => SlimError, RegExp][] = [
    ["empty file", new Uint8Array(0), ModelFormatError, /not a GGUF file/],
    ["bad magic", craft({ magic: 0x12345678 }), ModelFormatError, /not a GGUF file.*0x12345678/],
    ["version 0", craft({ version: 0 }), UnsupportedError, /version 0/],
    ["version 1", craft({ version: 1 }), UnsupportedError, /version 1/],
    ["future version", craft({ version: 4 }), UnsupportedError, /version 4/],
    ["big-endian", craft({ version: 0x03000000 }), UnsupportedError, /big-endian/],
    ["truncated header", craft().subarray(0, 12), ModelFormatError, /truncated/],
    ["huge n_tensors", craft({ nTensors: 2n ** 63n }), ModelFormatError, /n_tensors/],
    ["n_tensors beyond the file", craft({ nTensors: 1000 }), ModelFormatError, /n_tensors/],
    ["huge n_kv", craft({ nKv: 2n ** 64n - 1n }), ModelFormatError, /n_kv/],
    ["n_kv beyond the file", craft({ nKv: 3 }), ModelFormatError, /truncated|n_kv/],
    ["huge key length", new Raw().u32(0x46554747).u32(3).u64(0).u64(1).u64(2n ** 40n).zeros(20).bytes(), ModelFormatError, /metadata key #0: bad metadata key length/],
    ["key longer than the limit", craft({ kvs: [kvU32("k".repeat(5000), 1)] }), ModelFormatError, /bad metadata key length/],
    ["empty key", craft({ kvs: [kvU32("", 1)] }), ModelFormatError, /empty metadata key/],
    ["bad value type", craft({ kvs: [{ key: "k", write: (r) => r.u32(13).u32(0) }] }), ModelFormatError, /k: bad metadata value type/],
    ["bad array element type", craft({ kvs: [{ key: "k", write: (r) => r.u32(9).u32(77).u64(1).u32(0) }] }), ModelFormatError, /k: bad metadata array element type/],
    ["nested array", craft({ kvs: [{ key: "k", write: (r) => r.u32(9).u32(9).u64(0) }] }), UnsupportedError, /nested/],
    ["huge array", craft({ kvs: [{ key: "k", write: (r) => r.u32(9).u32(4).u64(2n ** 62n) }] }), ModelFormatError, /k: bad metadata array length/],
    ["huge string array", craft({ kvs: [{ key: "k", write: (r) => r.u32(9).u32(8).u64(1000).u64(1).u8(65) }] }), ModelFormatError, /k: bad metadata array length/],
    ["huge string", craft({ kvs: [{ key: "k", write: (r) => r.u32(8).u64(2n ** 40n) }] }), ModelFormatError, /k: bad string value length/],
    ["duplicate key", craft({ kvs: [kvU32("a", 1), kvU32("a", 2)] }), ModelFormatError, /a: duplicate metadata key/],
    ["alignment not a power of 2", craft({ kvs: [kvU32("general.alignment", 48)] }), ModelFormatError, /general.alignment: bad alignment/],
    ["alignment 0", craft({ kvs: [kvU32("general.alignment", 0)] }), ModelFormatError, /general.alignment: bad alignment/],
    ["alignment too large", craft({ kvs: [kvU32("general.alignment", 2 ** 31)] }), ModelFormatError, /general.alignment: bad alignment/],
    ["alignment wrong type", craft({ kvs: [{ key: "general.alignment", write: (r) => r.u32(10).u64(32) }] }), ModelFormatError, /alignment type/],
    ["tensor name too long", craft({ tensors: [t("x".repeat(64))], dataBytes: 16 }), ModelFormatError, /tensor #0: bad tensor name length/],
    ["empty tensor name", craft({ tensors: [t("")], dataBytes: 16 }), ModelFormatError, /empty tensor name/],
    ["invalid UTF-8 key", craft({ kvs: [{ key: "\u00e9", write: (r) => r.u32(4).u32(0) }] }).map((b, i) => (i === 32 ? 0xff : b)), ModelFormatError, /UTF-8/],
    ["n_dims 0", craft({ tensors: [{ ...t("a"), nDims: 0, dims: [] }], dataBytes: 16 }), ModelFormatError, /a: bad number of dimensions/],
    ["n_dims 5", craft({ tensors: [{ ...t("a"), dims: [1, 1, 1, 1, 4] }], dataBytes: 16 }), ModelFormatError, /a: bad number of dimensions/],
    ["zero dim", craft({ tensors: [t("a", [4, 0])], dataBytes: 16 }), ModelFormatError, /a: bad dimension/],
    ["ne overflow", craft({ tensors: [{ ...t("a"), dims: [2n ** 32n, 2n ** 32n] }], dataBytes: 16 }), ModelFormatError, /a: tensor too large/],
    ["nbytes beyond file", craft({ tensors: [t("a", [1 << 20, 1 << 10])], dataBytes: 16 }), ModelFormatError, /a: tensor larger than the file/],
    ["unknown type", craft({ tensors: [{ ...t("a"), type: 1234 }], dataBytes: 16 }), ModelFormatError, /a: unknown tensor type/],
    ["removed type", craft({ tensors: [{ ...t("a"), type: 31 }], dataBytes: 16 }), UnsupportedError, /a: tensor type q4_0_4_4/],
    ["row not whole blocks", craft({ tensors: [{ ...t("a", [33]), type: GgmlType.Q8_0 }], dataBytes: 64 }), ModelFormatError, /a: row length not a multiple/],
    ["misaligned offset", craft({ tensors: [t("a", [4], 0), t("b", [4], 20)], dataBytes: 64 }), ModelFormatError, /b: misaligned/],
    ["offset beyond file", craft({ tensors: [t("a", [4], 2 ** 40)], dataBytes: 16 }), ModelFormatError, /a: tensor offset outside the file/],
    ["data beyond file", craft({ tensors: [t("a", [4], 0), t("b", [4], 32)], dataBytes: 40 }), ModelFormatError, /b: tensor data outside the file/],
    ["not enough data", craft({ tensors: [t("a", [8], 0)], dataBytes: 31 }), ModelFormatError, /a: tensor data outside the file/],
    ["overlap", craft({ tensors: [t("a", [16], 0), t("b", [4], 32)], dataBytes: 64 }), ModelFormatError, /b: overlapping/],
    ["duplicate tensor", craft({ tensors: [t("a", [4], 0), t("a", [4], 32)], dataBytes: 64 }), ModelFormatError, /a: duplicate tensor name/],
    ["header truncated mid-way", craft({ tensors: [t("a", [4], 0)] }).subarray(0, 60), ModelFormatError, /counts exceed the file size/],
    ["header truncated in the tensor infos", craft({ tensors: [t("a", [4], 0)] }).subarray(0, 85), ModelFormatError, /truncated while reading tensor info "a"/],
    ["no data section", craft({ tensors: [t("a", [4], 0)] }).subarray(0, 110), ModelFormatError, /truncated before the tensor data/],
  ];
  const missing = unimplementedType();
  if (missing !== undefined) {
    // Row length 256 is whole blocks for every GGML type; the file is large enough for any of them.
    cases.push(["unimplemented type", craft({ tensors: [{ ...t("a", [256]), type: missing }], dataBytes: 4096 }), UnsupportedError, new RegExp(`a: tensor type ${ggmlTypeName(missing)}`)]);
  }
  for (const [label, bytes, cls, re] of cases) {
    try {
      throwsA(() => parse(bytes), cls, re);
    } catch (e) {
      throw new Error(`${label}: ${(e as Error).message}`);
    }
  }
});

test("errors carry file, field, expected and got", () => {
  const e = throwsA(() => parse(craft({ tensors: [f32Tensor("blk.0.attn_q.weight", [4, 0], 0)], dataBytes: 16 })), ModelFormatError);
  assert.equal(e.file, "crafted.gguf");
  assert.equal(e.field, "blk.0.attn_q.weight");
  assert.ok(e.expected !== undefined && e.got !== undefined);
  assert.equal(e.message.includes("\n"), false);
});

test("u64 metadata above 2^53 stays exact as bigint", () => {
  const md = parse(
    craft({
      kvs: [
        { key: "a", write: (r) => r.u32(10).u64(2n ** 53n + 1n) },
        { key: "b", write: (r) => r.u32(11).u64(-5) },
        { key: "c", write: (r) => r.u32(10).u64(2n ** 53n) },
      ],
    }),
  ).metadata;
  assert.equal(md.get("a"), 2n ** 53n + 1n);
  assert.equal(md.get("b"), -5);
  assert.equal(md.get("c"), 2 ** 53);
});

test("a file that shrinks after opening fails reads with FileError, not garbage", () => {
  const dir = tmpDir("gguf-shrink");
  try {
    const p = path.join(dir, "m.gguf");
    fs.writeFileSync(p, craft({ tensors: [f32Tensor("a", [1024], 0)], dataBytes: 4096 }));
    const m = openGguf(p);
    fs.truncateSync(p, 100);
    throwsA(() => m.weights.readInto("a", 0, new Uint8Array(4096)), SlimError, /shorter than when it was opened/);
    m.weights.close();
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test("readInto: unknown tensor is a ModelFormatError; an out-of-range read is our bug (assert)", () => {
  const m = ggufModelFile(new BufferFile(craft({ tensors: [f32Tensor("a", [4], 0)], dataBytes: 16 })));
  throwsA(() => m.weights.readInto("nope", 0, new Uint8Array(1)), ModelFormatError, /nope: tensor not found/);
  assert.throws(() => m.weights.readInto("a", 10, new Uint8Array(8)), { name: "InternalError" });
  const kv = craft({ kvs: [kvStr("general.name", "x")] });
  assert.equal(parse(kv).metadata.get("general.name"), "x");
});
