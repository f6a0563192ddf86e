/**
 * When the checks of candidate alignments run: a pre-check once enough of the block's frames are there, the
 * whole-block verification once all of them (and the margin's) are. Checks wait in buckets by the frame they are
 * due at; finished ones are recycled.
 * @module
 */

import type { Signature } from "../types.ts";

/** An alignment waiting for target frames: a pre-check on a few frames, or the whole-block verification. */
export interface Pending {
  sig: Signature;
  /** Index slot (its unmasked frames are in index.frames); -1 only for verifications. */
  slot: number;
  gen: number;
  s: number;
  verify: boolean;
  due: number;
}

/** Most finished pending checks a scheduler keeps for reuse. */
const POOL_MAX = 256;
/** Due buckets (frames mod this; nothing is due more than a block ahead). */
const BUCKETS = 1024;

/** What runs the checks a {@link CheckScheduler} hands out. */
export interface CheckRunner<Out> {
  /** Runs a pre-check or verification of `p`; true if `p` was scheduled again (still in use). */
  check(p: Pending, out: Out, final: boolean): boolean;
  /** Called before the checks of one due frame run, with them (more than one) and the frame. */
  touch(now: readonly Pending[], dueNext: number): void;
}

/** Pending checks of one target stream, by due frame. */
export class CheckScheduler<Out> {
  readonly #runner: CheckRunner<Out>;
  /** Pending checks in buckets by due frame (mod BUCKETS). */
  readonly #due: Pending[][] = Array.from({ length: BUCKETS }, () => []);
  /** Finished pending checks for reuse. */
  readonly #pool: Pending[] = [];
  /** An empty bucket to swap in for the one being run. */
  #spare: Pending[] = [];
  #pending = 0;
  #dueNext = -1;

  /** A scheduler handing due checks to `runner`. */
  constructor(runner: CheckRunner<Out>) {
    this.#runner = runner;
  }

  /** Checks waiting. */
  get pending(): number {
    return this.#pending;
  }

  /** Sets the first frame checks can be due at, unless already set. */
  start(from: number): void {
    if (this.#dueNext < 0) this.#dueNext = from;
  }

  /** Schedules `p` at its due frame (at the earliest the next frame to run). */
  schedule(p: Pending): void {
    const due = Math.max(p.due, this.#dueNext);
    p.due = due;
    this.#due[due & (BUCKETS - 1)]!.push(p);
    this.#pending++;
  }

  /** Schedules a pre-check of `sig` (in index `slot` of generation `gen`) at `s`, due at `due`. */
  precheck(sig: Signature, slot: number, gen: number, s: number, due: number): void {
    const p = this.#pool.pop();
    if (p) {
      p.sig = sig;
      p.slot = slot;
      p.gen = gen;
      p.s = s;
      p.verify = false;
      p.due = due;
      this.schedule(p);
    } else this.schedule({ sig, slot, gen, s, verify: false, due });
  }

  /** Runs the checks due at frame `t` (and before). */
  runDue(t: number, out: Out): void {
    const runner = this.#runner;
    for (; this.#dueNext <= t; this.#dueNext++) {
      const at = this.#dueNext & (BUCKETS - 1);
      const now = this.#due[at]!;
      if (now.length === 0) continue;
      // Swap in the spare (empty) bucket instead of copying: what is (re)scheduled here lands in it.
      const bucket = this.#spare;
      this.#due[at] = bucket;
      if (now.length > 1) runner.touch(now, this.#dueNext);
      for (const p of now) {
        if (p.due > this.#dueNext) {
          bucket.push(p);
          continue;
        }
        this.#pending--;
        // Most candidates die at the pre-check: recycle them (the pool is bounded).
        if (!runner.check(p, out, false) && this.#pool.length < POOL_MAX) this.#pool.push(p);
      }
      now.length = 0;
      this.#spare = now;
    }
  }

  /** Runs every pending check now (end of stream). */
  runAll(out: Out): void {
    for (const bucket of this.#due) {
      const now = bucket.splice(0, bucket.length);
      for (const p of now) {
        this.#pending--;
        this.#runner.check(p, out, true);
      }
    }
  }
}
