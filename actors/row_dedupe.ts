/**
 * Duplicate rows of one stream: the same capture time and the same payload seen twice (Pixie delivering a batch
 * again, two captures that overlap). Fed twice, a stream's audio would play every message two times over and
 * match nothing; so the second copy is dropped and counted by the caller.
 * @module
 */

/** Rows older than this (event time) behind the stream's newest are no longer remembered. */
export const DEDUPE_WINDOW_NS = 5_000_000_000n;

// xxHash32 (seed 0): four lanes take 16 bytes a step with no dependency between them, so the CPU runs them
// side by side.
const P1 = 0x9e3779b1, P2 = 0x85ebca77, P3 = 0xc2b2ae3d, P4 = 0x27d4eb2f, P5 = 0x165667b1;

/** The lanes' starting values. */
const XXH_V1 = (P1 + P2) | 0, XXH_V2 = P2 | 0, XXH_V3 = 0, XXH_V4 = -P1 | 0;

/** One lane's step over the 4-byte little-endian chunk `k`. */
function xxhRound(v: number, k: number): number {
  v = (v + Math.imul(k, P2)) | 0;
  return Math.imul((v << 13) | (v >>> 19), P1);
}

/** The four lanes' state after every 16-byte stripe, as one value (inputs of at least 16 bytes). */
function xxhConverge(v1: number, v2: number, v3: number, v4: number): number {
  return (((v1 << 1) | (v1 >>> 31)) + ((v2 << 7) | (v2 >>> 25)) + ((v3 << 12) | (v3 >>> 20)) +
    ((v4 << 18) | (v4 >>> 14))) | 0;
}

/**
 * The hash of `b`, whose stripes made `h` ({@link xxhConverge}; for fewer than 16 bytes, {@link XXH_SHORT}):
 * the bytes from `p` (past the stripes) taken in, then the final mix. Unsigned.
 */
function xxhFinish(h: number, b: Uint8Array, p: number): number {
  const n = b.length;
  h = (h + n) | 0;
  for (; p + 4 <= n; p += 4) {
    const k = b[p]! | (b[p + 1]! << 8) | (b[p + 2]! << 16) | (b[p + 3]! << 24);
    h = (h + Math.imul(k, P3)) | 0;
    h = Math.imul((h << 17) | (h >>> 15), P4);
  }
  for (; p < n; p++) {
    h = (h + Math.imul(b[p]!, P5)) | 0;
    h = Math.imul((h << 11) | (h >>> 21), P1);
  }
  h ^= h >>> 15;
  h = Math.imul(h, P2);
  h ^= h >>> 13;
  h = Math.imul(h, P3);
  h ^= h >>> 16;
  return h >>> 0;
}

/** The stripes' value of an input shorter than 16 bytes. */
const XXH_SHORT = P5;

/** 32-bit words of the buffer {@link hash32} read last (a capture's slab: most payloads are views of one). */
let words: Uint32Array | undefined;

/**
 * A 32-bit hash of the bytes: xxHash32, ~1.5x faster on a payload than MurmurHash3's one
 * chain, whose every step waited for the last (hashing was most of a row's dedupe). The chunks are the payload's
 * own 4-byte steps in little-endian order, read as whole words of its buffer (two words shifted together when the
 * payload does not start on a word), the same values as four byte loads each. With the time and the length it
 * names a row.
 */
export function hash32(b: Uint8Array): number {
  const n = b.length;
  if (n < 16) return xxhFinish(XXH_SHORT, b, 0);
  let v1 = XXH_V1, v2 = XXH_V2, v3 = XXH_V3, v4 = XXH_V4;
  const stripes = n >>> 4;
  let s = 0;
  if (LITTLE_ENDIAN) {
    const buf = b.buffer;
    let w = words;
    if (w === undefined || w.buffer !== buf || w.length !== buf.byteLength >>> 2) {
      w = words = new Uint32Array(buf, 0, buf.byteLength >>> 2);
    }
    const off = b.byteOffset, sh = (off & 3) * 8;
    let wi = off >>> 2;
    if (sh === 0) {
      for (; s < stripes; s++, wi += 4) {
        v1 = xxhRound(v1, w[wi]!);
        v2 = xxhRound(v2, w[wi + 1]!);
        v3 = xxhRound(v3, w[wi + 2]!);
        v4 = xxhRound(v4, w[wi + 3]!);
      }
    } else {
      // A stripe's 16 bytes span five words; the last may be the buffer's partial last word (read bytewise below).
      const r = 32 - sh, full = w.length;
      for (; s < stripes && wi + 5 <= full; s++, wi += 4) {
        const a = w[wi]!, c = w[wi + 1]!, d = w[wi + 2]!, e = w[wi + 3]!, f = w[wi + 4]!;
        v1 = xxhRound(v1, (a >>> sh) | (c << r));
        v2 = xxhRound(v2, (c >>> sh) | (d << r));
        v3 = xxhRound(v3, (d >>> sh) | (e << r));
        v4 = xxhRound(v4, (e >>> sh) | (f << r));
      }
    }
  }
  for (let i = s * 16; s < stripes; s++, i += 16) {
    v1 = xxhRound(v1, word(b, i));
    v2 = xxhRound(v2, word(b, i + 4));
    v3 = xxhRound(v3, word(b, i + 8));
    v4 = xxhRound(v4, word(b, i + 12));
  }
  return xxhFinish(xxhConverge(v1, v2, v3, v4), b, stripes * 16);
}

/** The little-endian 4-byte chunk at `i`. */
function word(b: Uint8Array, i: number): number {
  return b[i]! | (b[i + 1]! << 8) | (b[i + 2]! << 16) | (b[i + 3]! << 24);
}

/** Words read from bytes in little-endian order (every platform Deno runs on; the byte path otherwise). */
const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

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
 * four columns cost four (with 1,000s of streams each ring is cold when its next row comes).
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

  /** True if a row with this time and payload was already seen on the stream (then it must be skipped). */
  seen(timeNs: bigint, payload: Uint8Array | undefined): boolean {
    const len = payload === undefined ? -1 : payload.length;
    const h = payload === undefined ? 0 : hash32(payload);
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
