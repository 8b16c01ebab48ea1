/** What every command shares: option parsing, the error contract, JSON and progress output. */
import { InternalError, SlimError, UsageError } from "../errors.js";
import { KV_TYPES, type KvType } from "../kernels/kernel-set.js";

/** Exit codes: 1 = something the user can fix (bad file, bad argument...), 70 = our bug. */
export const EXIT_USER = 1;
export const EXIT_INTERNAL = 70;

/**
 * Run a command body with the CLI error contract: one line on stderr, exit code != 0.
 * `SLIMLM_DEBUG=1` prints the stack too.
 */
export async function runCommand(body: () => Promise<void>): Promise<void> {
  try {
    await body();
  } catch (e) {
    const debug = process.env.SLIMLM_DEBUG === "1";
    if (e instanceof SlimError) {
      process.stderr.write(`error: ${oneLine(e.message)}\n`);
      if (debug && e.stack) process.stderr.write(e.stack + "\n");
      process.exitCode = EXIT_USER;
    } else {
      const msg = e instanceof Error ? e.message : String(e);
      process.stderr.write(`${e instanceof InternalError ? "" : "internal error: "}${oneLine(msg)}\n`);
      if (debug && e instanceof Error && e.stack) process.stderr.write(e.stack + "\n");
      process.exitCode = EXIT_INTERNAL;
    }
  }
}

function oneLine(s: string): string {
  return s.replace(/\s*\n\s*/g, " ");
}

export function printJson(value: unknown): void {
  process.stdout.write(JSON.stringify(value) + "\n");
}

/** Human-readable output goes to stderr; stdout is for data (text, ids, JSON). */
export function say(line = ""): void {
  process.stderr.write(line + "\n");
}

export function parseIntOption(name: string, min: number, max: number): (v: string) => number {
  return (v: string) => {
    const n = Number(v);
    if (!/^-?\d+$/.test(v.trim()) || !Number.isSafeInteger(n) || n < min || n > max) {
      throw new UsageError(`invalid ${name}`, { expected: `an integer in [${min}, ${max}]`, got: JSON.stringify(v) });
    }
    return n;
  };
}

export function parseFloatOption(name: string, min: number, max: number): (v: string) => number {
  return (v: string) => {
    const n = Number(v);
    if (v.trim() === "" || !Number.isFinite(n) || n < min || n > max) {
      throw new UsageError(`invalid ${name}`, { expected: `a number in [${min}, ${max}]`, got: JSON.stringify(v) });
    }
    return n;
  };
}

/** A progress bar on stderr when it is a terminal; silent otherwise (and with --json). */
export class ProgressBar {
  private last = 0;
  private readonly enabled: boolean;

  constructor(
    private readonly label: string,
    quiet = false,
  ) {
    this.enabled = !quiet && process.stderr.isTTY === true;
  }

  update(done: number, total: number, detail = ""): void {
    if (!this.enabled) return;
    const now = Date.now();
    if (done < total && now - this.last < 50) return;
    this.last = now;
    const width = 30;
    const filled = Math.round((done / Math.max(total, 1)) * width);
    const pct = Math.floor((done / Math.max(total, 1)) * 100);
    const tail = detail.length > 40 ? "…" + detail.slice(-39) : detail;
    process.stderr.write(`\r${this.label} [${"#".repeat(filled)}${"-".repeat(width - filled)}] ${pct}% ${tail}\x1b[K`);
  }

  done(): void {
    if (this.enabled) process.stderr.write("\r\x1b[K");
  }
}

export function formatBytes(n: number): string {
  if (n >= 2 ** 30) return `${(n / 2 ** 30).toFixed(2)} GiB`;
  if (n >= 2 ** 20) return `${(n / 2 ** 20).toFixed(2)} MiB`;
  if (n >= 2 ** 10) return `${(n / 2 ** 10).toFixed(1)} KiB`;
  return `${n} B`;
}

/** `--kv-type f32|f16|q8_0`: the KV cache precision. */
export function parseKvType(v: string): KvType {
  const t = v.trim().toLowerCase();
  if (!(KV_TYPES as readonly string[]).includes(t)) {
    throw new UsageError("invalid --kv-type", { expected: KV_TYPES.join(", "), got: JSON.stringify(v) });
  }
  return t as KvType;
}

export const KV_TYPE_HELP = "KV cache precision: f32, f16 (half the memory) or q8_0 (about 0.27x)";
