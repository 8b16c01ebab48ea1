import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { BlockPool, SequenceKv } from "../../src/runtime/kv-cache.js";
import { StopMatcher } from "../../src/runtime/stop.js";
import { ResourceError } from "../../src/errors.js";

describe("stop strings", () => {
  it("holds back a possible stop prefix and cuts at the stop string", () => {
    const m = new StopMatcher(["</end>", "STOP"]);
    assert.deepEqual(m.push("hello <"), { emit: "hello ", stopped: false });
    assert.deepEqual(m.push("/e"), { emit: "", stopped: false });
    assert.deepEqual(m.push("nd> more"), { emit: "", stopped: true });
  });
  it("releases held text that turns out not to be a stop string", () => {
    const m = new StopMatcher(["STOP"]);
    assert.deepEqual(m.push("ST"), { emit: "", stopped: false });
    assert.deepEqual(m.push("ART"), { emit: "START", stopped: false });
    assert.deepEqual(m.push("S"), { emit: "", stopped: false });
    assert.equal(m.flush(), "S");
  });
  it("the earliest stop string wins", () => {
    const m = new StopMatcher(["bb", "a"]);
    assert.deepEqual(m.push("xxbbya"), { emit: "xx", stopped: true });
  });
  it("no stop strings: everything passes", () => {
    assert.deepEqual(new StopMatcher([]).push("abc"), { emit: "abc", stopped: false });
  });
});

describe("KV block pool", () => {
  it("reserves, truncates and releases blocks", () => {
    const pool = new BlockPool(4, 16);
    const a = new SequenceKv(pool);
    a.reserve(20);
    assert.equal(a.blockTable.length, 2);
    assert.equal(pool.freeBlocks, 2);
    const b = new SequenceKv(pool);
    assert.equal(b.tryReserve(40), false);
    assert.equal(b.blockTable.length, 0, "a failed reserve allocates nothing");
    assert.throws(() => b.reserve(40), ResourceError);
    a.length = 20;
    a.truncate(10);
    assert.equal(a.blockTable.length, 1);
    a.release();
    assert.equal(pool.freeBlocks, 4);
  });
  it("reference counts keep shared blocks alive", () => {
    const pool = new BlockPool(2, 8);
    const id = pool.allocate()!;
    pool.retain(id);
    pool.release(id);
    assert.equal(pool.freeBlocks, 1);
    pool.release(id);
    assert.equal(pool.freeBlocks, 2);
    assert.throws(() => pool.release(id));
  });
});
