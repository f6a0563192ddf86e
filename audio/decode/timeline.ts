/**
 * A stream's sample timeline: which message carried each analysis sample, and where in that message's audio.
 *
 * Positions are stream time, not output order: native sample n of the stream is at n/rate s and analysis sample
 * k at k/8000 s, so the resampler's lookahead never skews the mapping. A message that carried native samples
 * [n0, n1) owns analysis samples [ceil(n0·up/down), ceil(n1·up/down)). The time a tap carried an instant is the
 * capture time (`time_`) of the message that owns it; the offset says where in that message's audio it was.
 * @module
 */

import { ANALYSIS_RATE, analysisIndexOf, designResampler } from "./resample.ts";
import { BLOCK, blockCapacity, BlockColumn, mustGrow } from "./block_column.ts";

/** One message's share of the stream. */
export interface TimelineSpan {
  /** Arrival ordinal of the message in its stream (every pushed message counts, failed ones too). */
  readonly messageIndex: number;
  /** Capture time of the message, ns since the epoch. */
  readonly timeNs: bigint;
  /** Native sample range [nativeStart, nativeEnd) the message carried. */
  readonly nativeStart: number;
  readonly nativeEnd: number;
  /** Analysis sample range [start, end) whose instants fall in the message. */
  readonly start: number;
  readonly end: number;
  /** Silence standing in for audio Pixie did not keep (truncated or removed body): do not anchor here. */
  readonly gap: boolean;
}

/** Where one analysis sample came from. */
export interface Located {
  /** Capture time of the message that carried the instant, ns since the epoch. */
  timeNs: bigint;
  /** The instant's position in that message's audio, ms (fractional; exact to the analysis sample). */
  offsetMs: number;
  messageIndex: number;
  /** True inside a gap inserted for a truncated or removed body. */
  gap: boolean;
}

/** Options of a {@link Timeline}. */
export interface TimelineOptions {
  /** Spans wholly older than this many analysis samples behind the newest are forgotten. Default 120 s. */
  lookbackSamples?: number;
}

/** Default lookback: two minutes of analysis samples. */
export const DEFAULT_LOOKBACK_SAMPLES = 120 * ANALYSIS_RATE;

/**
 * Smallest span store. It grows to what the lookback holds at the spans' length so far (a 30 s lookback of 20 ms
 * messages settles at ~1,600 spans), by a quarter at least.
 */
const MIN_SPANS = 64;

/**
 * Per-stream list of message spans on the analysis timeline, pruned beyond a lookback.
 *
 * Kept as parallel typed columns in a circular buffer (~14 bytes a message, where an object with a bigint per
 * message cost ~100; float64 columns cost 24): capture times as ns offsets from a per-stream bigint base (exact
 * to the ns within 104 days of it), native starts and message ordinals, each as a 32- or 16-bit offset from the
 * value of its block's first span (block_column.ts), and native lengths as int16 (negative for a gap). A span's
 * analysis range follows from its native start and the next span's: the native timeline is contiguous, and a
 * message with no analysis instant between two spans owns none.
 */
export class Timeline {
  /** Native rate of the stream, Hz. */
  readonly nativeRate: number;
  /** Analysis sample k is at native position k·down/up. */
  readonly up: number;
  readonly down: number;
  readonly lookbackSamples: number;
  /** Capture time, ns from {@link #timeBase}. */
  #time = new BlockColumn(0, 32);
  #native = new BlockColumn(0, 32);
  /** Native samples of the span's message, negated for a gap. */
  #frames = new BlockColumn(0, 16, false);
  #msg = new BlockColumn(0, 16);
  #timeBase = 0n;
  /** Physical slot of the oldest live span, and how many are live. */
  #head = 0;
  #count = 0;
  #nativeLength = 0;

  /** Throws RangeError on a native rate outside 8000..48000 or a negative lookback. */
  constructor(nativeRate: number, opts: TimelineOptions = {}) {
    const d = designResampler(nativeRate);
    this.nativeRate = nativeRate;
    this.up = d.up;
    this.down = d.down;
    this.lookbackSamples = opts.lookbackSamples ?? DEFAULT_LOOKBACK_SAMPLES;
    if (!(this.lookbackSamples >= 0)) throw new RangeError("lookbackSamples must be >= 0");
  }

  /** Native samples covered so far. */
  get nativeLength(): number {
    return this.#nativeLength;
  }

  /** Analysis samples whose instants are covered so far: ceil(nativeLength·up/down). */
  get length(): number {
    return analysisIndexOf(this.#nativeLength, this.up, this.down);
  }

  /** First analysis sample still mapped (older ones were pruned), or `length` when nothing is mapped. */
  get firstSample(): number {
    return this.#count > 0 ? this.#startOf(0) : this.length;
  }

  /** Bytes of the span columns, for capacity planning. */
  get bytes(): number {
    return this.#time.bytes + this.#native.bytes + this.#frames.bytes + this.#msg.bytes;
  }

  /** Live spans, oldest first. */
  spans(): readonly TimelineSpan[] {
    return Array.from({ length: this.#count }, (_, j) => this.#span(j));
  }

  /**
   * Appends a message that carried `frames` native samples (a gap when `gap`). Returns its span, or undefined if
   * it carried none (a message with no audio owns no instant). Prunes spans beyond the lookback.
   */
  append(messageIndex: number, timeNs: bigint, frames: number, gap = false): TimelineSpan | undefined {
    if (!(frames > 0)) return undefined;
    const nativeStart = this.#nativeLength;
    const n = Math.floor(frames);
    const nativeEnd = nativeStart + n;
    this.#nativeLength = nativeEnd;
    const start = analysisIndexOf(nativeStart, this.up, this.down);
    const end = analysisIndexOf(nativeEnd, this.up, this.down);
    // At rates above 8 kHz a short message can own no analysis instant; it still advances native time.
    if (end > start) {
      if (mustGrow(this.#slot(this.#count), this.#count, this.#time.capacity)) this.#grow();
      if (this.#count === 0) this.#timeBase = timeNs;
      let t = Number(timeNs - this.#timeBase);
      if (!Number.isSafeInteger(t)) {
        this.#rebaseTime(timeNs);
        t = 0;
      }
      const slot = this.#slot(this.#count);
      this.#time.set(slot, t);
      this.#native.set(slot, nativeStart);
      this.#frames.set(slot, gap ? -n : n);
      this.#msg.set(slot, messageIndex);
      this.#count++;
    }
    this.prune(end - this.lookbackSamples);
    return { messageIndex, timeNs, nativeStart, nativeEnd, start, end, gap };
  }

  /** Forgets spans that end at or before analysis sample `before`. */
  prune(before: number): void {
    while (this.#count > 0 && this.#endOf(0) <= before) {
      this.#head = this.#slot(1);
      this.#count--;
    }
  }

  /** The span that owns analysis sample `k`, or undefined if it is pruned or not yet covered. */
  spanAt(k: number): TimelineSpan | undefined {
    const j = this.#find(k);
    return j < 0 ? undefined : this.#span(j);
  }

  /** Which message carried analysis sample `k`, and where in its audio. */
  locate(k: number): Located | undefined {
    const j = this.#find(k);
    if (j < 0) return undefined;
    const slot = this.#slot(j);
    return {
      timeNs: this.#timeBase + BigInt(this.#time.get(slot)),
      offsetMs: this.#offset(this.#native.get(slot), k),
      messageIndex: this.#msg.get(slot),
      gap: this.#frames.get(slot) < 0,
    };
  }

  /** Position of analysis sample `k` in span `s`'s audio, ms: (k·down/up − nativeStart) / rate. */
  offsetMs(s: TimelineSpan, k: number): number {
    return this.#offset(s.nativeStart, k);
  }

  /** True if analysis sample `k` lies in a gap (silence inserted for a truncated or removed body). */
  isGap(k: number): boolean {
    const j = this.#find(k);
    return j >= 0 && this.#frames.get(this.#slot(j)) < 0;
  }

  /** Gap ranges [start, end) that overlap analysis samples [from, to), oldest first. */
  gaps(from: number, to: number): { start: number; end: number }[] {
    const out: { start: number; end: number }[] = [];
    let lo = 0;
    let hi = this.#count;
    // First span ending after `from`.
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.#endOf(mid) <= from) lo = mid + 1;
      else hi = mid;
    }
    for (let j = lo; j < this.#count; j++) {
      const start = this.#startOf(j);
      if (start >= to) break;
      if (this.#frames.get(this.#slot(j)) < 0) out.push({ start, end: this.#endOf(j) });
    }
    return out;
  }

  #offset(nativeStart: number, k: number): number {
    // Integer numerator keeps the offset exact to the sample for the spans' lifetimes.
    const num = k * this.down - nativeStart * this.up;
    return (num * 1000) / (this.up * this.nativeRate);
  }

  /** Physical slot of live span `j` (0 = oldest). */
  #slot(j: number): number {
    const s = this.#head + j;
    const cap = this.#time.capacity;
    return s >= cap ? s - cap : s;
  }

  #startOf(j: number): number {
    return analysisIndexOf(this.#native.get(this.#slot(j)), this.up, this.down);
  }

  /** The next span starts where this one ends (see the class doc); the newest ends with its own audio. */
  #endOf(j: number): number {
    if (j + 1 < this.#count) return this.#startOf(j + 1);
    const slot = this.#slot(j);
    return analysisIndexOf(this.#native.get(slot) + Math.abs(this.#frames.get(slot)), this.up, this.down);
  }

  /** Live index of the span owning analysis sample `k`, or -1. */
  #find(k: number): number {
    let lo = 0;
    let hi = this.#count - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (k < this.#startOf(mid)) hi = mid - 1;
      else if (k >= this.#endOf(mid)) lo = mid + 1;
      else return mid;
    }
    return -1;
  }

  #span(j: number): TimelineSpan {
    const slot = this.#slot(j);
    const frames = this.#frames.get(slot);
    const nativeStart = this.#native.get(slot);
    return {
      messageIndex: this.#msg.get(slot),
      timeNs: this.#timeBase + BigInt(this.#time.get(slot)),
      nativeStart,
      nativeEnd: nativeStart + Math.abs(frames),
      start: this.#startOf(j),
      end: this.#endOf(j),
      gap: frames < 0,
    };
  }

  /**
   * Grows the columns to what the lookback holds at the spans' mean length so far (by a quarter at least, eight
   * times at most), unrolling the ring so the oldest span is at slot 0.
   */
  #grow(): void {
    const cap = this.#time.capacity;
    const n = this.#count;
    const covered = n > 0 ? this.#endOf(n - 1) - this.#startOf(0) : 0;
    const fits = covered > 0 ? Math.ceil((this.lookbackSamples * n) / covered) + 2 + BLOCK : 0;
    const fresh = blockCapacity(
      Math.max(MIN_SPANS, n + 1 + BLOCK, Math.ceil(cap * 1.25), Math.min(fits, cap * 8)),
    );
    const cols = [this.#time, this.#native, this.#frames, this.#msg];
    const next = [
      new BlockColumn(fresh, 32),
      new BlockColumn(fresh, 32),
      new BlockColumn(fresh, 16, false),
      new BlockColumn(fresh, 16),
    ];
    for (let j = 0; j < n; j++) {
      const slot = this.#slot(j);
      for (let c = 0; c < cols.length; c++) next[c]!.set(j, cols[c]!.get(slot));
    }
    [this.#time, this.#native, this.#frames, this.#msg] = next as [
      BlockColumn,
      BlockColumn,
      BlockColumn,
      BlockColumn,
    ];
    this.#head = 0;
  }

  /** Moves the capture-time base to `timeNs` (a stream whose times jumped by more than 104 days). */
  #rebaseTime(timeNs: bigint): void {
    this.#time.shift(Number(this.#timeBase - timeNs));
    this.#timeBase = timeNs;
  }
}
