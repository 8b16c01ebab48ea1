#!/usr/bin/env node
// Compiles the AssemblyScript kernels (src/kernels/assembly/index.ts) into two modules:
//   dist/kernels/kernels-simd.wasm     SIMD128
//   dist/kernels/kernels-relaxed.wasm  SIMD128 + relaxed SIMD (ASC_FEATURE_RELAXED_SIMD)
// Incremental: skipped when a hash of the sources, this script and the asc version matches the
// stamp written by the last successful build (SLIMLM_FORCE_KERNELS=1 forces a rebuild).
// Fails loudly: any compiler error or warning, or an output that does not validate, exits with
// status 1.
// SLIMLM_KERNELS_WAT=1 also writes the .wat text next to each module (for reading the code).

import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import v8 from "node:v8";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const srcDir = join(root, "src/kernels/assembly");
const entry = join(srcDir, "index.ts");
const outDir = join(root, "dist/kernels");
const stampFile = join(outDir, "kernels.stamp");

const COMMON_FLAGS = [
  "-O3",
  "--runtime", "stub",
  "--importMemory",
  "--sharedMemory",
  "--initialMemory", "1",
  "--maximumMemory", "65536",
  "--noAssert",
];
const TARGETS = [
  { file: "kernels-simd.wasm", features: "simd,threads" },
  { file: "kernels-relaxed.wasm", features: "simd,threads,relaxed-simd" },
];

function fail(message) {
  process.stderr.write(`build-kernels: FAILED: ${message}\n`);
  process.exit(1);
}

function listSources(dir) {
  const out = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...listSources(p));
    else if (e.name.endsWith(".ts") || e.name.endsWith(".json")) out.push(p);
  }
  return out.sort();
}

const require = createRequire(import.meta.url);
const ascVersion = JSON.parse(readFileSync(require.resolve("assemblyscript/package.json"), "utf8")).version;
const wantWat = process.env.SLIMLM_KERNELS_WAT === "1";

const hash = createHash("sha256");
hash.update(`asc ${ascVersion}\n${COMMON_FLAGS.join(" ")}\n${JSON.stringify(TARGETS)}\nwat=${wantWat}\n`);
hash.update(readFileSync(fileURLToPath(import.meta.url)));
for (const f of listSources(srcDir)) {
  hash.update(`\0${relative(root, f)}\0`);
  hash.update(readFileSync(f));
}
const digest = hash.digest("hex");

const outputs = TARGETS.map((t) => join(outDir, t.file));
if (
  process.env.SLIMLM_FORCE_KERNELS !== "1" &&
  existsSync(stampFile) &&
  readFileSync(stampFile, "utf8").trim() === digest &&
  outputs.every((p) => existsSync(p))
) {
  process.stdout.write("build-kernels: up to date\n");
  process.exit(0);
}

mkdirSync(outDir, { recursive: true });
const { default: asc } = await import("assemblyscript/asc");
// Needed to validate the relaxed module in this process (Node 20 / V8 11.3).
v8.setFlagsFromString("--experimental-wasm-relaxed-simd");

const t0 = Date.now();
for (const t of TARGETS) {
  const written = new Map();
  const stderr = [];
  const args = [entry, "-o", t.file, ...(wantWat ? ["-t", t.file.replace(/\.wasm$/, ".wat")] : []), ...COMMON_FLAGS, "--enable", t.features];
  const result = await asc.main(args, {
    stdout: { write: (s) => process.stdout.write(s) },
    stderr: {
      write: (s) => {
        stderr.push(String(s));
        return true;
      },
    },
    writeFile: (name, contents) => {
      written.set(name, contents);
    },
  });
  const diag = stderr.join("");
  if (result.error !== null) fail(`asc ${t.file}: ${result.error.message}\n${diag}`);
  // warnings are fatal too: they flag implicit conversions in pointer arithmetic and the like
  if (diag.trim() !== "") fail(`asc ${t.file} reported diagnostics:\n${diag}`);
  const bin = written.get(t.file);
  if (!(bin instanceof Uint8Array)) fail(`asc produced no ${t.file}`);
  try {
    new WebAssembly.Module(bin);
  } catch (e) {
    fail(`${t.file} does not validate: ${e instanceof Error ? e.message : String(e)}`);
  }
  for (const [name, contents] of written) {
    const dst = join(outDir, name);
    writeFileSync(`${dst}.tmp`, contents);
    renameSync(`${dst}.tmp`, dst);
  }
}
writeFileSync(stampFile, `${digest}\n`);
process.stdout.write(`build-kernels: built ${TARGETS.map((t) => t.file).join(", ")} in ${Date.now() - t0} ms\n`);
