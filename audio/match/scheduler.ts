/**
 * When the checks of candidate alignments run: a pre-check once enough of the block's frames are there, the
 * whole-block verification once all of them (and the margin's) are. Verifications wait as objects in lists per
 * due frame or a binary heap (a stream with nothing pending holds an empty array); finished ones are recycled
 * through one pool for the whole process (the engine runs one stream's message at a time). Pre-checks, ~35 times
 * as many and ~92% failing, are no objects: four int32s each (slot, generation, s, scheduling order) in a
 * {@link PrecheckLane}, handed to the runner a due frame at a time.
 * @module
 */

import type { Signature } from "../types.ts";
import { truncate } from "../../util/truncate.ts";

/** An alignment waiting for target frames for its whole-block verification. */
export interface Pending {
  sig: Signature;
  /** Index slot (its unmasked frames are in index.frames), or -1 (not in the index). */
  slot: number;
  gen: number;
  s: number;
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

/** The verifications of one due frame (scratch of the process). */
const batch: Pending[] = [];
/**
 * The pre-checks of one due frame, taken out of their lane before any runs (scratch of the process, like
 * {@link batch}: [first, top) is a frame's): slot, generation, s and scheduling order (as int32).
 */
const taken = {
  slot: new Int32Array(256),
  gen: new Int32Array(256),
  s: new Int32Array(256),
  seq: new Int32Array(256),
  top: 0,
};

/** True if scheduling order `a` (an int32 of it: it wraps after 2^31 checks of a stream) is before `b`. */
function seqBefore(a: number, b: number): boolean {
  return ((a - b) | 0) < 0;
}

/**
 * Due frames a {@link PrecheckLane} has a bucket for, from the next frame to run (a power of two, at most NEAR):
 * a pre-check is due at most PRECHECK_AFTER frames after the vote that queued it.
 */
const LANE_FRAMES = 128;
/**
 * Int32 words per bucket of a lane (a cache line): its count, its overflow list's first and last entry, then
 * {@link INLINE} entries of {@link ENTRY} words (slot, generation, s, scheduling order as int32). The lane's
 * first line is its occupancy mask (a bit per bucket, LANE_FRAMES / 32 words); bucket b follows at line b + 1.
 */
const BUCKET = 16;
const INLINE = 3;
const ENTRY = 4;
const [B_COUNT, B_HEAD, B_TAIL, B_ENTRIES] = [0, 1, 2, 3];
/** Overflow entries of a new lane, and their words: an entry's and the next one's of its list. */
const OVERFLOW = 16;
const OVER = 8;

/**
 * A stream's pending pre-checks: per due frame within LANE_FRAMES of the next frame to run, at its frame mod
 * LANE_FRAMES, a bucket of one cache line holding its first {@link INLINE} entries in scheduling order (about
 * one a frame is queued on the bench corpus), the rest in a list of overflow entries. A stream's lane is
 * mostly out of cache when its next message comes: adding a check or taking a frame's touches its bucket's
 * line, and rarely an overflow entry; asking whether a frame has any reads the mask's line, which the frames of
 * a message share (most frames of a live stream with a lane have none due: a bucket's line each cost a cache
 * miss a frame).
 */
class PrecheckLane {
  readonly buckets = new Int32Array((LANE_FRAMES + 1) * BUCKET);
  over = new Int32Array(OVERFLOW * OVER);
  /** First free overflow entry (-1: none; they grow). */
  free = 0;
  count = 0;

  constructor() {
    for (let b = 0; b < LANE_FRAMES; b++) this.buckets[(b + 1) * BUCKET + B_HEAD] = -1;
    this.#link(0, OVERFLOW);
  }

  get bytes(): number {
    return this.buckets.byteLength + this.over.byteLength;
  }

  /** True if bucket `b` has an entry. */
  has(b: number): boolean {
    return (this.buckets[b >> 5]! & (1 << (b & 31))) !== 0;
  }

  /** Appends an entry to bucket `b`. */
  add(b: number, slot: number, gen: number, s: number, seq: number): void {
    const k = this.buckets, at = (b + 1) * BUCKET, n = k[at + B_COUNT]!;
    k[at + B_COUNT] = n + 1;
    if (n === 0) k[b >> 5]! |= 1 << (b & 31);
    this.count++;
    if (n < INLINE) {
      const x = at + B_ENTRIES + n * ENTRY;
      k[x] = slot;
      k[x + 1] = gen;
      k[x + 2] = s;
      k[x + 3] = seq;
      return;
    }
    if (this.free < 0) this.#grow();
    const o = this.over, i = this.free, x = i * OVER;
    this.free = o[x + ENTRY]!;
    o[x] = slot;
    o[x + 1] = gen;
    o[x + 2] = s;
    o[x + 3] = seq;
    o[x + ENTRY] = -1;
    if (k[at + B_HEAD]! < 0) k[at + B_HEAD] = i;
    else o[k[at + B_TAIL]! * OVER + ENTRY] = i;
    k[at + B_TAIL] = i;
  }

  /** Moves the entries of bucket `b` to {@link taken} (in order) and empties it. */
  take(b: number): void {
    const k = this.buckets, at = (b + 1) * BUCKET, n = k[at + B_COUNT]!;
    k[at + B_COUNT] = 0;
    k[b >> 5]! &= ~(1 << (b & 31));
    this.count -= n;
    if (taken.top + n > taken.slot.length) growTaken(taken.top + n);
    let t = taken.top;
    for (let j = 0; j < n && j < INLINE; j++, t++) {
      const x = at + B_ENTRIES + j * ENTRY;
      taken.slot[t] = k[x]!;
      taken.gen[t] = k[x + 1]!;
      taken.s[t] = k[x + 2]!;
      taken.seq[t] = k[x + 3]!;
    }
    if (n > INLINE) {
      const o = this.over;
      let i = k[at + B_HEAD]!;
      k[at + B_HEAD] = -1;
      while (i >= 0) {
        const x = i * OVER;
        taken.slot[t] = o[x]!;
        taken.gen[t] = o[x + 1]!;
        taken.s[t] = o[x + 2]!;
        taken.seq[t++] = o[x + 3]!;
        const next = o[x + ENTRY]!;
        o[x + ENTRY] = this.free;
        this.free = i;
        i = next;
      }
    }
    taken.top = t;
  }

  /** Links overflow entries [from, to) into the free list (which is empty). */
  #link(from: number, to: number): void {
    for (let i = from; i < to; i++) this.over[i * OVER + ENTRY] = i + 1 < to ? i + 1 : -1;
    this.free = from;
  }

  #grow(): void {
    const n = this.over.length / OVER, o = new Int32Array(2 * n * OVER);
    o.set(this.over);
    this.over = o;
    this.#link(n, 2 * n);
  }
}

/** Grows {@link taken}'s arrays to at least `need` entries. */
function growTaken(need: number): void {
  let n = taken.slot.length;
  while (n < need) n *= 2;
  const more = (a: Int32Array) => {
    const b = new Int32Array(n);
    b.set(a);
    return b;
  };
  taken.slot = more(taken.slot);
  taken.gen = more(taken.gen);
  taken.s = more(taken.s);
  taken.seq = more(taken.seq);
}

/** Emptied lanes (their lists all empty, every entry free), for the next scheduler that needs one. */
const spareLanes: PrecheckLane[] = [];

/** What runs the checks a {@link CheckScheduler} hands out. */
export interface CheckRunner<Out> {
  /** Runs the verification of `p`; true if `p` was scheduled again (still in use). */
  check(p: Pending, out: Out, final: boolean): boolean;
  /** Runs the pre-check of `slot` (of generation `gen`) at `s`. */
  precheck(slot: number, gen: number, s: number, out: Out, final: boolean): void;
  /**
   * Called before the pre-checks of one due frame run, with their slots (`slots` from `from` to `to`, more
   * than one).
   */
  touch(slots: Int32Array, from: number, to: number): void;
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
  /** The pre-checks (held while any is pending). */
  #lane: PrecheckLane | undefined;
  #seq = 0;
  #dueNext = -1;

  /** A scheduler handing due checks to `runner`. */
  constructor(runner: CheckRunner<Out>) {
    this.#runner = runner;
  }

  /** Checks waiting. */
  get pending(): number {
    return this.#near + this.#heap.length + (this.#lane?.count ?? 0);
  }

  /**
   * Bytes held (the heap's slots and the verifications, ~40 bytes each, the lists' ends, the pre-checks' lane),
   * for capacity planning.
   */
  get bytes(): number {
    return (this.#near + this.#heap.length) * 44 + (this.#first === undefined ? 0 : 16 * NEAR) +
      (this.#lane?.bytes ?? 0);
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

  /**
   * Schedules a pre-check of the signature in index `slot` (of generation `gen`) at `s`, due at `due` (at the
   * earliest the next frame to run, and less than LANE_FRAMES after it).
   */
  precheck(slot: number, gen: number, s: number, due: number): void {
    due = Math.max(due, this.#dueNext);
    if (this.#dueNext < 0 || due - this.#dueNext >= LANE_FRAMES) {
      throw new RangeError(`CheckScheduler: a pre-check due at ${due} from frame ${this.#dueNext}`);
    }
    const lane = this.#lane ??= spareLanes.pop() ?? new PrecheckLane();
    lane.add(due & (LANE_FRAMES - 1), slot, gen, s, this.#seq++ | 0);
  }

  /** A pending verification of `sig` at `s` (from the pool when it has one), not scheduled yet. */
  verification(sig: Signature, slot: number, gen: number, s: number, due: number): Pending {
    const p = pool.pop();
    if (p === undefined) return { sig, slot, gen, s, due, seq: 0, next: undefined };
    p.sig = sig;
    p.slot = slot;
    p.gen = gen;
    p.s = s;
    p.due = due;
    return p;
  }

  /** Runs the checks due at frame `t` (and before). */
  runDue(t: number, out: Out): void {
    const runner = this.#runner;
    const h = this.#heap;
    for (let due = this.#dueNext; due <= t;) {
      const lane = this.#lane;
      // Nothing listed: on to the heap's first (or done).
      if (this.#near === 0 && lane === undefined) {
        if (h.length === 0 || h[0]!.due > t) break;
        due = Math.max(due, h[0]!.due);
      }
      const b = due & (NEAR - 1);
      const listed = this.#first?.[b];
      const pre = lane !== undefined && lane.has(due & (LANE_FRAMES - 1));
      if (listed === undefined && !pre && (h.length === 0 || h[0]!.due !== due)) {
        due++;
        continue;
      }
      // The frame's checks together (as scheduled: its list and the heap's, merged by scheduling order, and its
      // pre-checks), before any of them runs and schedules again.
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
      const from = taken.top;
      if (pre) {
        lane!.take(due & (LANE_FRAMES - 1));
        if (lane!.count === 0) {
          if (spareLanes.length < SPARE_MAX) spareLanes.push(lane!);
          this.#lane = undefined;
        }
      }
      const to = taken.top;
      if (to - from > 1) runner.touch(taken.slot, from, to);
      // Both kinds in scheduling order.
      let x = from;
      for (let i = first; i < batch.length; i++) {
        const p = batch[i]!;
        for (; x < to && seqBefore(taken.seq[x]!, p.seq | 0); x++) {
          runner.precheck(taken.slot[x]!, taken.gen[x]!, taken.s[x]!, out, false);
        }
        p.next = undefined;
        if (!runner.check(p, out, false) && pool.length < POOL_MAX) pool.push(p);
      }
      for (; x < to; x++) runner.precheck(taken.slot[x]!, taken.gen[x]!, taken.s[x]!, out, false);
      taken.top = from;
      truncate(batch, first);
    }
    if (this.#dueNext <= t) this.#dueNext = t + 1;
  }

  /** Runs every pending check now (end of stream). */
  runAll(out: Out): void {
    const now: { due: number; seq: number; p?: Pending; slot: number; gen: number; s: number }[] = [];
    for (const p of this.#heap.splice(0, this.#heap.length)) {
      now.push({ due: p.due, seq: p.seq | 0, p, slot: 0, gen: 0, s: 0 });
    }
    for (let b = 0; this.#near > 0 && b < NEAR; b++) {
      for (let p = this.#first![b]; p !== undefined; p = p.next) {
        now.push({ due: p.due, seq: p.seq | 0, p, slot: 0, gen: 0, s: 0 });
        this.#near--;
      }
    }
    this.#first = this.#last = undefined;
    const lane = this.#lane;
    if (lane !== undefined) {
      this.#lane = undefined;
      // A pre-check's due frame is its bucket's within LANE_FRAMES of the next frame to run.
      for (let b = 0; b < LANE_FRAMES; b++) {
        if (!lane.has(b)) continue;
        const due = this.#dueNext + ((b - this.#dueNext) & (LANE_FRAMES - 1));
        const from = taken.top;
        lane.take(b);
        for (let x = from; x < taken.top; x++) {
          now.push({ due, seq: taken.seq[x]!, slot: taken.slot[x]!, gen: taken.gen[x]!, s: taken.s[x]! });
        }
        taken.top = from;
      }
    }
    const m = FINAL_ORDER_MOD - 1;
    now.sort((a, b) => (a.due & m) - (b.due & m) || ((a.seq - b.seq) | 0));
    for (const c of now) {
      if (c.p !== undefined) this.#runner.check(c.p, out, true);
      else this.#runner.precheck(c.slot, c.gen, c.s, out, true);
    }
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
