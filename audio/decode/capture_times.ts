/**
 * Capture time and first analysis sample of a target stream's recent messages, in arrival order: the backward
 * search's time bound (the first sample captured at or after an instant) and the capture-time gap hints
 * (align/gap_hints.ts) read it.
 *
 * Two columns in a circular buffer, ~9 bytes a message (float64 columns cost 16, a bigint and two array slots
 * ~40): capture times as ns offsets from a per-stream bigint base, exact to the ns within 104 days of it, and
 * first samples, each as a 32-bit offset from its block's first value (block_column.ts).
 * @module
 */

import { BLOCK, blockCapacity, BlockColumn, mustGrow } from "./block_column.ts";

const MIN_ENTRIES = 64;
/** Entries are pruned every this many messages (a multiple of it live; see {@link CaptureTimes.push}). */
export const PRUNE_EVERY = 256;

/** Options of {@link CaptureTimes}. */
export interface CaptureTimesOptions {
  /**
   * Analysis samples the owner keeps entries for (what `pruneBefore` leaves): the columns grow to hold that many
   * samples' messages at the messages' mean length so far, plus a pruning period's. Default: unknown (grow by
   * a quarter).
   */
  horizonSamples?: number;
}

/** Capture times and first analysis samples of messages, oldest first. */
export class CaptureTimes {
  /** Capture time, ns from {@link #base}. */
  #time = new BlockColumn(0, 32);
  #start = new BlockColumn(0, 32);
  readonly #horizon: number;
  #base = 0n;
  #head = 0;
  #count = 0;

  /** Capture times held for `opts.horizonSamples` analysis samples. */
  constructor(opts: CaptureTimesOptions = {}) {
    this.#horizon = opts.horizonSamples ?? 0;
  }

  /** Messages held. */
  get length(): number {
    return this.#count;
  }

  /** Bytes of the columns, for capacity planning. */
  get bytes(): number {
    return this.#time.bytes + this.#start.bytes;
  }

  /** Capture time of entry `i` (0 = oldest). */
  timeAt(i: number): bigint {
    return this.#base + BigInt(this.#time.get(this.#slot(i)));
  }

  /** First analysis sample of entry `i` (0 = oldest). */
  startAt(i: number): number {
    return this.#start.get(this.#slot(i));
  }

  /**
   * Appends a message captured at `timeNs` whose audio starts at analysis sample `sample`; every
   * {@link PRUNE_EVERY} messages held, forgets those wholly before analysis sample `oldest` (when given).
   */
  push(timeNs: bigint, sample: number, oldest?: number): void {
    if (mustGrow(this.#slot(this.#count), this.#count, this.#time.capacity)) this.#grow();
    if (this.#count === 0) this.#base = timeNs;
    let t = Number(timeNs - this.#base);
    if (!Number.isSafeInteger(t)) {
      this.#rebase(timeNs);
      t = 0;
    }
    const slot = this.#slot(this.#count);
    this.#time.set(slot, t);
    this.#start.set(slot, sample);
    this.#count++;
    if (oldest !== undefined && this.#count % PRUNE_EVERY === 0) this.pruneBefore(oldest);
  }

  /** Forgets the oldest entries while the next one starts at or before analysis sample `oldest` (one stays). */
  pruneBefore(oldest: number): void {
    while (this.#count > 1 && this.startAt(1) <= oldest) {
      this.#head = this.#slot(1);
      this.#count--;
    }
  }

  /**
   * First sample of the first message (binary search: capture times are nearly always increasing) captured at or
   * after `t`; `end` when there is none.
   */
  firstSampleAtOrAfter(t: bigint, end: number): number {
    const target = Number(t - this.#base);
    let lo = 0, hi = this.#count;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.#time.get(this.#slot(mid)) < target) lo = mid + 1;
      else hi = mid;
    }
    return lo < this.#count ? this.startAt(lo) : end;
  }

  /**
   * The entries gap hints over analysis samples [from, to) read (align/gap_hints.ts): those starting in it, the
   * one before them and the one after, as the arrays `gapHints` takes.
   */
  window(from: number, to: number): { times: bigint[]; starts: number[] } {
    let lo = 1, hi = this.#count;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.startAt(mid) < from) lo = mid + 1;
      else hi = mid;
    }
    let last = lo;
    while (last < this.#count && this.startAt(last) < to) last++;
    const times: bigint[] = [];
    const starts: number[] = [];
    for (let i = Math.max(0, lo - 1); i <= Math.min(last, this.#count - 1); i++) {
      times.push(this.timeAt(i));
      starts.push(this.startAt(i));
    }
    return { times, starts };
  }

  #slot(i: number): number {
    const s = this.#head + i;
    const cap = this.#time.capacity;
    return s >= cap ? s - cap : s;
  }

  /**
   * Grows the columns (by a quarter at least, eight times at most) to what the horizon holds at the messages'
   * mean length so far, unrolling the ring so the oldest entry is at slot 0.
   */
  #grow(): void {
    const cap = this.#time.capacity;
    const n = this.#count;
    const covered = n > 1 ? this.startAt(n - 1) - this.startAt(0) : 0;
    const fits = covered > 0 && this.#horizon > 0
      ? Math.ceil((this.#horizon * (n - 1)) / covered) + 2 + PRUNE_EVERY + BLOCK
      : 0;
    const fresh = blockCapacity(
      Math.max(MIN_ENTRIES, n + 1 + BLOCK, Math.ceil(cap * 1.25), Math.min(fits, cap * 8)),
    );
    const time = new BlockColumn(fresh, 32), start = new BlockColumn(fresh, 32);
    for (let i = 0; i < n; i++) {
      const s = this.#slot(i);
      time.set(i, this.#time.get(s));
      start.set(i, this.#start.get(s));
    }
    this.#time = time;
    this.#start = start;
    this.#head = 0;
  }

  /** Moves the base to `timeNs` (a stream whose capture times jumped by more than 104 days). */
  #rebase(timeNs: bigint): void {
    this.#time.shift(Number(this.#base - timeNs));
    this.#base = timeNs;
  }
}
