/**
 * slimlm's built-in models (models/slimlm-teacher.gguf and models/slimlm-student.gguf, trained by
 * slimlm itself; see the model cards beside them). Every command that takes a model uses the
 * teacher when none is given.
 */
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { FileError } from "../errors.js";

const BUILTIN_TEACHER = "slimlm-teacher.gguf";

/** The package root: the nearest folder above this module whose package.json names slimlm. */
function packageRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const manifest = path.join(dir, "package.json");
    if (fs.existsSync(manifest)) {
      try {
        const parsed: unknown = JSON.parse(fs.readFileSync(manifest, "utf8"));
        if (typeof parsed === "object" && parsed !== null && (parsed as { name?: unknown }).name === "slimlm") return dir;
      } catch {
        // not ours (or unreadable): keep walking up
      }
    }
    const parent = path.dirname(dir);
    if (parent === dir) throw new FileError("cannot find slimlm's package folder (for the built-in model)", { hint: "give a model file or folder" });
    dir = parent;
  }
}

/** Path of the built-in teacher; a clear error when this install lacks it. */
function builtinModelPath(): string {
  const file = path.join(packageRoot(), "models", BUILTIN_TEACHER);
  if (!fs.existsSync(file)) {
    throw new FileError(`the built-in model ${BUILTIN_TEACHER} is missing from this install`, {
      expected: file,
      got: "no such file",
      hint: "give a model file or folder, or rebuild it with scripts/build-builtin-models.mjs",
    });
  }
  return file;
}

/** The model a command runs on: the one given, or the built-in teacher. */
export function modelOrBuiltin(model: string | undefined): string {
  return model ?? builtinModelPath();
}

/** Help text for a `[model]` argument. */
export const MODEL_ARGUMENT_HELP = "GGUF file or Hugging Face folder (default: the built-in slimlm-teacher)";
