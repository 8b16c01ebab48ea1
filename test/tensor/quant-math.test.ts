/** The C-arithmetic helpers the quantizers are built on. */

import { test } from "node:test";
import assert from "node:assert/strict";
import { nearestInt, roundf, toInt8 } from "../../src/tensor/quant-math.js";
import { bitsF32 } from "./fixture.js";

/** ggml's nearest_int, literally: f32 add of 1.5*2^23, then the low mantissa bits. */
function nearestIntBits(x: number): number {
  const f = new Float32Array([x + 12582912]);
  return ((new Int32Array(f.buffer)[0] ?? 0) & 0x007fffff) - 0x00400000;
}

test("nearestInt: round half to even, identical to ggml's bit trick", () => {
  const cases: [number, number][] = [
    [0.5, 0],
    [1.5, 2],
    [2.5, 2],
    [-0.5, 0],
    [-1.5, -2],
    [-2.5, -2],
    [0.49999997, 0],
    [3.7, 4],
    [-3.7, -4],
    [4194303, 4194303],
    [-4194303, -4194303],
  ];
  for (const [x, want] of cases) {
    assert.equal(nearestInt(Math.fround(x)), want, `nearestInt(${x})`);
    assert.equal(nearestInt(Math.fround(x)), nearestIntBits(Math.fround(x)), `bit trick at ${x}`);
  }
  // random f32 bit patterns across the whole range (in range and out of range alike) and ties
  let s = 1;
  for (let i = 0; i < 200000; i++) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    const x = i % 2 === 0 ? bitsF32(s) : Math.fround(((s % 20001) - 10000) / 2);
    if (Number.isNaN(x)) continue;
    assert.equal(nearestInt(x), nearestIntBits(x), `x=${x}`);
  }
  // out of range and non-finite: same garbage as ggml (the C code asserts |x| <= 4194303)
  for (const x of [4194303.5, -4194303.5, 4194304, 1e9, -1e9, Infinity, -Infinity, NaN]) {
    assert.equal(nearestInt(x), nearestIntBits(x), `x=${x}`);
  }
});

test("roundf: half away from zero", () => {
  assert.equal(roundf(2.5), 3);
  assert.equal(roundf(-2.5), -3);
  assert.equal(roundf(0.5), 1);
  assert.equal(roundf(-0.5), -1);
  assert.equal(roundf(Math.fround(0.49999997)), 0);
  assert.equal(roundf(126.49999), 126);
  assert.equal(roundf(-126.5), -127);
});

test("toInt8 wraps like a C int -> int8_t conversion", () => {
  assert.equal(toInt8(127), 127);
  assert.equal(toInt8(128), -128);
  assert.equal(toInt8(-129), 127);
  assert.equal(toInt8(255), -1);
});
