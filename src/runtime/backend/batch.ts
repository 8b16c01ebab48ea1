/**
 * The batch of one forward pass, as lane 0 publishes it in the control block for all lanes.
 *
 * A batch is T tokens, each with its position and the sequence it belongs to; each sequence has a
 * KV block table (block ids, one per `blockSize` positions, covering at least position+1 for its
 * tokens); `outputRows` lists (ascending) the rows whose logits the caller wants.
 */
import { ResourceError, assert } from "../../errors.js";
import { CTRL } from "./sync.js";

export interface Batch {
  readonly tokens: ArrayLike<number>;
  readonly positions: ArrayLike<number>;
  /** Index into `blockTables` per token. */
  readonly seqOf: ArrayLike<number>;
  readonly blockTables: readonly ArrayLike<number>[];
  /** Ascending row indices whose logits are wanted. */
  readonly outputRows: ArrayLike<number>;
}

export interface BatchCapacity {
  /** Tokens per forward pass. */
  readonly maxTokens: number;
  /** Rows of logits per forward pass. */
  readonly maxOutputRows: number;
  readonly maxSeqs: number;
  /** Total block-table entries per forward pass. */
  readonly maxTableEntries: number;
}

/** Int32 offsets of the batch arrays inside the control block. */
export class BatchLayout {
  readonly nTokens = CTRL.BATCH;
  readonly nOutputRows = CTRL.BATCH + 1;
  readonly nSeqs = CTRL.BATCH + 2;
  readonly tokens: number;
  readonly positions: number;
  readonly seqOf: number;
  readonly outputRows: number;
  readonly tableStart: number;
  readonly tableLen: number;
  readonly tables: number;
  /** Int32 words of the whole control block. */
  readonly words: number;

  constructor(readonly cap: BatchCapacity) {
    let o = CTRL.BATCH + 4;
    const take = (n: number): number => {
      const at = o;
      o += n;
      return at;
    };
    this.tokens = take(cap.maxTokens);
    this.positions = take(cap.maxTokens);
    this.seqOf = take(cap.maxTokens);
    this.outputRows = take(cap.maxOutputRows);
    this.tableStart = take(cap.maxSeqs);
    this.tableLen = take(cap.maxSeqs);
    this.tables = take(cap.maxTableEntries);
    this.words = o;
  }

  /** Lane 0: validate and write a batch. Throws ResourceError if it exceeds the capacity. */
  write(ctrl: Int32Array, b: Batch): void {
    const T = b.tokens.length;
    const cap = this.cap;
    const over = (what: string, n: number, max: number): never => {
      throw new ResourceError(`batch has too many ${what}`, { expected: `<= ${max}`, got: String(n) });
    };
    if (T < 1) throw new ResourceError("empty batch", { expected: ">= 1 token", got: "0" });
    if (T > cap.maxTokens) over("tokens", T, cap.maxTokens);
    if (b.outputRows.length > cap.maxOutputRows) over("output rows", b.outputRows.length, cap.maxOutputRows);
    if (b.blockTables.length > cap.maxSeqs) over("sequences", b.blockTables.length, cap.maxSeqs);
    assert(b.positions.length === T && b.seqOf.length === T, "batch arrays differ in length");
    ctrl[this.nTokens] = T;
    ctrl[this.nOutputRows] = b.outputRows.length;
    ctrl[this.nSeqs] = b.blockTables.length;
    for (let t = 0; t < T; t++) {
      ctrl[this.tokens + t] = b.tokens[t]!;
      ctrl[this.positions + t] = b.positions[t]!;
      ctrl[this.seqOf + t] = b.seqOf[t]!;
    }
    let prev = -1;
    for (let i = 0; i < b.outputRows.length; i++) {
      const r = b.outputRows[i]!;
      assert(r > prev && r < T, "output rows must be ascending batch rows");
      ctrl[this.outputRows + i] = r;
      prev = r;
    }
    let at = 0;
    for (let s = 0; s < b.blockTables.length; s++) {
      const tbl = b.blockTables[s]!;
      if (at + tbl.length > cap.maxTableEntries) over("block-table entries", at + tbl.length, cap.maxTableEntries);
      ctrl[this.tableStart + s] = at;
      ctrl[this.tableLen + s] = tbl.length;
      for (let i = 0; i < tbl.length; i++) ctrl[this.tables + at + i] = tbl[i]!;
      at += tbl.length;
    }
  }
}
