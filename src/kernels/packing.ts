/**
 * Packed weight layouts: how a lane stores a matrix for the matmul kernels.
 *
 * Rows are packed in groups of PACK_ROWS = 4. A group's bytes are contiguous and ordered so that
 * a kernel computing the 4 rows together reads ONE sequential stream, and so that a 16-byte
 * vector holds the same elements of the 4 rows (the 4 lanes of an f32x4 / the 4 i32 lanes of an
 * integer dot are the 4 rows: no horizontal sums). Groups follow each other; a lane packs its own
 * slice of rows, its first row starting a group; the last group is padded with zero rows.
 *
 * "Interleave by c bytes" of an n-byte field below means: chunk j (bytes c*j .. c*j+c-1 of the
 * field) of row r is at 4*c*j + c*r, i.e. [r0 chunk0][r1 chunk0][r2 chunk0][r3 chunk0][r0 chunk1]...
 * nb = blocks per row (k / 32 or k / 256); S = round16(8 * nb), a scale region padded to 16 bytes.
 *
 * | type | group bytes | layout of one group |
 * |------|-------------|---------------------|
 * | F32  | 16 k        | element i of row r at 16 i + 4 r ([k][4] f32) |
 * | F16  | round16(8 k) | element i of row r at 8 i + 2 r ([k][4] f16) |
 * | Q8_0 | S + 128 nb  | d of block b, row r at 8 b + 2 r; block b's qs (32 B) at S + 128 b, interleaved by 2 |
 * | Q4_0 | S + 64 nb   | d at 8 b + 2 r; block b's qs (16 B) at S + 64 b, interleaved by 4 |
 * | Q4_K | 576 nb      | superblock b at 576 b: d at +0 + 2 r, dmin at +8 + 2 r, scales (12 B) at +16 interleaved by 4, qs (128 B) at +64 interleaved by 4 |
 * | Q6_K | S + 832 nb  | d of superblock b at 8 b + 2 r; superblock b at S + 832 b: ql (128 B) at +0, qh (64 B) at +512, scales (16 B) at +768, each interleaved by 4 |
 *
 * All offsets are even and every group is a multiple of 16 bytes (the kernels' vectors are then
 * 16-byte aligned when the slice is). Packing only moves bytes: `unpackRow` gives back the GGUF
 * row exactly (padding included: zero rows unpack to zero bytes).
 */

import { InternalError, assert } from "../errors.js";
import { GgmlType, ggmlTypeName } from "../tensor/ggml-type.js";

/** Rows per packed group. */
export const PACK_ROWS = 4;

/**
 * A faster byte interleave over one buffer (a WebAssembly memory, wasm-kernels.ts
 * `wasmInterleaver`): packRows uses it when src and dst are both views of `buffer`. Arguments
 * are byte offsets and sizes: rows of group g at src + (4g + r) * rs, block b at + b * bs,
 * n bytes per block; output at dst + g * gs + b * ds, chunk j of row r at + 4 chunk j + chunk r.
 */
export interface Interleaver {
  readonly buffer: ArrayBufferLike;
  interleave(src: number, rs: number, bs: number, n: number, nb: number, dst: number, ds: number, groups: number, gs: number, chunk: number): void;
}

const round16 = (n: number): number => Math.ceil(n / 16) * 16;

/**
 * One field of a GGUF block copied into the group: `len` bytes at `src` inside the block go to
 * `dst + b * stride` (+ S when `afterScales`) in the group for block b, interleaved by `chunk` bytes.
 */
interface Field {
  readonly src: number;
  readonly len: number;
  readonly chunk: 2 | 4;
  readonly dst: number;
  readonly stride: number;
  /** The offset counts from the end of the group's scale region (S). */
  readonly afterScales: boolean;
}

interface Layout {
  /** Elements per GGUF block (1 for F32/F16: one "block" per element). */
  readonly blockSize: number;
  /** Bytes per GGUF block. */
  readonly typeSize: number;
  readonly groupBytes: (nb: number) => number;
  readonly fields: readonly Field[];
}

const S = (nb: number): number => round16(8 * nb);

function field(src: number, len: number, chunk: 2 | 4, dst: number, stride: number, afterScales = false): Field {
  return { src, len, chunk, dst, stride, afterScales };
}

const LAYOUTS: Partial<Record<GgmlType, Layout>> = {
  [GgmlType.F32]: { blockSize: 1, typeSize: 4, groupBytes: (nb) => 16 * nb, fields: [field(0, 4, 4, 0, 16)] },
  [GgmlType.F16]: { blockSize: 1, typeSize: 2, groupBytes: (nb) => round16(8 * nb), fields: [field(0, 2, 2, 0, 8)] },
  [GgmlType.Q8_0]: {
    blockSize: 32,
    typeSize: 34,
    groupBytes: (nb) => S(nb) + 128 * nb,
    fields: [field(0, 2, 2, 0, 8), field(2, 32, 2, 0, 128, true)],
  },
  [GgmlType.Q4_0]: {
    blockSize: 32,
    typeSize: 18,
    groupBytes: (nb) => S(nb) + 64 * nb,
    fields: [field(0, 2, 2, 0, 8), field(2, 16, 4, 0, 64, true)],
  },
  [GgmlType.Q4_K]: {
    blockSize: 256,
    typeSize: 144,
    groupBytes: (nb) => 576 * nb,
    fields: [field(0, 2, 2, 0, 576), field(2, 2, 2, 8, 576), field(4, 12, 4, 16, 576), field(16, 128, 4, 64, 576)],
  },
  [GgmlType.Q6_K]: {
    blockSize: 256,
    typeSize: 210,
    groupBytes: (nb) => S(nb) + 832 * nb,
    fields: [field(0, 128, 4, 0, 832, true), field(128, 64, 4, 512, 832, true), field(192, 16, 4, 768, 832, true), field(208, 2, 2, 0, 8)],
  },
};

/** Offset of block b's copy of field f in a group. */
const fieldAt = (f: Field, b: number, nb: number): number => (f.afterScales ? S(nb) : 0) + f.dst + b * f.stride;

function layoutOf(type: GgmlType): Layout {
  const l = LAYOUTS[type];
  if (l === undefined) throw new InternalError(`packing: type ${ggmlTypeName(type)} is not a computed type`);
  return l;
}

function blocksPerRow(l: Layout, type: GgmlType, k: number): number {
  assert(Number.isInteger(k) && k >= 0 && k % l.blockSize === 0, () => `packing: k=${k} is not a multiple of the ${ggmlTypeName(type)} block`);
  return k / l.blockSize;
}

/** Bytes of one packed group of PACK_ROWS rows of k elements. */
export function packedGroupBytes(type: GgmlType, k: number): number {
  const l = layoutOf(type);
  return l.groupBytes(blocksPerRow(l, type, k));
}

/** Bytes of `rows` rows of `k` elements packed (rounded up to whole groups). */
export function packedBytes(type: GgmlType, rows: number, k: number): number {
  return Math.ceil(rows / PACK_ROWS) * packedGroupBytes(type, k);
}

/**
 * Pack `nRows` GGUF rows of `k` elements (`src`, rows contiguous) into `dst`
 * (packedBytes(type, nRows, k) bytes; the rows of the last group past nRows are zero-filled,
 * as are the scale regions' padding). `fast`: an Interleaver used when src and dst are in its buffer.
 */
export function packRows(type: GgmlType, src: Uint8Array, nRows: number, k: number, dst: Uint8Array, fast?: Interleaver): void {
  const l = layoutOf(type);
  const nb = blocksPerRow(l, type, k);
  const rowBytes = nb * l.typeSize;
  const gb = l.groupBytes(nb);
  const nGroups = Math.ceil(nRows / PACK_ROWS);
  assert(src.length >= nRows * rowBytes, () => `packRows: src has ${src.length} bytes, need ${nRows * rowBytes}`);
  assert(dst.length >= nGroups * gb, () => `packRows: dst has ${dst.length} bytes, need ${nGroups * gb}`);
  if (nGroups === 0) return;
  const full = Math.floor(nRows / PACK_ROWS);
  if (full < nGroups) {
    // the last group from a zero-padded copy of its rows
    const tail = new Uint8Array(PACK_ROWS * rowBytes);
    tail.set(src.subarray(full * PACK_ROWS * rowBytes, nRows * rowBytes));
    packRows(type, tail, PACK_ROWS, k, dst.subarray(full * gb, nGroups * gb));
    if (full === 0) return;
    nRows = full * PACK_ROWS;
  }
  if (fast !== undefined && src.buffer === fast.buffer && dst.buffer === fast.buffer) {
    if (gb !== PACK_ROWS * rowBytes) dst.fill(0, 0, full * gb);
    for (const f of l.fields) {
      // F32/F16: the "blocks" (elements) are contiguous on both sides: one run of nb * len bytes
      const whole = f.len === l.typeSize && f.stride === PACK_ROWS * f.len;
      const n = whole ? nb * f.len : f.len;
      fast.interleave(src.byteOffset + f.src, rowBytes, l.typeSize, n, whole ? 1 : nb, dst.byteOffset + fieldAt(f, 0, nb), f.stride, full, gb, f.chunk);
    }
    return;
  }
  // NOTE: every field offset and length is even, so with even byteOffsets the copy runs on
  // Uint16Array views; otherwise through aligned copies.
  if (src.byteOffset % 2 !== 0) src = src.slice(0, nRows * rowBytes);
  if (dst.byteOffset % 2 !== 0) {
    const tmp = new Uint8Array(full * gb);
    packRows(type, src, nRows, k, tmp);
    dst.set(tmp);
    return;
  }
  const s16 = new Uint16Array(src.buffer, src.byteOffset, (nRows * rowBytes) >>> 1);
  const d16 = new Uint16Array(dst.buffer, dst.byteOffset, (full * gb) >>> 1);
  if (gb !== PACK_ROWS * rowBytes) d16.fill(0); // scale-region padding (memset speed)
  const rb16 = rowBytes >>> 1;
  const ts16 = l.typeSize >>> 1;
  for (const f of l.fields) {
    const fs = f.src >>> 1;
    const n = f.len >>> 1;
    const d0 = fieldAt(f, 0, nb) >>> 1;
    const ds = f.stride >>> 1;
    const gb16 = gb >>> 1;
    if (f.chunk === 2) interleave2(s16, fs, rb16, ts16, n, nb, d16, d0, ds, full, gb16);
    else interleave4(s16, fs, rb16, ts16, n, nb, d16, d0, ds, full, gb16);
  }
}

/**
 * One field, chunks of one u16, of `groups` groups of 4 rows: row r of group g at
 * s + (4g + r) * rs, block b at + b * bs, n u16 per block; written at d + g * gs + b * ds, u16
 * j of row r at + 4j + r.
 */
function interleave2(
  s16: Uint16Array, s: number, rs: number, bs: number, n: number, nb: number,
  d16: Uint16Array, d: number, ds: number, groups: number, gs: number,
): void {
  for (let g = 0; g < groups; g++) {
    const a = s + 4 * g * rs;
    for (let b = 0; b < nb; b++) {
      const a0 = a + b * bs;
      const a1 = a0 + rs;
      const a2 = a1 + rs;
      const a3 = a2 + rs;
      let o = d + g * gs + b * ds;
      for (let j = 0; j < n; j++) {
        d16[o] = s16[a0 + j]!;
        d16[o + 1] = s16[a1 + j]!;
        d16[o + 2] = s16[a2 + j]!;
        d16[o + 3] = s16[a3 + j]!;
        o += 4;
      }
    }
  }
}

/** Like interleave2 with chunks of two u16 (n even): u16 pair j of row r at + 8j + 2r. */
function interleave4(
  s16: Uint16Array, s: number, rs: number, bs: number, n: number, nb: number,
  d16: Uint16Array, d: number, ds: number, groups: number, gs: number,
): void {
  for (let g = 0; g < groups; g++) {
    const a = s + 4 * g * rs;
    for (let b = 0; b < nb; b++) {
      const a0 = a + b * bs;
      const a1 = a0 + rs;
      const a2 = a1 + rs;
      const a3 = a2 + rs;
      let o = d + g * gs + b * ds;
      for (let j = 0; j < n; j += 2) {
        d16[o] = s16[a0 + j]!;
        d16[o + 1] = s16[a0 + j + 1]!;
        d16[o + 2] = s16[a1 + j]!;
        d16[o + 3] = s16[a1 + j + 1]!;
        d16[o + 4] = s16[a2 + j]!;
        d16[o + 5] = s16[a2 + j + 1]!;
        d16[o + 6] = s16[a3 + j]!;
        d16[o + 7] = s16[a3 + j + 1]!;
        o += 8;
      }
    }
  }
}

/**
 * Row `row` of a packed slice (`packed` starts at the slice's first group) back to its GGUF
 * bytes in `dst` (k / blockSize * typeSize bytes).
 */
export function unpackRow(type: GgmlType, packed: Uint8Array, row: number, k: number, dst: Uint8Array): void {
  const l = layoutOf(type);
  const nb = blocksPerRow(l, type, k);
  const gb = l.groupBytes(nb);
  const g = Math.floor(row / PACK_ROWS);
  const r = row % PACK_ROWS;
  const base = g * gb;
  assert(row >= 0 && packed.length >= base + gb, () => `unpackRow: row ${row} is outside the packed slice (${packed.length} bytes)`);
  assert(dst.length >= nb * l.typeSize, () => `unpackRow: dst has ${dst.length} bytes, need ${nb * l.typeSize}`);
  for (const f of l.fields) {
    const c = f.chunk;
    const n = f.len / c;
    for (let b = 0; b < nb; b++) {
      const s0 = base + fieldAt(f, b, nb) + c * r;
      const d0 = b * l.typeSize + f.src;
      for (let j = 0; j < n; j++) {
        const s = s0 + 4 * c * j;
        const d = d0 + c * j;
        dst[d] = packed[s]!;
        dst[d + 1] = packed[s + 1]!;
        if (c === 4) {
          dst[d + 2] = packed[s + 2]!;
          dst[d + 3] = packed[s + 3]!;
        }
      }
    }
  }
}
