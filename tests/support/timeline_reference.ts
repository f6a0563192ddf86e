// The timeline as it was kept before its entries were interleaved records (audio/decode/timeline.ts and
// block_column.ts at ce3f318: a typed array per column): the reference the records are compared with on random
// appends, prunes and queries (tests/audio_timeline_records_test.ts). Not used by the engine.
import { analysisIndexOf, designResampler } from "../../audio/decode/resample.ts";
import {
  BLOCK,
  BLOCK_LOG2,
  blockCapacity,
  type ColumnWidth,
  mustGrow,
} from "../../audio/decode/block_column.ts";
import type { Located, TimelineOptions, TimelineSpan } from "../../audio/decode/timeline.ts";
import { DEFAULT_LOOKBACK_SAMPLES } from "../../audio/decode/timeline.ts";

const MIN_SPANS = 64;
const WORDS = new Uint32Array(2);
const I32 = new Int32Array(WORDS.buffer);
const I64 = new BigInt64Array(WORDS.buffer);

/** Far values a column keeps in its side map, per slot, before it widens (at ~40 bytes an entry: ~0.6 a slot). */
const FAR_SHARE_LOG2 = 6;

type Offsets = Int8Array | Int16Array | Uint16Array | Int32Array;

/**
 * One column of a ring of `capacity` slots (a multiple of {@link BLOCK}). It starts at the width its owner
 * expects and widens itself (8 bits at a time) once more than 1/64 of its slots are far values: a stream whose
 * values vary more than most (message lengths of a chunked stream, capture times of a bursty stage) costs the
 * wider offsets rather than a side map entry per slot.
 */
/** The column layout before the records (block_column.ts at ce3f318). */
class BlockColumn {
  /** Offsets; at 24 bits their low 16 bits (unsigned), the high 8 in {@link #hi}. */
  #off: Offsets;
  #hi: Int8Array | undefined;
  #width: ColumnWidth;
  /** Base of each block; 0 for an absolute column (no base). */
  readonly #base: Float64Array;
  readonly #relative: boolean;
  /** The sentinel offset of a value kept in {@link #far}. */
  #escape = 0;
  #max = 0;
  #far: Map<number, number> | undefined;
  /**
   * Slots (fixed). A plain field: a getter reading the offsets' length was a chain of loads into each stream's
   * cold column on every message its timeline appended (~0.5% of analyze's CPU).
   */
  readonly capacity: number;

  /**
   * `relative`: offsets from each block's first value (false: the values themselves, which must then mostly fit
   * the width).
   */
  constructor(capacity: number, width: ColumnWidth, relative = true) {
    if (capacity % BLOCK !== 0) {
      throw new RangeError(`BlockColumn: capacity ${capacity} is not a multiple of ${BLOCK}`);
    }
    this.#width = width;
    this.capacity = capacity;
    this.#off = this.#alloc(width, capacity);
    this.#relative = relative;
    this.#base = new Float64Array(relative ? capacity / BLOCK : 0);
  }

  /** Bits per offset now (it only grows). */
  get width(): ColumnWidth {
    return this.#width;
  }

  /** Bytes held (the side map counted at ~40 bytes an entry). */
  get bytes(): number {
    return this.#off.byteLength + (this.#hi?.byteLength ?? 0) + this.#base.byteLength +
      (this.#far?.size ?? 0) * 40;
  }

  /** The value in `slot`. */
  get(slot: number): number {
    const o = this.#offset(slot);
    if (o === this.#escape) return this.#far!.get(slot)!;
    return this.#relative ? this.#base[slot >> BLOCK_LOG2]! + o : o;
  }

  /**
   * Running sums of |value| along one block: `run[k] = run[k - 1] + |value(s0 + k - 1)|` for k in [from, to]
   * (`s0` the block's first slot, 1 <= from). One loop over the offsets, where a {@link get} each cost a call
   * and its checks per slot (a timeline's native positions are such sums: every lookup of an entry's time).
   */
  runAbs(run: Float64Array, s0: number, from: number, to: number): void {
    const off = this.#off, hi = this.#hi, far = this.#far, escape = this.#escape;
    const base = this.#relative ? this.#base[s0 >> BLOCK_LOG2]! : 0;
    let v = run[from - 1]!;
    if (hi === undefined && (far === undefined || far.size === 0)) {
      for (let k = from; k <= to; k++) {
        const x = base + off[s0 + k - 1]!;
        v += x < 0 ? -x : x;
        run[k] = v;
      }
      return;
    }
    for (let k = from; k <= to; k++) {
      const s = s0 + k - 1;
      const o = hi === undefined ? off[s]! : hi[s]! * 65536 + off[s]!;
      const x = o === escape ? far!.get(s)! : base + o;
      v += x < 0 ? -x : x;
      run[k] = v;
    }
  }

  /** Writes `value` (an integer) to `slot`; the first slot of a block sets the block's base. */
  set(slot: number, value: number): void {
    if (this.#far !== undefined && this.#far.size > 0) this.#far.delete(slot);
    let o = value;
    if (this.#relative) {
      const b = slot >> BLOCK_LOG2;
      if ((slot & (BLOCK - 1)) === 0) this.#base[b] = value;
      o = value - this.#base[b]!;
    }
    if (o > this.#max || o <= this.#escape) {
      const far = this.#far ??= new Map();
      far.set(slot, value);
      this.#put(slot, this.#escape);
      if (far.size > this.#off.length >> FAR_SHARE_LOG2 && this.#width < 32) this.#widen();
      return;
    }
    this.#put(slot, o);
  }

  /** Adds `delta` to every value of a relative column (re-expressed from a new origin). */
  shift(delta: number): void {
    if (!this.#relative) throw new TypeError("BlockColumn: only a relative column shifts");
    for (let b = 0; b < this.#base.length; b++) this.#base[b] = this.#base[b]! + delta;
    if (this.#far) { for (const [s, v] of this.#far) this.#far.set(s, v + delta); }
  }

  #offset(slot: number): number {
    const hi = this.#hi;
    return hi === undefined ? this.#off[slot]! : hi[slot]! * 65536 + this.#off[slot]!;
  }

  #put(slot: number, o: number): void {
    if (this.#hi === undefined) this.#off[slot] = o;
    else {
      this.#off[slot] = o & 0xffff;
      this.#hi[slot] = o >> 16;
    }
  }

  #alloc(width: ColumnWidth, capacity: number): Offsets {
    this.#max = 2 ** (width - 1) - 1;
    this.#escape = -this.#max - 1;
    this.#hi = width === 24 ? new Int8Array(capacity) : undefined;
    return width === 8
      ? new Int8Array(capacity)
      : width === 16
      ? new Int16Array(capacity)
      : width === 24
      ? new Uint16Array(capacity)
      : new Int32Array(capacity);
  }

  /** Eight bits wider; far values that now fit leave the side map. */
  #widen(): void {
    const n = this.#off.length;
    const old = Int32Array.from({ length: n }, (_, s) => this.#offset(s));
    const oldEscape = this.#escape;
    this.#width = (this.#width + 8) as ColumnWidth;
    this.#off = this.#alloc(this.#width, n);
    const far = this.#far!;
    for (let slot = 0; slot < n; slot++) {
      const o = old[slot]!;
      if (o !== oldEscape) {
        this.#put(slot, o);
        continue;
      }
      // A slot's far value is re-expressed from its block's base as set() did (a stale slot's too: it is
      // rewritten before it is read).
      const value = far.get(slot)!;
      const rel = this.#relative ? value - this.#base[slot >> BLOCK_LOG2]! : value;
      if (rel > this.#max || rel <= this.#escape) this.#put(slot, this.#escape);
      else {
        this.#put(slot, rel);
        far.delete(slot);
      }
    }
  }
}

/**
 * Reference: per-stream list of message spans on the analysis timeline, pruned beyond a lookback.
 *
 * Every append is an entry, a message that owns no analysis instant too (no audio, or too short at a rate above
 * 8 kHz): so the entries tile the native timeline, and an entry's native start is its block's first entry's plus
 * the lengths in between. Entries that own no instant are never a span (they contain no sample; {@link spans}
 * leaves them out), but they are the stream's messages as a follower reads them (capture_times.ts).
 *
 * Kept as parallel typed columns in a circular buffer, ~6 bytes an entry (float64 columns cost 24, an object
 * with a bigint ~100): capture times as ns offsets from a per-stream bigint base (exact to the ns within 104 days
 * of it), message ordinals, and native lengths (negative for a gap), each as an offset from the value of its
 * block's first entry (block_column.ts: 24 bits for times less their audio time, see {@link #time}, 8 for the
 * others, while they fit), and one float64 native start per block.
 */
export class ReferenceTimeline {
  /** Native rate of the stream, Hz. */
  readonly nativeRate: number;
  /** Analysis sample k is at native position k·down/up. */
  readonly up: number;
  readonly down: number;
  readonly lookbackSamples: number;
  /**
   * Capture time, ns from {@link #timeBase}, less the audio time from the block's first entry's start to the
   * entry's end (see {@link #audioNs}): what remains is jitter, 24 bits while it fits (±8 ms).
   */
  #time = new BlockColumn(0, 24);
  /** Native samples of the entry's message, negated for a gap. */
  #frames = new BlockColumn(0, 8);
  #msg = new BlockColumn(0, 8);
  /** Native start of each block's first entry (the others follow from the lengths before them). */
  #nativeBase = new Float64Array(0);
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
    return this.#time.bytes + this.#frames.bytes + this.#msg.bytes + this.#nativeBase.byteLength;
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
    const n = frames > 0 ? Math.floor(frames) : 0;
    const nativeStart = this.#nativeLength;
    const nativeEnd = nativeStart + n;
    this.#nativeLength = nativeEnd;
    if (mustGrow(this.#slot(this.#count), this.#count, this.#time.capacity)) this.#grow();
    if (this.#count === 0) this.#setTimeBase(timeNs);
    I64[0] = timeNs;
    // timeNs - base, exact while it is a safe integer (and unsafe exactly when the difference is).
    let t = I64[0] === timeNs
      ? (I32[1]! - this.#baseHi) * 4294967296 + (WORDS[0]! - this.#baseLo)
      : Number(timeNs - this.#timeBase);
    if (!Number.isSafeInteger(t)) {
      this.#rebaseTime(timeNs);
      t = 0;
    }
    const slot = this.#slot(this.#count);
    this.#write(
      this.#time,
      this.#frames,
      this.#msg,
      this.#nativeBase,
      slot,
      t,
      nativeStart,
      gap ? -n : n,
      messageIndex,
    );
    this.#count++;
    this.#appended++;
    const end = analysisIndexOf(nativeEnd, this.up, this.down);
    this.prune(end - this.lookbackSamples);
    if (!(frames > 0)) return undefined;
    const start = analysisIndexOf(nativeStart, this.up, this.down);
    return { messageIndex, timeNs, nativeStart, nativeEnd, start, end, gap };
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
      const length = ord === this.#firstOrd ? this.#firstLength : Math.abs(this.#frames.get(slot));
      this.#firstOrd = ord;
      this.#firstNative = native;
      this.#firstLength = length;
      if (analysisIndexOf(native + length, up, down) > before) break;
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
    const r = this.#find(k);
    return r >= 0 && this.#frames.get(this.#slot(r)) < 0;
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
      if (this.#frames.get(this.#slot(r)) >= 0) continue;
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
    if (i === 0) return this.#nativeBase[b]!;
    const run = this.#run;
    const first = this.#appended - this.#count + r - i;
    if (first !== this.#runFirst) {
      this.#runFirst = first;
      this.#runTo = 1;
      run[0] = this.#nativeBase[b]!;
    }
    const to = this.#runTo;
    if (i >= to) {
      this.#frames.runAbs(run, slot - i, to, i);
      this.#runTo = i + 1;
    }
    return run[i]!;
  }

  /** Capture time of the entry in `slot` whose native start is `native`, ns from {@link #timeBase}. */
  #timeOf(slot: number, native: number): number {
    const end = native + Math.abs(this.#frames.get(slot)) - this.#nativeBase[slot >> BLOCK_LOG2]!;
    return this.#time.get(slot) + this.#audioNs(end);
  }

  /**
   * Duration of `native` samples, whole ns (0 beyond ~90 s of them, where the product could lose integers:
   * any function of the block's native offsets keeps the times exact, this one leaves only jitter in a tap's
   * capture times, which mark about when a message's last sample was produced).
   */
  #audioNs(native: number): number {
    return native < 4_194_304 ? Math.round((native * 1e9) / this.nativeRate) : 0;
  }

  #startOf(r: number): number {
    return analysisIndexOf(this.#nativeOf(this.#slot(r), r), this.up, this.down);
  }

  /** Entries tile the native timeline: an entry ends where the next starts. */
  #endOf(r: number): number {
    const slot = this.#slot(r);
    return analysisIndexOf(this.#nativeOf(slot, r) + Math.abs(this.#frames.get(slot)), this.up, this.down);
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
      else if (k >= analysisIndexOf(native + Math.abs(this.#frames.get(slot)), this.up, this.down)) {
        lo = mid + 1;
      } else return mid;
    }
    return -1;
  }

  #span(r: number): TimelineSpan {
    const slot = this.#slot(r);
    const frames = this.#frames.get(slot);
    const nativeStart = this.#nativeOf(slot, r);
    const nativeEnd = nativeStart + Math.abs(frames);
    return {
      messageIndex: this.#msg.get(slot),
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

  #write(
    time: BlockColumn,
    frames: BlockColumn,
    msg: BlockColumn,
    nativeBase: Float64Array,
    slot: number,
    t: number,
    native: number,
    f: number,
    m: number,
  ): void {
    const b = slot >> BLOCK_LOG2;
    if ((slot & (BLOCK - 1)) === 0) nativeBase[b] = native;
    time.set(slot, t - this.#audioNs(native + Math.abs(f) - nativeBase[b]!));
    frames.set(slot, f);
    msg.set(slot, m);
  }

  /**
   * Grows the columns to what the lookback (or a follower) holds at the entries' mean length so far (by a
   * quarter at least, eight times at most), unrolling the ring so the oldest entry is at slot 0.
   */
  #grow(): void {
    const cap = this.#time.capacity;
    const n = this.#count;
    const covered = n > 0 ? this.#endOf(n - 1) - this.#startOf(0) : 0;
    const need = Math.max(this.lookbackSamples, this.#retainFrom < Infinity ? this.#followSamples : 0);
    const extra = this.#retainFrom < Infinity ? this.#followEntries : 0;
    const fits = covered > 0 ? Math.ceil((need * n) / covered) + extra + 2 + BLOCK : 0;
    const fresh = blockCapacity(
      Math.max(MIN_SPANS, n + 1 + BLOCK, Math.ceil(cap * 1.25), Math.min(fits, cap * 8)),
    );
    const time = new BlockColumn(fresh, this.#time.width);
    const frames = new BlockColumn(fresh, this.#frames.width);
    const msg = new BlockColumn(fresh, this.#msg.width);
    const nativeBase = new Float64Array(fresh / BLOCK);
    let native = n > 0 ? this.#nativeOf(this.#slot(0), 0) : 0;
    for (let r = 0; r < n; r++) {
      const slot = this.#slot(r);
      const f = this.#frames.get(slot);
      const t = this.#timeOf(slot, native);
      this.#write(time, frames, msg, nativeBase, r, t, native, f, this.#msg.get(slot));
      native += Math.abs(f);
    }
    this.#time = time;
    this.#frames = frames;
    this.#msg = msg;
    this.#nativeBase = nativeBase;
    this.#cap = fresh;
    this.#head = 0;
  }

  /** Moves the capture-time base to `timeNs` (a stream whose times jumped by more than 104 days). */
  #rebaseTime(timeNs: bigint): void {
    this.#time.shift(Number(this.#timeBase - timeNs));
    this.#setTimeBase(timeNs);
  }

  #setTimeBase(timeNs: bigint): void {
    this.#timeBase = timeNs;
    I64[0] = timeNs;
    this.#baseHi = I32[1]!;
    this.#baseLo = WORDS[0]!;
  }
}
