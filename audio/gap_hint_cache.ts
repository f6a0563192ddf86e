/**
 * A target stream's capture-time gap hints (align/gap_hints.ts) kept as its messages arrive, so that a query reads
 * the few hints there are rather than every message of its range again.
 *
 * The verification asks for the hints of each candidate's blocks (two blocks either side of it: ~150 messages
 * of 20 ms), and every message's hint was computed anew each time, through the timeline's compact columns (a
 * tenth of analyze's decode share on the bench). A message's hint depends only on it, the message before it and
 * the start of the one after it, none of which changes once that next message has arrived: it is computed once
 * then. Only the newest message's hint (its end is the stream's end so far) is computed at each query.
 *
 * The answers are those of {@link gapHintsOf} over the entries held at the query: it skips the oldest held entry
 * (whose predecessor is forgotten), and starts never decrease, so a cached hint counts only if it lies after the
 * oldest held entry's start; those at or before it are dropped at each query.
 * @module
 */

import { type CaptureEntries, type GapHint, gapHintsOf } from "./align/gap_hints.ts";

/** The newest two entries of a stream, as {@link CaptureEntries} (for the newest one's hint). */
class Tail implements CaptureEntries {
  entries: CaptureEntries | undefined;
  base = 0;
  readonly length = 2;
  startAt(i: number): number {
    return this.entries!.startAt(this.base + i);
  }
  timeOffsetAt(i: number): number {
    return this.entries!.timeOffsetAt(this.base + i);
  }
}

/** Gap hints of one stream's entries, cached up to the newest entry. */
export class GapHintCache {
  readonly #rate: number;
  /** Hints of entries whose next entry had arrived, in stream order, from `#head`. */
  #hints: GapHint[] = [];
  #head = 0;
  /** Entries starting before this analysis sample have their hints in `#hints` (the newest entry's start then). */
  #cachedTo = -Infinity;
  readonly #tail = new Tail();

  /** Hints at `rate` analysis samples per second. */
  constructor(rate: number) {
    this.#rate = rate;
  }

  /** Hints cached (for tests and memory accounting). */
  get size(): number {
    return this.#hints.length - this.#head;
  }

  /**
   * {@link gapHintsOf}`(entries, end, rate, from, to)`: the same hints, in the same order. `entries` must be the
   * same stream's at every call (grown at the end, pruned at the start).
   */
  hints(entries: CaptureEntries, end: number, from: number, to: number): GapHint[] {
    const n = entries.length;
    if (n < 2) return [];
    const last = entries.startAt(n - 1);
    if (last > this.#cachedTo) {
      // Entries starting in [cachedTo, last): each has its next entry now; none has its hint cached yet.
      const fresh = gapHintsOf(entries, end, this.#rate, this.#cachedTo, last);
      for (const h of fresh) this.#hints.push(h);
      this.#cachedTo = last;
    }
    const oldest = entries.startAt(0);
    this.#forgetThrough(oldest);
    const out: GapHint[] = [];
    const hints = this.#hints;
    // First cached hint at or after `from`.
    let lo = this.#head, hi = hints.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (hints[mid]!.at < from) lo = mid + 1;
      else hi = mid;
    }
    for (let k = lo; k < hints.length; k++) {
      const h = hints[k]!;
      if (h.at >= to) break;
      out.push(h);
    }
    // The newest entry's hint (its length is up to the stream's end so far): from it and the one before it.
    if (last < to && last >= from) {
      const tail = this.#tail;
      tail.entries = entries;
      tail.base = n - 2;
      for (const h of gapHintsOf(tail, end, this.#rate, last, to)) out.push(h);
      tail.entries = undefined;
    }
    return out;
  }

  /** Drops cached hints at or before analysis sample `oldest` (no query returns them again). */
  #forgetThrough(oldest: number): void {
    const hints = this.#hints;
    let head = this.#head;
    while (head < hints.length && hints[head]!.at <= oldest) head++;
    if (head > 64 && head * 2 > hints.length) {
      this.#hints = hints.slice(head);
      head = 0;
    }
    this.#head = head;
  }
}
