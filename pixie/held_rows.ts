/**
 * The rows a merge of captures holds for its reordering window (pixie/replay.ts mergeStreams), least first in
 * (key, input, seq) order, with no JavaScript object per row: each row's key, input and sequence number are in
 * typed columns, and a row its capture handed on unread (pixie/line_arena.ts DeferredRow) is held as where its
 * line is. What a merge holds lives about a second of event time, thousands of rows: as objects (a held entry,
 * the row, its cells' views) every one outlived V8's young generation, and the full collections that found them
 * dead cost ~1 CPU s of a bench `analyze` run.
 *
 * A capture is nearly always in time order, so each input's rows that come after everything it already holds
 * wait in a plain queue of their own (in order by construction: their seq grows too), and only the rows that
 * step back go to a heap; the least row is the least of the heap's top and the queues' heads. Heaping every row
 * cost ~2 compares per level of a heap as large as the merge window's rows; the order handed on is the same,
 * since (key, input, seq) orders all rows strictly.
 * @module
 */
import type { Row } from "./row.ts";
import type { ArenaChunk, DeferredRow } from "./line_arena.ts";

/** A key's two 32-bit words (little-endian platforms: every one Deno runs on; else every key is held whole). */
const KEY = new BigInt64Array(1);
const KEY_WORDS = new Uint32Array(KEY.buffer);
const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;
const INT64_MIN = -(1n << 63n), INT64_MAX = (1n << 63n) - 1n;

/** One input's rows that came in order: a ring of slots. */
interface Run {
  slots: Int32Array;
  head: number;
  size: number;
}

/**
 * Rows held in (key, input, seq) order; a row is a slot from {@link push} until {@link take}. `T`: what the
 * caller keeps with a parsed row ({@link tagOf}: the merge, the batch it came in).
 */
export class HeldRows<T> {
  #cap = 0;
  #hi = new Int32Array(0);
  #lo = new Uint32Array(0);
  /** 1: the key is outside int64 (or the host big-endian) and is in {@link #bigKeys}. */
  #big = new Uint8Array(0);
  #input = new Int32Array(0);
  #seq = new Float64Array(0);
  /** A parsed row, or for a deferred one its line: chunk, offset, length, line number. */
  #rows: (Row | undefined)[] = [];
  #chunks: (ArenaChunk | undefined)[] = [];
  #at = new Int32Array(0);
  #len = new Int32Array(0);
  #line = new Float64Array(0);
  #tags: (T | undefined)[] = [];
  #bigKeys: (bigint | undefined)[] = [];
  #free = new Int32Array(0);
  #freeCount = 0;
  #heap = new Int32Array(16);
  #heapSize = 0;
  readonly #runs: Run[] = [];
  #size = 0;

  /** Rows held. */
  get size(): number {
    return this.#size;
  }

  /** Holds `row` under `key`; `tag` comes back with {@link tagOf}. */
  push(key: bigint, input: number, seq: number, row: Row, tag: T | undefined): void {
    const s = this.#put(key, input, seq);
    this.#rows[s] = row;
    this.#tags[s] = tag;
  }

  /** Holds a row handed on unread as where its line is ({@link chunkOf}), under `key`. */
  pushLine(key: bigint, input: number, seq: number, row: DeferredRow): void {
    const s = this.#put(key, input, seq);
    this.#chunks[s] = row.chunk;
    this.#at[s] = row.at;
    this.#len[s] = row.len;
    this.#line[s] = row.line;
  }

  #put(key: bigint, input: number, seq: number): number {
    const s = this.#slot();
    if (LITTLE_ENDIAN && key >= INT64_MIN && key <= INT64_MAX) {
      KEY[0] = key;
      this.#hi[s] = KEY_WORDS[1]! | 0;
      this.#lo[s] = KEY_WORDS[0]!;
      this.#big[s] = 0;
    } else {
      this.#big[s] = 1;
      this.#bigKeys[s] = key;
    }
    this.#input[s] = input;
    this.#seq[s] = seq;
    this.#size++;
    const run = this.#runs[input] ??= { slots: new Int32Array(16), head: 0, size: 0 };
    if (run.size === 0 || !this.before(s, run.slots[(run.head + run.size - 1) & (run.slots.length - 1)]!)) {
      if (run.size === run.slots.length) this.#growRun(run);
      run.slots[(run.head + run.size) & (run.slots.length - 1)] = s;
      run.size++;
    } else this.#heapPush(s);
    return s;
  }

  /** The slot of the least row held, or -1. */
  peek(): number {
    let min = this.#heapSize > 0 ? this.#heap[0]! : -1;
    for (const run of this.#runs) {
      if (run === undefined || run.size === 0) continue;
      const s = run.slots[run.head]!;
      if (min < 0 || this.before(s, min)) min = s;
    }
    return min;
  }

  /** Takes out `slot`, the one {@link peek} returned last (read what it holds first: the slot is reused). */
  take(slot: number): void {
    this.#size--;
    if (this.#heapSize > 0 && this.#heap[0] === slot) this.#heapPop();
    else {
      const run = this.#runs[this.#input[slot]!]!;
      run.head = (run.head + 1) & (run.slots.length - 1);
      run.size--;
    }
    this.#rows[slot] = undefined;
    this.#chunks[slot] = undefined;
    this.#tags[slot] = undefined;
    this.#bigKeys[slot] = undefined;
    this.#free[this.#freeCount++] = slot;
  }

  /** True if the row in slot `a` goes before the one in `b`. */
  before(a: number, b: number): boolean {
    if ((this.#big[a]! | this.#big[b]!) !== 0) {
      const ka = this.keyOf(a), kb = this.keyOf(b);
      if (ka !== kb) return ka < kb;
    } else {
      const ha = this.#hi[a]!, hb = this.#hi[b]!;
      if (ha !== hb) return ha < hb;
      const la = this.#lo[a]!, lb = this.#lo[b]!;
      if (la !== lb) return la < lb;
    }
    const ia = this.#input[a]!, ib = this.#input[b]!;
    return ia !== ib ? ia < ib : this.#seq[a]! < this.#seq[b]!;
  }

  #lastHi = 0;
  #lastLo = 0;
  #lastBig: bigint | undefined;
  #lastInput = 0;
  #lastSeq = 0;
  #hasLast = false;

  /** Remembers the row in `slot` (before it is taken) for {@link beforeLast}. */
  markLast(slot: number): void {
    this.#hasLast = true;
    this.#lastBig = this.#big[slot] ? this.#bigKeys[slot] : undefined;
    this.#lastHi = this.#hi[slot]!;
    this.#lastLo = this.#lo[slot]!;
    this.#lastInput = this.#input[slot]!;
    this.#lastSeq = this.#seq[slot]!;
  }

  /** True if the row in `slot` goes before the one {@link markLast} remembered (false when none was). */
  beforeLast(slot: number): boolean {
    if (!this.#hasLast) return false;
    if (this.#big[slot] || this.#lastBig !== undefined) {
      const k = this.keyOf(slot);
      KEY_WORDS[1] = this.#lastHi;
      KEY_WORDS[0] = this.#lastLo;
      const last = this.#lastBig ?? KEY[0]!;
      if (k !== last) return k < last;
    } else {
      const h = this.#hi[slot]!;
      if (h !== this.#lastHi) return h < this.#lastHi;
      const l = this.#lo[slot]!;
      if (l !== this.#lastLo) return l < this.#lastLo;
    }
    const i = this.#input[slot]!;
    return i !== this.#lastInput ? i < this.#lastInput : this.#seq[slot]! < this.#lastSeq;
  }

  /** The key of the row in `slot` (a bigint made: not for every row). */
  keyOf(slot: number): bigint {
    if (this.#big[slot]) return this.#bigKeys[slot]!;
    KEY_WORDS[1] = this.#hi[slot]!;
    KEY_WORDS[0] = this.#lo[slot]!;
    return KEY[0]!;
  }

  /** True if the row in `slot` has a key below `limit` (without a bigint made when it fits int64). */
  keyBelow(slot: number, limit: bigint): boolean {
    if (this.#big[slot] || !LITTLE_ENDIAN || limit < INT64_MIN || limit > INT64_MAX) {
      return this.keyOf(slot) < limit;
    }
    KEY[0] = limit;
    const hi = KEY_WORDS[1]! | 0, h = this.#hi[slot]!;
    return h !== hi ? h < hi : this.#lo[slot]! < KEY_WORDS[0]!;
  }

  /** The input the row in `slot` came from. */
  inputOf(slot: number): number {
    return this.#input[slot]!;
  }

  /** Its sequence number in its input. */
  seqOf(slot: number): number {
    return this.#seq[slot]!;
  }

  /** What {@link push} kept with a parsed row. */
  tagOf(slot: number): T | undefined {
    return this.#tags[slot];
  }

  /** The parsed row in `slot`, or undefined for a deferred one (see {@link chunkOf}). */
  rowOf(slot: number): Row | undefined {
    return this.#rows[slot];
  }

  /** A deferred row's line: its chunk (undefined for a parsed row), offset, length and line number. */
  chunkOf(slot: number): ArenaChunk | undefined {
    return this.#chunks[slot];
  }
  /** Where a deferred row's line starts in its chunk. */
  atOf(slot: number): number {
    return this.#at[slot]!;
  }
  /** Its line's length in bytes. */
  lenOf(slot: number): number {
    return this.#len[slot]!;
  }
  /** Its line's number in its file. */
  lineOf(slot: number): number {
    return this.#line[slot]!;
  }

  #slot(): number {
    if (this.#freeCount > 0) return this.#free[--this.#freeCount]!;
    if (this.#size === this.#cap) this.#grow();
    // Slots below #size + #freeCount are in use or free: the next never used is the count of both.
    return this.#size;
  }

  #grow(): void {
    const cap = Math.max(1024, this.#cap * 2);
    const grow = <T extends Int32Array | Uint32Array | Uint8Array | Float64Array>(
      a: T,
      make: (n: number) => T,
    ) => {
      const b = make(cap);
      b.set(a);
      return b;
    };
    this.#hi = grow(this.#hi, (n) => new Int32Array(n));
    this.#lo = grow(this.#lo, (n) => new Uint32Array(n));
    this.#big = grow(this.#big, (n) => new Uint8Array(n));
    this.#input = grow(this.#input, (n) => new Int32Array(n));
    this.#seq = grow(this.#seq, (n) => new Float64Array(n));
    this.#at = grow(this.#at, (n) => new Int32Array(n));
    this.#len = grow(this.#len, (n) => new Int32Array(n));
    this.#line = grow(this.#line, (n) => new Float64Array(n));
    this.#free = grow(this.#free, (n) => new Int32Array(n));
    this.#cap = cap;
  }

  #growRun(run: Run): void {
    const n = run.slots.length, next = new Int32Array(2 * n);
    for (let i = 0; i < run.size; i++) next[i] = run.slots[(run.head + i) & (n - 1)]!;
    run.slots = next;
    run.head = 0;
  }

  #heapPush(s: number): void {
    if (this.#heapSize === this.#heap.length) {
      const next = new Int32Array(2 * this.#heap.length);
      next.set(this.#heap);
      this.#heap = next;
    }
    const a = this.#heap;
    let i = this.#heapSize++;
    a[i] = s;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.before(a[i]!, a[p]!)) break;
      const t = a[i]!;
      a[i] = a[p]!;
      a[p] = t;
      i = p;
    }
  }

  #heapPop(): void {
    const a = this.#heap;
    const n = --this.#heapSize;
    if (n === 0) return;
    a[0] = a[n]!;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1, r = l + 1;
      let m = i;
      if (l < n && this.before(a[l]!, a[m]!)) m = l;
      if (r < n && this.before(a[r]!, a[m]!)) m = r;
      if (m === i) break;
      const t = a[i]!;
      a[i] = a[m]!;
      a[m] = t;
      i = m;
    }
  }
}
