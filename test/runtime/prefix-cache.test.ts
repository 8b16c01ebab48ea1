/**
 * Prefix caching below block granularity: a new sequence copies the longest known continuation
 * of its last whole cached block (a full block or a released sequence's partial last block).
 * Unit tests over the block pool with a recording copier, then the engine: copied rows give the
 * same logits as computing the prompt from scratch.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { BlockPool, SequenceKv } from "../../src/runtime/kv-cache.js";
import { Engine } from "../../src/runtime/engine.js";
import { STORIES_GGUF } from "../helpers/slimlm.js";

const B = 16;
const range = (n: number, from = 0): number[] => Array.from({ length: n }, (_, i) => from + i);

/** A pool whose copier records its calls. */
function recordingPool(nBlocks: number): [BlockPool, [number, number, number][]] {
  const pool = new BlockPool(nBlocks, B);
  const copies: [number, number, number][] = [];
  pool.copyRows = (src, dst, n) => copies.push([src, dst, n]);
  return [pool, copies];
}

/** A sequence that computed `tokens` (the scheduler's bookkeeping: reserve, length, commit). */
function computed(pool: BlockPool, tokens: readonly number[], salt = ""): SequenceKv {
  const s = new SequenceKv(pool, salt);
  s.reserve(tokens.length);
  s.length = tokens.length;
  s.commitFullBlocks(tokens);
  return s;
}

describe("prefix cache: partial blocks", () => {
  it("reuses whole blocks, then copies the common prefix of a released sequence's partial block", () => {
    const [pool, copies] = recordingPool(16);
    const a = range(40); // 2 full blocks + 8 positions
    const seqA = computed(pool, a);
    const partial = seqA.blockTable[2]!;
    seqA.release();
    const b = [...range(37), 900, 901, 902]; // shares 37 tokens with a
    const seqB = new SequenceKv(pool);
    assert.equal(seqB.adoptCachedPrefix(b), 37);
    assert.equal(seqB.blockTable.length, 3);
    assert.deepEqual(copies, [[partial, seqB.blockTable[2], 5]]);
    assert.notEqual(seqB.blockTable[2], partial, "copied into a block of its own");
    assert.equal(pool.hitTokens, 37);
    // the source stays cached (released again, not lost)
    assert.equal(pool.refs(partial), 0);
  });

  it("copies the first rows of a full block when the prompt diverges inside it, and never adopts the last token", () => {
    const [pool, copies] = recordingPool(16);
    computed(pool, range(48)).release(); // 3 full blocks
    const seq = new SequenceKv(pool);
    assert.equal(seq.adoptCachedPrefix([...range(40), 7, 7]), 40, "2 blocks + 8 rows of the third");
    assert.equal(copies.at(-1)![2], 8);
    seq.release();
    // a prompt that is exactly a cached prefix: its last token is computed, not adopted
    const exact = new SequenceKv(pool);
    assert.equal(exact.adoptCachedPrefix(range(32)), 31);
    assert.equal(copies.at(-1)![2], 15);
  });

  it("picks the longest of several continuations; salts and eviction are respected", () => {
    const [pool, copies] = recordingPool(8);
    computed(pool, [...range(16), 1, 2, 3]).release();
    computed(pool, [...range(16), 1, 2, 3, 4, 5, 6]).release();
    const seq = new SequenceKv(pool);
    assert.equal(seq.adoptCachedPrefix([...range(16), 1, 2, 3, 4, 5, 9, 9]), 21);
    assert.equal(copies.at(-1)![2], 5);
    seq.release();
    // another tenant sees nothing, not even a first partial block
    computed(pool, [5, 6, 7], "t1").release();
    assert.equal(new SequenceKv(pool, "t2").adoptCachedPrefix([5, 6, 7, 8]), 0);
    assert.equal(new SequenceKv(pool, "t1").adoptCachedPrefix([5, 6, 7, 8]), 3);
  });

  it("a block evicted by a new allocation is no longer a source", () => {
    const [pool, copies] = recordingPool(2);
    computed(pool, range(5)).release();
    const hog = new SequenceKv(pool);
    hog.reserve(2 * B); // takes both blocks: evicts the partial one
    hog.release();
    assert.equal(new SequenceKv(pool).adoptCachedPrefix(range(6)), 0);
    assert.equal(copies.length, 0);
  });

  it("without a copier (no backend) only whole blocks are reused", () => {
    const pool = new BlockPool(8, B);
    computed(pool, range(40)).release();
    assert.equal(new SequenceKv(pool).adoptCachedPrefix(range(45)), 32);
  });
});

// 2 lanes hold disjoint KV heads of stories260K (4 heads); 3 lanes share two of them (kvHeadRanges)
for (const threads of [2, 3]) {
  describe(`prefix cache: copied rows in the engine, ${threads} lanes`, () => {
    let engine: Engine;
    before(async () => {
      engine = await Engine.load(STORIES_GGUF, { threads, contextSize: 256, maxSeqs: 2, kvBlockSize: B });
    });
    after(async () => engine.close());

    it("a prompt continued from copied rows gives the logits of computing it whole", () => {
      const first = [1, ...range(36, 300)]; // 37 tokens: 2 blocks + 5 positions
      const seqA = engine.newSequence();
      engine.evaluate(seqA, first);
      seqA.commitFullBlocks(first);
      seqA.release();
      const prompt = [...first.slice(0, 35), ...range(8, 400)]; // diverges inside the partial block
      const fresh = engine.newSequence();
      const want = Float32Array.from(engine.evaluate(fresh, prompt));
      fresh.release();
      const copy = engine.pool.copyRows!;
      let copied = 0;
      engine.pool.copyRows = (src, dst, n) => {
        copied += n;
        copy(src, dst, n);
      };
      const seq = engine.newSequence();
      const reused = seq.adoptCachedPrefix(prompt);
      engine.pool.copyRows = copy;
      assert.equal(reused, 35, "2 whole blocks + 3 copied rows");
      assert.equal(copied, 3);
      const got = engine.evaluate(seq, prompt.slice(reused));
      let maxDiff = 0;
      for (let i = 0; i < want.length; i++) maxDiff = Math.max(maxDiff, Math.abs(want[i]! - got[i]!));
      assert.ok(maxDiff < 1e-4, `max |logit difference| ${maxDiff}`);
      seq.release();
    });
  });
}
