/**
 * A node's sense of "now" in event time (rows' `time_`), robust to rows with wrong times.
 *
 * Event time drives signature expiry (TTL) and the end of idle streams. Taking the newest `time_` ever seen lets a
 * single row from the future (a bad clock, a corrupted capture) expire every signature and finish every stream at
 * once, until real time catches up. Here a row moves the clock only if its time is within `windowNs` of the
 * median of the recent rows (and, on a live node, of the wall clock): a lone outlier is ignored (counted), while a
 * real jump (a capture resumed after a break) is followed as soon as half of the recent rows agree with it. A step
 * back of the rows' clock (NTP on Pixie's host) is followed once every recent row lies more than the window behind
 * (before, the clock waited for real time to catch up: for a 10 min step, 10 min without expiring signatures
 * or streams, and every fresh signature refused as already past its TTL). Every row, not half: two PEMs whose
 * clocks differ by more than the window interleave their rows, and the clock must not swing between them.
 * @module
 */

/** Options of an {@link EventClock}. */
export interface EventClockOptions {
  /** How far ahead of the recent rows' median (and of the wall clock) a row may be and still move the clock. */
  windowNs: bigint;
  /** Wall clock, ns since the epoch (live nodes); absent for a capture replay, whose times are from the past. */
  wallNs?: () => bigint;
  /** Rows whose median is the reference. Default 31. */
  recent?: number;
}

/** What one row did to the clock (`stepped-back`: it followed a step of the rows' clock back). */
export type Observed = "advanced" | "behind" | "outlier" | "stepped-back";

/** The ns of a wall clock given in ms (e.g. `Date.now`). */
export function wallClockNs(nowMs: () => number = Date.now): () => bigint {
  return () => BigInt(Math.round(nowMs())) * 1_000_000n;
}

/** A watermark that follows the rows' times but ignores outliers ahead of them. */
export class EventClock {
  readonly #windowNs: bigint;
  readonly #wallNs: (() => bigint) | undefined;
  readonly #recent: bigint[];
  /** Scratch of {@link EventClock.#lowerMedian}. */
  readonly #sorted: bigint[];
  #filled = 0;
  #next = 0;
  #now = 0n;
  // The median is recomputed every few rows: in-order rows barely move it, and sorting per row would cost more
  // than the row's routing.
  #median: bigint | undefined;
  #sinceMedian = 0;
  /** Rows that were too far ahead to move the clock. */
  outliers = 0;
  /**
   * Rows behind the clock since it last checked for a step back. (Tried, session 24: letting the row behind
   * settle the check when within the window, before the scan of the recent rows, and keeping the median plus the
   * window instead of a bigint sum per row: an A/B on the bench's row times measured nothing, 24.1 vs 24.0 ns a
   * row for two clocks, 556 vs 584 with a cache-thrashing walk between rows.)
   */
  #sinceBehind = 0;

  /** A clock at 0 (no row seen). */
  constructor(opts: EventClockOptions) {
    if (opts.windowNs <= 0n) throw new RangeError("windowNs must be > 0");
    this.#windowNs = opts.windowNs;
    this.#wallNs = opts.wallNs;
    this.#recent = new Array<bigint>(Math.max(3, opts.recent ?? 31)).fill(0n);
    this.#sorted = this.#recent.slice();
  }

  /** The watermark: the newest time of a row that was not an outlier (0 before any). */
  get nowNs(): bigint {
    return this.#now;
  }

  /** The largest plausible event time now: the wall clock plus the window on a live node, else undefined. */
  horizonNs(): bigint | undefined {
    return this.#wallNs ? this.#wallNs() + this.#windowNs : undefined;
  }

  /** Feeds one row's time. */
  observe(t: bigint): Observed {
    const r = this.#recent;
    r[this.#next] = t;
    this.#next = (this.#next + 1) % r.length;
    if (this.#filled < r.length) this.#filled++;
    if (t <= this.#now) return this.#behind();
    if (++this.#sinceMedian >= 8 || this.#median === undefined || t > this.#median + this.#windowNs) {
      this.#median = this.#lowerMedian();
      this.#sinceMedian = 0;
    }
    // Fewer than three rows cannot outvote one wrong row: wait for the third (these rows are still delivered).
    const plausible = this.#filled >= 3 && t <= this.#median + this.#windowNs;
    const horizon = this.horizonNs();
    if (!plausible || (horizon !== undefined && t > horizon)) {
      if (this.#filled >= 3) this.outliers++;
      return this.#filled >= 3 ? "outlier" : "behind";
    }
    this.#now = t;
    return "advanced";
  }

  /** A row at or behind the clock; every few such rows, whether all the recent ones are a window behind. */
  #behind(): Observed {
    if (++this.#sinceBehind < 8 || this.#filled < this.#recent.length) return "behind";
    this.#sinceBehind = 0;
    let newest = this.#recent[0]!;
    for (const x of this.#recent) if (x > newest) newest = x;
    if (newest + this.#windowNs >= this.#now) return "behind";
    this.#now = newest;
    this.#median = undefined;
    return "stepped-back";
  }

  #lowerMedian(): bigint {
    // Oldest first into a reused scratch, then an insertion sort: rows come nearly in time order, so it does few
    // moves, and neither an array nor a comparator call per comparison is made (Array.sort on 31 bigints every 8
    // rows was 2% of analyze's CPU, three clocks seeing every row).
    const r = this.#recent, n = this.#filled, v = this.#sorted;
    const first = n < r.length ? 0 : this.#next;
    for (let i = 0; i < n; i++) {
      const x = r[(first + i) % r.length]!;
      let j = i;
      while (j > 0 && v[j - 1]! > x) {
        v[j] = v[j - 1]!;
        j--;
      }
      v[j] = x;
    }
    return v[(n - 1) >> 1]!;
  }
}
