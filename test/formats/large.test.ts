import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { GgmlType } from "../../src/tensor/ggml-type.js";
import { encodeGgufHeader } from "../../src/formats/gguf/encode.js";
import { openGguf } from "../../src/formats/gguf/open.js";
import { GgufValueType, Metadata } from "../../src/formats/metadata.js";
import { tmpDir } from "./helpers.js";

const GiB = 2 ** 30;

/**
 * A sparse GGUF over 4 GiB: a 2.5 GiB F32 tensor then a 2 GiB one. Only the header and a few rows
 * are written; the rest are holes. Skipped when the filesystem cannot hold a sparse file.
 */
test("sparse 4.5 GiB GGUF: tensors above 2 GiB and offsets above 4 GiB", (t) => {
  const dir = tmpDir("large");
  try {
    const p = path.join(dir, "big.gguf");
    const md = new Metadata("big");
    md.set("general.architecture", GgufValueType.STRING, "llama");
    const rowLen = 1 << 14; // 64 KiB rows of F32
    const big = { name: "big.weight", type: GgmlType.F32, dims: [rowLen, (2.5 * GiB) / (rowLen * 4)] };
    const next = { name: "next.weight", type: GgmlType.F32, dims: [rowLen, (2 * GiB) / (rowLen * 4)] };
    const h = encodeGgufHeader(md, [big, next], 4096);
    assert.ok(h.fileSize > 4 * GiB);
    const fd = fs.openSync(p, "w");
    try {
      fs.writeSync(fd, h.bytes, 0, h.bytes.length, 0);
      try {
        fs.ftruncateSync(fd, h.fileSize);
      } catch (e) {
        t.skip(`cannot create a ${h.fileSize}-byte sparse file: ${(e as Error).message}`);
        return;
      }
      // Distinct bytes in the last row of each tensor and at the first byte of the second.
      const lastRow = (off: number, fill: number) => {
        const row = new Uint8Array(rowLen * 4).fill(fill);
        row[0] = 0xaa;
        row[row.length - 1] = 0x55;
        fs.writeSync(fd, row, 0, row.length, off);
      };
      lastRow(h.dataOffset + (h.offsets[0] as number) + (h.nbytes[0] as number) - rowLen * 4, 7);
      lastRow(h.dataOffset + (h.offsets[1] as number) + (h.nbytes[1] as number) - rowLen * 4, 9);
      fs.writeSync(fd, Uint8Array.of(0x42), 0, 1, h.dataOffset + (h.offsets[1] as number));
    } finally {
      fs.closeSync(fd);
    }
    const st = fs.statSync(p);
    if (st.blocks * 512 > 64 * 2 ** 20) {
      t.skip("filesystem does not support sparse files");
      return;
    }
    const m = openGguf(p);
    try {
      assert.equal(m.fileSize, h.fileSize);
      const b = m.weights.get("big.weight");
      const n = m.weights.get("next.weight");
      assert.equal(b?.nbytes, 2.5 * GiB);
      assert.equal(n?.nbytes, 2 * GiB);
      const tb = m.header.tensors[1];
      assert.ok(tb !== undefined && tb.fileOffset > 2.5 * GiB);
      const row = new Uint8Array(rowLen * 4);
      m.weights.readInto("big.weight", 2.5 * GiB - row.length, row);
      assert.equal(row[0], 0xaa);
      assert.equal(row[1], 7);
      assert.equal(row[row.length - 1], 0x55);
      m.weights.readInto("next.weight", 2 * GiB - row.length, row);
      assert.equal(row[0], 0xaa);
      assert.equal(row[5], 9);
      assert.equal(row[row.length - 1], 0x55);
      // The last bytes of the file (absolute offset > 4 GiB) and a read spanning the 4 GiB mark.
      const tail = new Uint8Array(3);
      m.weights.readInto("next.weight", 2 * GiB - 3, tail);
      assert.deepEqual(tail, Uint8Array.of(9, 9, 0x55));
      const first = new Uint8Array(1);
      m.weights.readInto("next.weight", 0, first);
      assert.equal(first[0], 0x42);
      const span = new Uint8Array(1 << 20);
      const at = 4 * GiB - (tb.fileOffset as number) - 1000;
      m.weights.readInto("next.weight", at, span);
      assert.ok(span.every((x) => x === 0));
      // One read larger than a single fs.readSync chunk (1 GiB) ending in the last row.
      if (process.env.SLIMLM_SKIP_BIG_READ !== "1") {
        const huge = new Uint8Array(1.25 * GiB);
        m.weights.readInto("big.weight", 2.5 * GiB - huge.length, huge);
        assert.equal(huge[huge.length - row.length], 0xaa);
        assert.equal(huge[huge.length - 2], 7);
        assert.equal(huge[huge.length - 1], 0x55);
        assert.equal(huge[0], 0);
      }
    } finally {
      m.weights.close();
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
