/**
 * Columns of exact integers (up to 2^53) in the slots of a circular buffer, stored as small offsets: a stream's
 * per-message columns (capture times, sample positions, ordinals) change little from one message to the next, so
 * each slot holds its value's offset from its block's base (the value of the block's first slot, one float64 per
 * {@link BLOCK} slots) in 8 to 32 bits. A value too far from its base (a capture time after a long silence)
 * is kept exactly in a side map.
 *
 * {@link BlockRecords} keeps several such columns interleaved in one buffer: a block is its header (the columns'
 * bases and the owner's own float64s) followed by its slots, and a slot's fields are adjacent. A timeline kept
 * each column in its own typed arrays before (eight of them per stream, ~8.6% of the live sensor's CPU, mostly
 * cache misses): an append wrote one cold line of each, a binary-search probe read six; now an append touches one
 * or two lines and a probe one. {@link BlockColumn} is one such column alone.
 *
 * The owner writes slots in ring order and must not write a block's first slot while any other slot of that block
 * is live: {@link mustGrow} says when the ring has to grow first (fewer than BLOCK free slots at a block's
 * start).
 * @module
 */

/** Slots per block (one float64 base each). */
export const BLOCK = 32;
/** log2 of {@link BLOCK}: the block of slot s is s >> BLOCK_LOG2. */
export const BLOCK_LOG2 = 5;

/** Offset widths: 8 bits (ordinals, message lengths), 24 bits (capture times' jitter) up to 32. */
export type ColumnWidth = 8 | 16 | 24 | 32;

/** True if writing ring slot `slot` with `count` slots live (of `capacity`) needs a larger ring first. */
export function mustGrow(slot: number, count: number, capacity: number): boolean {
  return count >= capacity || ((slot & (BLOCK - 1)) === 0 && count > capacity - BLOCK);
}

/** Capacity (a multiple of BLOCK) holding at least `n` slots. */
export function blockCapacity(n: number): number {
  return Math.ceil(Math.max(n, BLOCK) / BLOCK) * BLOCK;
}

/** Far values a column keeps in its side map, per slot, before it widens (at ~40 bytes an entry: ~0.6 a slot). */
const FAR_SHARE_LOG2 = 6;

/** Options of {@link BlockRecords}. */
export interface BlockRecordsOptions {
  /** Offsets from each block's first value (false: the values themselves, which must then mostly fit). */
  relative?: boolean;
  /** Float64s of the owner's own in each block's header ({@link extra}, {@link setExtra}). Default 0. */
  extras?: number;
}

/**
 * Columns of a ring of `capacity` slots (a multiple of {@link BLOCK}), interleaved in one buffer. Each column
 * starts at the width its owner expects and widens itself (8 bits at a time, the whole buffer re-laid) once more
 * than 1/64 of its slots are far values: a stream whose values vary more than most (message lengths of a chunked
 * stream, capture times of a bursty stage) costs the wider offsets rather than a side map entry per slot.
 *
 * Layout of block b (little-endian, at b·blockBytes): the owner's extras, then each relative column's base (all
 * float64), then BLOCK slots of `stride` bytes, each the columns' offsets in column order (1 to 4 bytes).
 */
export class BlockRecords {
  /** Slots (fixed). */
  readonly capacity: number;
  readonly #relative: boolean;
  readonly #extras: number;
  /** One view of the buffer: one object to load per access where typed arrays of each width were several. */
  #dv: DataView;
  /** Per column: bytes per offset, byte offset in a slot, its sentinel and largest offset, its side map. */
  #w: number[];
  #col: number[];
  #escape: number[];
  #max: number[];
  #far: (Map<number, number> | undefined)[];
  #stride = 0;
  #header = 0;
  #blockBytes = 0;

  /** `widths`: each column's starting width. Throws RangeError on a capacity not a multiple of BLOCK. */
  constructor(capacity: number, widths: readonly ColumnWidth[], opts: BlockRecordsOptions = {}) {
    if (capacity % BLOCK !== 0) {
      throw new RangeError(`BlockRecords: capacity ${capacity} is not a multiple of ${BLOCK}`);
    }
    this.capacity = capacity;
    this.#relative = opts.relative ?? true;
    this.#extras = opts.extras ?? 0;
    this.#w = widths.map((w) => w / 8);
    this.#col = [];
    this.#escape = [];
    this.#max = [];
    this.#far = widths.map(() => undefined);
    this.#dv = this.#layout();
  }

  /** Bits per offset of column `c` now (it only grows). */
  width(c: number): ColumnWidth {
    return (this.#w[c]! * 8) as ColumnWidth;
  }

  /** Bytes held (side maps counted at ~40 bytes an entry). */
  get bytes(): number {
    let far = 0;
    for (const m of this.#far) far += m?.size ?? 0;
    return this.#dv.byteLength + far * 40;
  }

  /** Extra float64 `k` of block `b`. */
  extra(k: number, b: number): number {
    return this.#dv.getFloat64(b * this.#blockBytes + k * 8, true);
  }

  /** Sets extra float64 `k` of block `b`. */
  setExtra(k: number, b: number, v: number): void {
    this.#dv.setFloat64(b * this.#blockBytes + k * 8, v, true);
  }

  /** The value of column `c` in `slot`. */
  get(c: number, slot: number): number {
    const blk = (slot >> BLOCK_LOG2) * this.#blockBytes;
    const o = this.#read(
      blk + this.#header + (slot & (BLOCK - 1)) * this.#stride + this.#col[c]!,
      this.#w[c]!,
    );
    if (o === this.#escape[c]) return this.#far[c]!.get(slot)!;
    return this.#relative ? this.#dv.getFloat64(blk + (this.#extras + c) * 8, true) + o : o;
  }

  /**
   * Running sums of |value| of column `c` along one block: `run[k] = run[k - 1] + |value(s0 + k - 1)|` for k in
   * [from, to] (`s0` the block's first slot, 1 <= from). One loop over the offsets, where a {@link get} each cost
   * a call and its checks per slot (a timeline's native positions are such sums: every lookup of an entry's time).
   */
  runAbs(c: number, run: Float64Array, s0: number, from: number, to: number): void {
    const dv = this.#dv,
      w = this.#w[c]!,
      far = this.#far[c],
      escape = this.#escape[c]!,
      stride = this.#stride;
    const blk = (s0 >> BLOCK_LOG2) * this.#blockBytes;
    const base = this.#relative ? dv.getFloat64(blk + (this.#extras + c) * 8, true) : 0;
    let p = blk + this.#header + (from - 1) * stride + this.#col[c]!;
    let v = run[from - 1]!;
    if (far === undefined || far.size === 0) {
      if (w === 1) {
        for (let k = from; k <= to; k++, p += stride) {
          const x = base + dv.getInt8(p);
          v += x < 0 ? -x : x;
          run[k] = v;
        }
      } else {
        for (let k = from; k <= to; k++, p += stride) {
          const x = base + this.#read(p, w);
          v += x < 0 ? -x : x;
          run[k] = v;
        }
      }
      return;
    }
    for (let k = from; k <= to; k++, p += stride) {
      const o = this.#read(p, w);
      const x = o === escape ? far.get(s0 + k - 1)! : base + o;
      v += x < 0 ? -x : x;
      run[k] = v;
    }
  }

  /** Writes `value` (an integer) to column `c` of `slot`; the first slot of a block sets the block's base. */
  set(c: number, slot: number, value: number): void {
    const far0 = this.#far[c];
    if (far0 !== undefined && far0.size > 0) far0.delete(slot);
    const blk = (slot >> BLOCK_LOG2) * this.#blockBytes;
    let o = value;
    if (this.#relative) {
      const at = blk + (this.#extras + c) * 8;
      if ((slot & (BLOCK - 1)) === 0) this.#dv.setFloat64(at, value, true);
      o = value - this.#dv.getFloat64(at, true);
    }
    const p = blk + this.#header + (slot & (BLOCK - 1)) * this.#stride + this.#col[c]!;
    if (o > this.#max[c]! || o <= this.#escape[c]!) {
      const far = this.#far[c] ??= new Map();
      far.set(slot, value);
      this.#write(p, this.#w[c]!, this.#escape[c]!);
      if (far.size > this.capacity >> FAR_SHARE_LOG2 && this.#w[c]! < 4) this.#widen(c);
      return;
    }
    this.#write(p, this.#w[c]!, o);
  }

  /** Adds `delta` to every value of column `c` (relative columns only: re-expressed from a new origin). */
  shift(c: number, delta: number): void {
    if (!this.#relative) throw new TypeError("BlockRecords: only a relative column shifts");
    const dv = this.#dv;
    for (let at = (this.#extras + c) * 8; at < dv.byteLength; at += this.#blockBytes) {
      dv.setFloat64(at, dv.getFloat64(at, true) + delta, true);
    }
    const far = this.#far[c];
    if (far) { for (const [s, v] of far) far.set(s, v + delta); }
  }

  /** The offset of `w` bytes at byte `p`. */
  #read(p: number, w: number): number {
    const dv = this.#dv;
    return w === 1
      ? dv.getInt8(p)
      : w === 3
      ? dv.getUint16(p, true) + dv.getInt8(p + 2) * 65536
      : w === 2
      ? dv.getInt16(p, true)
      : dv.getInt32(p, true);
  }

  #write(p: number, w: number, o: number): void {
    const dv = this.#dv;
    if (w === 1) dv.setInt8(p, o);
    else if (w === 3) {
      dv.setUint16(p, o & 0xffff, true);
      dv.setInt8(p + 2, o >> 16);
    } else if (w === 2) dv.setInt16(p, o, true);
    else dv.setInt32(p, o, true);
  }

  /** Lays the columns out at their widths now: a zeroed buffer. */
  #layout(): DataView {
    let stride = 0;
    for (let c = 0; c < this.#w.length; c++) {
      const w = this.#w[c]!;
      this.#col[c] = stride;
      this.#max[c] = 2 ** (w * 8 - 1) - 1;
      this.#escape[c] = -this.#max[c]! - 1;
      stride += w;
    }
    this.#stride = stride;
    this.#header = (this.#extras + (this.#relative ? this.#w.length : 0)) * 8;
    this.#blockBytes = this.#header + BLOCK * stride;
    return new DataView(new ArrayBuffer((this.capacity / BLOCK) * this.#blockBytes));
  }

  /** Column `c` eight bits wider (the buffer re-laid); far values that now fit leave its side map. */
  #widen(c: number): void {
    const n = this.capacity, cols = this.#w.length;
    const old = this.#dv, oldW = this.#w.slice(), oldCol = this.#col.slice(), oldStride = this.#stride;
    const oldHeader = this.#header, oldBlock = this.#blockBytes, oldEscape = this.#escape[c]!;
    this.#w[c] = oldW[c]! + 1;
    const dv = this.#dv = this.#layout();
    const far = this.#far[c]!;
    for (let b = 0; b < n / BLOCK; b++) {
      for (let h = 0; h < oldHeader; h += 8) {
        dv.setFloat64(b * this.#blockBytes + h, old.getFloat64(b * oldBlock + h, true), true);
      }
    }
    for (let slot = 0; slot < n; slot++) {
      const b = slot >> BLOCK_LOG2, i = slot & (BLOCK - 1);
      const from = b * oldBlock + oldHeader + i * oldStride,
        to = b * this.#blockBytes + this.#header + i * this.#stride;
      for (let k = 0; k < cols; k++) {
        this.#dv = old;
        const o = this.#read(from + oldCol[k]!, oldW[k]!);
        this.#dv = dv;
        const p = to + this.#col[k]!;
        if (k !== c || o !== oldEscape) {
          this.#write(p, this.#w[k]!, o);
          continue;
        }
        // A slot's far value is re-expressed from its block's base as set() did (a stale slot's too: it is
        // rewritten before it is read).
        const value = far.get(slot)!;
        const rel = this.#relative
          ? value - dv.getFloat64(b * this.#blockBytes + (this.#extras + c) * 8, true)
          : value;
        if (rel > this.#max[c]! || rel <= this.#escape[c]!) this.#write(p, this.#w[c]!, this.#escape[c]!);
        else {
          this.#write(p, this.#w[c]!, rel);
          far.delete(slot);
        }
      }
    }
  }
}

/** One column of a ring of `capacity` slots: a {@link BlockRecords} of one column. */
export class BlockColumn {
  readonly #r: BlockRecords;
  /** Slots (fixed). */
  readonly capacity: number;

  /**
   * `relative`: offsets from each block's first value (false: the values themselves, which must then mostly fit
   * the width).
   */
  constructor(capacity: number, width: ColumnWidth, relative = true) {
    this.#r = new BlockRecords(capacity, [width], { relative });
    this.capacity = capacity;
  }

  /** Bits per offset now (it only grows). */
  get width(): ColumnWidth {
    return this.#r.width(0);
  }

  /** Bytes held (the side map counted at ~40 bytes an entry). */
  get bytes(): number {
    return this.#r.bytes;
  }

  /** The value in `slot`. */
  get(slot: number): number {
    return this.#r.get(0, slot);
  }

  /** Running sums of |value| along one block (see {@link BlockRecords.runAbs}). */
  runAbs(run: Float64Array, s0: number, from: number, to: number): void {
    this.#r.runAbs(0, run, s0, from, to);
  }

  /** Writes `value` (an integer) to `slot`; the first slot of a block sets the block's base. */
  set(slot: number, value: number): void {
    this.#r.set(0, slot, value);
  }

  /** Adds `delta` to every value of a relative column (re-expressed from a new origin). */
  shift(delta: number): void {
    this.#r.shift(0, delta);
  }
}
