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

/** Columns a {@link BlockRecords} holds at most (their layout is packed in one number). */
export const MAX_COLUMNS = 4;

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
  /**
   * Each column's layout, 6 bits a column from bit 6·c: its byte offset in a slot (high 4 bits) and its bytes
   * per offset less one (low 2). One number on the object rather than arrays of them: each array was another
   * cold line to load per stream visited.
   */
  #codes = 0;
  readonly #columns: number;
  /** Side maps of far values per column (undefined until one is needed), and how many values they hold. */
  readonly #far: (Map<number, number> | undefined)[];
  #farCount = 0;
  #stride = 0;
  #header = 0;
  #blockBytes = 0;

  /**
   * `widths`: each column's starting width (at most {@link MAX_COLUMNS}). Throws RangeError on a capacity not a
   * multiple of BLOCK or too many columns.
   */
  constructor(capacity: number, widths: readonly ColumnWidth[], opts: BlockRecordsOptions = {}) {
    if (capacity % BLOCK !== 0) {
      throw new RangeError(`BlockRecords: capacity ${capacity} is not a multiple of ${BLOCK}`);
    }
    if (widths.length > MAX_COLUMNS) throw new RangeError(`BlockRecords: more than ${MAX_COLUMNS} columns`);
    this.capacity = capacity;
    this.#relative = opts.relative ?? true;
    this.#extras = opts.extras ?? 0;
    this.#columns = widths.length;
    this.#far = widths.map(() => undefined);
    this.#dv = this.#layout(widths.map((w) => w / 8));
  }

  /** Bits per offset of column `c` now (it only grows). */
  width(c: number): ColumnWidth {
    return ((this.#code(c) & 3) * 8 + 8) as ColumnWidth;
  }

  /** Bytes held (side maps counted at ~40 bytes an entry). */
  get bytes(): number {
    return this.#dv.byteLength + this.#farCount * 40;
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
    const code = this.#code(c), w = (code & 3) + 1;
    const blk = (slot >> BLOCK_LOG2) * this.#blockBytes;
    const o = this.#read(blk + this.#header + (slot & (BLOCK - 1)) * this.#stride + (code >> 2), w);
    if (o === escapeOf(w)) return this.#far[c]!.get(slot)!;
    return this.#relative ? this.#dv.getFloat64(blk + (this.#extras + c) * 8, true) + o : o;
  }

  /**
   * Running sums of |value| of column `c` along one block: `run[k] = run[k - 1] + |value(s0 + k - 1)|` for k in
   * [from, to] (`s0` the block's first slot, 1 <= from). One loop over the offsets, where a {@link get} each cost
   * a call and its checks per slot (a timeline's native positions are such sums: every lookup of an entry's time).
   */
  runAbs(c: number, run: Float64Array, s0: number, from: number, to: number): void {
    const dv = this.#dv, code = this.#code(c), w = (code & 3) + 1, stride = this.#stride;
    const blk = (s0 >> BLOCK_LOG2) * this.#blockBytes;
    const base = this.#relative ? dv.getFloat64(blk + (this.#extras + c) * 8, true) : 0;
    let p = blk + this.#header + (from - 1) * stride + (code >> 2);
    let v = run[from - 1]!;
    const far = this.#farCount === 0 ? undefined : this.#far[c];
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
    const escape = escapeOf(w);
    for (let k = from; k <= to; k++, p += stride) {
      const o = this.#read(p, w);
      const x = o === escape ? far.get(s0 + k - 1)! : base + o;
      v += x < 0 ? -x : x;
      run[k] = v;
    }
  }

  /** Writes `value` (an integer) to column `c` of `slot`; the first slot of a block sets the block's base. */
  set(c: number, slot: number, value: number): void {
    if (this.#farCount > 0 && this.#far[c]?.delete(slot)) this.#farCount--;
    const code = this.#code(c), w = (code & 3) + 1;
    const blk = (slot >> BLOCK_LOG2) * this.#blockBytes;
    let o = value;
    if (this.#relative) {
      const at = blk + (this.#extras + c) * 8;
      if ((slot & (BLOCK - 1)) === 0) this.#dv.setFloat64(at, value, true);
      o = value - this.#dv.getFloat64(at, true);
    }
    const p = blk + this.#header + (slot & (BLOCK - 1)) * this.#stride + (code >> 2);
    const escape = escapeOf(w);
    if (o > -escape - 1 || o <= escape) {
      const far = this.#far[c] ??= new Map();
      far.set(slot, value);
      this.#farCount++;
      this.#write(p, w, escape);
      if (far.size > this.capacity >> FAR_SHARE_LOG2 && w < 4) this.#widen(c);
      return;
    }
    this.#write(p, w, o);
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

  #code(c: number): number {
    return (this.#codes >> (6 * c)) & 63;
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

  /** Lays the columns out at `bytes` each: a zeroed buffer. */
  #layout(bytes: readonly number[]): DataView {
    let stride = 0, codes = 0;
    for (let c = 0; c < bytes.length; c++) {
      codes |= ((stride << 2) | (bytes[c]! - 1)) << (6 * c);
      stride += bytes[c]!;
    }
    this.#codes = codes;
    this.#stride = stride;
    this.#header = (this.#extras + (this.#relative ? bytes.length : 0)) * 8;
    this.#blockBytes = this.#header + BLOCK * stride;
    return new DataView(new ArrayBuffer((this.capacity / BLOCK) * this.#blockBytes));
  }

  /** Column `c` eight bits wider (the buffer re-laid); far values that now fit leave its side map. */
  #widen(c: number): void {
    const n = this.capacity, cols = this.#columns;
    const bytes = Array.from({ length: cols }, (_, k) => (this.#code(k) & 3) + 1);
    const old = new Int32Array(n * cols);
    for (let slot = 0; slot < n; slot++) {
      const at = (slot >> BLOCK_LOG2) * this.#blockBytes + this.#header + (slot & (BLOCK - 1)) * this.#stride;
      for (let k = 0; k < cols; k++) old[slot * cols + k] = this.#read(at + (this.#code(k) >> 2), bytes[k]!);
    }
    const oldDv = this.#dv, oldHeader = this.#header, oldBlock = this.#blockBytes;
    const oldEscape = escapeOf(bytes[c]!);
    bytes[c]!++;
    const dv = this.#dv = this.#layout(bytes);
    for (let b = 0; b < n / BLOCK; b++) {
      for (let h = 0; h < oldHeader; h += 8) {
        dv.setFloat64(b * this.#blockBytes + h, oldDv.getFloat64(b * oldBlock + h, true), true);
      }
    }
    const far = this.#far[c]!, w = bytes[c]!, escape = escapeOf(w);
    for (let slot = 0; slot < n; slot++) {
      const b = slot >> BLOCK_LOG2;
      const at = b * this.#blockBytes + this.#header + (slot & (BLOCK - 1)) * this.#stride;
      for (let k = 0; k < cols; k++) {
        const o = old[slot * cols + k]!, p = at + (this.#code(k) >> 2);
        if (k !== c || o !== oldEscape) {
          this.#write(p, bytes[k]!, o);
          continue;
        }
        // A slot's far value is re-expressed from its block's base as set() did (a stale slot's too: it is
        // rewritten before it is read).
        const value = far.get(slot)!;
        const rel = this.#relative
          ? value - dv.getFloat64(b * this.#blockBytes + (this.#extras + c) * 8, true)
          : value;
        if (rel > -escape - 1 || rel <= escape) this.#write(p, w, escape);
        else {
          this.#write(p, w, rel);
          far.delete(slot);
          this.#farCount--;
        }
      }
    }
  }
}

/** The sentinel offset (the smallest) of a column `w` bytes wide: its value is in the side map. */
function escapeOf(w: number): number {
  return w === 1 ? -128 : w === 2 ? -32768 : w === 3 ? -8388608 : -2147483648;
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
