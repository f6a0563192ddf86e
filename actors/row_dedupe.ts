/**
 * Duplicate rows of one stream: the same capture time and the same payload seen twice (Pixie delivering a batch
 * again, two captures that overlap). Fed twice, a stream's audio would play every message two times over and
 * match nothing; so the second copy is dropped and counted by the caller.
 * @module
 */

import { hash32 } from "../util/xxhash32.ts";

/** The payload hash of a row (util/xxhash32.ts). */
export { hash32 };

/** Rows older than this (event time) behind the stream's newest are no longer remembered. */
export const DEDUPE_WINDOW_NS = 5_000_000_000n;

/** Most rows remembered per stream, whatever their times (a bad clock must not make the memory grow). */
export const DEDUPE_MAX_ROWS = 512;

const WORDS = new Uint32Array(2);
const I64 = new BigInt64Array(WORDS.buffer);
const WINDOW = Number(DEDUPE_WINDOW_NS);

/** `a - b` for times given as (hi signed, lo unsigned) words: exact within 2^53, the right sign beyond. */
function diff(aHi: number, aLo: number, bHi: number, bLo: number): number {
  return (aHi - bHi) * 4294967296 + (aLo - bLo);
}

/**
 * Rows a new stream's ring holds before it grows (a power of two): a live stream needs 256 within its first 5 s,
 * and each doubling on the way copies the ring; from 64 (1 KB) that is two copies, from 16 it was four.
 */
const INITIAL_ROWS = 64;

/** Words of one remembered row in {@link RecentRows}: time (two words), payload length and hash. */
const ENTRY_WORDS = 4;
const ENTRY_BYTES = 4 * ENTRY_WORDS;

/**
 * The recent rows of one stream. A row is named by its time, its payload's length and its payload's hash (no
 * payload: length -1, hash 0); they are kept in insertion order in a ring (forgetting is always from the
 * oldest). A row later than every row held (a stream's rows come in capture order: nearly every row) cannot have
 * been seen and is only appended; any other is looked for in the whole ring, lowest time word first. Before, an
 * open-addressed index of the ring was probed and updated for every row, in a busy sensor a cache miss or two
 * each time (the index and the ring of each stream far apart), about as much as hashing the payload; a scan of
 * a full ring (512 rows) costs less than a microsecond, for the few rows that come back in time. Times are kept
 * as two 32-bit words, so no bigint is made or compared per row (a decimal rendering of the bigint time per row
 * once cost more than the rest, and a Map of keys most of what was left). An entry's four words lie together in
 * one array (time high, time low, length, hash): a row appended touches one cache line of its stream's ring, where
 * four columns cost four (with 1,000s of streams each ring is cold when its next row comes). (Tried, session 24:
 * the newest, latest and jump times' low words kept as int32 fields, lest a word past 2^31 make V8 box them; an
 * A/B over 750 and 2,250 cold rings measured no difference, 28.6 vs 27.5 ns a row alone, 588 vs 591 with a
 * cache-thrashing walk between rows.)
 */
export class RecentRows {
  /** Entries of {@link ENTRY_WORDS} words; capacity `#cap` entries (a power of two). */
  #e = new Int32Array(INITIAL_ROWS * ENTRY_WORDS);
  #cap = INITIAL_ROWS;
  /** Ring of `#count` entries from `#head`. */
  #head = 0;
  #count = 0;
  #hasNewest = false;
  #newestHi = 0;
  #newestLo = 0;
  /** No row held is later than this time (the latest appended since the ring was last empty). */
  #maxHi = 0;
  #maxLo = 0;
  /** A row further than the window past the newest, not yet followed on from (see {@link seen}). */
  #hasJump = false;
  #jumpHi = 0;
  #jumpLo = 0;

  /**
   * True if a row with this time and payload was already seen on the stream (then it must be skipped). `hash`:
   * the payload's {@link hash32} when the caller has it (Pixie's rows come with it: pixie/delivered_rows.ts
   * computes it as it hashes the row), else it is computed here. `place`: the row's place among messages one
   * packet completed at that time (packet rows' `msg_index`; 0 for the first), so identical messages of one packet
   * are not taken for one row delivered twice, while the same packet read twice (a capture given twice) still is.
   */
  seen(timeNs: bigint, payload: Uint8Array | undefined, hash?: number, place = 0): boolean {
    const len = payload === undefined ? -1 : payload.length;
    let h = payload === undefined ? 0 : hash ?? hash32(payload);
    // Messages at one capture time that are distinct by their place in it (packets/rows.ts `msg_index`).
    if (place !== 0) h = (h ^ Math.imul(place, 0x9e3779b1)) | 0;
    I64[0] = timeNs;
    const lo = WORDS[0]!, hi = WORDS[1]! | 0;
    if (this.#count === 0 || diff(hi, lo, this.#maxHi, this.#maxLo) > 0) {
      this.#maxHi = hi;
      this.#maxLo = lo;
    } else if (this.#find(hi, lo | 0, len, h | 0)) return true;
    // Full: the oldest goes first, so the ring never doubles past the bound for one row more.
    if (this.#count >= DEDUPE_MAX_ROWS) this.#dropOldest();
    this.#append(hi, lo, len, h);
    // Only a plausible step forward prunes: one row from the future must not make the stream forget the rest. A
    // jump further than the window (a pause in the call, rows shed under overload) counts once the next row
    // follows on from it; else the stream's newest stayed behind for good and its ring held its bound of rows.
    // So does a jump back further than the window (a clock stepped back, or the newest rows were a clock's
    // garbage from the future); the rows held from beyond the window ahead of it then go, else every later row
    // was searched for in a full ring for good.
    const step = this.#hasNewest ? diff(hi, lo, this.#newestHi, this.#newestLo) : 0;
    let plausible = !this.#hasNewest || (step > 0 && step <= WINDOW);
    if (!plausible && (step > WINDOW || step < -WINDOW)) {
      const after = this.#hasJump ? diff(hi, lo, this.#jumpHi, this.#jumpLo) : -1;
      if (after > 0 && after <= WINDOW) plausible = true;
      this.#hasJump = !plausible;
      this.#jumpHi = hi;
      this.#jumpLo = lo;
      if (plausible && step < 0) this.#forgetAfter(hi, lo);
    } else if (plausible) this.#hasJump = false;
    if (plausible) {
      this.#hasNewest = true;
      this.#newestHi = hi;
      this.#newestLo = lo;
      // Older than newest - window: newest - t > window.
      const e = this.#e, mask = this.#cap - 1;
      while (this.#count > 0) {
        const i = (this.#head & mask) * ENTRY_WORDS;
        if (!(diff(hi, lo, e[i]!, e[i + 1]! >>> 0) > WINDOW)) break;
        this.#dropOldest();
      }
    }
    return false;
  }

  /** Rows remembered (bounded by the window). */
  get size(): number {
    return this.#count;
  }

  /** Bytes of the ring (one buffer). */
  get bytes(): number {
    return this.#cap * ENTRY_BYTES;
  }

  /** Whether a row of this time, length and hash (words as int32) is held: every held row compared. */
  #find(hi: number, lo: number, len: number, h: number): boolean {
    const e = this.#e, mask = this.#cap - 1;
    for (let k = 0, n = this.#count; k < n; k++) {
      const i = ((this.#head + k) & mask) * ENTRY_WORDS;
      if (e[i + 1] === lo && e[i + 3] === h && e[i + 2] === len && e[i] === hi) return true;
    }
    return false;
  }

  #append(hi: number, lo: number, len: number, h: number): void {
    if (this.#count === this.#cap) this.#grow();
    const i = ((this.#head + this.#count) & (this.#cap - 1)) * ENTRY_WORDS;
    const e = this.#e;
    e[i] = hi;
    e[i + 1] = lo;
    e[i + 2] = len;
    e[i + 3] = h;
    this.#count++;
  }

  #grow(): void {
    const cap = this.#cap, old = this.#e;
    const e = this.#e = new Int32Array(2 * cap * ENTRY_WORDS);
    // Full ring: the entries from the head to the end, then those before the head (a view per entry cost more
    // than the copy, a new stream growing to its 5 s of rows).
    const head = this.#head * ENTRY_WORDS;
    e.set(old.subarray(head));
    e.set(old.subarray(0, head), old.length - head);
    this.#cap = 2 * cap;
    this.#head = 0;
  }

  /**
   * Forgets the rows held from more than the window after (hi, lo), keeping the others in order, and makes the
   * latest of those kept the newest time held.
   */
  #forgetAfter(hi: number, lo: number): void {
    const e = this.#e, mask = this.#cap - 1;
    let kept = 0, maxHi = hi, maxLo = lo;
    for (let k = 0, n = this.#count; k < n; k++) {
      const from = ((this.#head + k) & mask) * ENTRY_WORDS;
      const tHi = e[from]!, tLo = e[from + 1]! >>> 0;
      if (diff(tHi, tLo, hi, lo) > WINDOW) continue;
      const to = ((this.#head + kept) & mask) * ENTRY_WORDS;
      if (to !== from) e.copyWithin(to, from, from + ENTRY_WORDS);
      if (diff(tHi, tLo, maxHi, maxLo) > 0) {
        maxHi = tHi;
        maxLo = tLo;
      }
      kept++;
    }
    this.#count = kept;
    this.#maxHi = maxHi;
    this.#maxLo = maxLo;
  }

  #dropOldest(): void {
    this.#head = (this.#head + 1) & (this.#cap - 1);
    this.#count--;
  }
}
