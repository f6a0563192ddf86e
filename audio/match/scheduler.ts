/**
 * When the checks of candidate alignments run: a pre-check once enough of the block's frames are there, the
 * whole-block verification once all of them (and the margin's) are. Checks wait in a binary heap by the frame they
 * are due at (a stream with nothing pending holds an empty array); finished ones are recycled through one pool
 * for the whole process (the engine runs one stream's message at a time).
 * @module
 */

import type { Signature } from "../types.ts";
import { truncate } from "../../util/truncate.ts";

/** An alignment waiting for target frames: a pre-check on a few frames, or the whole-block verification. */
export interface Pending {
  sig: Signature;
  /** Index slot (its unmasked frames are in index.frames); -1 only for verifications. */
  slot: number;
  gen: number;
  s: number;
  verify: boolean;
  due: number;
  /** Order of scheduling: checks due at the same frame run in it (set by the scheduler). */
  seq: number;
  /** The next check of its due frame's list (the scheduler's). */
  next?: Pending | undefined;
}

/** Most finished pending checks kept for reuse, shared by every scheduler of the process. */
const POOL_MAX = 1024;
const pool: Pending[] = [];
/**
 * The final checks of a stream run in the order of `due` modulo this (then scheduling order): the order of the
 * due buckets of an earlier scheduler, kept so that results stay the same.
 */
const FINAL_ORDER_MOD = 1024;
/**
 * Due frames ahead of the next frame to run that have a list of their own (a power of two): a check due within
 * these is appended to its frame's list, O(1), in scheduling order; one due later waits in a heap. A pre-check is
 * due at most 64 frames after the vote that queued it, a verification at most a block and its margin after.
 */
const NEAR = 256;
/**
 * Emptied lists of due frames (every slot undefined), for the next scheduler that needs some: a stream's lists
 * are let go while it has nothing near (an idle stream holds none); an analyze of the bench corpus took 3,664 of
 * its 3,832 lists (~1 KiB each) from here. At most this many are kept.
 */
const SPARE_MAX = 64;
const spare: (Pending | undefined)[][] = [];

/** Emptied lists kept for reuse (for tests). */
export function spareLists(): number {
  return spare.length;
}

/** An empty list of NEAR slots: a spare, else a new one. */
function spareList(): (Pending | undefined)[] {
  return spare.pop() ?? new Array<Pending | undefined>(NEAR).fill(undefined);
}

/** The checks of one due frame, handed to the runner's touch (scratch of the process). */
const batch: Pending[] = [];

/** What runs the checks a {@link CheckScheduler} hands out. */
export interface CheckRunner<Out> {
  /** Runs a pre-check or verification of `p`; true if `p` was scheduled again (still in use). */
  check(p: Pending, out: Out, final: boolean): boolean;
  /** Called before the checks of one due frame run, with them (more than one) and the frame. */
  touch(now: readonly Pending[], dueNext: number): void;
}

/** True if `a` runs before `b`: due first, then scheduling order. */
function before(a: Pending, b: Pending): boolean {
  return a.due < b.due || (a.due === b.due && a.seq < b.seq);
}

/** Pending checks of one target stream, by due frame. */
export class CheckScheduler<Out> {
  readonly #runner: CheckRunner<Out>;
  /**
   * Per due frame d within NEAR of the next frame to run, at d mod NEAR, the first and last of its checks (a list
   * through Pending.next, in scheduling order); allocated while any check is in them.
   */
  #first: (Pending | undefined)[] | undefined;
  #last: (Pending | undefined)[] | undefined;
  #near = 0;
  /** Checks due later, a binary min-heap on (due, seq). */
  readonly #heap: Pending[] = [];
  #seq = 0;
  #dueNext = -1;

  /** A scheduler handing due checks to `runner`. */
  constructor(runner: CheckRunner<Out>) {
    this.#runner = runner;
  }

  /** Checks waiting. */
  get pending(): number {
    return this.#near + this.#heap.length;
  }

  /** Bytes held (the heap's slots and the checks, ~40 bytes each, the lists' ends), for capacity planning. */
  get bytes(): number {
    return (this.#near + this.#heap.length) * 44 + (this.#first === undefined ? 0 : 16 * NEAR);
  }

  /** Sets the first frame checks can be due at, unless already set. */
  start(from: number): void {
    if (this.#dueNext < 0) this.#dueNext = from;
  }

  /** Schedules `p` at its due frame (at the earliest the next frame to run). */
  schedule(p: Pending): void {
    p.due = Math.max(p.due, this.#dueNext);
    p.seq = this.#seq++;
    if (this.#dueNext >= 0 && p.due - this.#dueNext < NEAR) {
      // Its frame's list (no check due NEAR frames later can be in it: those wait in the heap until then).
      if (this.#first === undefined) {
        this.#first = spareList();
        this.#last = spareList();
      }
      const b = p.due & (NEAR - 1), last = this.#last![b];
      p.next = undefined;
      if (last === undefined) this.#first[b] = p;
      else last.next = p;
      this.#last![b] = p;
      this.#near++;
      return;
    }
    const h = this.#heap;
    let i = h.length;
    h.push(p);
    while (i > 0) {
      const up = (i - 1) >> 1;
      const q = h[up]!;
      if (!before(p, q)) break;
      h[i] = q;
      i = up;
    }
    h[i] = p;
  }

  /** Schedules a pre-check of `sig` (in index `slot` of generation `gen`) at `s`, due at `due`. */
  precheck(sig: Signature, slot: number, gen: number, s: number, due: number): void {
    const p = pool.pop();
    if (p) {
      p.sig = sig;
      p.slot = slot;
      p.gen = gen;
      p.s = s;
      p.verify = false;
      p.due = due;
      this.schedule(p);
    } else this.schedule({ sig, slot, gen, s, verify: false, due, seq: 0, next: undefined });
  }

  /** Runs the checks due at frame `t` (and before). */
  runDue(t: number, out: Out): void {
    const runner = this.#runner;
    const h = this.#heap;
    for (let due = this.#dueNext; due <= t;) {
      // Nothing listed: on to the heap's first (or done).
      if (this.#near === 0) {
        if (h.length === 0 || h[0]!.due > t) break;
        due = Math.max(due, h[0]!.due);
      }
      const b = due & (NEAR - 1);
      const listed = this.#first?.[b];
      if (listed === undefined && (h.length === 0 || h[0]!.due !== due)) {
        due++;
        continue;
      }
      // The frame's checks together (as scheduled: its list and the heap's, merged by scheduling order), before
      // any of them runs and schedules again.
      this.#dueNext = due;
      const first = batch.length;
      if (listed !== undefined) {
        this.#first![b] = this.#last![b] = undefined;
        let p: Pending | undefined = listed;
        while (p !== undefined) {
          while (h.length > 0 && h[0]!.due === due && h[0]!.seq < p.seq) batch.push(this.#pop());
          batch.push(p);
          this.#near--;
          p = p.next;
        }
      }
      while (h.length > 0 && h[0]!.due === due) batch.push(this.#pop());
      if (this.#near === 0 && this.#first !== undefined) {
        // Every list is empty (each frame's is cleared as it runs): back to the spares.
        if (spare.length < SPARE_MAX) spare.push(this.#first, this.#last!);
        this.#first = this.#last = undefined;
      }
      const now = first === 0 ? batch : batch.slice(first);
      if (now.length > 1) runner.touch(now, due);
      for (const p of now) {
        p.next = undefined;
        // Most candidates die at the pre-check: recycle them (the pool is bounded).
        if (!runner.check(p, out, false) && pool.length < POOL_MAX) pool.push(p);
      }
      truncate(batch, first);
    }
    if (this.#dueNext <= t) this.#dueNext = t + 1;
  }

  /** Runs every pending check now (end of stream). */
  runAll(out: Out): void {
    const now = this.#heap.splice(0, this.#heap.length);
    for (let b = 0; this.#near > 0 && b < NEAR; b++) {
      for (let p = this.#first![b]; p !== undefined; p = p.next) {
        now.push(p);
        this.#near--;
      }
    }
    this.#first = this.#last = undefined;
    const m = FINAL_ORDER_MOD - 1;
    now.sort((a, b) => (a.due & m) - (b.due & m) || a.seq - b.seq);
    for (const p of now) this.#runner.check(p, out, true);
  }

  /** Removes and returns the first check of the heap (which is not empty). */
  #pop(): Pending {
    const h = this.#heap;
    const top = h[0]!;
    const last = h.pop()!;
    const n = h.length;
    if (n > 0) {
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= n) break;
        const r = l + 1;
        const c = r < n && before(h[r]!, h[l]!) ? r : l;
        if (!before(h[c]!, last)) break;
        h[i] = h[c]!;
        i = c;
      }
      h[i] = last;
    }
    return top;
  }
}
