/**
 * Capture time and first analysis sample of a target stream's recent messages, in arrival order: the backward
 * search's time bound (the first sample captured at or after an instant) and the capture-time gap hints
 * (align/gap_hints.ts) read it.
 *
 * Two float64 columns in a circular buffer, 16 bytes a message (a bigint and two array slots cost ~40): capture
 * times as ns offsets from a per-stream bigint base, exact to the ns within 104 days of it.
 * @module
 */

const MIN_ENTRIES = 64;

/** Capture times and first analysis samples of messages, oldest first. */
export class CaptureTimes {
  #time = new Float64Array(0);
  #start = new Float64Array(0);
  #base = 0n;
  #head = 0;
  #count = 0;

  /** Messages held. */
  get length(): number {
    return this.#count;
  }

  /** Bytes of the columns, for capacity planning. */
  get bytes(): number {
    return this.#time.byteLength + this.#start.byteLength;
  }

  /** Capture time of entry `i` (0 = oldest). */
  timeAt(i: number): bigint {
    return this.#base + BigInt(this.#time[this.#slot(i)]!);
  }

  /** First analysis sample of entry `i` (0 = oldest). */
  startAt(i: number): number {
    return this.#start[this.#slot(i)]!;
  }

  /** Appends a message captured at `timeNs` whose audio starts at analysis sample `sample`. */
  push(timeNs: bigint, sample: number): void {
    if (this.#count === this.#time.length) this.#grow();
    if (this.#count === 0) this.#base = timeNs;
    let t = Number(timeNs - this.#base);
    if (!Number.isSafeInteger(t)) {
      this.#rebase(timeNs);
      t = 0;
    }
    const slot = this.#slot(this.#count);
    this.#time[slot] = t;
    this.#start[slot] = sample;
    this.#count++;
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
      if (this.#time[this.#slot(mid)]! < target) lo = mid + 1;
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
    return s >= this.#time.length ? s - this.#time.length : s;
  }

  /** Doubles the columns, unrolling the ring so the oldest entry is at slot 0. */
  #grow(): void {
    const cap = Math.max(MIN_ENTRIES, this.#time.length * 2);
    const time = new Float64Array(cap), start = new Float64Array(cap);
    for (let i = 0; i < this.#count; i++) {
      const s = this.#slot(i);
      time[i] = this.#time[s]!;
      start[i] = this.#start[s]!;
    }
    this.#time = time;
    this.#start = start;
    this.#head = 0;
  }

  /** Moves the base to `timeNs` (a stream whose capture times jumped by more than 104 days). */
  #rebase(timeNs: bigint): void {
    for (let i = 0; i < this.#count; i++) {
      const s = this.#slot(i);
      this.#time[s] = Number(this.#base + BigInt(this.#time[s]!) - timeNs);
    }
    this.#base = timeNs;
  }
}
