/** Lower layers never import higher ones (ARCHITECTURE.md): checked over every import in src/. */
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { it } from "node:test";

const SRC = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../src");

/** Folder under src/ -> folders it may import from (besides itself and errors.ts). */
const ALLOWED: Record<string, readonly string[]> = {
  tensor: [],
  kernels: ["tensor"],
  formats: ["tensor"],
  tokenizer: ["formats"],
  models: ["tensor", "formats"],
  runtime: ["tensor", "kernels", "formats", "tokenizer", "models"],
  scheduler: ["runtime"],
  server: ["tensor", "kernels", "formats", "tokenizer", "models", "runtime", "scheduler"],
  eval: ["tensor", "kernels", "formats", "tokenizer", "models", "runtime"],
  bench: ["tensor", "kernels", "formats", "tokenizer", "models", "runtime", "scheduler", "server", "eval"],
  optimize: ["tensor", "kernels", "formats", "tokenizer", "models", "runtime", "eval"],
  train: ["tensor", "kernels", "formats", "tokenizer", "models", "runtime", "eval", "optimize"],
  profile: ["tensor", "kernels", "formats", "tokenizer", "models", "runtime"],
  cli: ["*"],
};

function* sourceFiles(dir: string): Generator<string> {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) {
      if (e.name !== "assembly") yield* sourceFiles(p);
    } else if (e.name.endsWith(".ts") && !e.name.endsWith(".d.ts")) yield p;
  }
}

it("imports respect the layers", () => {
  const violations: string[] = [];
  for (const file of sourceFiles(SRC)) {
    const rel = path.relative(SRC, file);
    const layer = rel.includes(path.sep) ? rel.split(path.sep)[0]! : "";
    if (layer === "") continue; // src/errors.ts, src/index.ts
    const allowed = ALLOWED[layer];
    assert.ok(allowed !== undefined, `src/${layer}/ is not in ARCHITECTURE.md's layer table`);
    const text = fs.readFileSync(file, "utf8");
    for (const m of text.matchAll(/(?:^|\n)\s*(?:import|export)[^'"]*?from\s+["']([^"']+)["']/g)) {
      const spec = m[1]!;
      if (!spec.startsWith(".")) continue;
      const target = path.relative(SRC, path.resolve(path.dirname(file), spec));
      const targetLayer = target.includes(path.sep) ? target.split(path.sep)[0]! : "";
      if (targetLayer === "" || targetLayer === layer || allowed.includes("*") || allowed.includes(targetLayer)) continue;
      violations.push(`src/${rel} imports ${spec} (${targetLayer})`);
    }
  }
  assert.deepEqual(violations, []);
});
