/**
 * Deterministic fuzzing of the GGUF and safetensors readers: truncations at every structural
 * boundary, count/length/offset/dim/type fields replaced by boundary values, JSON token
 * replacements, bit flips and byte/word overwrites, built from valid files (our writer's output,
 * stories260K.gguf's header region, stories260K-hf's safetensors). Every case must end in a correct
 * load or a SlimError, within a time bound and without large allocations.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { SlimError } from "../../src/errors.js";
import { GgmlType } from "../../src/tensor/ggml-type.js";
import { BufferFile } from "../../src/formats/file.js";
import { ggufModelFile } from "../../src/formats/gguf/open.js";
import { writeGguf } from "../../src/formats/gguf/writer.js";
import { GgufValueType, Metadata } from "../../src/formats/metadata.js";
import { safetensorsFile, parseSafetensors } from "../../src/formats/safetensors.js";
import { STORIES_GGUF, STORIES_HF, allTypesMetadata, buildSafetensors, prng, randomBytes, smallTensors, tmpDir } from "./helpers.js";

const CASE_TIME_LIMIT_MS = 1000;
const MEMORY_LIMIT = 2 ** 30;

interface Stats {
  cases: number;
  ok: number;
  errors: Map<string, number>;
  maxMs: number;
  maxMemDelta: number;
  totalMs: number;
}

const newStats = (): Stats => ({ cases: 0, ok: 0, errors: new Map(), maxMs: 0, maxMemDelta: 0, totalMs: 0 });

/** JS heap + buffers, and resident set size. */
function memNow(): [number, number] {
  const m = process.memoryUsage();
  return [m.heapUsed + m.arrayBuffers + m.external, m.rss];
}

/** Runs one case: `load` must succeed or throw a SlimError. */
function runCase(stats: Stats, label: string, load: () => void): void {
  const mem0 = memNow();
  const t0 = performance.now();
  try {
    load();
    stats.ok++;
  } catch (e) {
    if (!(e instanceof SlimError)) {
      assert.fail(`${label}: threw ${e instanceof Error ? `${e.name}: ${e.message}\n${e.stack}` : String(e)}`);
    }
    const key = `${e.name}`;
    stats.errors.set(key, (stats.errors.get(key) ?? 0) + 1);
  }
  const ms = performance.now() - t0;
  const mem1 = memNow();
  const mem = Math.max(mem1[0] - mem0[0], mem1[1] - mem0[1]);
  stats.cases++;
  stats.totalMs += ms;
  stats.maxMs = Math.max(stats.maxMs, ms);
  stats.maxMemDelta = Math.max(stats.maxMemDelta, mem);
  assert.ok(ms < CASE_TIME_LIMIT_MS, `${label}: took ${ms.toFixed(0)} ms`);
  assert.ok(mem < MEMORY_LIMIT, `${label}: memory grew by ${mem} bytes`);
}

function report(name: string, s: Stats, wall: number): string {
  const errs = [...s.errors.entries()].map(([k, v]) => `${k} ${v}`).join(", ");
  return `${name}: ${s.cases} cases, ${s.ok} loaded, errors {${errs}}, max case ${s.maxMs.toFixed(1)} ms, max memory delta ${(s.maxMemDelta / 2 ** 20).toFixed(1)} MiB, ${(wall / 1000).toFixed(1)} s`;
}

// ---------- GGUF ----------

type FieldKind = "magic" | "version" | "count" | "length" | "bytes" | "type" | "value" | "ndims" | "dim" | "ttype" | "offset";
interface Field {
  off: number;
  size: number;
  kind: FieldKind;
  /** Part of a long array beyond its first elements (skipped for targeted mutations). */
  bulk: boolean;
}

const VALUE_SIZES: Record<number, number> = { 0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8 };

/** Every field of a valid GGUF image, walked independently of the parser under test. */
function ggufFields(b: Uint8Array): { fields: Field[]; infoEnd: number } {
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const fields: Field[] = [];
  let p = 0;
  let bulk = false;
  const f = (size: number, kind: FieldKind): void => {
    fields.push({ off: p, size, kind, bulk });
    p += size;
  };
  const u64 = (): number => Number(dv.getBigUint64(p, true));
  const str = (): void => {
    const n = u64();
    f(8, "length");
    f(n, "bytes");
  };
  const value = (t: number): void => {
    if (t === 8) str();
    else f(VALUE_SIZES[t] as number, "value");
  };
  f(4, "magic");
  f(4, "version");
  const nt = u64();
  f(8, "count");
  const nkv = u64();
  f(8, "count");
  for (let i = 0; i < nkv; i++) {
    str();
    const t = dv.getUint32(p, true);
    f(4, "type");
    if (t === 9) {
      const et = dv.getUint32(p, true);
      f(4, "type");
      const n = u64();
      f(8, "count");
      for (let j = 0; j < n; j++) {
        bulk = j >= 3;
        value(et);
      }
      bulk = false;
    } else value(t);
  }
  for (let i = 0; i < nt; i++) {
    str();
    const nd = dv.getUint32(p, true);
    f(4, "ndims");
    for (let d = 0; d < nd; d++) f(8, "dim");
    f(4, "ttype");
    f(8, "offset");
  }
  return { fields, infoEnd: p };
}

const U32_VALUES = [0, 1, 2, 3, 4, 7, 8, 9, 12, 13, 31, 33, 0x7f, 0x80, 0xff, 0xffff, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff];
const U64_EXTRA = [2n ** 32n, 2n ** 32n + 1n, 2n ** 53n, 2n ** 53n + 1n, 2n ** 62n, 2n ** 63n - 1n, 2n ** 63n, 2n ** 64n - 1n];

function u64Values(fileSize: number, orig: bigint): bigint[] {
  return [...U32_VALUES.map(BigInt), ...U64_EXTRA, BigInt(fileSize), BigInt(fileSize - 1), BigInt(fileSize + 1), orig + 1n, orig - 1n, orig + 32n, orig * 2n].filter((v) => v >= 0n && v < 2n ** 64n);
}

/** `b` with `del` bytes at `p` replaced by `ins`. */
function splice(b: Uint8Array, p: number, del: number, ins: Uint8Array): Uint8Array {
  const end = Math.min(b.length, p + del);
  const out = new Uint8Array(b.length - (end - p) + ins.length);
  out.set(b.subarray(0, p));
  out.set(ins, p);
  out.set(b.subarray(end), p + ins.length);
  return out;
}

function writeField(b: Uint8Array, f: Field, v: bigint): void {
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  if (f.size === 8) dv.setBigUint64(f.off, v, true);
  else if (f.size === 4) dv.setUint32(f.off, Number(v & 0xffffffffn), true);
}

function loadGguf(bytes: Uint8Array): void {
  const m = ggufModelFile(new BufferFile(bytes, "fuzz.gguf"));
  // Independent re-check of the guarantees, then read every byte of every tensor.
  const spans = m.header.tensors.map((t) => [t.fileOffset, t.fileOffset + t.nbytes] as const).sort((a, b) => a[0] - b[0]);
  for (let i = 0; i < spans.length; i++) {
    const s = spans[i] as readonly [number, number];
    assert.ok(s[1] <= bytes.length && s[0] >= m.header.dataOffset);
    if (i > 0) assert.ok((spans[i - 1] as readonly [number, number])[1] <= s[0]);
  }
  for (const t of m.weights.tensors) {
    const dst = new Uint8Array(t.nbytes);
    m.weights.readInto(t.name, 0, dst);
  }
  for (const [, e] of m.metadata.entries) void e.value;
  m.weights.close();
}

function ggufSeeds(): { name: string; bytes: Uint8Array; mutateBelow: number }[] {
  const dir = tmpDir("fuzz");
  try {
    const a = path.join(dir, "a.gguf");
    writeGguf(a, allTypesMetadata(), smallTensors(21));
    const b = path.join(dir, "b.gguf");
    const md = new Metadata("b");
    md.set("general.architecture", GgufValueType.STRING, "llama");
    md.set("tokenizer.ggml.tokens", GgufValueType.ARRAY, ["<unk>", "<s>", "a", "b"], GgufValueType.STRING);
    writeGguf(b, md, [
      { name: "w", type: GgmlType.Q8_0, dims: [32, 2], data: new Uint8Array(68).fill(3) },
      { name: "n", type: GgmlType.F16, dims: [3], data: new Uint8Array(6).fill(1) },
    ], { alignment: 64 });
    const c = path.join(dir, "c.gguf");
    writeGguf(c, allTypesMetadata(), []);
    const stories = new Uint8Array(fs.readFileSync(STORIES_GGUF));
    return [
      { name: "writer/all-types", bytes: new Uint8Array(fs.readFileSync(a)), mutateBelow: Infinity },
      { name: "writer/align64", bytes: new Uint8Array(fs.readFileSync(b)), mutateBelow: Infinity },
      { name: "writer/no-tensors", bytes: new Uint8Array(fs.readFileSync(c)), mutateBelow: Infinity },
      // Header region only: the tensor data is 1.1 MB of floats the parser never interprets.
      { name: "stories260K", bytes: stories, mutateBelow: 14176 },
    ];
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

test("fuzz: mutated and truncated GGUF files end in a load or a SlimError", () => {
  const t0 = performance.now();
  const stats = newStats();
  const rand = prng(20240601);
  for (const seed of ggufSeeds()) {
    const { fields, infoEnd } = ggufFields(seed.bytes);
    const base = seed.bytes;
    const seedStart = performance.now();
    const seedCases = stats.cases;
    loadGguf(base); // the seed itself must load

    // 1. Truncation at every structural boundary (field starts and ends), plus data boundaries.
    const cuts = new Set<number>();
    for (const f of fields) {
      if (f.bulk) continue;
      cuts.add(f.off);
      cuts.add(f.off + f.size);
      if (f.size > 1) cuts.add(f.off + 1);
    }
    for (let a = infoEnd; a <= Math.min(base.length, infoEnd + 64); a++) cuts.add(a);
    cuts.add(base.length - 1);
    if (seed.mutateBelow === Infinity) for (let k = 1; k <= 8; k++) cuts.add(Math.max(0, base.length - k * 7));
    for (const cut of [...cuts].filter((x) => x < base.length).sort((x, y) => x - y)) {
      runCase(stats, `${seed.name} truncated at ${cut}`, () => loadGguf(base.subarray(0, cut)));
    }

    // 2. Every count/length/type/dim/offset field replaced by boundary values.
    for (const f of fields) {
      if (f.bulk || f.kind === "bytes" || f.kind === "value" || f.off >= seed.mutateBelow) continue;
      const dv = new DataView(base.buffer, base.byteOffset);
      const orig = f.size === 8 ? dv.getBigUint64(f.off, true) : BigInt(dv.getUint32(f.off, true));
      const values = f.size === 8 ? u64Values(base.length, orig) : U32_VALUES.map(BigInt);
      for (const v of values) {
        if (v === orig) continue;
        const m = base.slice();
        writeField(m, f, v);
        runCase(stats, `${seed.name} ${f.kind}@${f.off} = ${v}`, () => loadGguf(m));
      }
    }

    // 3. Random mutations in the header region: bit flips, byte and word overwrites, splices.
    const limit = Math.min(base.length, seed.mutateBelow, infoEnd + 64);
    const nRandom = seed.name === "stories260K" ? 600 : 400;
    for (let i = 0; i < nRandom; i++) {
      const m = base.slice();
      const kind = Math.floor(rand() * 5);
      const pos = () => Math.floor(rand() * limit);
      const n = 1 + Math.floor(rand() * 4);
      let what = "";
      for (let j = 0; j < n; j++) {
        const p = pos();
        if (kind === 0) {
          m[p] = (m[p] as number) ^ (1 << Math.floor(rand() * 8));
          what += ` flip@${p}`;
        } else if (kind === 1) {
          m[p] = [0, 0xff, 0x7f, 0x80][Math.floor(rand() * 4)] as number;
          what += ` byte@${p}`;
        } else if (kind === 2) {
          const v = [0x7fffffff, 0xffffffff, 0x80000000, 0][Math.floor(rand() * 4)] as number;
          new DataView(m.buffer).setUint32(Math.min(p, limit - 4), v, true);
          what += ` u32@${p}`;
        } else if (kind === 3) {
          const v = [2n ** 64n - 1n, 2n ** 63n, 2n ** 53n + 1n, BigInt(base.length)][Math.floor(rand() * 4)] as bigint;
          new DataView(m.buffer).setBigUint64(Math.min(p, limit - 8), v, true);
          what += ` u64@${p}`;
        } else {
          m.set(randomBytes(rand, 1 + Math.floor(rand() * 16)).subarray(0, Math.max(0, limit - p)), p);
          what += ` garbage@${p}`;
        }
      }
      runCase(stats, `${seed.name} random${what}`, () => loadGguf(m));
    }
    // Deletions/insertions shift everything after them.
    for (let i = 0; i < 100; i++) {
      const p = Math.floor(rand() * Math.min(limit, base.length));
      const k = 1 + Math.floor(rand() * 9);
      const m = rand() < 0.5 ? splice(base, p, k, new Uint8Array(0)) : splice(base, p, 0, randomBytes(rand, k));
      runCase(stats, `${seed.name} splice@${p}/${k}`, () => loadGguf(m));
    }
    console.log(`  ${seed.name}: ${stats.cases - seedCases} cases, ${((performance.now() - seedStart) / 1000).toFixed(1)} s`);
  }
  const wall = performance.now() - t0;
  console.log(report("GGUF", stats, wall));
  assert.ok(stats.cases >= 1000, `only ${stats.cases} cases`);
  assert.ok(stats.ok > 0 && stats.errors.size > 0);
});

// ---------- safetensors ----------

function loadSafetensors(bytes: Uint8Array): void {
  const file = new BufferFile(bytes, "fuzz.safetensors");
  const h = parseSafetensors(file);
  let end = h.dataOffset;
  for (const t of h.tensors) {
    assert.equal(t.fileOffset, end);
    end += t.nbytes;
  }
  assert.equal(end, bytes.length);
  const f = safetensorsFile(file);
  for (const t of f.weights.tensors) {
    const dst = new Uint8Array(t.nbytes);
    f.weights.readInto(t.name, 0, dst);
  }
}

function withHeader(json: string, data: Uint8Array): Uint8Array {
  const hb = Buffer.from(json, "utf8");
  const out = new Uint8Array(8 + hb.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(hb.length), true);
  out.set(hb, 8);
  out.set(data, 8 + hb.length);
  return out;
}

function splitSafetensors(b: Uint8Array): { json: string; data: Uint8Array } {
  const n = Number(new DataView(b.buffer, b.byteOffset).getBigUint64(0, true));
  return { json: Buffer.from(b.subarray(8, 8 + n)).toString("utf8"), data: b.subarray(8 + n) };
}

test("fuzz: mutated and truncated safetensors files end in a load or a SlimError", () => {
  const t0 = performance.now();
  const stats = newStats();
  const rand = prng(777);
  const small = buildSafetensors(
    [
      { name: "a.weight", dtype: "F32", shape: [3, 4], data: randomBytes(rand, 48) },
      { name: "b.weight", dtype: "F16", shape: [5], data: randomBytes(rand, 10) },
      { name: "c.weight", dtype: "BF16", shape: [2, 2, 2], data: randomBytes(rand, 16) },
      { name: "ids", dtype: "I64", shape: [2], data: randomBytes(rand, 16) },
      { name: "s", dtype: "F32", shape: [], data: randomBytes(rand, 4) },
    ],
    { format: "pt", note: "fuzz" },
  );
  const seeds = [
    { name: "small", bytes: small },
    { name: "stories260K-hf", bytes: new Uint8Array(fs.readFileSync(path.join(STORIES_HF, "model.safetensors"))) },
  ];
  const lengthValues = [0n, 1n, 2n, 7n, 8n, 0x7fffffffn, 0xffffffffn, 2n ** 53n + 1n, 2n ** 63n, 2n ** 64n - 1n, 100_000_000n, 100_000_001n];
  const numberReplacements = ["0", "-1", "1", "1.5", "1e30", "-0", "18446744073709551615", "9007199254740993", "4294967296", "null", '"7"', "[]", "{}"];
  for (const seed of seeds) {
    const base = seed.bytes;
    runCase(stats, `${seed.name} unmodified`, () => loadSafetensors(base));
    const { json, data } = splitSafetensors(base);
    const headerEnd = 8 + Buffer.byteLength(json);

    // 1. Header length field.
    for (const v of [...lengthValues, BigInt(base.length - 8), BigInt(base.length - 7), BigInt(headerEnd - 9), BigInt(headerEnd - 7)]) {
      const m = base.slice();
      new DataView(m.buffer).setBigUint64(0, v, true);
      runCase(stats, `${seed.name} N=${v}`, () => loadSafetensors(m));
    }

    // 2. Truncations: inside the length, at every JSON token boundary, around the data edges.
    const cuts = new Set<number>([0, 1, 7, 8, 9, headerEnd - 1, headerEnd, headerEnd + 1, base.length - 1]);
    for (let i = 0; i < json.length; i++) if ('{}[],:"'.includes(json[i] as string)) cuts.add(8 + Buffer.byteLength(json.slice(0, i)));
    const stride = Math.max(1, Math.floor(cuts.size / 300));
    [...cuts].sort((a, b) => a - b).forEach((cut, i) => {
      if (cut >= base.length || (i % stride !== 0 && cut > 9)) return;
      runCase(stats, `${seed.name} truncated at ${cut}`, () => loadSafetensors(base.subarray(0, cut)));
    });

    // 3. Every number token replaced (length field kept consistent, so the JSON content is tested).
    const numRe = /-?\d+(\.\d+)?([eE][+-]?\d+)?/g;
    const numbers = [...json.matchAll(numRe)];
    const pickNumbers = numbers.length > 120 ? numbers.filter((_, i) => i % Math.ceil(numbers.length / 120) === 0) : numbers;
    for (const mt of pickNumbers) {
      const at = mt.index;
      for (const r of numberReplacements) {
        const j = json.slice(0, at) + r + json.slice(at + mt[0].length);
        runCase(stats, `${seed.name} number@${at}=${r}`, () => loadSafetensors(withHeader(j, data)));
      }
    }

    // 4. dtype strings swapped, entries duplicated or dropped, keys emptied.
    const dtypes = ["F32", "F16", "BF16", "I64", "U8", "BOOL", "F4", "F8_E4M3", "C64", "Q4_0", "", "f32"];
    for (const mt of [...json.matchAll(/"dtype":"([^"]*)"/g)].slice(0, 20)) {
      for (const d of dtypes) {
        const j = json.slice(0, mt.index) + `"dtype":"${d}"` + json.slice(mt.index + mt[0].length);
        runCase(stats, `${seed.name} dtype@${mt.index}=${d}`, () => loadSafetensors(withHeader(j, data)));
      }
    }
    const entries = [...json.matchAll(/"([^"]+)":\{"dtype"[^}]*\}/g)].slice(0, 20);
    for (const mt of entries) {
      const dup = json.slice(0, mt.index) + mt[0] + "," + json.slice(mt.index);
      runCase(stats, `${seed.name} duplicate ${mt[1]}`, () => loadSafetensors(withHeader(dup, data)));
      const drop = (json.slice(0, mt.index) + json.slice(mt.index + mt[0].length)).replace(",,", ",").replace("{,", "{").replace(",}", "}");
      runCase(stats, `${seed.name} drop ${mt[1]}`, () => loadSafetensors(withHeader(drop, data)));
      const emptied = json.slice(0, mt.index) + `""` + json.slice(mt.index + (mt[1] as string).length + 2);
      runCase(stats, `${seed.name} empty name`, () => loadSafetensors(withHeader(emptied, data)));
    }

    // 5. Random byte-level mutations of the header (length not fixed) and of the JSON (fixed).
    for (let i = 0; i < 500; i++) {
      const m = base.slice();
      const n = 1 + Math.floor(rand() * 4);
      for (let j = 0; j < n; j++) {
        const p = Math.floor(rand() * headerEnd);
        const k = Math.floor(rand() * 3);
        if (k === 0) m[p] = (m[p] as number) ^ (1 << Math.floor(rand() * 8));
        else if (k === 1) m[p] = [0, 0xff, 0x80, 0xc3, 0x22, 0x5c, 0x7b, 0x7d][Math.floor(rand() * 8)] as number;
        else m[p] = Math.floor(rand() * 256);
      }
      runCase(stats, `${seed.name} random bytes #${i}`, () => loadSafetensors(m));
    }
    for (let i = 0; i < 200; i++) {
      const p = Math.floor(rand() * json.length);
      const k = Math.floor(rand() * 4);
      const j = k === 0 ? json.slice(0, p) + json.slice(p + 1) : k === 1 ? json.slice(0, p) + "\\" + json.slice(p) : k === 2 ? json.slice(0, p) + '"' + json.slice(p) : json.slice(0, p) + "\u{1F999}" + json.slice(p);
      runCase(stats, `${seed.name} json edit #${i}`, () => loadSafetensors(withHeader(j, data)));
      const bad = withHeader(json, data);
      bad[8 + Math.floor(rand() * (headerEnd - 8))] = 0xff; // invalid UTF-8
      runCase(stats, `${seed.name} invalid utf-8 #${i}`, () => loadSafetensors(bad));
    }
  }
  const wall = performance.now() - t0;
  console.log(report("safetensors", stats, wall));
  assert.ok(stats.cases >= 1000, `only ${stats.cases} cases`);
  assert.ok(stats.ok > 0 && stats.errors.size > 0);
});
