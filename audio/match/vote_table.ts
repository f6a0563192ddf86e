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

/**
 * Votes per alignment (signature slot, target frame of its frame 0) in typed arrays: two open-addressed
 * generations of EPOCH frames each, so entries expire without deletions (a candidate's hits span at most one
 * block, i.e. two consecutive epochs). Grows when a generation fills up.
 */
export class VoteTable {
  #cap: number;
  /** Per field one array of both generations: generation g's entry h is at g·cap + h. */
  #slot: Int32Array;
  #s: Int32Array;
  #votes: Uint8Array;
  #last: Int32Array;
  #state: Uint8Array;
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
    this.#slot = new Int32Array(2 * cap).fill(-1);
    this.#s = new Int32Array(2 * cap);
    this.#votes = new Uint8Array(2 * cap);
    this.#last = new Int32Array(2 * cap);
    this.#state = new Uint8Array(2 * cap);
  }

  /** Bytes held. */
  get bytes(): number {
    return this.#cap * 2 * 14 + this.#seen.byteLength;
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
    this.#slot.fill(-1, g * this.#cap, (g + 1) * this.#cap);
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
    const keys = this.#slot, ss = this.#s;
    // Alignments of a slot in runs of four places (16 bytes of keys, one cache line): s and its neighbours,
    // looked up together by the neighbour check, then mostly share a line instead of hitting three random ones.
    let h = ((Math.imul(slot, 0x9e3779b1) ^ Math.imul(s >> 2, 0x85ebca6b)) << 2 | (s & 3)) & mask;
    for (;;) {
      const k = keys[base + h]!;
      if (k === -1 || (k === slot && ss[base + h] === s)) return base + h;
      h = (h + 1) & mask;
    }
  }

  /**
   * Adds a vote from target frame `t` (once per frame) worth `w`; returns the entry's state before, the
   * votes after in `out[0]` and a handle (generation·cap + index) in `out[1]`.
   */
  vote(slot: number, s: number, t: number, w: number, out: Int32Array): number {
    // Merge with the older generation's entry, if any, by moving it into the current one.
    const g = this.#cur;
    const h = this.#find(g, slot, s);
    const keys = this.#slot, votes = this.#votes, last = this.#last, states = this.#state;
    if (keys[h] === -1) {
      if (this.#used[g]! * 10 >= this.#cap * 7) {
        this.#grow();
        return this.vote(slot, s, t, w, out);
      }
      const ho = this.#mayHave(1 - g, slot, s) ? this.#find(1 - g, slot, s) : -1;
      keys[h] = slot;
      this.#s[h] = s;
      this.#used[g]!++;
      const b = this.#seenBit(slot, s);
      this.#seen[g * SEEN_WORDS + (b >>> 5)]! |= 1 << (b & 31);
      if (ho >= 0 && keys[ho] !== -1) {
        votes[h] = votes[ho]!;
        last[h] = last[ho]!;
        states[h] = states[ho]!;
      } else {
        votes[h] = 0;
        last[h] = -1;
        states[h] = NEW;
      }
    }
    const state = states[h]!;
    if (last[h] !== t) {
      last[h] = t;
      votes[h] = Math.min(255, votes[h]! + w);
    }
    out[0] = votes[h]!;
    out[1] = h;
    return state;
  }

  /** Votes of a neighbouring alignment (0 if none). */
  votesAt(slot: number, s: number): number {
    let v = 0;
    for (let g = 0; g < 2; g++) {
      if (!this.#mayHave(g, slot, s)) continue;
      const h = this.#find(g, slot, s);
      if (this.#slot[h] !== -1) v = Math.max(v, this.#votes[h]!);
    }
    return v;
  }

  /** Sets the state of the entry behind `handle` (from {@link vote}). */
  setState(handle: number, state: number): void {
    this.#state[handle] = state;
  }

  #grow(): void {
    const old = { slot: this.#slot, s: this.#s, votes: this.#votes, last: this.#last, state: this.#state };
    const oldCap = this.#cap;
    const cap = oldCap * 2;
    this.#cap = cap;
    this.#slot = new Int32Array(2 * cap).fill(-1);
    this.#s = new Int32Array(2 * cap);
    this.#votes = new Uint8Array(2 * cap);
    this.#last = new Int32Array(2 * cap);
    this.#state = new Uint8Array(2 * cap);
    this.#used = [0, 0];
    for (let g = 0; g < 2; g++) {
      for (let i = g * oldCap; i < (g + 1) * oldCap; i++) {
        const key = old.slot[i]!;
        if (key === -1) continue;
        const h = this.#find(g, key, old.s[i]!);
        this.#slot[h] = key;
        this.#s[h] = old.s[i]!;
        this.#votes[h] = old.votes[i]!;
        this.#last[h] = old.last[i]!;
        this.#state[h] = old.state[i]!;
        this.#used[g]!++;
      }
    }
  }
}

/** Frames a vote table generation spans (≥ a block, so a candidate's votes live in two generations). */
export const EPOCH_FRAMES = 160;
