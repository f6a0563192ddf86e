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

/** Per-stream list of message spans on the analysis timeline, pruned beyond a lookback. */
export class Timeline {
  /** Native rate of the stream, Hz. */
  readonly nativeRate: number;
  /** Analysis sample k is at native position k·down/up. */
  readonly up: number;
  readonly down: number;
  readonly lookbackSamples: number;
  #spans: TimelineSpan[] = [];
  /** Index in `#spans` of the oldest live span; the prefix is dead and compacted away in batches. */
  #head = 0;
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
    return this.#spans[this.#head]?.start ?? this.length;
  }

  /** Live spans, oldest first. */
  spans(): readonly TimelineSpan[] {
    return this.#spans.slice(this.#head);
  }

  /**
   * Appends a message that carried `frames` native samples (a gap when `gap`). Returns its span, or undefined if
   * it carried none (a message with no audio owns no instant). Prunes spans beyond the lookback.
   */
  append(messageIndex: number, timeNs: bigint, frames: number, gap = false): TimelineSpan | undefined {
    if (!(frames > 0)) return undefined;
    const nativeStart = this.#nativeLength;
    const nativeEnd = nativeStart + Math.floor(frames);
    this.#nativeLength = nativeEnd;
    const span: TimelineSpan = {
      messageIndex,
      timeNs,
      nativeStart,
      nativeEnd,
      start: analysisIndexOf(nativeStart, this.up, this.down),
      end: analysisIndexOf(nativeEnd, this.up, this.down),
      gap,
    };
    // At rates above 8 kHz a short message can own no analysis instant; it still advances native time.
    if (span.end > span.start) this.#spans.push(span);
    this.prune(span.end - this.lookbackSamples);
    return span;
  }

  /** Forgets spans that end at or before analysis sample `before`. */
  prune(before: number): void {
    const spans = this.#spans;
    while (this.#head < spans.length && spans[this.#head]!.end <= before) this.#head++;
    if (this.#head > 256 && this.#head * 2 > spans.length) {
      this.#spans = spans.slice(this.#head);
      this.#head = 0;
    }
  }

  /** The span that owns analysis sample `k`, or undefined if it is pruned or not yet covered. */
  spanAt(k: number): TimelineSpan | undefined {
    const spans = this.#spans;
    let lo = this.#head;
    let hi = spans.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const s = spans[mid]!;
      if (k < s.start) hi = mid - 1;
      else if (k >= s.end) lo = mid + 1;
      else return s;
    }
    return undefined;
  }

  /** Which message carried analysis sample `k`, and where in its audio. */
  locate(k: number): Located | undefined {
    const s = this.spanAt(k);
    if (!s) return undefined;
    return { timeNs: s.timeNs, offsetMs: this.offsetMs(s, k), messageIndex: s.messageIndex, gap: s.gap };
  }

  /** Position of analysis sample `k` in span `s`'s audio, ms: (k·down/up − nativeStart) / rate. */
  offsetMs(s: TimelineSpan, k: number): number {
    // Integer numerator keeps the offset exact to the sample for the spans' lifetimes.
    const num = k * this.down - s.nativeStart * this.up;
    return (num * 1000) / (this.up * this.nativeRate);
  }

  /** True if analysis sample `k` lies in a gap (silence inserted for a truncated or removed body). */
  isGap(k: number): boolean {
    return this.spanAt(k)?.gap === true;
  }

  /** Gap ranges [start, end) that overlap analysis samples [from, to), oldest first. */
  gaps(from: number, to: number): { start: number; end: number }[] {
    const out: { start: number; end: number }[] = [];
    const spans = this.#spans;
    let lo = this.#head;
    let hi = spans.length;
    // First span ending after `from`.
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (spans[mid]!.end <= from) lo = mid + 1;
      else hi = mid;
    }
    for (let i = lo; i < spans.length; i++) {
      const s = spans[i]!;
      if (s.start >= to) break;
      if (s.gap) out.push({ start: s.start, end: s.end });
    }
    return out;
  }
}
