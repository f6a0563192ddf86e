/**
 * The rows of one table a query stream has delivered lately, so that a re-run (which starts before the newest
 * `time_` seen) drops the rows it sends again. A row is named by its time and a 64-bit hash of every cell (two
 * independent 32-bit lanes; STRING cells hashed over their bytes), computed on the batch's columns: no string is
 * built per row, nothing is kept of the row itself, and a row costs four 32-bit words in a log (plus, once rows come
 * back in time, a word or two of an index: see {@link DeliveredRows}).
 * Rows that share a time and every cell are the same row; rows that differ in a cell collide only if both
 * 32-bit lanes do (the string fingerprint this replaces hashed bodies to 32 bits).
 *
 * The payload column's cells also get their own xxHash32 on the way ({@link RowHashes.cell}), from the stripes
 * the row's lanes read anyway: the rows carry it to the tap intake's row dedupe (actors/row_dedupe.ts), which
 * hashed every payload a second time before (in-process A/B of the read path to that dedupe, base vs this:
 * 0.536 vs 0.485 µs a row at 250 calls, 0.725 vs 0.642 at 1,000).
 * @module
 */

import type { ColumnData, ColumnInfo } from "./messages.ts";
import {
  XXH_SHORT,
  XXH_V1,
  XXH_V2,
  XXH_V3,
  XXH_V4,
  xxhAvalanche,
  xxhConverge,
  xxhRound,
  xxhTailByte,
  xxhTailWord,
} from "../util/xxhash32.ts";

const WORDS = new Uint32Array(2);
const I64 = new BigInt64Array(WORDS.buffer);
const F64 = new Float64Array(WORDS.buffer);
const U64_MASK = (1n << 64n) - 1n;

/** One lane's step (MurmurHash3's block mix). */
function mix(h: number, k: number, c1: number, c2: number): number {
  k = Math.imul(k, c1);
  k = (k << 15) | (k >>> 17);
  h ^= Math.imul(k, c2);
  h = (h << 13) | (h >>> 19);
  return (Math.imul(h, 5) + 0xe6546b64) | 0;
}

function fmix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h | 0;
}

const A1 = 0xcc9e2d51, A2 = 0x1b873593; // lane 1
const B1 = 0x85ebca77, B2 = 0xc2b2ae3d; // lane 2

/** Hashes of every row of a batch, two lanes, filled by {@link hashRows}. */
export interface RowHashes {
  h1: Int32Array;
  h2: Int32Array;
  /** With a `cell` column given to {@link hashRows}: each row's cell of it, as util/xxhash32.ts's hash32 (int32). */
  cell?: Int32Array;
}

/** The relation's own hash: names and types, so rows of a changed relation never match the old ones. */
function relationSeed(relation: readonly ColumnInfo[]): [number, number] {
  let h1 = 0x2545f491, h2 = 0x7f4a7c15;
  for (const c of relation) {
    for (let i = 0; i < c.name.length; i++) {
      h1 = mix(h1, c.name.charCodeAt(i), A1, A2);
      h2 = mix(h2, c.name.charCodeAt(i), B1, B2);
    }
    h1 = mix(h1, 0x100 + c.type, A1, A2);
    h2 = mix(h2, 0x100 + c.type, B1, B2);
  }
  return [h1, h2];
}

/**
 * Hashes rows `0..numRows-1` of `cols` (already checked against `relation`: same count, types and lengths) into
 * `out` (grown as needed; returned). `cell`: the index of a STRING column (a tap's payload) whose cells' hash32
 * is wanted too ({@link RowHashes.cell}); none when -1.
 */
export function hashRows(
  cols: readonly ColumnData[],
  relation: readonly ColumnInfo[],
  numRows: number,
  out?: RowHashes,
  cell = -1,
): RowHashes {
  const h = out && out.h1.length >= numRows
    ? out
    : { h1: new Int32Array(Math.max(64, numRows)), h2: new Int32Array(Math.max(64, numRows)) };
  if (cell >= 0 && (h.cell === undefined || h.cell.length < h.h1.length)) {
    h.cell = new Int32Array(h.h1.length);
  }
  const [s1, s2] = relationSeed(relation);
  h.h1.fill(s1, 0, numRows);
  h.h2.fill(s2, 0, numRows);
  const H1 = h.h1, H2 = h.h2;
  for (let c = 0; c < cols.length; c++) {
    const col = cols[c]!;
    // A function per type: with every type's loop in this one, V8's code for the string loop ran ~10% slower.
    switch (col.type) {
      case "string":
        hashStrings(col.data, numRows, H1, H2, c === cell ? h.cell : undefined);
        break;
      case "int64":
      case "time64ns":
        hashInt64s(col.data, numRows, H1, H2);
        break;
      case "uint128":
        hashUint128s(col.data, numRows, H1, H2);
        break;
      case "float64":
        hashFloat64s(col.data, numRows, H1, H2);
        break;
      case "boolean":
        hashBooleans(col.data, numRows, H1, H2);
        break;
    }
    // No mark between columns: the relation fixes every column's type, every type but STRING has a fixed number
    // of words, and a STRING cell's length comes first, so a cell's bytes cannot slide into the next column's.
  }
  for (let i = 0; i < numRows; i++) {
    H1[i] = fmix(H1[i]!);
    H2[i] = fmix(H2[i]!);
  }
  return h;
}

/**
 * STRING cells into the rows' lanes; with `cells`, each cell's hash32 into it too (the same stripes, read once).
 */
function hashStrings(
  d: readonly Uint8Array[],
  numRows: number,
  H1: Int32Array,
  H2: Int32Array,
  cells: Int32Array | undefined,
): void {
  // Cells are views into one received message (wire_decode.ts): one DataView of that buffer reads a word per
  // load instead of four bytes (a view per cell would be an allocation each).
  let buf: ArrayBufferLike | undefined, dv: DataView | undefined;
  for (let i = 0; i < numRows; i++) {
    const b = d[i]!;
    const n = b.length;
    if (b.buffer !== buf) {
      buf = b.buffer;
      dv = new DataView(buf);
    }
    const base = b.byteOffset;
    let a = mix(H1[i]!, n, A1, A2);
    let c = mix(H2[i]!, n ^ 0x5bd1e995, B1, B2);
    // The cell's own hash32 (util/xxhash32.ts), when wanted: the stripes' value, then the tail's words and bytes.
    let x = XXH_SHORT;
    let p = 0;
    if (n >= 16) {
      // Whole 16-byte stripes go to four independent lanes (xxHash32's, from its seed-0 state: the cell's hash32
      // comes out of the same stripes), each word once, not into both chains one after the other: the CPU runs
      // the lanes side by side. Their 128 bits of state are then folded into both chains (after the cell's
      // length: cells of one length that differ still collide only if both 32-bit chains do).
      let v1 = XXH_V1, v2 = XXH_V2, v3 = XXH_V3, v4 = XXH_V4;
      for (; p + 16 <= n; p += 16) {
        v1 = xxhRound(v1, dv!.getInt32(base + p, true));
        v2 = xxhRound(v2, dv!.getInt32(base + p + 4, true));
        v3 = xxhRound(v3, dv!.getInt32(base + p + 8, true));
        v4 = xxhRound(v4, dv!.getInt32(base + p + 12, true));
      }
      a = mix(mix(mix(mix(a, v1, A1, A2), v2, A1, A2), v3, A1, A2), v4, A1, A2);
      c = mix(mix(mix(mix(c, v3, B1, B2), v4, B1, B2), v1, B1, B2), v2, B1, B2);
      if (cells !== undefined) x = xxhConverge(v1, v2, v3, v4);
    }
    if (cells !== undefined) x = (x + n) | 0;
    for (; p + 4 <= n; p += 4) {
      const k = dv!.getInt32(base + p, true);
      a = mix(a, k, A1, A2);
      c = mix(c, k, B1, B2);
      if (cells !== undefined) x = xxhTailWord(x, k);
    }
    if (p < n) {
      let k = 0;
      for (let s = 0; p < n; p++, s += 8) {
        k |= b[p]! << s;
        if (cells !== undefined) x = xxhTailByte(x, b[p]!);
      }
      a = mix(a, k, A1, A2);
      c = mix(c, k, B1, B2);
    }
    H1[i] = a;
    H2[i] = c;
    if (cells !== undefined) cells[i] = xxhAvalanche(x);
  }
}

/** INT64 or TIME64NS cells into the rows' lanes. */
function hashInt64s(d: readonly bigint[], numRows: number, H1: Int32Array, H2: Int32Array): void {
  for (let i = 0; i < numRows; i++) {
    I64[0] = d[i]!;
    H1[i] = mix(mix(H1[i]!, WORDS[0]!, A1, A2), WORDS[1]!, A1, A2);
    H2[i] = mix(mix(H2[i]!, WORDS[0]!, B1, B2), WORDS[1]!, B1, B2);
  }
}

/** UINT128 cells into the rows' lanes: the low half, then the high half. */
function hashUint128s(d: readonly bigint[], numRows: number, H1: Int32Array, H2: Int32Array): void {
  for (let i = 0; i < numRows; i++) {
    const v = d[i]!;
    for (const half of [v & U64_MASK, (v >> 64n) & U64_MASK]) {
      I64[0] = BigInt.asIntN(64, half);
      H1[i] = mix(mix(H1[i]!, WORDS[0]!, A1, A2), WORDS[1]!, A1, A2);
      H2[i] = mix(mix(H2[i]!, WORDS[0]!, B1, B2), WORDS[1]!, B1, B2);
    }
  }
}

/** FLOAT64 cells into the rows' lanes. */
function hashFloat64s(d: readonly number[], numRows: number, H1: Int32Array, H2: Int32Array): void {
  for (let i = 0; i < numRows; i++) {
    const v = d[i]!;
    // Equal as rendered text before: 0 and -0 alike, every NaN alike.
    F64[0] = v === 0 ? 0 : Number.isNaN(v) ? NaN : v;
    H1[i] = mix(mix(H1[i]!, WORDS[0]!, A1, A2), WORDS[1]!, A1, A2);
    H2[i] = mix(mix(H2[i]!, WORDS[0]!, B1, B2), WORDS[1]!, B1, B2);
  }
}

/** BOOLEAN cells into the rows' lanes. */
function hashBooleans(d: readonly boolean[], numRows: number, H1: Int32Array, H2: Int32Array): void {
  for (let i = 0; i < numRows; i++) {
    H1[i] = mix(H1[i]!, d[i] ? 3 : 2, A1, A2);
    H2[i] = mix(H2[i]!, d[i] ? 3 : 2, B1, B2);
  }
}

/**
 * A set of (time, hash) keys, kept in arrival order in a log of columns, with an open-addressed index of log
 * positions (linear probing, at most half full) that is brought up to date only when a key has to be looked up.
 * A key later than every key held cannot be held: a live table's rows come in time order, so nearly every row
 * is only appended (four sequential writes), where before each probed and wrote a random slot of a table of
 * ~100,000 keys, a cache miss or two per row. Keys that come back in time (a re-run's overlap, rows that reach a
 * table late) index the log's new entries first, each once. Each key keeps its time, so {@link prune} can forget
 * the rows older than a bound. `size` counts keys, as the Map it replaces did.
 */
export class DeliveredRows {
  #tLo = new Int32Array(0);
  #tHi = new Int32Array(0);
  #h1 = new Int32Array(0);
  #h2 = new Int32Array(0);
  /** Keys in the log (distinct: a key is appended only when it is not held). */
  #n = 0;
  /** No key held is later than this time (hi signed, lo unsigned); meaningful when #n > 0. */
  #maxLo = 0;
  #maxHi = 0;
  /** Log position + 1 of the key in each slot, 0 for none; covers the log's first {@link #indexed} keys. */
  #index = new Int32Array(0);
  #indexed = 0;

  /** Keys held. */
  get size(): number {
    return this.#n;
  }

  /** Bytes of the log and the index. */
  get bytes(): number {
    return 4 * this.#tLo.length + 4 * this.#tHi.length + 4 * this.#h1.length + 4 * this.#h2.length +
      this.#index.byteLength;
  }

  /** The index slot of (lo, hi, h1, h2): where it is, or the empty slot where it would go. */
  #slot(lo: number, hi: number, h1: number, h2: number): number {
    const index = this.#index, mask = index.length - 1;
    let i = (h1 ^ Math.imul(lo, 0x9e3779b1) ^ Math.imul(hi, 0x85ebca6b)) & mask;
    for (;;) {
      const at = index[i]!;
      if (at === 0) return i;
      const p = at - 1;
      if (this.#h1[p] === h1 && this.#h2[p] === h2 && this.#tLo[p] === lo && this.#tHi[p] === hi) return i;
      i = (i + 1) & mask;
    }
  }

  /** Indexes the log's keys not indexed yet (the index grown to twice the log's at least, rebuilt when it grows). */
  #catchUp(): void {
    const n = this.#n;
    if (this.#indexed === n) return;
    if (2 * n > this.#index.length) {
      let cap = Math.max(1024, this.#index.length);
      while (2 * n > cap) cap <<= 1;
      this.#index = new Int32Array(cap);
      this.#indexed = 0;
    }
    const tLo = this.#tLo, tHi = this.#tHi, h1 = this.#h1, h2 = this.#h2, index = this.#index;
    for (let p = this.#indexed; p < n; p++) index[this.#slot(tLo[p]!, tHi[p]!, h1[p]!, h2[p]!)] = p + 1;
    this.#indexed = n;
  }

  /**
   * True if the row (time, hashes) is held; otherwise adds it when `add` is true and returns false. One lookup
   * for both, and none for a row later than every row held.
   */
  seenOrAdd(time: bigint, h1: number, h2: number, add: boolean): boolean {
    I64[0] = time;
    const lo = WORDS[0]! | 0, hi = WORDS[1]! | 0;
    const later = this.#n === 0 || hi > this.#maxHi || (hi === this.#maxHi && lo >>> 0 > this.#maxLo >>> 0);
    if (!later) {
      this.#catchUp();
      if (this.#index[this.#slot(lo, hi, h1, h2)] !== 0) return true;
    }
    if (!add) return false;
    if (later) {
      this.#maxLo = lo;
      this.#maxHi = hi;
    }
    if (this.#n === this.#tLo.length) this.#resize(Math.max(1024, 2 * this.#n));
    const p = this.#n++;
    this.#tLo[p] = lo;
    this.#tHi[p] = hi;
    this.#h1[p] = h1;
    this.#h2[p] = h2;
    return false;
  }

  /** The log's columns at `cap` keys (≥ the keys held), the held keys kept in order. */
  #resize(cap: number): void {
    const n = this.#n;
    const grow = (a: Int32Array) => {
      const b = new Int32Array(cap);
      b.set(a.subarray(0, n));
      return b;
    };
    this.#tLo = grow(this.#tLo);
    this.#tHi = grow(this.#tHi);
    this.#h1 = grow(this.#h1);
    this.#h2 = grow(this.#h2);
  }

  /**
   * Forgets the keys that came first, keeping the newest `max` in arrival order: the bound when time does not
   * move (rows whose `time_` is stuck, at 0 or at one value, all lie in the window {@link prune} keeps).
   */
  keepNewest(max: number): void {
    const drop = this.#n - max;
    if (drop <= 0) return;
    for (const a of [this.#tLo, this.#tHi, this.#h1, this.#h2]) a.copyWithin(0, drop, this.#n);
    this.#n = max;
    this.#shrink();
  }

  /** Forgets every row older than `oldest`. */
  prune(oldest: bigint): void {
    I64[0] = oldest;
    const minLo = WORDS[0]!, minHi = WORDS[1]! | 0;
    const tLo = this.#tLo, tHi = this.#tHi, h1 = this.#h1, h2 = this.#h2;
    let n = 0;
    for (let p = 0; p < this.#n; p++) {
      if (older(tLo[p]!, tHi[p]!, minLo, minHi)) continue;
      tLo[n] = tLo[p]!;
      tHi[n] = tHi[p]!;
      h1[n] = h1[p]!;
      h2[n] = h2[p]!;
      n++;
    }
    this.#n = n;
    this.#shrink();
  }

  /** After keys were forgotten: the log shrunk if it holds few keys now, the index made again when next needed. */
  #shrink(): void {
    // Shrink after a prune that left few keys, so a burst does not keep a large log (or index) for ever.
    let cap = this.#tLo.length;
    while (cap > 1024 && 4 * this.#n < cap) cap >>= 1;
    if (cap < this.#tLo.length) this.#resize(cap);
    this.#index = new Int32Array(0);
    this.#indexed = 0;
  }
}

/** (lo, hi) as a signed 64-bit time is before (minLo, minHi). */
function older(lo: number, hi: number, minLo: number, minHi: number): boolean {
  return hi < minHi || (hi === minHi && lo >>> 0 < minLo >>> 0);
}
