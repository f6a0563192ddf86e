/**
 * The forward search's votes: per alignment (signature slot, target frame of its frame 0) the votes its lookup
 * hits gave, in typed arrays that expire old alignments without deletions.
 * @module
 */

import { SIGNATURE_MAX_FRAMES } from "../fingerprint/signature.ts";

/**
 * Bits (log2) of a vote-table generation's filter of present alignments: about 32 per entry of the generation's
 * table, at most 32768 (4 KB).
 */
const SEEN_BITS_PER_ENTRY_LOG2 = 5;
const SEEN_MAX_LOG2 = 15;
/** A generation grows (by half) when this full. */
const MAX_LOAD = 0.7;
/**
 * A generation is sized to be this full at the end of its epoch: at 0.6 the longer probe runs cost the matcher
 * stage ~8% with 10,000 active signatures (bench/fingerprint_speed.ts), at 0.5 it is as fast as before.
 */
const TARGET_LOAD = 0.5;
/** A generation keeps its table across epochs while it would be between these loads at the end of one. */
const KEEP_LOAD_MIN = 0.45;
const KEEP_LOAD_MAX = 0.6;

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

/** One generation's table: open-addressed entries and the filter of the alignments in it. */
class Generation {
  /** Entries, ENTRY_WORDS each (entry h at h·ENTRY_WORDS). */
  e = new Int32Array(0);
  /** Places (a multiple of 8; 0 until the first vote). */
  cap = 0;
  /** Places per run of eight, over 2^21: a hash's top 21 bits times this is its run (exact in float64). */
  scale = 0;
  used = 0;
  /**
   * A bitset over a hash of (slot, s): bit clear means no such entry here. Most votes are for alignments seen
   * nowhere before, and their lookups in the older generation and of the neighbours are cache misses in a table
   * of a hundred KB; this filter (at most 4 KB) answers most of them (a set bit is only a maybe). Sized with the
   * table when the generation's epoch starts (a grown table keeps its filter).
   */
  seen = new Int32Array(0);
  /** 32 − log2 of the filter's bits. */
  seenShift = 32;

  /** A fresh (empty) table of `cap` places and its filter. */
  allocate(cap: number): void {
    this.cap = cap;
    this.scale = (cap >>> 3) / 2097152;
    this.e = new Int32Array(cap * ENTRY_WORDS);
    this.#newFilter();
    this.used = 0;
  }

  /** An empty filter sized for the table. */
  #newFilter(): void {
    const log2 = Math.min(SEEN_MAX_LOG2, Math.ceil(Math.log2(this.cap)) + SEEN_BITS_PER_ENTRY_LOG2);
    this.seenShift = 32 - log2;
    this.seen = new Int32Array((1 << log2) >> 5);
  }

  /** Bit of (slot, s) in the filter. */
  seenBit(slot: number, s: number): number {
    return Math.imul(slot ^ Math.imul(s, 0x85ebca6b), 0x9e3779b1) >>> this.seenShift;
  }

  /** False if this generation surely has no entry of (slot, s). */
  mayHave(slot: number, s: number): boolean {
    if (this.cap === 0) return false;
    const b = this.seenBit(slot, s);
    return (this.seen[b >>> 5]! & (1 << (b & 31))) !== 0;
  }

  /**
   * Place of the alignment with key `key` (from the key alone, so that growing can move entries): alignments of
   * a slot in runs of eight places (one cache line), so that s and its neighbours, looked up together by the
   * neighbour check, mostly share a line.
   */
  home(key: number): number {
    const run = Math.imul(key >>> S_BITS, 0x9e3779b1) ^ Math.imul((key & S_MASK) >> 3, 0x85ebca6b);
    return (((run >>> 11) * this.scale) << 3) | (key & 7);
  }

  /** Index of the entry with key `key`, or of the free place where it would go. */
  find(key: number): number {
    const cap = this.cap, e = this.e;
    for (let h = this.home(key);; h = h + 1 === cap ? 0 : h + 1) {
      const at = h * ENTRY_WORDS;
      if (e[at + 1] === 0 || e[at] === key) return h;
    }
  }

  /** Empties the table for a new epoch, sized for `expect` alignments (as many as the epoch before had). */
  restart(expect: number, firstCap: number): void {
    if (this.cap === 0) return;
    const want = Math.max(firstCap, Math.ceil(expect / TARGET_LOAD / 8) * 8);
    if (want !== this.cap && (expect < this.cap * KEEP_LOAD_MIN || expect > this.cap * KEEP_LOAD_MAX)) {
      this.allocate(want);
    } else if (this.used > 0) {
      const e = this.e;
      for (let i = 1; i < e.length; i += ENTRY_WORDS) e[i] = 0;
      this.used = 0;
      // A table that grew in its last epoch gets the filter its size deserves.
      if (
        32 - this.seenShift <
          Math.min(SEEN_MAX_LOG2, Math.ceil(Math.log2(this.cap)) + SEEN_BITS_PER_ENTRY_LOG2)
      ) {
        this.#newFilter();
      } else this.seen.fill(0);
    }
  }

  /** The table half as large again, with its entries (the filter stays: it hashes the whole s). */
  grow(): void {
    const old = this.e;
    const cap = Math.ceil((this.cap * 1.5) / 8) * 8;
    this.cap = cap;
    this.scale = (cap >>> 3) / 2097152;
    const e = (this.e = new Int32Array(cap * ENTRY_WORDS));
    for (let i = 0; i < old.length; i += ENTRY_WORDS) {
      if (old[i + 1] === 0) continue;
      const at = this.find(old[i]!) * ENTRY_WORDS;
      e[at] = old[i]!;
      e[at + 1] = old[i + 1]!;
    }
  }
}

/**
 * Votes per alignment (signature slot, target frame s of its frame 0) in typed arrays: two open-addressed
 * generations of EPOCH frames each, so entries expire without deletions (a candidate's hits span at most one
 * block, i.e. two consecutive epochs). An entry is 8 bytes, eight to a cache line (a vote for an alignment not
 * seen for a while, the common case, misses the cache once, and the tables of many streams share the cache): the
 * live alignments of a slot lie within two epochs and a block's lag of each other, fewer than 2^S_BITS frames,
 * so the low bits of s tell them apart; so do the low bits of the last voting frame tell it from the current one.
 *
 * Memory follows the votes: nothing is allocated until the first vote (a stream whose frames never hit an active
 * signature holds no table), and each generation's table is sized when its epoch starts for as many alignments
 * as the epoch before had (growing by half when it fills up): with 10,000 active signatures a stream's
 * generations hold a few thousand alignments each, and tables of a power of two that only grew held 1.4–2.9
 * times what they needed (130–270 KB a stream).
 */
export class VoteTable {
  readonly #firstCap: number;
  /** The current generation (new alignments go here) and the older one. */
  #cur = new Generation();
  #old = new Generation();
  #epoch = -1;

  /**
   * A table of `cap` places per generation (a multiple of 8) from the first vote on; it grows by half when a
   * generation is 70% full, and is sized again for each epoch.
   */
  constructor(cap = 64) {
    if (!(cap >= 8 && cap % 8 === 0)) throw new RangeError(`VoteTable: ${cap} places is not a multiple of 8`);
    this.#firstCap = cap;
  }

  /** Bytes held. */
  get bytes(): number {
    const a = this.#cur, b = this.#old;
    return a.e.byteLength + b.e.byteLength + a.seen.byteLength + b.seen.byteLength;
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
    const old = this.#old;
    this.#old = this.#cur;
    this.#cur = old;
    if (e === this.#epoch + 1) old.restart(this.#old.used, this.#firstCap);
    else {
      old.restart(0, this.#firstCap);
      this.#old.restart(0, this.#firstCap);
    }
    this.#epoch = e;
  }

  /**
   * Loads the current generation's place of each alignment (slots[x], t − pos[x]) for x < n: the votes of one
   * target frame, whose table lines are mostly cache misses independent of each other, so loaded together here
   * they overlap instead of stalling one vote after another. Changes nothing; returns a value for the caller to
   * keep, so that the loads are not optimised away.
   */
  touch(slots: Int32Array, pos: Int32Array, t: number, n: number): number {
    const g = this.#cur;
    if (g.cap === 0) return 0;
    const e = g.e;
    let acc = 0;
    for (let x = 0; x < n; x++) acc ^= e[g.home(keyOf(slots[x]!, t - pos[x]!)) * ENTRY_WORDS + 1]!;
    return acc;
  }

  /**
   * Adds a vote from target frame `t` (once per frame) worth `w` to alignment s (t − MAX_LAG < s ≤ t); returns
   * the entry's state before, the votes after in `out[0]` and a handle (for {@link setState}) in `out[1]`.
   */
  vote(slot: number, s: number, t: number, w: number, out: Int32Array): number {
    if ((t - s) >>> 0 >= MAX_LAG) throw new RangeError(`VoteTable: frame ${t} votes for alignment ${s}`);
    // Merge with the older generation's entry, if any, by moving it into the current one.
    const g = this.#cur;
    if (g.cap === 0) g.allocate(this.#firstCap);
    const key = keyOf(slot, s);
    let h = g.find(key);
    let f = g.e[h * ENTRY_WORDS + 1]!;
    if (f === 0) {
      if (g.used >= g.cap * MAX_LOAD) {
        g.grow();
        h = g.find(key);
      }
      const o = this.#old;
      const older = o.mayHave(slot, s) ? o.e[o.find(key) * ENTRY_WORDS + 1]! : 0;
      g.e[h * ENTRY_WORDS] = key;
      g.used++;
      const b = g.seenBit(slot, s);
      g.seen[b >>> 5]! |= 1 << (b & 31);
      // No vote yet: the last voting frame is one that is not t.
      f = older !== 0 ? older : fields(NEW, 0, t + 1);
    }
    let votes = (f >> S_BITS) & 255;
    if ((f & S_MASK) !== (t & S_MASK)) {
      votes = Math.min(255, votes + w);
      f = fields((f >> 17) & 1, votes, t);
    }
    g.e[h * ENTRY_WORDS + 1] = f;
    out[0] = votes;
    out[1] = h;
    return (f >> 17) & 1;
  }

  /** Votes of a neighbouring alignment (0 if none). */
  votesAt(slot: number, s: number): number {
    return Math.max(this.#votesIn(this.#cur, slot, s), this.#votesIn(this.#old, slot, s));
  }

  #votesIn(g: Generation, slot: number, s: number): number {
    if (!g.mayHave(slot, s)) return 0;
    const f = g.e[g.find(keyOf(slot, s)) * ENTRY_WORDS + 1]!;
    return f !== 0 ? (f >> S_BITS) & 255 : 0;
  }

  /** Sets the state of the entry behind `handle` (from the last {@link vote}: the current generation's). */
  setState(handle: number, state: number): void {
    const e = this.#cur.e, at = handle * ENTRY_WORDS + 1;
    e[at] = (e[at]! & ~(1 << 17)) | (state << 17);
  }
}

/** Frames a vote table generation spans (≥ a block, so a candidate's votes live in two generations). */
export const EPOCH_FRAMES = 160;
