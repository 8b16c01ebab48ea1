/**
 * Argument checks for the block routines. Callers validate user-controlled shapes with
 * `tensorBytes`/`getFormat` first (registry.ts), so a failure here is our bug: assert().
 */

import { assert } from "../errors.js";

/** `n` whole blocks; `bytes` holds them; `floats` holds `n` values. */
export function checkRow(
  name: string,
  blockSize: number,
  typeSize: number,
  n: number,
  bytes: Uint8Array,
  floats: Float32Array,
): void {
  if (!(n >= 0 && n % blockSize === 0 && bytes.length >= (n / blockSize) * typeSize && floats.length >= n)) {
    assert(false, `${name}: bad row: n=${n} (block ${blockSize}), ${bytes.length} bytes, ${floats.length} floats`);
  }
}

/** `n` whole blocks of the weight format in `w` and of the activation format in `x`. */
export function checkDot(
  name: string,
  blockSize: number,
  typeSize: number,
  xBlockSize: number,
  xTypeSize: number,
  n: number,
  w: Uint8Array,
  x: Uint8Array,
): void {
  if (
    !(
      n >= 0 &&
      n % blockSize === 0 &&
      n % xBlockSize === 0 &&
      w.length >= (n / blockSize) * typeSize &&
      x.length >= (n / xBlockSize) * xTypeSize
    )
  ) {
    assert(false, `${name}: bad vecDot: n=${n}, ${w.length} weight bytes, ${x.length} activation bytes`);
  }
}
