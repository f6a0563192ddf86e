/**
 * Capture time and first analysis sample of a target stream's recent messages, in arrival order: the backward
 * search's time bound (the first sample captured at or after an instant) and the capture-time gap hints
 * (align/gap_hints.ts) read it.
 *
 * A view of the stream's {@link Timeline}, which holds both facts for every message it was given (one entry per
 * append, see its class doc): the owner pushes each message's time and first sample after the decoder appended
 * it, and the view keeps the timeline from forgetting entries it still reads (its own pruning, every
 * {@link PRUNE_EVERY} messages, may lag the timeline's lookback or run ahead of it). It held its own columns
 * (~9 bytes a message) before: the same times and starts a second time.
 * @module
 */

import type { Timeline } from "./timeline.ts";

/** Entries are pruned every this many messages (a multiple of it live; see {@link CaptureTimes.push}). */
export const PRUNE_EVERY = 256;

/** Options of {@link CaptureTimes}. */
export interface CaptureTimesOptions {
  /**
   * Analysis samples the owner keeps entries for (what `pruneBefore` leaves): the timeline is sized to hold that
   * many samples' messages at the messages' mean length so far, plus a pruning period's. Default: the timeline's
   * lookback.
   */
  horizonSamples?: number;
}

/** Capture times and first analysis samples of messages, oldest first. */
export class CaptureTimes {
  readonly #tl: Timeline;
  /** Timeline entry ordinal of the oldest message held, and of the one after the newest. */
  #first: number;
  #end: number;

  /** The messages `timeline` gets from now on; `opts.horizonSamples` sizes it (see {@link CaptureTimesOptions}). */
  constructor(timeline: Timeline, opts: CaptureTimesOptions = {}) {
    this.#tl = timeline;
    this.#first = this.#end = timeline.appended;
    timeline.retainFrom(this.#first, opts.horizonSamples ?? 0, PRUNE_EVERY);
  }

  /** Messages held. */
  get length(): number {
    return this.#end - this.#first;
  }

  /** Bytes of its own: none, the entries are the timeline's (counted there). */
  get bytes(): number {
    return 0;
  }

  /** Capture time of entry `i` (0 = oldest). */
  timeAt(i: number): bigint {
    return this.#tl.entryTime(this.#first + i);
  }

  /** Capture time of entry `i` (0 = oldest), ns from the timeline's {@link Timeline.timeBase}. */
  timeOffsetAt(i: number): number {
    return this.#tl.entryTimeOffset(this.#first + i);
  }

  /** First analysis sample of entry `i` (0 = oldest). */
  startAt(i: number): number {
    return this.#tl.entryStart(this.#first + i);
  }

  /**
   * Takes the timeline's next entry: a message captured at `timeNs` whose audio starts at analysis sample
   * `sample` (the timeline's entry says both; the owner pushes once per append, in order: none left or a sample
   * that disagrees throws). Every {@link PRUNE_EVERY} messages held, forgets those wholly before analysis sample
   * `oldest` (when given).
   */
  push(_timeNs: bigint, sample: number, oldest?: number): void {
    const tl = this.#tl;
    if (this.#end >= tl.appended || tl.entryStart(this.#end) !== sample) {
      throw new Error(
        `CaptureTimes: message ${this.#end} (sample ${sample}) is not its timeline's next entry`,
      );
    }
    this.#end++;
    if (oldest !== undefined && this.length % PRUNE_EVERY === 0) this.pruneBefore(oldest);
  }

  /** Forgets the oldest entries while the next one starts at or before analysis sample `oldest` (one stays). */
  pruneBefore(oldest: number): void {
    const first = this.#first;
    while (this.length > 1 && this.startAt(1) <= oldest) this.#first++;
    if (this.#first !== first) this.#tl.retainFrom(this.#first);
  }

  /**
   * First sample of the first message (binary search: capture times are nearly always increasing) captured at or
   * after `t`; `end` when there is none.
   */
  firstSampleAtOrAfter(t: bigint, end: number): number {
    const tl = this.#tl;
    // Exact integers either side (a target beyond 2^53 ns from the base rounds, but past every offset held).
    const target = Number(t - tl.timeBase);
    let lo = 0, hi = this.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (tl.entryTimeOffset(this.#first + mid) < target) lo = mid + 1;
      else hi = mid;
    }
    return lo < this.length ? this.startAt(lo) : end;
  }

  /**
   * The entries gap hints over analysis samples [from, to) read (align/gap_hints.ts): those starting in it, the
   * one before them and the one after, as the arrays `gapHints` takes; their times are ns from the timeline's
   * {@link Timeline.timeBase} (only differences are read: no bigint made per entry). Views of a cache the next
   * call may change.
   *
   * Verification asks for a window around every candidate frame, ~4 s of entries that the windows of the frames
   * before it mostly read too: the entries read are cached for the last few streams that asked (a contiguous run
   * of ordinals each, extended as the windows move on), so most of a window is a lookup rather than a walk.
   */
  window(from: number, to: number): { times: Float64Array; starts: Float64Array } {
    const n = this.length;
    if (n === 0) return { times: NO_ENTRIES, starts: NO_ENTRIES };
    const tl = this.#tl;
    const c = cacheFor(this, tl.timeBase);
    // The first entry from the second on that starts at or after `from` (the window opens one before it).
    let lo = 1, hi = n;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      const e = this.#first + mid, i = e - c.first;
      if ((i >= 0 && i < c.n ? c.starts[i]! : tl.entryStart(e)) < from) lo = mid + 1;
      else hi = mid;
    }
    const open = this.#first + lo - 1;
    // A run of ordinals [c.first, c.first + c.n) that the window's first entry extends or lies in.
    if (open < c.first || open > c.first + c.n) c.restart(open);
    const i = open - c.first;
    // On to the first entry after `open` that starts at or after `to`, or the newest (ordinals: extending the run
    // may drop its entries before the oldest held and so move its indices).
    for (let e = open;; e++) {
      let k = e - c.first;
      if (k >= c.n) {
        if (e >= this.#end) return c.views(open - c.first, c.n);
        c.extend(tl, e, Math.min(EXTEND_ENTRIES, this.#end - e), this.#first);
        k = e - c.first;
      }
      if (e > open && c.starts[k]! >= to) return c.views(open - c.first, k + 1);
    }
  }
}

/** Entries a window walk adds to its stream's cached run at a time (a window ahead of it reads them next). */
const EXTEND_ENTRIES = 32;

const NO_ENTRIES = new Float64Array(0);

/** The entries windows read of one stream: ordinals [first, first + n), their times and starts. */
class EntryRun {
  owner: CaptureTimes | undefined;
  base = 0n;
  first = 0;
  n = 0;
  times = new Float64Array(256);
  starts = new Float64Array(256);

  restart(first: number): void {
    this.first = first;
    this.n = 0;
  }

  /** Appends `count` entries from ordinal `next` (the run's end), dropping those before `keepFrom` first if short. */
  extend(tl: Timeline, next: number, count: number, keepFrom: number): void {
    if (this.n + count > this.times.length) {
      const drop = Math.max(0, Math.min(keepFrom - this.first, this.n));
      if (drop > 0) {
        this.times.copyWithin(0, drop, this.n);
        this.starts.copyWithin(0, drop, this.n);
        this.first += drop;
        this.n -= drop;
      }
      if (this.n + count > this.times.length) {
        let size = this.times.length * 2;
        while (size < this.n + count) size *= 2;
        const t = new Float64Array(size), s = new Float64Array(size);
        t.set(this.times.subarray(0, this.n));
        s.set(this.starts.subarray(0, this.n));
        this.times = t;
        this.starts = s;
      }
    }
    tl.entriesInto(next, count, this.times, this.starts, this.n);
    this.n += count;
  }

  views(from: number, to: number): { times: Float64Array; starts: Float64Array } {
    return { times: this.times.subarray(from, to), starts: this.starts.subarray(from, to) };
  }
}

/** Runs of the streams that asked last, most recent first. */
const RUNS: EntryRun[] = Array.from({ length: 4 }, () => new EntryRun());

/** The run of `owner` (its timeline's time base `base`), or the least recently used one restarted for it. */
function cacheFor(owner: CaptureTimes, base: bigint): EntryRun {
  let at = RUNS.findIndex((r) => r.owner === owner);
  if (at < 0) at = RUNS.length - 1;
  const run = RUNS[at]!;
  if (at > 0) {
    RUNS.splice(at, 1);
    RUNS.unshift(run);
  }
  if (run.owner !== owner || run.base !== base) {
    run.owner = owner;
    run.base = base;
    run.restart(0);
  }
  return run;
}
