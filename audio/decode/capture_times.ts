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
   *
   * While the capture times held are in order, a search for a time at or after the last search's starts at that
   * search's answer and gallops from there (the first entry at or after a time is then the binary search's
   * answer, wherever it starts): a live stream is searched for each signature of its measurement, a little later
   * each time, and a search over the whole lookback cost ~11 probes of cold entries.
   */
  firstSampleAtOrAfter(t: bigint, end: number): number {
    const tl = this.#tl;
    // Exact integers either side (a target beyond 2^53 ns from the base rounds, but past every offset held).
    const target = Number(t - tl.timeBase);
    const first = this.#first, n = this.#end - first;
    let lo = 0, hi = n;
    const inOrder = tl.inOrderFrom(first);
    if (inOrder && this.#lastBase === tl.timeBase && t >= this.#lastT) {
      // Every entry before the last answer is captured before `t` too.
      lo = Math.max(0, this.#lastEntry - first);
      for (let step = 1; lo < n; step *= 2) {
        const probe = Math.min(n - 1, lo + step - 1);
        if (tl.entryTimeOffset(first + probe) >= target) {
          hi = probe;
          break;
        }
        lo = probe + 1;
      }
    }
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (tl.entryTimeOffset(first + mid) < target) lo = mid + 1;
      else hi = mid;
    }
    const sample = lo < n ? this.startAt(lo) : end;
    if (inOrder && !(t < this.#lastT && this.#lastBase === tl.timeBase)) {
      this.#lastT = t;
      this.#lastBase = tl.timeBase;
      this.#lastEntry = first + lo;
      this.#lastSample = sample;
    }
    return sample;
  }

  /**
   * A sample at or before {@link firstSampleAtOrAfter}'s answer for `t`, without reading the timeline when the
   * last search (capture times in order) was for a time at most `slackNs` before `t`: that search's answer (a
   * later time's first message is never an earlier one). Else the answer itself.
   */
  sampleAtOrBefore(t: bigint, end: number, slackNs: bigint): number {
    if (this.#lastBase === this.#tl.timeBase && t >= this.#lastT && t - this.#lastT <= slackNs) {
      return this.#lastSample;
    }
    return this.firstSampleAtOrAfter(t, end);
  }

  /**
   * The last search's time and its answer (entry ordinal and sample), kept only when the capture times held
   * were in order: every entry before that one is captured before that time. With the timeline's time base then
   * (undefined: none kept), as offsets from another base are not compared.
   */
  #lastT = 0n;
  #lastBase: bigint | undefined = undefined;
  #lastEntry = 0;
  #lastSample = 0;
}
