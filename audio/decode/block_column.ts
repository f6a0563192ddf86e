/**
 * A column of exact integers (up to 2^53) in the slots of a circular buffer, stored as small offsets: a stream's
 * per-message columns (capture times, sample positions, ordinals) change little from one message to the next, so
 * each slot holds its value's offset from its block's base (the value of the block's first slot, one float64 per
 * {@link BLOCK} slots) in 8 to 32 bits. A value too far from its base (a capture time after a long silence)
 * is kept exactly in a side map.
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

type Offsets = Int8Array | Int16Array | Uint16Array | Int32Array;

/**
 * One column of a ring of `capacity` slots (a multiple of {@link BLOCK}). It starts at the width its owner
 * expects and widens itself (8 bits at a time) once more than 1/64 of its slots are far values: a stream whose
 * values vary more than most (message lengths of a chunked stream, capture times of a bursty stage) costs the
 * wider offsets rather than a side map entry per slot.
 */
export class BlockColumn {
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
