import { test } from "node:test";
import assert from "node:assert/strict";
import * as path from "node:path";
import { ModelFormatError, UnsupportedError, SlimError } from "../../src/errors.js";
import { GgmlType } from "../../src/tensor/ggml-type.js";
import { BufferFile } from "../../src/formats/file.js";
import { findDuplicateKey } from "../../src/formats/json.js";
import { openSafetensors, parseSafetensors, safetensorsFile } from "../../src/formats/safetensors.js";
import { STORIES_HF, buildSafetensors, prng, randomBytes, rawSafetensors, throwsA } from "./helpers.js";

const parse = (b: Uint8Array) => parseSafetensors(new BufferFile(b, "t.safetensors"));

test("stories260K-hf model.safetensors: 48 F32 tensors, shapes translated to GGUF order", () => {
  const f = openSafetensors(path.join(STORIES_HF, "model.safetensors"));
  try {
    assert.equal(f.header.tensors.length, 48);
    assert.deepEqual(f.header.metadata, { format: "pt" });
    const down = f.header.tensors.find((t) => t.name === "model.layers.0.mlp.down_proj.weight");
    assert.deepEqual(down?.shape, [64, 172]);
    assert.deepEqual(f.weights.get("model.layers.0.mlp.down_proj.weight")?.dims, [172, 64]);
    assert.deepEqual(f.weights.get("model.embed_tokens.weight")?.dims, [64, 512]);
    assert.deepEqual(f.weights.get("model.norm.weight")?.dims, [64]);
    assert.ok(f.weights.tensors.every((t) => t.type === GgmlType.F32));
  } finally {
    f.weights.close();
  }
});

test("valid files: F16/BF16/F32, scalars, __metadata__, byte-exact reads", () => {
  const rand = prng(3);
  const entries = [
    { name: "a", dtype: "F16", shape: [2, 3], data: randomBytes(rand, 12) },
    { name: "b", dtype: "BF16", shape: [5], data: randomBytes(rand, 10) },
    { name: "c", dtype: "F32", shape: [], data: randomBytes(rand, 4) },
    { name: "d", dtype: "F32", shape: [2, 1, 3, 1], data: randomBytes(rand, 24) },
  ];
  const f = safetensorsFile(new BufferFile(buildSafetensors(entries, { k: "v" })));
  assert.deepEqual(f.weights.get("a"), { name: "a", type: GgmlType.F16, dims: [3, 2], nbytes: 12 });
  assert.deepEqual(f.weights.get("b")?.type, GgmlType.BF16);
  assert.deepEqual(f.weights.get("c")?.dims, [1]);
  assert.deepEqual(f.weights.get("d")?.dims, [1, 3, 1, 2]);
  for (const e of entries) {
    const got = new Uint8Array(e.data.length);
    f.weights.readInto(e.name, 0, got);
    assert.deepEqual(got, e.data);
  }
  // Tensors may be listed in any order in the JSON; offsets decide.
  const h = parse(rawSafetensors('{"y":{"dtype":"U8","shape":[2],"data_offsets":[2,4]},"x":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}}', new Uint8Array(4)));
  assert.deepEqual(h.tensors.map((t) => t.name), ["x", "y"]);
  // Trailing spaces in the header are allowed.
  parse(rawSafetensors('{"x":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}     ', new Uint8Array(1)));
  // Empty file with only metadata.
  assert.equal(parse(rawSafetensors('{"__metadata__":{}}', new Uint8Array(0))).tensors.length, 0);
});

test("other dtypes parse but are UnsupportedError naming the tensor when used", () => {
  const b = buildSafetensors([{ name: "ids", dtype: "I64", shape: [3], data: new Uint8Array(24) }]);
  assert.equal(parse(b).tensors[0]?.dtype, "I64");
  throwsA(() => safetensorsFile(new BufferFile(b)), UnsupportedError, /ids: safetensors dtype I64/);
  const f4 = rawSafetensors('{"q":{"dtype":"F4","shape":[4],"data_offsets":[0,2]}}', new Uint8Array(2));
  assert.equal(parse(f4).tensors[0]?.nbytes, 2);
  const empty = buildSafetensors([{ name: "e", dtype: "F32", shape: [0, 4], data: new Uint8Array(0) }]);
  throwsA(() => safetensorsFile(new BufferFile(empty)), UnsupportedError, /e: tensor shape/);
  const rank5 = buildSafetensors([{ name: "r", dtype: "F32", shape: [1, 1, 1, 1, 2], data: new Uint8Array(8) }]);
  throwsA(() => safetensorsFile(new BufferFile(rank5)), UnsupportedError, /r: tensor shape/);
});

test("corrupt files fail with ModelFormatError naming the tensor", () => {
  const x = (s: string) => `{"x":${s}}`;
  const cases: [string, Uint8Array, RegExp][] = [
    ["too short", new Uint8Array(5), /not a safetensors file/],
    ["header length beyond file", rawSafetensors("{}", new Uint8Array(0), 1000n), /bad safetensors header length/],
    ["header length 2^64-1", rawSafetensors("{}", new Uint8Array(0), 2n ** 64n - 1n), /bad safetensors header length/],
    ["header over 100 MB", rawSafetensors("{}", new Uint8Array(0), 100_000_001n), /bad safetensors header length/],
    ["empty header", rawSafetensors("", new Uint8Array(0)), /bad safetensors header/],
    ["not an object", rawSafetensors("[1,2]", new Uint8Array(0)), /bad safetensors header/],
    ["invalid JSON", rawSafetensors('{"x":', new Uint8Array(0)), /not valid JSON/],
    ["invalid UTF-8", (() => { const b = rawSafetensors('{"\u00e9":1}', new Uint8Array(0)); b[10] = 0xff; return b; })(), /not valid UTF-8/],
    ["duplicate tensor", rawSafetensors('{"x":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"x":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}', new Uint8Array(2)), /x: duplicate key/],
    ["duplicate escaped key", rawSafetensors('{"\\u0078":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"x":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}', new Uint8Array(2)), /x: duplicate key/],
    ["bad __metadata__", rawSafetensors('{"__metadata__":{"a":1}}', new Uint8Array(0)), /__metadata__/],
    ["entry not an object", rawSafetensors(x("3"), new Uint8Array(0)), /x: bad tensor entry/],
    ["unknown dtype", rawSafetensors(x('{"dtype":"Q4","shape":[1],"data_offsets":[0,1]}'), new Uint8Array(1)), /x: unknown dtype/],
    ["missing dtype", rawSafetensors(x('{"shape":[1],"data_offsets":[0,1]}'), new Uint8Array(1)), /x: bad dtype/],
    ["negative dim", rawSafetensors(x('{"dtype":"U8","shape":[-1],"data_offsets":[0,1]}'), new Uint8Array(1)), /x: bad shape/],
    ["huge dim", rawSafetensors(x('{"dtype":"U8","shape":[1e300],"data_offsets":[0,1]}'), new Uint8Array(1)), /x: bad shape/],
    ["fractional dim", rawSafetensors(x('{"dtype":"U8","shape":[1.5],"data_offsets":[0,1]}'), new Uint8Array(1)), /x: bad shape/],
    ["shape product overflow", rawSafetensors(x('{"dtype":"F32","shape":[4294967296,4294967296,4294967296],"data_offsets":[0,4]}'), new Uint8Array(4)), /x: tensor size does not match/],
    ["size mismatch", rawSafetensors(x('{"dtype":"F32","shape":[2],"data_offsets":[0,4]}'), new Uint8Array(4)), /x: tensor size does not match/],
    ["sub-byte size", rawSafetensors(x('{"dtype":"F4","shape":[3],"data_offsets":[0,2]}'), new Uint8Array(2)), /x: tensor size not a whole number/],
    ["offsets reversed", rawSafetensors(x('{"dtype":"U8","shape":[0],"data_offsets":[1,0]}'), new Uint8Array(1)), /x: data_offsets outside/],
    ["offsets beyond data", rawSafetensors(x('{"dtype":"U8","shape":[8],"data_offsets":[0,8]}'), new Uint8Array(4)), /x: data_offsets outside/],
    ["offsets not a pair", rawSafetensors(x('{"dtype":"U8","shape":[1],"data_offsets":[0]}'), new Uint8Array(1)), /x: bad data_offsets/],
    ["hole at start", rawSafetensors(x('{"dtype":"U8","shape":[1],"data_offsets":[1,2]}'), new Uint8Array(2)), /x: hole in the tensor data/],
    ["hole between", rawSafetensors('{"x":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"y":{"dtype":"U8","shape":[1],"data_offsets":[2,3]}}', new Uint8Array(3)), /y: hole/],
    ["overlap", rawSafetensors('{"x":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},"y":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}', new Uint8Array(2)), /overlapping/],
    ["trailing bytes", rawSafetensors(x('{"dtype":"U8","shape":[1],"data_offsets":[0,1]}'), new Uint8Array(5)), /data section size mismatch/],
    ["empty name", rawSafetensors('{"":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}', new Uint8Array(1)), /empty tensor name/],
  ];
  for (const [label, bytes, re] of cases) {
    try {
      throwsA(() => parse(bytes), ModelFormatError, re);
    } catch (e) {
      throw new Error(`${label}: ${(e as Error).message}`);
    }
  }
  const e = throwsA(() => parse(rawSafetensors(x('{"dtype":"F32","shape":[2],"data_offsets":[0,4]}'), new Uint8Array(4))), ModelFormatError);
  assert.equal(e.field, "x");
  assert.ok(e instanceof SlimError && e.expected !== undefined && e.got !== undefined);
});

test("findDuplicateKey: nested objects, arrays, escapes", () => {
  assert.equal(findDuplicateKey('{"a":1,"b":{"a":2}}'), undefined);
  assert.equal(findDuplicateKey('{"a":1,"b":{"c":2,"c":3}}'), "c");
  assert.equal(findDuplicateKey('{"a":["a","a"],"b":"a"}'), undefined);
  assert.equal(findDuplicateKey('[{"a":1},{"a":1}]'), undefined);
  assert.equal(findDuplicateKey('{"q\\"":1,"q\\u0022":2}'), 'q"');
  assert.equal(findDuplicateKey('{"a\\\\":1,"b":"\\\\","a\\\\":3}'), "a\\");
});
