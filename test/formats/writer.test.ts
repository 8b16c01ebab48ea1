import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { FileError, SlimError, UsageError, UnsupportedError } from "../../src/errors.js";
import { GgmlType } from "../../src/tensor/ggml-type.js";
import { openGguf } from "../../src/formats/gguf/open.js";
import { writeGguf, type GgufWriterTensor } from "../../src/formats/gguf/writer.js";
import { GgufValueType, Metadata } from "../../src/formats/metadata.js";
import { allTypesMetadata, smallTensors, throwsA, tmpDir, unimplementedType } from "./helpers.js";

function roundTrip(alignment: number | undefined, tensors: GgufWriterTensor[]): void {
  const dir = tmpDir("writer");
  try {
    const out = path.join(dir, "m.gguf");
    const md = allTypesMetadata();
    const res = writeGguf(out, md, tensors, alignment === undefined ? {} : { alignment });
    assert.equal(fs.statSync(out).size, res.fileSize);
    assert.deepEqual(fs.readdirSync(dir), ["m.gguf"], "no temp file left behind");
    const m = openGguf(out);
    try {
      const a = alignment ?? 32;
      assert.equal(m.header.alignment, a);
      if (tensors.length > 0) assert.equal(m.header.dataOffset % a, 0);
      assert.equal(m.header.version, 3);
      // Every key with its type and element type, in order.
      const expected = [...md.entries.entries()];
      if (a !== 32) expected.push(["general.alignment", { type: GgufValueType.UINT32, value: a }]);
      assert.deepEqual([...m.metadata.entries.entries()], expected);
      assert.equal(m.weights.tensors.length, tensors.length);
      for (const t of tensors) {
        const info = m.weights.get(t.name);
        assert.ok(info !== undefined, t.name);
        assert.equal(info.type, t.type);
        assert.deepEqual(info.dims, t.dims);
        const got = new Uint8Array(info.nbytes);
        m.weights.readInto(t.name, 0, got);
        assert.ok(t.data instanceof Uint8Array);
        assert.deepEqual(got, t.data, t.name);
      }
      for (const t of m.header.tensors) assert.equal(t.relOffset % a, 0);
    } finally {
      m.weights.close();
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

test("round trip: every metadata value type, F32/F16/Q8_0/Q4_0 tensors, default alignment", () => {
  roundTrip(undefined, smallTensors(1));
});

test("round trip with alignments 1, 8, 64 and 4096", () => {
  for (const a of [1, 8, 64, 4096]) roundTrip(a, smallTensors(a));
});

test("round trip: no tensors, metadata only", () => {
  roundTrip(undefined, []);
});

test("metadata general.alignment is honoured when no option is given", () => {
  const dir = tmpDir("writer-align");
  try {
    const md = new Metadata("t");
    md.set("general.alignment", GgufValueType.UINT32, 128);
    const out = path.join(dir, "a.gguf");
    writeGguf(out, md, smallTensors(3));
    const m = openGguf(out);
    assert.equal(m.header.alignment, 128);
    assert.ok(m.header.tensors.every((t) => t.fileOffset % 128 === 0));
    m.weights.close();
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test("streamed tensor data in arbitrary chunks", () => {
  const dir = tmpDir("writer-stream");
  try {
    const src = smallTensors(7);
    const streamed = src.map((t) => ({
      ...t,
      data: (write: (c: Uint8Array) => void) => {
        const d = t.data as Uint8Array;
        for (let i = 0; i < d.length; i += 7) write(d.subarray(i, i + 7));
      },
    }));
    const a = path.join(dir, "a.gguf");
    const b = path.join(dir, "b.gguf");
    writeGguf(a, allTypesMetadata(), src, { alignment: 64 });
    writeGguf(b, allTypesMetadata(), streamed, { alignment: 64 });
    assert.deepEqual(fs.readFileSync(a), fs.readFileSync(b));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test("unwritable paths: one-line FileError, nothing left behind", () => {
  const dir = tmpDir("writer-err");
  try {
    const md = allTypesMetadata();
    const e1 = throwsA(() => writeGguf(path.join(dir, "missing/dir/m.gguf"), md, []), FileError, /cannot write .*no such file or directory/);
    assert.equal(e1.message.includes("\n"), false);
    throwsA(() => writeGguf(dir, md, []), FileError, /is a directory/);
    if (process.getuid?.() !== 0) {
      const ro = path.join(dir, "ro");
      fs.mkdirSync(ro, { mode: 0o555 });
      throwsA(() => writeGguf(path.join(ro, "m.gguf"), md, []), FileError, /permission denied/);
    }
    const blocker = path.join(dir, "file");
    fs.writeFileSync(blocker, "x");
    throwsA(() => writeGguf(path.join(blocker, "m.gguf"), md, []), FileError, /cannot write/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test("a failing data callback leaves neither output nor temp file; an old output survives", () => {
  const dir = tmpDir("writer-fail");
  try {
    const out = path.join(dir, "m.gguf");
    fs.writeFileSync(out, "previous contents");
    const tensors = smallTensors(5);
    const boom: GgufWriterTensor[] = [
      ...tensors.slice(0, 2),
      {
        name: "x",
        type: GgmlType.F32,
        dims: [4],
        data: (write) => {
          write(new Uint8Array(8));
          throw new Error("disk on fire");
        },
      },
    ];
    assert.throws(() => writeGguf(out, allTypesMetadata(), boom), /disk on fire/);
    assert.deepEqual(fs.readdirSync(dir), ["m.gguf"]);
    assert.equal(fs.readFileSync(out, "utf8"), "previous contents");

    const short: GgufWriterTensor = { name: "x", type: GgmlType.F32, dims: [4], data: (write) => write(new Uint8Array(15)) };
    throwsA(() => writeGguf(out, allTypesMetadata(), [short]), UsageError, /wrote too little/);
    const long: GgufWriterTensor = { name: "x", type: GgmlType.F32, dims: [4], data: (write) => write(new Uint8Array(17)) };
    throwsA(() => writeGguf(out, allTypesMetadata(), [long]), UsageError, /wrote too much/);
    assert.deepEqual(fs.readdirSync(dir), ["m.gguf"]);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test("bad tensors and metadata are rejected before anything is written", () => {
  const dir = tmpDir("writer-bad");
  try {
    const out = path.join(dir, "m.gguf");
    const md = allTypesMetadata();
    const t = (x: Partial<GgufWriterTensor>): GgufWriterTensor[] => [{ name: "a", type: GgmlType.F32, dims: [4], data: new Uint8Array(16), ...x }];
    throwsA(() => writeGguf(out, md, t({ data: new Uint8Array(15) })), UsageError, /wrong data size/);
    throwsA(() => writeGguf(out, md, t({ dims: [0] })), UsageError, /dims >= 1/);
    throwsA(() => writeGguf(out, md, t({ dims: [1, 1, 1, 1, 1] })), UsageError, /dims/);
    throwsA(() => writeGguf(out, md, t({ name: "" })), UsageError, /name/);
    throwsA(() => writeGguf(out, md, t({ name: "n".repeat(64) })), UsageError, /name/);
    throwsA(() => writeGguf(out, md, [...t({}), ...t({})]), UsageError, /duplicate/);
    throwsA(() => writeGguf(out, md, t({ type: GgmlType.Q8_0, dims: [33], data: new Uint8Array(34) })), SlimError, /block|multiple/);
    const missing = unimplementedType();
    if (missing !== undefined) throwsA(() => writeGguf(out, md, t({ type: missing, dims: [256], data: new Uint8Array(0) })), UnsupportedError);
    throwsA(() => writeGguf(out, md, t({}), { alignment: 48 }), UsageError, /alignment/);
    const bad = new Metadata("t");
    bad.set("k", GgufValueType.UINT8, 256);
    throwsA(() => writeGguf(out, bad, []), UsageError, /"k"/);
    const bad2 = new Metadata("t");
    bad2.set("k", GgufValueType.STRING, 5);
    throwsA(() => writeGguf(out, bad2, []), UsageError, /"k"/);
    const bad3 = new Metadata("t");
    bad3.set("k", GgufValueType.ARRAY, [1, "x"], GgufValueType.INT32);
    throwsA(() => writeGguf(out, bad3, []), UsageError, /"k"/);
    assert.deepEqual(fs.readdirSync(dir), []);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
