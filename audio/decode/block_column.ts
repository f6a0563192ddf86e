/**
 * A column of exact integers (up to 2^53) in the slots of a circular buffer, stored as small offsets: a stream's
 * per-message columns (capture times, sample positions, ordinals) change little from one message to the next, so
 * each slot holds its value's offset from its block's base (the value of the block's first slot, one float64 per
 * {@link BLOCK} slots) in 8, 16 or 32 bits. A value too far from its base (a capture time after a long silence)
 * is kept exactly in a side map.
 *
 * The owner writes slots in ring order and must not write a block's first slot while any other slot of that block
 * is live: {@link mustGrow} says when the ring has to grow first (fewer than BLOCK free slots at a block's
 * start).
 * @module
 */

/** Slots per block (one float64 base each). */
export const BLOCK = 16;
/** log2 of {@link BLOCK}: the block of slot s is s >> BLOCK_LOG2. */
export const BLOCK_LOG2 = 4;

/** Offset widths: 8 bits (ordinals), 16 bits (sample counts of one message) or 32 bits (times, positions). */
export type ColumnWidth = 8 | 16 | 32;

/** True if writing ring slot `slot` with `count` slots live (of `capacity`) needs a larger ring first. */
export function mustGrow(slot: number, count: number, capacity: number): boolean {
  return count >= capacity || ((slot & (BLOCK - 1)) === 0 && count > capacity - BLOCK);
}

/** Capacity (a multiple of BLOCK) holding at least `n` slots. */
export function blockCapacity(n: number): number {
  return Math.ceil(Math.max(n, BLOCK) / BLOCK) * BLOCK;
}

/** One column of a ring of `capacity` slots (a multiple of {@link BLOCK}). */
export class BlockColumn {
  readonly #off: Int8Array | Int16Array | Int32Array;
  /** Base of each block; 0 for an absolute column (no base). */
  readonly #base: Float64Array;
  readonly #relative: boolean;
  /** The sentinel offset of a value kept in {@link #far}. */
  readonly #escape: number;
  readonly #max: number;
  #far: Map<number, number> | undefined;

  /**
   * `relative`: offsets from each block's first value (false: the values themselves, which must then mostly fit
   * the width).
   */
  constructor(capacity: number, width: ColumnWidth, relative = true) {
    if (capacity % BLOCK !== 0) {
      throw new RangeError(`BlockColumn: capacity ${capacity} is not a multiple of ${BLOCK}`);
    }
    this.#off = width === 8
      ? new Int8Array(capacity)
      : width === 16
      ? new Int16Array(capacity)
      : new Int32Array(capacity);
    this.#max = 2 ** (width - 1) - 1;
    this.#escape = -this.#max - 1;
    this.#relative = relative;
    this.#base = new Float64Array(relative ? capacity / BLOCK : 0);
  }

  /** Slots. */
  get capacity(): number {
    return this.#off.length;
  }

  /** Bytes held (the side map counted at ~40 bytes an entry). */
  get bytes(): number {
    return this.#off.byteLength + this.#base.byteLength + (this.#far?.size ?? 0) * 40;
  }

  /** The value in `slot`. */
  get(slot: number): number {
    const o = this.#off[slot]!;
    if (o === this.#escape) return this.#far!.get(slot)!;
    return this.#relative ? this.#base[slot >> BLOCK_LOG2]! + o : o;
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
      (this.#far ??= new Map()).set(slot, value);
      o = this.#escape;
    }
    this.#off[slot] = o;
  }

  /** Adds `delta` to every value of a relative column (re-expressed from a new origin). */
  shift(delta: number): void {
    if (!this.#relative) throw new TypeError("BlockColumn: only a relative column shifts");
    for (let b = 0; b < this.#base.length; b++) this.#base[b] = this.#base[b]! + delta;
    if (this.#far) { for (const [s, v] of this.#far) this.#far.set(s, v + delta); }
  }
}
