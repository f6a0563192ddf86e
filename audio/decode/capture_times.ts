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
}
