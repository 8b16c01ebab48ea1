/**
 * The distillation ablation at small scale (full figures: BENCHMARKS.md): stories260K (5 layers)
 * teaches a student with half its layers, rounded up (3). Distilled, the student reaches a lower held-out perplexity than
 * the same student trained on the text alone for the same steps; built from the teacher's own
 * layers it starts closer to the teacher than a random student. Plus the distill CLI errors.
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { type DistillRunOptions, runDistill } from "../../src/train/run.js";
import { SlimError } from "../../src/errors.js";
import { SHARED, STORIES_GGUF } from "../helpers/slimlm.js";

describe("distillation", () => {
  let dir: string;
  let data: string;
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "slimlm-distill-"));
    data = path.join(dir, "data.txt");
    fs.writeFileSync(data, fs.readFileSync(path.join(SHARED, "data/tinystories_valid_head.txt"), "utf8").slice(0, 300000));
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  const base = (over: Partial<DistillRunOptions>): DistillRunOptions => ({
    data,
    out: path.join(dir, "student.gguf"),
    steps: 60,
    batch: 8,
    ctx: 64,
    accum: 1,
    lr: 3e-3,
    minLrRatio: 0.1,
    weightDecay: 0.1,
    clip: 1,
    seed: 5,
    evalEvery: 0,
    evalBatches: 2,
    heldOutFraction: 0.1,
    threads: 2,
    checkpointEvery: 0,
    resume: false,
    f16: false,
    onLog: () => {},
    onInfo: () => {},
    teacher: STORIES_GGUF,
    alpha: 0.5,
    temperature: 1,
    ...over,
  });
  // half of stories260K's 5 layers, rounded up (dim 64, 8/4 heads, FFN 172)
  const halfConfig = (): string => {
    const f = path.join(dir, "half.json");
    fs.writeFileSync(f, JSON.stringify({ dim: 64, nLayers: 3, nHeads: 8, nKvHeads: 4, ffnDim: 172, tiedEmbeddings: false }));
    return f;
  };

  it("a distilled student beats the same student trained on text alone", async () => {
    const distilled = await runDistill(base({ studentConfig: halfConfig(), out: path.join(dir, "kd.gguf") }));
    const textOnly = await runDistill(base({ studentConfig: halfConfig(), alpha: 0, out: path.join(dir, "ce.gguf") }));
    console.log(`held-out perplexity: distilled ${distilled.student.heldOutPerplexity.toFixed(2)}, text only ${textOnly.student.heldOutPerplexity.toFixed(2)}, teacher ${distilled.teacher.heldOutPerplexity.toFixed(2)}`);
    assert.ok(distilled.student.heldOutPerplexity < textOnly.student.heldOutPerplexity);
    assert.ok(distilled.kl < textOnly.kl, "and it is closer to the teacher");
  });

  it("--student-from-teacher starts closer to the teacher than a random student", async () => {
    const fromTeacher = await runDistill(base({ keepLayers: [0, 2, 4], steps: 2, out: path.join(dir, "ft.gguf") }));
    const random = await runDistill(base({ studentConfig: halfConfig(), steps: 2, out: path.join(dir, "rnd.gguf") }));
    console.log(`initial KL(teacher||student): from teacher ${fromTeacher.initialKl.toFixed(3)}, random ${random.initialKl.toFixed(3)}`);
    assert.ok(fromTeacher.initialKl < random.initialKl);
    assert.equal(fromTeacher.shape.nLayers, 3);
  });

  it("bad input: a student with another vocabulary, bad layers, no student, empty data", async () => {
    const otherVocab = path.join(dir, "other.json");
    fs.writeFileSync(otherVocab, JSON.stringify({ dim: 64, nLayers: 1, nHeads: 8, nKvHeads: 4, ffnDim: 172, vocabSize: 1000 }));
    await assert.rejects(runDistill(base({ studentConfig: otherVocab })), /vocabulary differs/);
    await assert.rejects(runDistill(base({ keepLayers: [0, 9] })), /keep-layers/);
    await assert.rejects(runDistill(base({})), /exactly one student/);
    const empty = path.join(dir, "empty.txt");
    fs.writeFileSync(empty, "");
    await assert.rejects(runDistill(base({ keepLayers: [0], data: empty })), SlimError);
    await assert.rejects(runDistill(base({ keepLayers: [0], data: path.join(dir, "missing.txt") })), SlimError);
  });
});
