import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { FileError, ModelFormatError, UsageError } from "../../src/errors.js";
import { openModelFile } from "../../src/formats/index.js";
import { STORIES_GGUF, STORIES_HF, throwsA, tmpDir } from "./helpers.js";

test("openModelFile: GGUF file by magic, HF folder by directory", () => {
  const g = openModelFile(STORIES_GGUF);
  assert.equal(g.kind, "gguf");
  assert.equal(g.weights.tensors.length, 48);
  g.weights.close();
  const h = openModelFile(STORIES_HF);
  assert.equal(h.kind, "hf");
  assert.equal(h.metadata.get("general.architecture"), "llama");
  h.weights.close();
});

test("openModelFile: clear errors for missing paths, lone safetensors and unknown files", () => {
  const dir = tmpDir("open");
  try {
    const e = throwsA(() => openModelFile(path.join(dir, "missing.gguf")), FileError, /no such file or folder/);
    assert.ok(e.hint !== undefined && e.hint.includes("Hugging Face"));
    throwsA(() => openModelFile(path.join(STORIES_HF, "model.safetensors")), UsageError, /single safetensors file.*hint: pass the Hugging Face folder/);
    const junk = path.join(dir, "junk.bin");
    fs.writeFileSync(junk, "PK\u0003\u0004 not a model");
    throwsA(() => openModelFile(junk), ModelFormatError, /unknown model file format.*"PK/);
    const tiny = path.join(dir, "tiny");
    fs.writeFileSync(tiny, "GG");
    throwsA(() => openModelFile(tiny), ModelFormatError, /2-byte file/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
