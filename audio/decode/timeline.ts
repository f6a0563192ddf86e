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
import {
  BLOCK,
  BLOCK_LOG2,
  blockCapacity,
  BlockRecords,
  type ColumnWidth,
  mustGrow,
} from "./block_column.ts";

/** Columns of a timeline's records (see {@link Timeline}), and its header's extra: the native start. */
const TIME = 0, FRAMES = 1, MSG = 2, NATIVE = 0;

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
 * Smallest entry store. It grows to what the lookback (and a follower's horizon) holds at the entries' length so
 * far (a 30 s lookback of 20 ms messages settles at ~1,700 entries), by a quarter at least.
 */
const MIN_SPANS = 64;

/** A bigint time's two 32-bit words. */
const WORDS = new Uint32Array(2);
const I32 = new Int32Array(WORDS.buffer);
const I64 = new BigInt64Array(WORDS.buffer);

/**
 * Per-stream list of message spans on the analysis timeline, pruned beyond a lookback.
 *
 * Every append is an entry, a message that owns no analysis instant too (no audio, or too short at a rate above
 * 8 kHz): so the entries tile the native timeline, and an entry's native start is its block's first entry's plus
 * the lengths in between. Entries that own no instant are never a span (they contain no sample; {@link spans}
 * leaves them out), but they are the stream's messages as a follower reads them (capture_times.ts).
 *
 * Kept as one record per entry in a circular buffer, ~6 bytes an entry (float64 columns cost 24, an object
 * with a bigint ~100): capture times as ns offsets from a per-stream bigint base (exact to the ns within 104 days
 * of it), message ordinals, and native lengths (negative for a gap), each as an offset from the value of its
 * block's first entry (block_column.ts: 24 bits for times less their audio time, see {@link #rec}, 8 for the
 * others, while they fit), and one float64 native start per block. An entry's fields are adjacent and its
 * block's bases next to them (BlockRecords): an append or a probe touches one or two cache lines of the stream,
 * where a typed array per column (before) cost a cold line each (~8.6% of the live sensor's CPU).
 */
export class Timeline {
  /** Native rate of the stream, Hz. */
  readonly nativeRate: number;
  /** Analysis sample k is at native position k·down/up. */
  readonly up: number;
  readonly down: number;
  readonly lookbackSamples: number;
  /** ns per native sample when a whole number (see {@link #audioNs}), else 0. */
  readonly #nsPerSample: number;
  /**
   * The entries, one record each ({@link BlockRecords}: an entry's fields adjacent, so an append or a probe
   * touches one or two cache lines where a column each was one each): {@link TIME}, capture time, ns from
   * {@link #timeBase}, less the audio time from the block's first entry's start to the entry's end (see
   * {@link #audioNs}): what remains is jitter, 24 bits while it fits (±8 ms); {@link FRAMES}, native samples of
   * the entry's message, negated for a gap; {@link MSG}, its ordinal; and in each block's header
   * ({@link NATIVE}) the native start of the block's first entry (the others follow from the lengths before
   * them).
   */
  #rec = Timeline.#records(0, 24, 8, 8);
  #timeBase = 0n;
  /** {@link #timeBase} as two 32-bit words (high signed, low unsigned): no bigint is made per append. */
  #baseHi = 0;
  #baseLo = 0;
  /** Physical slot of the oldest entry held, and how many are held. */
  #head = 0;
  #count = 0;
  /** Slots of the columns (their capacity, read on every slot lookup). */
  #cap = 0;
  /** Entries held before the lookback's first (kept for a follower). */
  #first = 0;
  /** Entries appended so far (the ordinal of the next). */
  #appended = 0;
  /** Ordinal of the oldest entry a follower still reads (Infinity: no follower). */
  #retainFrom = Infinity;
  /** What a follower keeps beyond the lookback: analysis samples, and entries between its prunings. */
  #followSamples = 0;
  #followEntries = 0;
  #nativeLength = 0;
  /**
   * Native starts of the first {@link #runTo} entries of the block whose first entry is ordinal
   * {@link #runFirst} (-1: none), as {@link #nativeOf} summed them. Keyed by ordinal, not by slot: an entry's
   * start and length never change, so neither do these, however the ring wraps onto the block's slots or
   * {@link #grow} re-lays them (a block's entries are consecutive ordinals from its first).
   */
  #run = new Float64Array(BLOCK);
  #runFirst = -1;
  #runTo = 0;

  /** Throws RangeError on a native rate outside 8000..48000 or a negative lookback. */
  constructor(nativeRate: number, opts: TimelineOptions = {}) {
    const d = designResampler(nativeRate);
    this.nativeRate = nativeRate;
    this.up = d.up;
    this.down = d.down;
    this.#nsPerSample = 1e9 % nativeRate === 0 ? 1e9 / nativeRate : 0;
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
    return this.#first < this.#count ? this.#startOf(this.#first) : this.length;
  }

  /** Bytes of the entry columns, for capacity planning. */
  get bytes(): number {
    return this.#rec.bytes;
  }

  /** Live spans, oldest first. */
  spans(): readonly TimelineSpan[] {
    const out: TimelineSpan[] = [];
    for (let r = this.#first; r < this.#count; r++) {
      const s = this.#span(r);
      if (s.end > s.start) out.push(s);
    }
    return out;
  }

  /**
   * Appends a message that carried `frames` native samples (a gap when `gap`). Returns its span, or undefined if
   * it carried none (a message with no audio owns no instant). Prunes spans beyond the lookback.
   */
  append(messageIndex: number, timeNs: bigint, frames: number, gap = false): TimelineSpan | undefined {
    const nativeStart = this.#nativeLength;
    this.add(messageIndex, timeNs, frames, gap);
    if (!(frames > 0)) return undefined;
    const nativeEnd = this.#nativeLength;
    const start = analysisIndexOf(nativeStart, this.up, this.down);
    const end = analysisIndexOf(nativeEnd, this.up, this.down);
    return { messageIndex, timeNs, nativeStart, nativeEnd, start, end, gap };
  }

  /**
   * {@link append} without its span: what the decoder calls for every message (a span object a message, ~70
   * bytes, that nothing read).
   */
  add(messageIndex: number, timeNs: bigint, frames: number, gap = false): void {
    const n = frames > 0 ? Math.floor(frames) : 0;
    const nativeStart = this.#nativeLength;
    const nativeEnd = nativeStart + n;
    this.#nativeLength = nativeEnd;
    if (mustGrow(this.#slot(this.#count), this.#count, this.#cap)) this.#grow();
    // A new base (the first entry held, or a jump) counts as a step back: offsets either side are not compared.
    let rebased = this.#count === 0;
    if (rebased) this.#setTimeBase(timeNs);
    I64[0] = timeNs;
    // timeNs - base, exact while it is a safe integer (and unsafe exactly when the difference is).
    let t = I64[0] === timeNs
      ? (I32[1]! - this.#baseHi) * 4294967296 + (WORDS[0]! - this.#baseLo)
      : Number(timeNs - this.#timeBase);
    if (!Number.isSafeInteger(t)) {
      this.#rebaseTime(timeNs);
      t = 0;
      rebased = true;
    }
    if (rebased || t < this.#lastTime) this.#stepBack = this.#appended;
    this.#lastTime = t;
    const slot = this.#slot(this.#count);
    // The block's native start, kept since its first entry: reading it from the block's header was a cold line
    // of the stream's records an append (~1.4% of the live sensor's CPU).
    if ((slot & (BLOCK - 1)) === 0) this.#blockNative = nativeStart;
    else if (!this.#blockNativeValid) this.#blockNative = this.#rec.extra(NATIVE, slot >> BLOCK_LOG2);
    this.#blockNativeValid = true;
    this.#lastNative = nativeStart;
    this.#write(this.#rec, slot, t, nativeStart, gap ? -n : n, messageIndex, this.#blockNative);
    this.#count++;
    this.#appended++;
    this.prune(analysisIndexOf(nativeEnd, this.up, this.down) - this.lookbackSamples);
  }

  /** Forgets spans that end at or before analysis sample `before`. */
  prune(before: number): void {
    const up = this.up, down = this.down;
    while (this.#first < this.#count) {
      // The lookback's first entry's native start, kept from the last append (see #firstNative): every append
      // asks for its end, and summing it from its block's start each time cost more than the rest of append.
      const ord = this.#appended - this.#count + this.#first, slot = this.#slot(this.#first);
      let native: number;
      if (ord === this.#firstOrd) native = this.#firstNative;
      else if (ord === this.#firstOrd + 1 && (slot & (BLOCK - 1)) !== 0) {
        native = this.#firstNative + this.#firstLength;
      } else native = this.#nativeOf(slot, this.#first);
      // Its length too, kept with its start: read at every append, its column is cold by then.
      const length = ord === this.#firstOrd ? this.#firstLength : Math.abs(this.#rec.get(FRAMES, slot));
      this.#firstOrd = ord;
      this.#firstNative = native;
      this.#firstLength = length;
      // An entry without audio owns no sample (never located, never a span): the lookback keeps it only as the
      // newest (a follower keeps what it reads). A stream of such messages alone (bodies Pixie cut before any
      // message was whole, so none has a size) held every one of them, ~8 bytes a message for ever.
      if (
        analysisIndexOf(native + length, up, down) > before &&
        (length !== 0 || this.#first + 1 >= this.#count)
      ) {
        break;
      }
      this.#first++;
    }
    this.#drop();
  }

  /**
   * Ordinal, native start and native length of the entry {@link prune} read last (the lookback's first, or the
   * one before it): entries never change, so an ordinal keeps its values however the ring moves.
   */
  #firstOrd = -2;
  #firstNative = 0;
  #firstLength = 0;

  /**
   * Native start of the block the last append wrote to (valid while {@link #blockNativeValid}: the next append
   * writes the slot after it, in the same block unless it starts one; {@link #grow} re-lays the slots).
   */
  #blockNative = 0;
  #blockNativeValid = false;
  /** Native start of the last entry appended. */
  #lastNative = 0;

  /** Capture time of the last entry appended, ns from {@link timeBase}. */
  #lastTime = 0;
  /** Ordinal of the last entry captured before the one appended before it (or on a new base). */
  #stepBack = 0;

  /**
   * True if capture times never decrease from entry ordinal `entry` to the last appended (a reader's binary search
   * then finds the first entry at or after a time, and any other search finds the same one).
   */
  inOrderFrom(entry: number): boolean {
    return this.#stepBack <= entry;
  }

  /** Entries appended so far: the ordinal the next one gets (every append counts, see the class doc). */
  get appended(): number {
    return this.#appended;
  }

  /** The base of {@link entryTimeOffset}, ns since the epoch. */
  get timeBase(): bigint {
    return this.#timeBase;
  }

  /**
   * Keeps entries from ordinal `entry` on (beyond the lookback), for a follower that reads them; sized for
   * `samples` analysis samples of them plus `entries` more (what the follower holds between its prunings).
   * Later calls only move `entry`.
   */
  retainFrom(entry: number, samples?: number, entries?: number): void {
    this.#retainFrom = entry;
    if (samples !== undefined) this.#followSamples = samples;
    if (entries !== undefined) this.#followEntries = entries;
    this.#drop();
  }

  /** Capture time of entry `entry` (an ordinal still held), ns from {@link timeBase}. */
  entryTimeOffset(entry: number): number {
    const r = this.#held(entry), slot = this.#slot(r);
    return this.#timeOf(slot, this.#nativeOf(slot, r));
  }

  /** Capture time of entry `entry` (an ordinal still held), ns since the epoch. */
  entryTime(entry: number): bigint {
    return this.#timeBase + BigInt(this.entryTimeOffset(entry));
  }

  /** First analysis sample of entry `entry` (an ordinal still held): where its message's audio starts. */
  entryStart(entry: number): number {
    // The entry just appended (what a follower asks for after every append): its start is at hand, where the
    // block's running sums cost a cold line or two of the stream's records (~1% of the live sensor's CPU).
    if (entry === this.#appended - 1 && this.#count > 0) {
      return analysisIndexOf(this.#lastNative, this.up, this.down);
    }
    return this.#startOf(this.#held(entry));
  }

  /** The span that owns analysis sample `k`, or undefined if it is pruned or not yet covered. */
  spanAt(k: number): TimelineSpan | undefined {
    const r = this.#find(k);
    return r < 0 ? undefined : this.#span(r);
  }

  /** Which message carried analysis sample `k`, and where in its audio. */
  locate(k: number): Located | undefined {
    const r = this.#find(k);
    if (r < 0) return undefined;
    const slot = this.#slot(r);
    const native = this.#nativeOf(slot, r);
    return {
      timeNs: this.#timeBase + BigInt(this.#timeOf(slot, native)),
      offsetMs: this.#offset(native, k),
      messageIndex: this.#rec.get(MSG, slot),
      gap: this.#rec.get(FRAMES, slot) < 0,
    };
  }

  /** Position of analysis sample `k` in span `s`'s audio, ms: (k·down/up − nativeStart) / rate. */
  offsetMs(s: TimelineSpan, k: number): number {
    return this.#offset(s.nativeStart, k);
  }

  /** True if analysis sample `k` lies in a gap (silence inserted for a truncated or removed body). */
  isGap(k: number): boolean {
    const r = this.#find(k);
    return r >= 0 && this.#rec.get(FRAMES, this.#slot(r)) < 0;
  }

  /** Gap ranges [start, end) that overlap analysis samples [from, to), oldest first. */
  gaps(from: number, to: number): { start: number; end: number }[] {
    const out: { start: number; end: number }[] = [];
    let lo = this.#first;
    let hi = this.#count;
    // First entry ending after `from`.
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.#endOf(mid) <= from) lo = mid + 1;
      else hi = mid;
    }
    for (let r = lo; r < this.#count; r++) {
      const start = this.#startOf(r);
      if (start >= to) break;
      if (this.#rec.get(FRAMES, this.#slot(r)) >= 0) continue;
      const end = this.#endOf(r);
      if (end > start) out.push({ start, end });
    }
    return out;
  }

  #offset(nativeStart: number, k: number): number {
    // Integer numerator keeps the offset exact to the sample for the spans' lifetimes.
    const num = k * this.down - nativeStart * this.up;
    return (num * 1000) / (this.up * this.nativeRate);
  }

  /** Physical slot of held entry `r` (0 = oldest held). */
  #slot(r: number): number {
    const s = this.#head + r;
    const cap = this.#cap;
    return s >= cap ? s - cap : s;
  }

  /** Held index of entry ordinal `entry`; throws RangeError when it is not held. */
  #held(entry: number): number {
    const r = entry - (this.#appended - this.#count);
    if (!(r >= 0 && r < this.#count)) throw new RangeError(`Timeline: entry ${entry} is not held`);
    return r;
  }

  /**
   * Native start of held entry `r` (in `slot`): its block's plus the lengths of the block's slots before it
   * (written since the block's first, in order, and never rewritten while this one is held: see
   * block_column.ts). The running sums of the block read last are kept ({@link #run}): readers walk entries in
   * order, or binary-search and then walk, so most reads extend or reuse them rather than sum up to 31 lengths.
   */
  #nativeOf(slot: number, r: number): number {
    const b = slot >> BLOCK_LOG2, i = slot & (BLOCK - 1);
    if (i === 0) return this.#rec.extra(NATIVE, b);
    const run = this.#run;
    const first = this.#appended - this.#count + r - i;
    if (first !== this.#runFirst) {
      this.#runFirst = first;
      this.#runTo = 1;
      run[0] = this.#rec.extra(NATIVE, b);
    }
    const to = this.#runTo;
    if (i >= to) {
      this.#rec.runAbs(FRAMES, run, slot - i, to, i);
      this.#runTo = i + 1;
    }
    return run[i]!;
  }

  /** Capture time of the entry in `slot` whose native start is `native`, ns from {@link #timeBase}. */
  #timeOf(slot: number, native: number): number {
    const rec = this.#rec;
    const end = native + Math.abs(rec.get(FRAMES, slot)) - rec.extra(NATIVE, slot >> BLOCK_LOG2);
    return rec.get(TIME, slot) + this.#audioNs(end);
  }

  /**
   * Duration of `native` samples, whole ns (0 beyond ~90 s of them, where the product could lose integers:
   * any function of the block's native offsets keeps the times exact, this one leaves only jitter in a tap's
   * capture times, which mark about when a message's last sample was produced).
   */
  #audioNs(native: number): number {
    if (!(native < 4_194_304)) return 0;
    // At a rate that divides 1e9 (8, 16, 32 kHz) the quotient is that integer's multiple, exactly: a product
    // where the division cost ~9% of a timeline's appends and probes.
    const ns = this.#nsPerSample;
    return ns !== 0 ? native * ns : Math.round((native * 1e9) / this.nativeRate);
  }

  #startOf(r: number): number {
    return analysisIndexOf(this.#nativeOf(this.#slot(r), r), this.up, this.down);
  }

  /** Entries tile the native timeline: an entry ends where the next starts. */
  #endOf(r: number): number {
    const slot = this.#slot(r);
    return analysisIndexOf(
      this.#nativeOf(slot, r) + Math.abs(this.#rec.get(FRAMES, slot)),
      this.up,
      this.down,
    );
  }

  /** Held index of the live span owning analysis sample `k`, or -1. */
  #find(k: number): number {
    let lo = this.#first;
    let hi = this.#count - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const slot = this.#slot(mid);
      const native = this.#nativeOf(slot, mid);
      if (k < analysisIndexOf(native, this.up, this.down)) hi = mid - 1;
      else if (k >= analysisIndexOf(native + Math.abs(this.#rec.get(FRAMES, slot)), this.up, this.down)) {
        lo = mid + 1;
      } else return mid;
    }
    return -1;
  }

  #span(r: number): TimelineSpan {
    const slot = this.#slot(r);
    const frames = this.#rec.get(FRAMES, slot);
    const nativeStart = this.#nativeOf(slot, r);
    const nativeEnd = nativeStart + Math.abs(frames);
    return {
      messageIndex: this.#rec.get(MSG, slot),
      timeNs: this.#timeBase + BigInt(this.#timeOf(slot, nativeStart)),
      nativeStart,
      nativeEnd,
      start: analysisIndexOf(nativeStart, this.up, this.down),
      end: analysisIndexOf(nativeEnd, this.up, this.down),
      gap: frames < 0,
    };
  }

  /** Forgets held entries before the lookback's first that no follower reads. */
  #drop(): void {
    while (this.#first > 0 && this.#appended - this.#count < this.#retainFrom) {
      this.#head = this.#slot(1);
      this.#count--;
      this.#first--;
    }
  }

  /** Writes an entry's record; `blockNative`: the native start of its block (its first entry's). */
  #write(
    rec: BlockRecords,
    slot: number,
    t: number,
    native: number,
    f: number,
    m: number,
    blockNative: number,
  ): void {
    if ((slot & (BLOCK - 1)) === 0) rec.setExtra(NATIVE, slot >> BLOCK_LOG2, native);
    rec.set(TIME, slot, t - this.#audioNs(native + Math.abs(f) - blockNative));
    rec.set(FRAMES, slot, f);
    rec.set(MSG, slot, m);
  }

  /** Records of `capacity` entries at these widths. */
  static #records(capacity: number, time: ColumnWidth, frames: ColumnWidth, msg: ColumnWidth): BlockRecords {
    return new BlockRecords(capacity, [time, frames, msg], { extras: 1 });
  }

  /**
   * Grows the columns to what the lookback (or a follower) holds at the entries' mean length so far (by a
   * quarter at least, eight times at most), unrolling the ring so the oldest entry is at slot 0.
   */
  #grow(): void {
    const cap = this.#cap, old = this.#rec;
    const n = this.#count;
    const covered = n > 0 ? this.#endOf(n - 1) - this.#startOf(0) : 0;
    const need = Math.max(this.lookbackSamples, this.#retainFrom < Infinity ? this.#followSamples : 0);
    const extra = this.#retainFrom < Infinity ? this.#followEntries : 0;
    const fits = covered > 0 ? Math.ceil((need * n) / covered) + extra + 2 + BLOCK : 0;
    const fresh = blockCapacity(
      Math.max(MIN_SPANS, n + 1 + BLOCK, Math.ceil(cap * 1.25), Math.min(fits, cap * 8)),
    );
    const rec = Timeline.#records(fresh, old.width(TIME), old.width(FRAMES), old.width(MSG));
    let native = n > 0 ? this.#nativeOf(this.#slot(0), 0) : 0, blockNative = native;
    for (let r = 0; r < n; r++) {
      const slot = this.#slot(r);
      const f = old.get(FRAMES, slot);
      const t = this.#timeOf(slot, native);
      if ((r & (BLOCK - 1)) === 0) blockNative = native;
      this.#write(rec, r, t, native, f, old.get(MSG, slot), blockNative);
      native += Math.abs(f);
    }
    this.#rec = rec;
    this.#cap = fresh;
    this.#head = 0;
    this.#blockNativeValid = false;
  }

  /** Moves the capture-time base to `timeNs` (a stream whose times jumped by more than 104 days). */
  #rebaseTime(timeNs: bigint): void {
    this.#rec.shift(TIME, Number(this.#timeBase - timeNs));
    this.#setTimeBase(timeNs);
  }

  #setTimeBase(timeNs: bigint): void {
    this.#timeBase = timeNs;
    I64[0] = timeNs;
    this.#baseHi = I32[1]!;
    this.#baseLo = WORDS[0]!;
  }
}
