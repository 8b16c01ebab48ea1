/**
 * The byte pipeline behind decode() and createStreamDecoder(): token pieces (bytes) go through
 * optional leading/trailing strips and llama.cpp's space clean-up, then an incremental UTF-8
 * decoder. decode() runs the same pipeline over all ids at once, so streaming and one-shot
 * decoding agree by construction.
 */

const SPACE = 0x20;
const APOS = 0x27;

/** One byte-rewriting stage; emits into `out`. */
interface ByteStage {
  push(b: number, out: number[]): void;
  flush(out: number[]): void;
}

/**
 * llama.cpp detokenize clean_spaces, first pass: drop a space before ? ! . ,
 * (Holds a trailing space until the next byte shows whether it goes.)
 */
class CleanPunctSpace implements ByteStage {
  private held = false;
  push(b: number, out: number[]): void {
    if (this.held) {
      this.held = false;
      if (!(b === 0x3f || b === 0x21 || b === 0x2e || b === 0x2c)) out.push(SPACE);
    }
    if (b === SPACE) this.held = true;
    else out.push(b);
  }
  flush(out: number[]): void {
    if (this.held) out.push(SPACE);
    this.held = false;
  }
}

/**
 * Second pass: " ' " becomes "'".
 * NOTE: llama.cpp overwrites the skipped space with '\0' in place, so the byte after it never
 * sees a space before it; `prev` reproduces that.
 */
class CleanLoneApostrophe implements ByteStage {
  private prev = -1;
  private heldSpace = false;
  private quote = false; // saw "'" after a space; deciding needs the next byte
  private emitHeld(out: number[]): void {
    if (this.heldSpace) out.push(SPACE);
    this.heldSpace = false;
  }
  push(b: number, out: number[]): void {
    if (this.quote) {
      this.quote = false;
      if (b === SPACE) {
        this.heldSpace = false;
        out.push(APOS);
        this.prev = 0;
        return;
      }
      this.emitHeld(out);
      out.push(APOS);
      this.prev = APOS;
    }
    if (b === APOS && this.prev === SPACE) {
      this.quote = true;
      return;
    }
    this.emitHeld(out);
    if (b === SPACE) this.heldSpace = true;
    else out.push(b);
    this.prev = b;
  }
  flush(out: number[]): void {
    if (this.quote) {
      this.emitHeld(out);
      out.push(APOS);
      this.quote = false;
    }
    this.emitHeld(out);
    this.prev = -1;
  }
}

/** Third pass: " 's", " 'm", " 're", " 've" lose the space (" 't", " 'd", " 'll" keep it). */
class CleanContraction implements ByteStage {
  private prev = -1;
  private heldSpace = false;
  private quote = false;
  private look: number[] = [];
  private emitHeld(out: number[]): void {
    if (this.heldSpace) out.push(SPACE);
    this.heldSpace = false;
  }
  private normal(b: number, out: number[]): void {
    if (b === APOS && this.prev === SPACE) {
      this.quote = true;
      this.prev = b;
      return;
    }
    this.emitHeld(out);
    if (b === SPACE) this.heldSpace = true;
    else out.push(b);
    this.prev = b;
  }
  /** Decide a pending quote; `final` when no more bytes will come. */
  private decide(out: number[], final: boolean): boolean {
    const x1 = this.look[0];
    let drop = false;
    if (x1 === undefined) {
      if (!final) return false;
    } else if (x1 === 0x73 || x1 === 0x6d) {
      drop = true; // 's 'm
    } else if (!(x1 === 0x74 || x1 === 0x64)) {
      const x2 = this.look[1];
      if (x2 === undefined) {
        if (!final) return false;
      } else if ((x1 === 0x72 || x1 === 0x76) && x2 === 0x65) {
        drop = true; // 're 've
      }
    }
    if (drop) this.heldSpace = false;
    this.emitHeld(out);
    out.push(APOS);
    this.quote = false;
    const rest = this.look;
    this.look = [];
    for (const c of rest) this.push(c, out);
    return true;
  }
  push(b: number, out: number[]): void {
    if (this.quote) {
      this.look.push(b);
      this.decide(out, false);
      return;
    }
    this.normal(b, out);
  }
  flush(out: number[]): void {
    while (this.quote) this.decide(out, true);
    this.emitHeld(out);
    this.prev = -1;
  }
}

/** Strip up to `count` copies of `byte` at the very start of the text (Hugging Face Strip). */
class LeadingStrip implements ByteStage {
  private left: number;
  constructor(private readonly byte: number, count: number) {
    this.left = count;
  }
  push(b: number, out: number[]): void {
    if (this.left > 0) {
      if (b === this.byte) {
        this.left--;
        return;
      }
      this.left = 0;
    }
    out.push(b);
  }
  flush(): void {}
}

/** Strip up to `count` copies of `byte` at the very end of the text (held until known). */
class TrailingStrip implements ByteStage {
  private run = 0;
  constructor(private readonly byte: number, private readonly count: number) {}
  push(b: number, out: number[]): void {
    if (b === this.byte) {
      this.run++;
      return;
    }
    for (; this.run > 0; this.run--) out.push(this.byte);
    out.push(b);
  }
  flush(out: number[]): void {
    for (let k = this.run - this.count; k > 0; k--) out.push(this.byte);
    this.run = 0;
  }
}

export interface PipelineOptions {
  /** llama.cpp clean_spaces (BPE vocabularies): the three clean-up passes. */
  readonly cleanSpaces?: boolean;
  /** Hugging Face Strip decoder after Fuse: strip `count` `byte`s at the start / end of the text. */
  readonly stripStart?: { readonly byte: number; readonly count: number };
  readonly stripEnd?: { readonly byte: number; readonly count: number };
}

/** Bytes in, text out. */
export class BytePipeline {
  private readonly stages: ByteStage[] = [];
  // NOTE: ignoreBOM: a U+FEFF at the start is text, not a byte-order mark to swallow.
  private readonly utf8 = new TextDecoder("utf-8", { ignoreBOM: true });
  private buf: number[] = [];
  private tmp: number[] = [];

  constructor(opts: PipelineOptions) {
    if (opts.stripStart !== undefined && opts.stripStart.count > 0) {
      this.stages.push(new LeadingStrip(opts.stripStart.byte, opts.stripStart.count));
    }
    if (opts.cleanSpaces === true) {
      this.stages.push(new CleanPunctSpace(), new CleanLoneApostrophe(), new CleanContraction());
    }
    if (opts.stripEnd !== undefined && opts.stripEnd.count > 0) {
      this.stages.push(new TrailingStrip(opts.stripEnd.byte, opts.stripEnd.count));
    }
  }

  private run(bytes: ArrayLike<number>, final: boolean): Uint8Array {
    let cur: ArrayLike<number> = bytes;
    for (let s = 0; s < this.stages.length; s++) {
      const stage = this.stages[s] as ByteStage;
      const out = s % 2 === 0 ? this.buf : this.tmp;
      out.length = 0;
      for (let i = 0; i < cur.length; i++) stage.push(cur[i] as number, out);
      if (final) stage.flush(out);
      cur = out;
    }
    return cur instanceof Uint8Array ? cur : Uint8Array.from(cur);
  }

  push(bytes: Uint8Array): string {
    if (bytes.length === 0 && this.stages.length === 0) return "";
    return this.utf8.decode(this.run(bytes, false), { stream: true });
  }

  flush(): string {
    return this.utf8.decode(this.run(new Uint8Array(0), true));
  }
}

/** Run a whole sequence of pieces through a fresh pipeline (what decode() does). */
export function decodePieces(opts: PipelineOptions, pieces: readonly Uint8Array[]): string {
  const p = new BytePipeline(opts);
  let n = 0;
  for (const x of pieces) n += x.length;
  const all = new Uint8Array(n);
  let o = 0;
  for (const x of pieces) {
    all.set(x, o);
    o += x.length;
  }
  return p.push(all) + p.flush();
}
