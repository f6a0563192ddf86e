/**
 * The forward search's votes: per alignment (signature slot, target frame of its frame 0) the votes its lookup
 * hits gave, in typed arrays that expire old alignments without deletions.
 * @module
 */

/** Bits (log2) of a vote-table generation's filter of present alignments: 32768 bits, 4 KB. */
const SEEN_LOG2 = 15;
const SEEN_WORDS = (1 << SEEN_LOG2) >> 5;

/** Vote-table entry states: gathering votes, or handed to the checks (never queued twice). */
export const NEW = 0, QUEUED = 1;

/** Int32 words per entry of a {@link VoteTable}: slot (-1: free), s, last voting frame, votes | state << 8. */
const ENTRY_WORDS = 4;

/**
 * Votes per alignment (signature slot, target frame of its frame 0) in one typed array: two open-addressed
 * generations of EPOCH frames each, so entries expire without deletions (a candidate's hits span at most one
 * block, i.e. two consecutive epochs). Grows when a generation fills up. An entry's fields sit together (16
 * bytes, four to a cache line): a vote for an alignment not seen for a while, the common case, misses the cache
 * once rather than once per field.
 */
export class VoteTable {
  #cap: number;
  /** Entries of both generations, ENTRY_WORDS each: generation g's entry h is at (g·cap + h)·ENTRY_WORDS. */
  #e: Int32Array;
  #used = [0, 0];
  #cur = 0;
  #epoch = -1;
  /**
   * Per generation a bitset over a hash of (slot, s): bit clear means no such entry there. Most votes are for
   * alignments seen nowhere before, and their lookups in the older generation and of the neighbours are cache
   * misses in a table of a few hundred KB; this 4 KB filter answers most of them (a set bit is only a maybe).
   */
  readonly #seen = new Int32Array(2 * SEEN_WORDS);

  /** A table of `cap` entries per generation (a power of two; it doubles when a generation is 70% full). */
  constructor(cap = 1024) {
    this.#cap = cap;
    this.#e = VoteTable.#entries(cap);
  }

  /** Empty entries of both generations for `cap` entries each. */
  static #entries(cap: number): Int32Array {
    const e = new Int32Array(2 * cap * ENTRY_WORDS);
    for (let i = 0; i < e.length; i += ENTRY_WORDS) e[i] = -1;
    return e;
  }

  /** Bytes held. */
  get bytes(): number {
    return this.#e.byteLength + this.#seen.byteLength;
  }

  /** Moves to the epoch of frame `t` (clearing the older generation when a new epoch starts). */
  advance(t: number, epochFrames: number): void {
    const e = Math.floor(t / epochFrames);
    if (e === this.#epoch) return;
    if (e === this.#epoch + 1) {
      this.#cur ^= 1;
      this.#clear(this.#cur);
    } else {
      this.#clear(0);
      this.#clear(1);
    }
    this.#epoch = e;
  }

  #clear(g: number): void {
    const e = this.#e, end = (g + 1) * this.#cap * ENTRY_WORDS;
    for (let i = g * this.#cap * ENTRY_WORDS; i < end; i += ENTRY_WORDS) e[i] = -1;
    this.#seen.fill(0, g * SEEN_WORDS, (g + 1) * SEEN_WORDS);
    this.#used[g] = 0;
  }

  /** Bit of (slot, s) in the {@link #seen} filter (same bit in both generations' halves). */
  #seenBit(slot: number, s: number): number {
    return Math.imul(slot ^ Math.imul(s, 0x85ebca6b), 0x9e3779b1) >>> (32 - SEEN_LOG2);
  }

  /** False if generation g surely has no entry of (slot, s). */
  #mayHave(g: number, slot: number, s: number): boolean {
    const b = this.#seenBit(slot, s);
    return (this.#seen[g * SEEN_WORDS + (b >>> 5)]! & (1 << (b & 31))) !== 0;
  }

  /** Index (g·cap + h) of the entry of (slot, s) in generation g, or of the free place where it would go. */
  #find(g: number, slot: number, s: number): number {
    const cap = this.#cap, mask = cap - 1, base = g * cap;
    const e = this.#e;
    // Alignments of a slot in runs of four places (one cache line): s and its neighbours, looked up together by
    // the neighbour check, then mostly share a line instead of hitting three random ones.
    let h = ((Math.imul(slot, 0x9e3779b1) ^ Math.imul(s >> 2, 0x85ebca6b)) << 2 | (s & 3)) & mask;
    for (;;) {
      const at = (base + h) * ENTRY_WORDS;
      const k = e[at]!;
      if (k === -1 || (k === slot && e[at + 1] === s)) return base + h;
      h = (h + 1) & mask;
    }
  }

  /**
   * Loads the current generation's place of each alignment (slots[x], t − pos[x]) for x < n: the votes of one
   * target frame, whose table lines are mostly cache misses independent of each other, so loaded together here
   * they overlap instead of stalling one vote after another. Changes nothing; returns a value for the caller to
   * keep, so that the loads are not optimised away.
   */
  touch(slots: Int32Array, pos: Int32Array, t: number, n: number): number {
    const e = this.#e, mask = this.#cap - 1, base = this.#cur * this.#cap;
    let acc = 0;
    for (let x = 0; x < n; x++) {
      const slot = slots[x]!, s = t - pos[x]!;
      const h = ((Math.imul(slot, 0x9e3779b1) ^ Math.imul(s >> 2, 0x85ebca6b)) << 2 | (s & 3)) & mask;
      acc ^= e[(base + h) * ENTRY_WORDS]!;
    }
    return acc;
  }

  /**
   * Adds a vote from target frame `t` (once per frame) worth `w`; returns the entry's state before, the
   * votes after in `out[0]` and a handle (generation·cap + index) in `out[1]`.
   */
  vote(slot: number, s: number, t: number, w: number, out: Int32Array): number {
    // Merge with the older generation's entry, if any, by moving it into the current one.
    const g = this.#cur;
    const h = this.#find(g, slot, s);
    const e = this.#e, at = h * ENTRY_WORDS;
    if (e[at] === -1) {
      if (this.#used[g]! * 10 >= this.#cap * 7) {
        this.#grow();
        return this.vote(slot, s, t, w, out);
      }
      const ho = this.#mayHave(1 - g, slot, s) ? this.#find(1 - g, slot, s) * ENTRY_WORDS : -1;
      e[at] = slot;
      e[at + 1] = s;
      this.#used[g]!++;
      const b = this.#seenBit(slot, s);
      this.#seen[g * SEEN_WORDS + (b >>> 5)]! |= 1 << (b & 31);
      if (ho >= 0 && e[ho] !== -1) {
        e[at + 2] = e[ho + 2]!;
        e[at + 3] = e[ho + 3]!;
      } else {
        e[at + 2] = -1;
        e[at + 3] = NEW << 8;
      }
    }
    const vs = e[at + 3]!;
    let votes = vs & 255;
    if (e[at + 2] !== t) {
      e[at + 2] = t;
      votes = Math.min(255, votes + w);
      e[at + 3] = (vs & ~255) | votes;
    }
    out[0] = votes;
    out[1] = h;
    return vs >> 8;
  }

  /** Votes of a neighbouring alignment (0 if none). */
  votesAt(slot: number, s: number): number {
    let v = 0;
    for (let g = 0; g < 2; g++) {
      if (!this.#mayHave(g, slot, s)) continue;
      const at = this.#find(g, slot, s) * ENTRY_WORDS;
      if (this.#e[at] !== -1) v = Math.max(v, this.#e[at + 3]! & 255);
    }
    return v;
  }

  /** Sets the state of the entry behind `handle` (from {@link vote}). */
  setState(handle: number, state: number): void {
    const at = handle * ENTRY_WORDS + 3;
    this.#e[at] = (this.#e[at]! & 255) | (state << 8);
  }

  #grow(): void {
    const old = this.#e;
    const oldCap = this.#cap;
    this.#cap = oldCap * 2;
    this.#e = VoteTable.#entries(this.#cap);
    this.#used = [0, 0];
    const e = this.#e;
    for (let g = 0; g < 2; g++) {
      for (let i = g * oldCap * ENTRY_WORDS; i < (g + 1) * oldCap * ENTRY_WORDS; i += ENTRY_WORDS) {
        const key = old[i]!;
        if (key === -1) continue;
        const at = this.#find(g, key, old[i + 1]!) * ENTRY_WORDS;
        e.set(old.subarray(i, i + ENTRY_WORDS), at);
        this.#used[g]!++;
      }
    }
  }
}

/** Frames a vote table generation spans (≥ a block, so a candidate's votes live in two generations). */
export const EPOCH_FRAMES = 160;
