/**
 * The forward search's votes: which alignments (signature slot, target frame s of its frame 0) the lookup hits
 * voted for, and which of them became candidates, in typed arrays that expire old alignments without deletions.
 * @module
 */

import { SIGNATURE_MAX_FRAMES } from "../fingerprint/signature.ts";
import { hitVotes } from "./lookup.ts";

/** Frames between a voting target frame t and the alignment s it votes for: t − s in [0, MAX_LAG). */
export const MAX_LAG = SIGNATURE_MAX_FRAMES;
/**
 * Frames a generation spans: a block's lag, so that a vote can reach no alignment of the generation before the
 * older one (every vote for an alignment s comes from a frame in [s, s + MAX_LAG)), and the alignments of one
 * generation, s in [E − MAX_LAG + 1, E + EPOCH_FRAMES) for the epoch starting at E, fit in {@link REL_BITS}.
 */
export const EPOCH_FRAMES = MAX_LAG;
/** Values of an alignment's s relative to its generation's first possible s (rel), and the bits they take. */
const REL_SPAN = EPOCH_FRAMES + MAX_LAG - 1;
const REL_BITS = 8;
const REL_MASK = (1 << REL_BITS) - 1;
if (REL_SPAN > 1 << REL_BITS) throw new Error("vote_table: a generation's alignments do not fit in its keys");
/** An entry's flag: the alignment is a candidate already (never handed out twice). */
const QUEUED = 1 << 31;
/** Places per run: a cache line of 4-byte entries; an alignment's neighbours s ± 1 mostly share its run. */
const RUN = 16;
/** A generation grows (by half) when this full. */
const MAX_LOAD = 0.75;
/** A generation is sized to be this full at the end of its epoch. */
const TARGET_LOAD = 0.55;
/** A generation keeps its table across epochs while it would be between these loads at the end of one. */
const KEEP_LOAD_MIN = 0.45;
const KEEP_LOAD_MAX = 0.65;
/** Occupancy bits per place of a generation (rounded up to a power of two): see {@link Generation.occ}. */
const OCC_BITS_PER_PLACE = 4;
/** A vote of this worth makes its alignment a candidate on its own (see {@link VoteTable.vote}). */
export const CANDIDATE_VOTES = 2;

/**
 * A slot's hash: the part of its places and occupancy bits, in both generations, that depends on the slot alone
 * (computed once per vote, not once per place or bit looked at).
 */
const slotHash = (slot: number): number => Math.imul(slot, 0x9e3779b1);

/** One generation's table: open-addressed entries of the alignments voted for in its epoch. */
class Generation {
  /**
   * Entries: 0 (a free place) or 1 + (slot << REL_BITS | rel), rel = s − base, with the QUEUED flag. The key
   * leaves the top bit free for slots below 2^23 (SignatureIndex's most).
   */
  e = new Int32Array(0);
  /** Places (a multiple of RUN; 0 until the first vote). */
  cap = 0;
  /** Runs over 2^21: a hash's top 21 bits times this is its run (exact in float64). */
  scale = 0;
  used = 0;
  /** The first s this generation's epoch can vote for: its first frame − MAX_LAG + 1. */
  base = 0;
  /**
   * Occupancy bits: one per (slot, s >> 2) hashed, set for every entry. A vote's alignment has no entry for
   * s − 1..s + 1 when their bits are clear, which the vote tells from one or two bits instead of three lookups
   * (most votes are the only one near their alignment).
   */
  occ = new Int32Array(0);
  /** 32 − log2 of the occupancy bits. */
  occShift = 32;

  /** A fresh (empty) table of `cap` places. */
  allocate(cap: number): void {
    this.cap = cap;
    this.scale = cap / RUN / 2097152;
    this.e = new Int32Array(cap);
    this.used = 0;
    let bits = 32;
    while (bits < cap * OCC_BITS_PER_PLACE) bits *= 2;
    this.occ = new Int32Array(bits >> 5);
    this.occShift = 32 - Math.log2(bits);
  }

  /** The occupancy bit of alignments (slot, s) with the same s >> 2 (`hs`: the slot's {@link slotHash}). */
  occBit(hs: number, s: number): number {
    return (hs ^ Math.imul(s >> 2, 0x85ebca6b)) >>> this.occShift;
  }

  /** Sets the occupancy bit of (slot, s) (`hs`: the slot's {@link slotHash}). */
  mark(hs: number, s: number): void {
    const b = this.occBit(hs, s);
    this.occ[b >>> 5]! |= 1 << (b & 31);
  }

  /**
   * False if this generation holds no entry (slot, s') with s' >> 2 equal to (s − 1) >> 2 or (s + 1) >> 2, which
   * s − 1..s + 1 fall in (true may be a collision): one bit, or two when s is at the edge of its four. `hs`: the
   * slot's {@link slotHash}.
   */
  near(hs: number, s: number): boolean {
    // Past its alignments (the older generation for a vote after its epoch's last frame, about half of them): no
    // bits to read.
    if (this.cap === 0 || s - 1 - this.base >= REL_SPAN) return false;
    const occ = this.occ, shift = this.occShift;
    const lo = (hs ^ Math.imul((s - 1) >> 2, 0x85ebca6b)) >>> shift;
    if ((occ[lo >>> 5]! & (1 << (lo & 31))) !== 0) return true;
    if ((s - 1) >> 2 === (s + 1) >> 2) return false;
    const hi = (hs ^ Math.imul((s + 1) >> 2, 0x85ebca6b)) >>> shift;
    return (occ[hi >>> 5]! & (1 << (hi & 31))) !== 0;
  }

  /**
   * Place of the alignment (slot, rel) (from the key alone, so that growing can move entries): the alignments of
   * a slot in runs of RUN places (one cache line) by rel / RUN, so that s and its neighbours, looked up
   * together, mostly share a line. `hs`: the slot's {@link slotHash}.
   */
  home(hs: number, rel: number): number {
    const run = hs ^ Math.imul(rel >> 4, 0x85ebca6b);
    return (((run >>> 11) * this.scale) << 4) | (rel & (RUN - 1));
  }

  /**
   * Index of the entry whose word is `word` (1 + key, without the QUEUED flag), or of the free place where it
   * would go, from its {@link home} `h` on.
   */
  find(h: number, word: number): number {
    const cap = this.cap, e = this.e;
    for (;; h = h + 1 === cap ? 0 : h + 1) {
      const w = e[h]!;
      if (w === 0 || (w & ~QUEUED) === word) return h;
    }
  }

  /** The entry of s (0 if none: also for an s this generation cannot hold); `hs`: the slot's {@link slotHash}. */
  get(hs: number, slot: number, s: number): number {
    const rel = s - this.base;
    if (this.cap === 0 || rel >>> 0 >= REL_SPAN) return 0;
    return this.e[this.find(this.home(hs, rel), ((slot << REL_BITS) | rel) + 1)]!;
  }

  /** Empties the table for the epoch of frames from `first`, sized for `expect` alignments. */
  restart(first: number, expect: number, firstCap: number): void {
    this.base = first - MAX_LAG + 1;
    if (this.cap === 0) return;
    const want = Math.max(firstCap, Math.ceil(expect / TARGET_LOAD / RUN) * RUN);
    if (want !== this.cap && (expect < this.cap * KEEP_LOAD_MIN || expect > this.cap * KEEP_LOAD_MAX)) {
      this.allocate(want);
    } else if (this.used > 0) {
      this.e.fill(0);
      this.occ.fill(0);
      this.used = 0;
    }
  }

  /**
   * The table, with its entries, half as large again or, at frame `t` of its epoch, as large as the epoch's
   * alignments at their rate so far would fill to {@link TARGET_LOAD} (at most four times as large): a
   * generation sized after a quiet epoch (a pause in the call) reaches its size in one or two steps rather than
   * growing by half again and again, each time inserting every entry anew.
   */
  grow(t: number): void {
    const old = this.e;
    const frames = Math.max(1, t - (this.base + MAX_LAG - 1) + 1);
    const expect = (this.used * EPOCH_FRAMES) / frames / TARGET_LOAD;
    const cap = Math.max(this.cap * 1.5, Math.min(this.cap * 4, expect));
    this.allocate(Math.ceil(cap / RUN) * RUN);
    const e = this.e;
    for (let i = 0; i < old.length; i++) {
      const w = old[i]!;
      if (w === 0) continue;
      const key = (w & ~QUEUED) - 1, hs = slotHash(key >>> REL_BITS);
      e[this.find(this.home(hs, key & REL_MASK), key + 1)] = w;
      this.mark(hs, this.base + (key & REL_MASK));
      this.used++;
    }
  }
}

/**
 * The votes of the forward search per alignment (signature slot, target frame s of its frame 0), and the rule
 * that makes an alignment a candidate: two votes from different target frames (a near-exact hit is worth two
 * on its own), or one with a vote for a neighbouring alignment s ± 1 (the grids differ by up to half a hop).
 *
 * Most votes are the only one their alignment ever gets (with 10,000 active signatures, 98% of them), so the
 * table keeps what the rule needs and no more: a 4-byte entry per alignment voted for, holding its key and
 * whether it is a candidate already; an alignment that is not yet a candidate has exactly one vote (two would
 * have made it one), and the target frame that gave it matters only for the votes of that same frame, which
 * {@link vote} tells by the keys it added during the frame.
 *
 * Two open-addressed generations of EPOCH_FRAMES frames each expire alignments without deletions: every vote
 * for s comes from a frame in [s, s + MAX_LAG), so once a generation is two epochs old no vote, and no
 * neighbour lookup, can reach its alignments. Memory follows the votes: nothing is allocated until the first
 * vote, and each generation's table is sized when its epoch starts for as many alignments as the epoch before
 * had (growing by half when it fills up).
 */
export class VoteTable {
  readonly #firstCap: number;
  /** The current generation (new alignments go here) and the older one. */
  #cur = new Generation();
  #old = new Generation();
  #epoch = -1;
  /** Keys added to the current generation as not candidates during frame #frame (see {@link vote}). */
  #fresh = new Int32Array(64);
  #freshCount = 0;
  #frame = -1;
  #grows = 0;
  /** What {@link voteFrame}'s loads read, kept so that they are not optimised away. */
  #sink = 0;
  /** {@link voteFrame}'s scratch: per hit the home of its alignment in the current generation. */
  #homes = new Int32Array(64);

  /**
   * A table of `cap` places per generation (a multiple of 16) from the first vote on; it grows by half when a
   * generation is 75% full, and is sized again for each epoch.
   */
  constructor(cap = 64) {
    if (!(cap >= RUN && cap % RUN === 0)) {
      throw new RangeError(`VoteTable: ${cap} places is not a multiple of ${RUN}`);
    }
    this.#firstCap = cap;
  }

  /** Bytes held. */
  get bytes(): number {
    const c = this.#cur, o = this.#old;
    return c.e.byteLength + o.e.byteLength + c.occ.byteLength + o.occ.byteLength + this.#fresh.byteLength;
  }

  /** Times a generation grew within its epoch (each inserts every entry anew). */
  get grows(): number {
    return this.#grows;
  }

  /** Moves to the epoch of frame `t` (clearing the older generation when a new epoch starts). */
  advance(t: number): void {
    const e = Math.floor(t / EPOCH_FRAMES);
    if (e === this.#epoch) return;
    const old = this.#old;
    this.#old = this.#cur;
    this.#cur = old;
    const first = e * EPOCH_FRAMES;
    if (e === this.#epoch + 1) old.restart(first, this.#old.used, this.#firstCap);
    else {
      old.restart(first, 0, this.#firstCap);
      this.#old.restart(first - EPOCH_FRAMES, 0, this.#firstCap);
    }
    this.#epoch = e;
  }

  /**
   * The votes of target frame `t` (frames in ascending order): hit x < n votes for alignment (slots[x],
   * t − pos[x]) (0 ≤ pos[x] < MAX_LAG) a worth of `hitVotes(dist[x])`, as {@link vote} one after another. The
   * alignments that became candidates are written over the first hits, in order (slot to `slots`, t − s to `pos`);
   * returns how many. One call a frame rather than one a vote: its table lines and occupancy words in the current
   * generation, mostly cache misses independent of each other, are loaded together first (so they overlap instead
   * of stalling one vote after another; the older generation's are left: loading its words too did not pay, and
   * with the occupancy bits a vote reads its lines only when they hold an entry near its alignment), and the
   * frame's bookkeeping is done once.
   */
  voteFrame(slots: Int32Array, pos: Int32Array, dist: Int32Array, n: number, t: number): number {
    if (n === 0) return 0;
    this.#begin(t);
    const c = this.#cur;
    const ce = c.e, cb = t - c.base, occ = c.occ;
    if (this.#homes.length < n) this.#homes = new Int32Array(2 * n);
    const homes = this.#homes;
    let acc = 0;
    for (let x = 0; x < n; x++) {
      const hs = slotHash(slots[x]!), h = c.home(hs, cb - pos[x]!);
      homes[x] = h;
      acc ^= ce[h]! ^ occ[c.occBit(hs, t - pos[x]! - 1) >>> 5]!;
    }
    this.#sink ^= acc;
    let m = 0;
    for (let x = 0; x < n; x++) {
      const slot = slots[x]!, p = pos[x]!;
      if (p >>> 0 >= MAX_LAG) throw new RangeError(`VoteTable: frame ${t} votes for alignment ${t - p}`);
      // The homes stand while the generation keeps its table (a vote that grows it finds its place anew).
      if (this.#cast(slot, t - p, t, hitVotes(dist[x]!), c.e === ce ? homes[x]! : -1)) {
        slots[m] = slot;
        pos[m++] = p;
      }
    }
    return m;
  }

  /**
   * Adds a vote worth `w` (1 or 2) from target frame `t` to alignment s (t − MAX_LAG < s ≤ t; frames in
   * ascending order, a frame's votes together): true if that makes the alignment a candidate (by the rule
   * above), which it is from then on, so true comes once per alignment.
   */
  vote(slot: number, s: number, t: number, w: number): boolean {
    if ((t - s) >>> 0 >= MAX_LAG) throw new RangeError(`VoteTable: frame ${t} votes for alignment ${s}`);
    this.#begin(t);
    return this.#cast(slot, s, t, w, -1);
  }

  /** Notes that votes of frame `t` come next (a new frame: none of its keys added yet). */
  #begin(t: number): void {
    if (t !== this.#frame) {
      this.#frame = t;
      this.#freshCount = 0;
    }
    if (this.#cur.cap === 0) this.#cur.allocate(this.#firstCap);
  }

  /** {@link vote} of frame `t`, the current one; `home`: the alignment's in the current generation (-1: not known). */
  #cast(slot: number, s: number, t: number, w: number, home: number): boolean {
    const g = this.#cur, o = this.#old, hs = slotHash(slot);
    const rel = s - g.base, word = ((slot << REL_BITS) | rel) + 1;
    let h = g.find(home >= 0 ? home : g.home(hs, rel), word);
    const f = g.e[h]!;
    // Whether each generation may hold an entry for s − 1..s + 1 (see Generation.near): one that does not needs
    // none of its lookups below (a vote near an entry of one generation, a fifth of them, is mostly near none of
    // the other's, whose table lines are cache misses).
    let gNear = true, oNear = true;
    if (f !== 0) {
      if (f < 0) return false;
      // One vote so far: from another frame this is the second (a candidate), from this one nothing new.
      if (!this.#isFresh(word)) {
        g.e[h] = f | QUEUED;
        return true;
      }
    } else {
      if (g.used >= g.cap * MAX_LOAD) {
        g.grow(t);
        this.#grows++;
        h = g.find(g.home(hs, rel), word);
      }
      g.used++;
      // No entry near s in either generation (the common case): no older vote to merge, no neighbour.
      gNear = g.near(hs, s);
      oNear = o.near(hs, s);
      g.mark(hs, s);
      if (!gNear && !oNear) {
        if (w >= CANDIDATE_VOTES) {
          g.e[h] = word | QUEUED;
          return true;
        }
        g.e[h] = word;
        this.#addFresh(word);
        return false;
      }
      // Merge with the older generation's entry, if any: its one vote came from an earlier frame.
      const older = oNear ? o.get(hs, slot, s) : 0;
      if (older !== 0 || w >= CANDIDATE_VOTES) {
        g.e[h] = word | QUEUED;
        return older >= 0;
      }
      g.e[h] = word;
      this.#addFresh(word);
    }
    // The current generation's neighbours first: they mostly share the line just read.
    if (
      (gNear && (g.get(hs, slot, s - 1) !== 0 || g.get(hs, slot, s + 1) !== 0)) ||
      (oNear && (o.get(hs, slot, s - 1) !== 0 || o.get(hs, slot, s + 1) !== 0))
    ) {
      g.e[h] = word | QUEUED;
      return true;
    }
    return false;
  }

  /** True if alignment (slot, s) has a vote (t − MAX_LAG ≤ s ≤ t + 1 for the current frame t). */
  has(slot: number, s: number): boolean {
    return this.#has(slot, s);
  }

  #has(slot: number, s: number): boolean {
    const hs = slotHash(slot);
    return this.#cur.get(hs, slot, s) !== 0 || this.#old.get(hs, slot, s) !== 0;
  }

  /** True if `word` was added during the current frame. */
  #isFresh(word: number): boolean {
    const f = this.#fresh;
    for (let i = this.#freshCount - 1; i >= 0; i--) if (f[i] === word) return true;
    return false;
  }

  #addFresh(word: number): void {
    if (this.#freshCount === this.#fresh.length) {
      const grown = new Int32Array(this.#fresh.length * 2);
      grown.set(this.#fresh);
      this.#fresh = grown;
    }
    this.#fresh[this.#freshCount++] = word;
  }
}
