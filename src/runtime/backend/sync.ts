/**
 * Synchronisation between lanes over one shared Int32Array (the "control block").
 *
 * - A central barrier: the last lane to arrive bumps the generation and wakes sleepers.
 * - A command word: lane 0 publishes a command (FORWARD, EXIT) by bumping its generation;
 *   idle workers wait on it.
 * Waiters spin for a bounded number of polls (a few ms at a barrier inside a pass, tens of µs
 * when idle between commands), then sleep in `Atomics.wait`, so an idle or out-of-step lane does
 * not burn its core (node-llama-cpp's spinning pool fights Node's threads:
 * see /work/shared/docs/performance-facts.md, lesson 4).
 * An abort word lets a failing lane release everyone: waits throw `LaneAborted` once it is set.
 */
import { InternalError } from "../../errors.js";

export const CTRL = {
  BARRIER_COUNT: 0,
  BARRIER_GEN: 1,
  CMD_GEN: 2,
  CMD: 3,
  ABORT: 4,
  /** Error text of an aborting lane: UTF-16 code units from here, length at ERR_LEN. */
  ERR_LEN: 5,
  /** Lanes asleep in Atomics.wait (notify is a syscall: skip it when nobody sleeps). */
  SLEEPERS: 6,
  ERR_TEXT: 8,
  ERR_TEXT_CAP: 1024,
  /** First word of the batch description (see batch.ts). */
  BATCH: 8 + 1024,
} as const;

export const Command = { NONE: 0, FORWARD: 1, EXIT: 2 } as const;

/** Polls before sleeping at a command wait (idle engine): about 20-60 µs of spinning here. */
const SPIN_POLLS = 20000;
/**
 * Polls before sleeping at a barrier inside a forward pass: about 2-6 ms here. The lanes are
 * mid-pass and the wait is the other lanes' share of one op, so spinning is cheaper than a
 * sleep: waking a vCPU from Atomics.wait took long and varied here (a step of 16 batched
 * tokens: 5-12% faster, prefill of 256 tokens about 10%, noisy machine).
 */
const BARRIER_SPIN_POLLS = 2_000_000;

export class LaneAborted extends Error {
  constructor(message: string) {
    super(message);
    this.name = "LaneAborted";
  }
}

export class LaneSync {
  constructor(
    readonly ctrl: Int32Array,
    readonly nLanes: number,
  ) {}

  /** Wait until all lanes have arrived. */
  barrier(): void {
    if (this.nLanes === 1) return;
    const c = this.ctrl;
    const gen = Atomics.load(c, CTRL.BARRIER_GEN);
    if (Atomics.add(c, CTRL.BARRIER_COUNT, 1) === this.nLanes - 1) {
      Atomics.store(c, CTRL.BARRIER_COUNT, 0);
      Atomics.add(c, CTRL.BARRIER_GEN, 1);
      if (Atomics.load(c, CTRL.SLEEPERS) > 0) Atomics.notify(c, CTRL.BARRIER_GEN);
      return;
    }
    this.waitWhileEqual(CTRL.BARRIER_GEN, gen, BARRIER_SPIN_POLLS);
  }

  /** Lane 0: publish a command to the workers. */
  publish(cmd: number): void {
    Atomics.store(this.ctrl, CTRL.CMD, cmd);
    Atomics.add(this.ctrl, CTRL.CMD_GEN, 1);
    if (Atomics.load(this.ctrl, CTRL.SLEEPERS) > 0) Atomics.notify(this.ctrl, CTRL.CMD_GEN);
  }

  /** Workers: wait for the command after generation `seen`; returns [command, generation]. */
  nextCommand(seen: number): [number, number] {
    this.waitWhileEqual(CTRL.CMD_GEN, seen, SPIN_POLLS);
    return [Atomics.load(this.ctrl, CTRL.CMD), Atomics.load(this.ctrl, CTRL.CMD_GEN)];
  }

  /** Release every waiting lane with an error. */
  abort(message: string): void {
    const c = this.ctrl;
    const n = Math.min(message.length, CTRL.ERR_TEXT_CAP);
    if (Atomics.compareExchange(c, CTRL.ABORT, 0, 1) === 0) {
      for (let i = 0; i < n; i++) c[CTRL.ERR_TEXT + i] = message.charCodeAt(i);
      Atomics.store(c, CTRL.ERR_LEN, n);
      Atomics.store(c, CTRL.ABORT, 2);
    }
    Atomics.add(c, CTRL.BARRIER_GEN, 1);
    Atomics.notify(c, CTRL.BARRIER_GEN);
    Atomics.add(c, CTRL.CMD_GEN, 1);
    Atomics.notify(c, CTRL.CMD_GEN);
  }

  get aborted(): boolean {
    return Atomics.load(this.ctrl, CTRL.ABORT) !== 0;
  }

  abortMessage(): string {
    const c = this.ctrl;
    // Wait for the writer to finish (state 1 -> 2); it is a handful of stores.
    while (Atomics.load(c, CTRL.ABORT) === 1) Atomics.wait(c, CTRL.ABORT, 1, 1);
    const n = Atomics.load(c, CTRL.ERR_LEN);
    let s = "";
    for (let i = 0; i < n; i++) s += String.fromCharCode(c[CTRL.ERR_TEXT + i]!);
    return s;
  }

  private waitWhileEqual(index: number, value: number, polls: number): void {
    const c = this.ctrl;
    for (let i = 0; i < polls; i++) {
      if (Atomics.load(c, index) !== value) return this.checkAbort();
    }
    // NOTE: announce the sleep before re-checking the value, so a notifier that changes the
    // value after our check sees SLEEPERS > 0 and wakes us (Atomics.wait returns at once if the
    // value already changed).
    Atomics.add(c, CTRL.SLEEPERS, 1);
    while (Atomics.load(c, index) === value) {
      Atomics.wait(c, index, value, 1000);
      if (Atomics.load(c, CTRL.ABORT) !== 0) break;
    }
    Atomics.sub(c, CTRL.SLEEPERS, 1);
    this.checkAbort();
  }

  private checkAbort(): void {
    if (Atomics.load(this.ctrl, CTRL.ABORT) !== 0) throw new LaneAborted(this.abortMessage());
  }
}

export function assertLaneCount(n: number): void {
  if (!Number.isInteger(n) || n < 1 || n > 256) throw new InternalError(`bad lane count ${n}`);
}
