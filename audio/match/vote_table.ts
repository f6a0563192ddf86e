/**
 * The forward search's votes: per alignment (signature slot, target frame of its frame 0) the votes its lookup
 * hits gave, in typed arrays that expire old alignments without deletions.
 * @module
 */

import { SIGNATURE_MAX_FRAMES } from "../fingerprint/signature.ts";

/** Bits (log2) of a vote-table generation's filter of present alignments: 32768 bits, 4 KB. */
const SEEN_LOG2 = 15;
const SEEN_WORDS = (1 << SEEN_LOG2) >> 5;

/** Vote-table entry states: gathering votes, or handed to the checks (never queued twice). */
export const NEW = 0, QUEUED = 1;

/** Int32 words per entry of a {@link VoteTable}: its key, then 0 (a free place) or its fields (see {@link fields}). */
const ENTRY_WORDS = 2;
/** Low bits of an alignment's frame s kept in its key, and of the last voting frame kept in its fields. */
const S_BITS = 9;
const S_MASK = (1 << S_BITS) - 1;
/** Frames between a voting target frame t and the alignment s it votes for: t − s in [0, MAX_LAG). */
export const MAX_LAG = SIGNATURE_MAX_FRAMES;
const OCCUPIED = 1 << 30;

/** Key of alignment (slot, s): slot and the low S_BITS of s (unique among the live alignments, see VoteTable). */
function keyOf(slot: number, s: number): number {
  return (slot << S_BITS) | (s & S_MASK);
}

/** Fields word of an entry: occupied, state, votes (0..255) and the low S_BITS of the last voting frame. */
function fields(state: number, votes: number, last: number): number {
  return OCCUPIED | (state << 17) | (votes << S_BITS) | (last & S_MASK);
}

/**
 * Votes per alignment (signature slot, target frame s of its frame 0) in one typed array: two open-addressed
 * generations of EPOCH frames each, so entries expire without deletions (a candidate's hits span at most one
 * block, i.e. two consecutive epochs). Grows when a generation fills up. An entry is 8 bytes, eight to a cache
 * line (a vote for an alignment not seen for a while, the common case, misses the cache once, and the tables of
 * many streams share the cache): the live alignments of a slot lie within two epochs and a block's lag of each
 * other, fewer than 2^S_BITS frames, so the low bits of s tell them apart; so do the low bits of the last voting
 * frame tell it from the current one.
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
    this.#e = new Int32Array(2 * cap * ENTRY_WORDS);
  }

  /** Bytes held. */
  get bytes(): number {
    return this.#e.byteLength + this.#seen.byteLength;
  }

  /**
   * Moves to the epoch of frame `t` (clearing the older generation when a new epoch starts). Epochs of
   * `epochFrames` must keep two epochs and a lag within 2^S_BITS frames.
   */
  advance(t: number, epochFrames: number): void {
    if (2 * epochFrames + MAX_LAG > 1 << S_BITS) {
      throw new RangeError(`VoteTable: epochs of ${epochFrames} frames are too long`);
    }
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
    for (let i = g * this.#cap * ENTRY_WORDS + 1; i < end; i += ENTRY_WORDS) e[i] = 0;
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

  /**
   * Place of the alignment with key `key` in a generation (from the key alone, so that growing can move
   * entries): alignments of a slot in runs of eight places (one cache line), so that s and its neighbours,
   * looked up together by the neighbour check, mostly share a line.
   */
  #home(key: number): number {
    const run = Math.imul(key >>> S_BITS, 0x9e3779b1) ^ Math.imul((key & S_MASK) >> 3, 0x85ebca6b);
    return ((run << 3) | (key & 7)) & (this.#cap - 1);
  }

  /** Index (g·cap + h) of the entry with key `key` in generation g, or of the free place where it would go. */
  #find(g: number, key: number): number {
    const mask = this.#cap - 1, base = g * this.#cap;
    const e = this.#e;
    for (let h = this.#home(key);; h = (h + 1) & mask) {
      const at = (base + h) * ENTRY_WORDS;
      if (e[at + 1] === 0 || e[at] === key) return base + h;
    }
  }

  /**
   * Loads the current generation's place of each alignment (slots[x], t − pos[x]) for x < n: the votes of one
   * target frame, whose table lines are mostly cache misses independent of each other, so loaded together here
   * they overlap instead of stalling one vote after another. Changes nothing; returns a value for the caller to
   * keep, so that the loads are not optimised away.
   */
  touch(slots: Int32Array, pos: Int32Array, t: number, n: number): number {
    const e = this.#e, base = this.#cur * this.#cap;
    let acc = 0;
    for (let x = 0; x < n; x++) {
      acc ^= e[(base + this.#home(keyOf(slots[x]!, t - pos[x]!))) * ENTRY_WORDS + 1]!;
    }
    return acc;
  }

  /**
   * Adds a vote from target frame `t` (once per frame) worth `w` to alignment s (t − MAX_LAG < s ≤ t); returns the entry's state before, the votes after in `out[0]` and a
   * handle (generation·cap + index) in `out[1]`.
   */
  vote(slot: number, s: number, t: number, w: number, out: Int32Array): number {
    if ((t - s) >>> 0 >= MAX_LAG) throw new RangeError(`VoteTable: frame ${t} votes for alignment ${s}`);
    // Merge with the older generation's entry, if any, by moving it into the current one.
    const g = this.#cur;
    const key = keyOf(slot, s);
    const h = this.#find(g, key);
    const e = this.#e, at = h * ENTRY_WORDS;
    let f = e[at + 1]!;
    if (f === 0) {
      if (this.#used[g]! * 10 >= this.#cap * 7) {
        this.#grow();
        return this.vote(slot, s, t, w, out);
      }
      const ho = this.#mayHave(1 - g, slot, s) ? this.#find(1 - g, key) * ENTRY_WORDS : -1;
      e[at] = key;
      this.#used[g]!++;
      const b = this.#seenBit(slot, s);
      this.#seen[g * SEEN_WORDS + (b >>> 5)]! |= 1 << (b & 31);
      // No vote yet: the last voting frame is one that is not t.
      f = ho >= 0 && e[ho + 1] !== 0 ? e[ho + 1]! : fields(NEW, 0, t + 1);
    }
    let votes = (f >> S_BITS) & 255;
    if ((f & S_MASK) !== (t & S_MASK)) {
      votes = Math.min(255, votes + w);
      f = fields((f >> 17) & 1, votes, t);
    }
    e[at + 1] = f;
    out[0] = votes;
    out[1] = h;
    return (f >> 17) & 1;
  }

  /** Votes of a neighbouring alignment (0 if none). */
  votesAt(slot: number, s: number): number {
    let v = 0;
    for (let g = 0; g < 2; g++) {
      if (!this.#mayHave(g, slot, s)) continue;
      const f = this.#e[this.#find(g, keyOf(slot, s)) * ENTRY_WORDS + 1]!;
      if (f !== 0) v = Math.max(v, (f >> S_BITS) & 255);
    }
    return v;
  }

  /** Sets the state of the entry behind `handle` (from {@link vote}). */
  setState(handle: number, state: number): void {
    const at = handle * ENTRY_WORDS + 1;
    this.#e[at] = (this.#e[at]! & ~(1 << 17)) | (state << 17);
  }

  #grow(): void {
    const old = this.#e;
    const oldCap = this.#cap;
    this.#cap = oldCap * 2;
    this.#e = new Int32Array(2 * this.#cap * ENTRY_WORDS);
    this.#used = [0, 0];
    const e = this.#e;
    for (let g = 0; g < 2; g++) {
      for (let i = g * oldCap * ENTRY_WORDS; i < (g + 1) * oldCap * ENTRY_WORDS; i += ENTRY_WORDS) {
        if (old[i + 1] === 0) continue;
        const at = this.#find(g, old[i]!) * ENTRY_WORDS;
        e[at] = old[i]!;
        e[at + 1] = old[i + 1]!;
        this.#used[g]!++;
      }
    }
  }
}

/** Frames a vote table generation spans (≥ a block, so a candidate's votes live in two generations). */
export const EPOCH_FRAMES = 160;
