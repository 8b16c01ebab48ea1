/**
 * Stop strings over streamed text. Text that could be the start of a stop string is held back
 * until it is known not to be, so a stream never shows part of a stop string.
 */
export class StopMatcher {
  private pending = "";
  private readonly maxLen: number;

  constructor(private readonly stops: readonly string[]) {
    this.maxLen = Math.max(0, ...stops.map((s) => s.length));
  }

  /** Feed new text; returns the text safe to emit and whether a stop string was found. */
  push(delta: string): { emit: string; stopped: boolean } {
    if (this.stops.length === 0) return { emit: delta, stopped: false };
    const text = this.pending + delta;
    let cut = -1;
    for (const s of this.stops) {
      if (s.length === 0) continue;
      const i = text.indexOf(s);
      if (i >= 0 && (cut < 0 || i < cut)) cut = i;
    }
    if (cut >= 0) {
      this.pending = "";
      return { emit: text.slice(0, cut), stopped: true };
    }
    // hold back the longest suffix that is a prefix of some stop string
    let hold = 0;
    for (let n = Math.min(this.maxLen - 1, text.length); n > 0; n--) {
      const suffix = text.slice(text.length - n);
      if (this.stops.some((s) => s.startsWith(suffix))) {
        hold = n;
        break;
      }
    }
    this.pending = text.slice(text.length - hold);
    return { emit: text.slice(0, text.length - hold), stopped: false };
  }

  /** End of generation: whatever was held back is plain text. */
  flush(): string {
    const p = this.pending;
    this.pending = "";
    return p;
  }
}
