/**
 * The quantizers behind `slimlm quantize`:
 * - without calibration every type is exactly the reference quantizer (quantizeRowRef, itself
 *   bit-exact with llama.cpp), checked through a whole quantizeModel run;
 * - RMSE per type on synthetic data equals llama.cpp's figure (docs/quantization.md) within 5%;
 * - the importance-weighted quantizers are byte-identical to ggml's quantize_* with quant_weights
 *   (SHA-256 of ggml's output on the same input, computed by a throwaway C program linking
 *   ggml-quants.c of llama.cpp 80fb11a, strict float: gcc -O2 -ffp-contract=off).
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { synthesize } from "../../src/bench/synth.js";
import { openGguf } from "../../src/formats/gguf/index.js";
import { fileTypeSpec } from "../../src/optimize/quant-types.js";
import { quantizeModel } from "../../src/optimize/quantize.js";
import { quantizeRow } from "../../src/optimize/weighted.js";
import { GgmlType, ggmlTypeName } from "../../src/tensor/ggml-type.js";
import { getFormat } from "../../src/tensor/registry.js";
import { cosineData, cubic, uniform } from "./data.js";

const TYPES: readonly [string, GgmlType][] = [
  ["q8_0", GgmlType.Q8_0],
  ["q4_0", GgmlType.Q4_0],
  ["q4_1", GgmlType.Q4_1],
  ["q5_0", GgmlType.Q5_0],
  ["q5_1", GgmlType.Q5_1],
  ["q4_k", GgmlType.Q4_K],
  ["q5_k", GgmlType.Q5_K],
  ["q6_k", GgmlType.Q6_K],
  ["f16", GgmlType.F16],
  ["bf16", GgmlType.BF16],
];

describe("non-calibrated quantization is the reference quantizer", () => {
  let dir: string;
  let input: string;
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "slimlm-qref-"));
    input = path.join(dir, "in.gguf");
    synthesize({
      shape: { arch: "llama", dim: 256, nLayers: 1, nHeads: 4, nKvHeads: 2, ffnDim: 512, vocabSize: 512, contextLength: 256, ropeTheta: 10000, rmsEps: 1e-5, tiedEmbeddings: true, qkvBias: false },
      type: GgmlType.F32,
      seed: 5,
      out: input,
    });
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  for (const [name, type] of TYPES) {
    it(`${name}: every weight byte-identical to quantizeRowRef of the F32 rows, dequantized values equal`, async () => {
      const out = path.join(dir, `${name}.gguf`);
      await quantizeModel({ input, output: out, spec: fileTypeSpec(name), pure: true, threads: 2 });
      const src = openGguf(input);
      const dst = openGguf(out);
      try {
        const f = getFormat(type);
        for (const t of src.weights.tensors) {
          const q = dst.weights.get(t.name)!;
          if (t.dims.length < 2) {
            assert.equal(q.type, GgmlType.F32, t.name);
            continue;
          }
          assert.equal(ggmlTypeName(q.type), ggmlTypeName(type), t.name);
          const cols = t.dims[0]!;
          const rows = t.dims[1]!;
          const x = new Float32Array(cols * rows);
          src.weights.readInto(t.name, 0, new Uint8Array(x.buffer));
          const got = new Uint8Array(q.nbytes);
          dst.weights.readInto(t.name, 0, got);
          const rb = (cols / f.blockSize) * f.typeSize;
          const want = new Uint8Array(rb * rows);
          for (let r = 0; r < rows; r++) f.quantizeRowRef!(x.subarray(r * cols, (r + 1) * cols), want.subarray(r * rb, (r + 1) * rb), cols);
          assert.ok(Buffer.compare(got, want) === 0, `${t.name}: bytes differ from quantizeRowRef`);
          const a = new Float32Array(cols);
          const b = new Float32Array(cols);
          for (let r = 0; r < rows; r += 17) {
            f.dequantizeRow(got.subarray(r * rb, (r + 1) * rb), a, cols);
            f.dequantizeRow(want.subarray(r * rb, (r + 1) * rb), b, cols);
            assert.deepEqual(a, b);
          }
        }
      } finally {
        src.weights.close();
        dst.weights.close();
      }
    });
  }
});

/**
 * RMSE sqrt(mean (x - deq(q(x)))^2) of llama.cpp's reference quantizers (quantize_row_*_ref +
 * dequantize_row_*, ggml-quants.c at 80fb11a) on the data sets of data.ts. Also in
 * docs/quantization.md.
 */
const LLAMA_CPP_RMSE: Readonly<Record<string, Readonly<Record<string, number>>>> = {
  // cosineData(4096): llama.cpp test-quantize-fns.cpp's generator
  cosine: { q8_0: 0.00476358168, q4_0: 0.0717630663, q4_1: 0.0731902719, q5_0: 0.0378263901, q5_1: 0.0355978643, q4_k: 0.0628431002, q5_k: 0.0340071469, q6_k: 0.0167005671 },
  // uniform(65536)
  uniform: { q8_0: 0.00217530492, q4_0: 0.0374186106, q4_1: 0.0349444736, q5_0: 0.0179519467, q5_1: 0.0169428058, q4_k: 0.0314462427, q5_k: 0.0158891745, q6_k: 0.00763605654 },
  // cubic(65536)
  cubic: { q8_0: 0.00196247925, q4_0: 0.029863637, q4_1: 0.0316977724, q5_0: 0.0150639527, q5_1: 0.015193037, q4_k: 0.0271956189, q5_k: 0.0141169004, q6_k: 0.00656792892 },
};

describe("RMSE per type on synthetic data vs llama.cpp", () => {
  const sets: Record<string, Float32Array> = { cosine: cosineData(4096), uniform: uniform(65536), cubic: cubic(65536) };
  for (const [set, x] of Object.entries(sets)) {
    it(`${set}: within 5% of llama.cpp's reference quantizers`, () => {
      for (const [name, type] of TYPES) {
        const expected = LLAMA_CPP_RMSE[set]![name];
        if (expected === undefined) continue;
        const f = getFormat(type);
        const q = new Uint8Array((x.length / f.blockSize) * f.typeSize);
        const y = new Float32Array(x.length);
        quantizeRow(type, x, q, x.length, null);
        f.dequantizeRow(q, y, x.length);
        let s = 0;
        for (let i = 0; i < x.length; i++) s += (x[i]! - y[i]!) ** 2;
        const rmse = Math.sqrt(s / x.length);
        assert.ok(Math.abs(rmse / expected - 1) < 0.05, `${set} ${name}: rmse ${rmse} vs llama.cpp ${expected}`);
      }
    });
  }
});

describe("importance-weighted quantizers", () => {
  // 8 rows of 512: cubic data, row r scaled by (r+1)/4; importances uniform^2 + 0.01.
  const nRow = 8;
  const n = 512;
  const x = cubic(nRow * n, 777);
  for (let r = 0; r < nRow; r++) for (let c = 0; c < n; c++) x[r * n + c] = Math.fround(x[r * n + c]! * ((r + 1) / 4));
  const qw = uniform(n, 99).map((v) => Math.fround(Math.fround(v * v) + 0.01));
  /** SHA-256 of ggml's quantize_<type>(x, nrow 8, n_per_row 512, qw). */
  const GGML_SHA256: readonly [GgmlType, string][] = [
    [GgmlType.Q4_0, "faed074a1d3a2517ce0f64e2d6e456128839d5da21d382842aa576ec6f41eb60"],
    [GgmlType.Q4_1, "c87a2f4505657d7c23dc206d584d338a650f5fc24432530517e6e7dce90c43c3"],
    [GgmlType.Q5_0, "19a72b9c312aa83faa37ff8d339201172e926974d3bf832c2e537c29dc5df590"],
    [GgmlType.Q5_1, "f92f633bbc080e1bfdc4b8be633880c0a07de85148c26cad5c1850e1771be016"],
    [GgmlType.Q8_0, "88530b022c00d41c7baad38d2fc69e8d3b947e79676a048669986ccb8c0dbc20"],
    [GgmlType.Q4_K, "7136299e4dd474831e6df7e59ffab32af1a4a485aa407eec8f530841951a9971"],
    [GgmlType.Q5_K, "4d524c490c2605390eee0cd04db5da51a038b6de70f068eaa83340ede3ae283f"],
    [GgmlType.Q6_K, "8b86c1e26a68f7d56b9cfe7d8a072ca5f4acc01150727fd4b3c960cb6f7a8a3c"],
  ];

  function quantizeAll(type: GgmlType, w: Float32Array | null): Uint8Array {
    const f = getFormat(type);
    const rb = (n / f.blockSize) * f.typeSize;
    const out = new Uint8Array(rb * nRow);
    for (let r = 0; r < nRow; r++) quantizeRow(type, x.subarray(r * n, (r + 1) * n), out.subarray(r * rb, (r + 1) * rb), n, w);
    return out;
  }

  for (const [type, sha] of GGML_SHA256) {
    it(`${ggmlTypeName(type)}: byte-identical to ggml's quantize_${ggmlTypeName(type)} with quant_weights`, () => {
      assert.equal(createHash("sha256").update(quantizeAll(type, qw)).digest("hex"), sha);
    });
  }

  it("lower importance-weighted error than round-to-nearest, for every weighted type", () => {
    for (const [type] of GGML_SHA256) {
      if (type === GgmlType.Q8_0) continue; // ggml ignores weights for Q8_0
      const f = getFormat(type);
      const err = (q: Uint8Array): number => {
        const rb = (n / f.blockSize) * f.typeSize;
        const y = new Float32Array(n);
        let s = 0;
        for (let r = 0; r < nRow; r++) {
          f.dequantizeRow(q.subarray(r * rb, (r + 1) * rb), y, n);
          for (let c = 0; c < n; c++) s += qw[c]! * (x[r * n + c]! - y[c]!) ** 2;
        }
        return s;
      };
      const weighted = err(quantizeAll(type, qw));
      const plain = err(quantizeAll(type, null));
      assert.ok(weighted < plain, `${ggmlTypeName(type)}: weighted ${weighted} >= plain ${plain}`);
    }
  });
});
