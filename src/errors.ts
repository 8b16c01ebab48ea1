/**
 * Two failure kinds (see DEVELOPERS.md):
 * - `SlimError` subclasses: something a user can cause (bad file, bad argument, model too large).
 *   Each carries what was expected, what was found and a hint; the CLI prints `message` on one line,
 *   the server maps `code` to an HTTP status.
 * - `InternalError` via `assert()`: our own bug. Never thrown for user input.
 */

export interface SlimErrorDetails {
  /** What we expected to find, e.g. "magic GGUF" or "dims multiple of 32". */
  expected?: string;
  /** What we found instead. */
  got?: string;
  /** What the user can do about it. */
  hint?: string;
  cause?: unknown;
}

export abstract class SlimError extends Error {
  /** Stable machine-readable code, e.g. "model_format". */
  abstract readonly code: string;
  readonly expected: string | undefined;
  readonly got: string | undefined;
  readonly hint: string | undefined;

  constructor(message: string, details: SlimErrorDetails = {}) {
    super(composeMessage(message, details), details.cause === undefined ? undefined : { cause: details.cause });
    this.name = new.target.name;
    this.expected = details.expected;
    this.got = details.got;
    this.hint = details.hint;
  }
}

function composeMessage(message: string, d: SlimErrorDetails): string {
  let m = message;
  if (d.expected !== undefined || d.got !== undefined) {
    m += ` (expected ${d.expected ?? "?"}, got ${d.got ?? "?"})`;
  }
  if (d.hint !== undefined) m += `; hint: ${d.hint}`;
  return m;
}

/** A model, tokenizer or weights file is malformed, truncated or inconsistent. */
export class ModelFormatError extends SlimError {
  readonly code: string = "model_format";
  /** File path, when known. */
  readonly file: string | undefined;
  /** The metadata key or tensor name at fault, when known. */
  readonly field: string | undefined;
  constructor(message: string, details: SlimErrorDetails & { file?: string; field?: string } = {}) {
    super(
      [details.file, details.field].filter((s) => s !== undefined).join(": ") +
        (details.file !== undefined || details.field !== undefined ? ": " : "") +
        message,
      details,
    );
    this.file = details.file;
    this.field = details.field;
  }
}

/** The file is valid but uses something slimlm does not support (architecture, tensor type...). */
export class UnsupportedError extends SlimError {
  readonly code: string = "unsupported";
}

/** A bad command-line argument or API parameter. */
export class UsageError extends SlimError {
  readonly code: string = "usage";
}

/** The request does not fit: model too large for memory, prompt longer than the context... */
export class ResourceError extends SlimError {
  readonly code: string = "resource";
}

/** Reading or writing a file failed (missing, not writable...). */
export class FileError extends SlimError {
  readonly code: string = "file";
}

/** A bug in slimlm. */
export class InternalError extends Error {
  constructor(message: string) {
    super(`internal error: ${message}`);
    this.name = "InternalError";
  }
}

export function assert(condition: unknown, message: string | (() => string)): asserts condition {
  if (!condition) throw new InternalError(typeof message === "string" ? message : message());
}
