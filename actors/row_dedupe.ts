/**
 * Duplicate rows of one stream: the same capture time and the same payload seen twice (Pixie delivering a batch
 * again, two captures that overlap). Fed twice, a stream's audio would play every message two times over and
 * match nothing; so the second copy is dropped and counted by the caller.
 * @module
 */

/** Rows older than this (event time) behind the stream's newest are no longer remembered. */
export const DEDUPE_WINDOW_NS = 5_000_000_000n;

/**
 * A 32-bit hash of the bytes (MurmurHash3's block mix, four bytes a step: a byte-at-a-time FNV over each
 * payload cost as much as the rest of the row's dedupe); with the time and the length it names a row.
 */
export function hash32(b: Uint8Array): number {
  const n = b.length;
  let h = 0x9747b28c ^ n;
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    let k = b[i]! | (b[i + 1]! << 8) | (b[i + 2]! << 16) | (b[i + 3]! << 24);
    k = Math.imul(k, 0xcc9e2d51);
    k = (k << 15) | (k >>> 17);
    h ^= Math.imul(k, 0x1b873593);
    h = (h << 13) | (h >>> 19);
    h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  }
  let k = 0;
  for (let s = 0; i < n; i++, s += 8) k |= b[i]! << s;
  if (k !== 0 || (n & 3) !== 0) {
    k = Math.imul(k, 0xcc9e2d51);
    k = (k << 15) | (k >>> 17);
    h ^= Math.imul(k, 0x1b873593);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** Most rows remembered per stream, whatever their times (a bad clock must not make the memory grow). */
export const DEDUPE_MAX_ROWS = 512;

/**
 * A number naming (time, length, hash) for the index; equal rows give equal numbers, and unequal rows that
 * collide are told apart by comparing the three exactly. `Number(timeNs)` rounds to 256 ns at today's epoch
 * times, which only makes a collision a little likelier.
 */
function indexKey(timeNs: bigint, len: number, h: number): number {
  const t = Number(timeNs);
  const lo = (t % 4294967296) | 0;
  // 30 bits: a small integer, which a Map hashes and compares fastest.
  return (h ^ Math.imul(lo, 0x85ebca6b) ^ Math.imul(len + 1, 0xc2b2ae35)) & 0x3fffffff;
}

/**
 * The recent rows of one stream. A row is named by its time, its payload's length and its payload's hash (no
 * payload: length -1, hash 0); they are kept in insertion order in a ring (forgetting is always
 * from the oldest), with a count per index number so a new row, the usual case, is known new without a scan.
 * No string is built per row (a decimal rendering of the bigint time per row cost more than the rest).
 */
export class RecentRows {
  #times: bigint[] = [];
  #lens = new Int32Array(16);
  #hashes = new Uint32Array(16);
  #keys = new Uint32Array(16);
  /** Ring of `#count` entries from `#head`; capacity is `#lens.length` (a power of two). */
  #head = 0;
  #count = 0;
  /** Entries per index number. */
  readonly #index = new Map<number, number>();
  #newest: bigint | undefined;

  /** True if a row with this time and payload was already seen on the stream (then it must be skipped). */
  seen(timeNs: bigint, payload: Uint8Array | undefined): boolean {
    const len = payload === undefined ? -1 : payload.length;
    const h = payload === undefined ? 0 : hash32(payload);
    const key = indexKey(timeNs, len, h);
    const n = this.#index.get(key);
    if (n !== undefined && this.#find(key, timeNs, len, h)) return true;
    this.#index.set(key, (n ?? 0) + 1);
    this.#append(key, timeNs, len, h);
    if (this.#count > DEDUPE_MAX_ROWS) this.#dropOldest();
    // Only a plausible step forward prunes: one row from the future must not make the stream forget the rest.
    const newest = this.#newest;
    if (newest === undefined || (timeNs > newest && timeNs - newest <= DEDUPE_WINDOW_NS)) {
      this.#newest = timeNs;
      const oldest = timeNs - DEDUPE_WINDOW_NS;
      while (this.#count > 0 && this.#times[this.#head]! < oldest) this.#dropOldest();
    }
    return false;
  }

  /** Rows remembered (bounded by the window). */
  get size(): number {
    return this.#count;
  }

  #find(key: number, timeNs: bigint, len: number, h: number): boolean {
    const mask = this.#lens.length - 1;
    for (let k = 0, i = this.#head; k < this.#count; k++, i = (i + 1) & mask) {
      if (
        this.#keys[i] === key && this.#hashes[i] === h && this.#lens[i] === len && this.#times[i] === timeNs
      ) return true;
    }
    return false;
  }

  #append(key: number, timeNs: bigint, len: number, h: number): void {
    if (this.#count === this.#lens.length) this.#grow();
    const i = (this.#head + this.#count) & (this.#lens.length - 1);
    this.#times[i] = timeNs;
    this.#lens[i] = len;
    this.#hashes[i] = h;
    this.#keys[i] = key;
    this.#count++;
  }

  #grow(): void {
    const cap = this.#lens.length;
    const times: bigint[] = new Array(cap * 2);
    const lens = new Int32Array(cap * 2), hashes = new Uint32Array(cap * 2), keys = new Uint32Array(cap * 2);
    for (let k = 0; k < this.#count; k++) {
      const i = (this.#head + k) & (cap - 1);
      times[k] = this.#times[i]!;
      lens[k] = this.#lens[i]!;
      hashes[k] = this.#hashes[i]!;
      keys[k] = this.#keys[i]!;
    }
    this.#times = times;
    this.#lens = lens;
    this.#hashes = hashes;
    this.#keys = keys;
    this.#head = 0;
  }

  #dropOldest(): void {
    const i = this.#head;
    const key = this.#keys[i]!;
    const n = this.#index.get(key)!;
    if (n <= 1) this.#index.delete(key);
    else this.#index.set(key, n - 1);
    this.#head = (i + 1) & (this.#lens.length - 1);
    this.#count--;
  }
}
