/**
 * A hand-written decoder for the messages that carry rows: `ExecuteScriptResponse` with `data.batch` (or
 * `data.encrypted_batch`) and a serialized `RowBatchData`. protobufjs builds an object per field and a `Long`
 * per 64-bit value, and every STRING cell was then copied into its own buffer; at 150,000 rows/s that was most of
 * the cost of reading Pixie. Here columns are read straight into the arrays {@link RowBatch} holds: 64-bit
 * values through a typed-array scratch (one bigint each, no intermediate), STRING cells as views into the
 * received message (grpc-js assembles each message into a buffer of its own, so a view pins that message and
 * nothing else).
 *
 * Anything this decoder does not expect (status, metadata, stats, a field repeated where protobufjs would merge,
 * a wire type that does not fit, non-ASCII ids, a num_rows out of range) answers `undefined`, and the caller
 * decodes that message with protobufjs as before: one behaviour for every message, the fast one where it is safe.
 * @module
 */

import type { ColumnData, ExecuteScriptResponse, RowBatch } from "./messages.ts";

/** The message is outside what this decoder handles; the caller falls back to protobufjs. */
const FALLBACK = Symbol("fallback");

const WORDS = new Uint32Array(4);
const I64 = new BigInt64Array(WORDS.buffer);
const U64 = new BigUint64Array(WORDS.buffer);
const F64 = new Float64Array(WORDS.buffer);
const EMPTY = new Uint8Array(0);

/** A cursor over one message's bytes. Varints are read into `lo`/`hi` (two 32-bit halves). */
class Reader {
  readonly buf: Uint8Array;
  pos: number;
  lo = 0;
  hi = 0;

  constructor(buf: Uint8Array, pos: number) {
    this.buf = buf;
    this.pos = pos;
  }

  /** Reads a varint of up to 64 bits into lo/hi; throws FALLBACK past `end`. */
  varint(end: number): void {
    const b = this.buf;
    let p = this.pos;
    let lo = 0;
    let hi = 0;
    let byte = 0;
    let shift = 0;
    for (; shift < 28; shift += 7) {
      if (p >= end) throw FALLBACK;
      byte = b[p++]!;
      lo |= (byte & 0x7f) << shift;
      if (byte < 0x80) {
        this.pos = p;
        this.lo = lo >>> 0;
        this.hi = 0;
        return;
      }
    }
    // Bits 28..34: 4 into lo, 3 into hi.
    if (p >= end) throw FALLBACK;
    byte = b[p++]!;
    lo |= (byte & 0x0f) << 28;
    hi = (byte & 0x7f) >> 4;
    if (byte >= 0x80) {
      for (shift = 3; shift < 32; shift += 7) {
        if (p >= end) throw FALLBACK;
        byte = b[p++]!;
        hi |= (byte & 0x7f) << shift;
        if (byte < 0x80) break;
      }
      if (byte >= 0x80) throw FALLBACK; // over 10 bytes
    }
    this.pos = p;
    this.lo = lo >>> 0;
    this.hi = hi >>> 0;
  }

  /** A varint that must fit 32 bits unsigned (tags, lengths). */
  u32(end: number): number {
    // Tags and most lengths take one or two bytes: read them here, not through the 64-bit loop.
    const b = this.buf, p = this.pos;
    if (p + 1 < end) {
      const b0 = b[p]!;
      if (b0 < 0x80) {
        this.pos = p + 1;
        return b0;
      }
      const b1 = b[p + 1]!;
      if (b1 < 0x80) {
        this.pos = p + 2;
        return (b0 & 0x7f) | (b1 << 7);
      }
    }
    this.varint(end);
    if (this.hi !== 0) throw FALLBACK;
    return this.lo;
  }

  /** A length-delimited field's end, checked against `end`. */
  len(end: number): number {
    const n = this.u32(end);
    const e = this.pos + n;
    if (e > end) throw FALLBACK;
    return e;
  }

  /** Skips a field of wire type `wt`. */
  skip(wt: number, end: number): void {
    switch (wt) {
      case 0:
        this.varint(end);
        return;
      case 1:
        if (this.pos + 8 > end) throw FALLBACK;
        this.pos += 8;
        return;
      case 2:
        this.pos = this.len(end);
        return;
      case 5:
        if (this.pos + 4 > end) throw FALLBACK;
        this.pos += 4;
        return;
      default:
        // Groups and reserved wire types: protobufjs decides.
        throw FALLBACK;
    }
  }

  /** An ASCII string (protobufjs and TextDecoder differ on broken UTF-8: leave anything else to protobufjs). */
  ascii(end: number): string {
    const e = this.len(end);
    const b = this.buf;
    let s = "";
    for (let p = this.pos; p < e; p++) {
      const c = b[p]!;
      if (c >= 0x80) throw FALLBACK;
      s += String.fromCharCode(c);
    }
    this.pos = e;
    return s;
  }

  /** The signed 64-bit value of lo/hi. */
  int64(): bigint {
    WORDS[0] = this.lo;
    WORDS[1] = this.hi;
    return I64[0]!;
  }

  /** The unsigned 64-bit value of lo/hi. */
  uint64(): bigint {
    WORDS[0] = this.lo;
    WORDS[1] = this.hi;
    return U64[0]!;
  }
}

/** Reads repeated varints (packed or not) of field 1 of a column message into `out`. */
function int64Column(r: Reader, end: number, out: bigint[]): void {
  while (r.pos < end) {
    const tag = r.u32(end);
    const field = tag >>> 3;
    const wt = tag & 7;
    if (field !== 1) {
      r.skip(wt, end);
      continue;
    }
    if (wt === 2) {
      const e = r.len(end);
      while (r.pos < e) {
        r.varint(e);
        out.push(r.int64());
      }
    } else if (wt === 0) {
      r.varint(end);
      out.push(r.int64());
    } else throw FALLBACK;
  }
}

function boolColumn(r: Reader, end: number, out: boolean[]): void {
  while (r.pos < end) {
    const tag = r.u32(end);
    const field = tag >>> 3;
    const wt = tag & 7;
    if (field !== 1) {
      r.skip(wt, end);
      continue;
    }
    // Any bit set is true (protobufjs 8 reads a bool that way).
    if (wt === 2) {
      const e = r.len(end);
      while (r.pos < e) {
        r.varint(e);
        out.push(r.lo !== 0 || r.hi !== 0);
      }
    } else if (wt === 0) {
      r.varint(end);
      out.push(r.lo !== 0 || r.hi !== 0);
    } else throw FALLBACK;
  }
}

function float64Column(r: Reader, end: number, out: number[]): void {
  const b = r.buf;
  const one = (): number => {
    const p = r.pos;
    WORDS[0] = b[p]! | (b[p + 1]! << 8) | (b[p + 2]! << 16) | (b[p + 3]! << 24);
    WORDS[1] = b[p + 4]! | (b[p + 5]! << 8) | (b[p + 6]! << 16) | (b[p + 7]! << 24);
    r.pos = p + 8;
    return F64[0]!;
  };
  while (r.pos < end) {
    const tag = r.u32(end);
    const field = tag >>> 3;
    const wt = tag & 7;
    if (field !== 1) {
      r.skip(wt, end);
      continue;
    }
    if (wt === 2) {
      const e = r.len(end);
      if ((e - r.pos) % 8 !== 0) throw FALLBACK;
      while (r.pos < e) out.push(one());
    } else if (wt === 1) {
      if (r.pos + 8 > end) throw FALLBACK;
      out.push(one());
    } else throw FALLBACK;
  }
}

/** Longest cell compared with the one before it to share its view (see {@link stringColumn}). */
const MAX_SHARED_CELL = 64;

/**
 * STRING cells as views into the message. A short cell equal to the one before it (a pod, an address: a batch
 * repeats them row after row) is that cell's view again, not a new one: a view is the largest object a row
 * holds, and rows wait in batches long enough for the garbage collector to copy each of them.
 */
function stringColumn(r: Reader, end: number, out: Uint8Array[]): void {
  const b = r.buf;
  const ab = b.buffer;
  const base = b.byteOffset;
  let last: Uint8Array = EMPTY, lastAt = 0;
  while (r.pos < end) {
    const tag = r.u32(end);
    if (tag !== 0x0a) {
      if (tag >>> 3 === 1) throw FALLBACK;
      r.skip(tag & 7, end);
      continue;
    }
    const e = r.len(end);
    const p = r.pos, n = e - p;
    if (n === last.length && n <= MAX_SHARED_CELL && last !== EMPTY) {
      let k = 0;
      while (k < n && b[p + k] === b[lastAt + k]) k++;
      if (k === n) {
        out.push(last);
        r.pos = e;
        continue;
      }
    }
    last = n === 0 ? EMPTY.slice() : new Uint8Array(ab, base + p, n);
    lastAt = p;
    out.push(last);
    r.pos = e;
  }
}

function uint128Column(r: Reader, end: number, out: bigint[]): void {
  while (r.pos < end) {
    const tag = r.u32(end);
    if (tag !== 0x0a) {
      if (tag >>> 3 === 1) throw FALLBACK;
      r.skip(tag & 7, end);
      continue;
    }
    const e = r.len(end);
    let low = 0n;
    let high = 0n;
    while (r.pos < e) {
      const t = r.u32(e);
      if (t === 0x08) {
        r.varint(e);
        low = r.uint64();
      } else if (t === 0x10) {
        r.varint(e);
        high = r.uint64();
      } else if (t >>> 3 === 1 || t >>> 3 === 2) throw FALLBACK;
      else r.skip(t & 7, e);
    }
    out.push((high << 64n) | low);
  }
}

/** The packed values of one column, read by `fill`. */
function values<T>(r: Reader, end: number, fill: (r: Reader, end: number, out: T[]) => void): T[] {
  const out: T[] = [];
  fill(r, end, out);
  return out;
}

/** `Column`'s oneof members by field number: the case and how its packed values are read. */
const COLUMN_CASES: Record<number, (r: Reader, end: number) => ColumnData> = {
  1: (r, e) => ({ type: "boolean", data: values(r, e, boolColumn) }),
  2: (r, e) => ({ type: "int64", data: values(r, e, int64Column) }),
  3: (r, e) => ({ type: "uint128", data: values(r, e, uint128Column) }),
  4: (r, e) => ({ type: "time64ns", data: values(r, e, int64Column) }),
  5: (r, e) => ({ type: "float64", data: values(r, e, float64Column) }),
  6: (r, e) => ({ type: "string", data: values(r, e, stringColumn) }),
};

/** One `Column`: its oneof case and values. */
function column(r: Reader, end: number): ColumnData {
  let col: ColumnData | undefined;
  while (r.pos < end) {
    const tag = r.u32(end);
    const field = tag >>> 3;
    const wt = tag & 7;
    if (field < 1 || field > 6) {
      r.skip(wt, end);
      continue;
    }
    // A second member of the oneof (or the same one again, which protobufjs merges): not Pixie's; leave it.
    if (wt !== 2 || col !== undefined) throw FALLBACK;
    const e = r.len(end);
    col = COLUMN_CASES[field]!(r, e);
    r.pos = e;
  }
  // A column without data: protobufjs' path reports it.
  if (col === undefined) throw FALLBACK;
  return col;
}

function rowBatch(r: Reader, end: number): RowBatch {
  let tableId = "";
  const cols: ColumnData[] = [];
  let numRows = 0;
  let eow = false;
  let eos = false;
  while (r.pos < end) {
    const tag = r.u32(end);
    switch (tag) {
      case 0x0a: {
        const e = r.len(end);
        cols.push(column(r, e));
        r.pos = e;
        break;
      }
      case 0x10:
        r.varint(end);
        // Negative or past 2^53: protobufjs' path throws the error.
        if (r.hi > 0x1fffff) throw FALLBACK;
        numRows = r.hi * 4294967296 + r.lo;
        break;
      case 0x18:
        r.varint(end);
        eow = r.lo !== 0 || r.hi !== 0;
        break;
      case 0x20:
        r.varint(end);
        eos = r.lo !== 0 || r.hi !== 0;
        break;
      case 0x2a:
        tableId = r.ascii(end);
        break;
      default:
        if (tag >>> 3 >= 1 && tag >>> 3 <= 5) throw FALLBACK;
        r.skip(tag & 7, end);
    }
  }
  return { tableId, cols, numRows, eow, eos };
}

function plain(b: Uint8Array): Uint8Array {
  return b.constructor === Uint8Array ? b : new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
}

/** Decodes a serialized `RowBatchData`; undefined when protobufjs must decide. */
export function fastDecodeRowBatch(data: Uint8Array): RowBatch | undefined {
  try {
    return rowBatch(new Reader(plain(data), 0), data.length);
  } catch (e) {
    if (e === FALLBACK) return undefined;
    throw e;
  }
}

/**
 * Decodes an `ExecuteScriptResponse` that holds a query id and data (a batch, an encrypted batch); undefined
 * for anything else (status, metadata, stats...), which protobufjs decodes.
 */
export function fastDecodeExecuteScriptResponse(data: Uint8Array): ExecuteScriptResponse | undefined {
  // A plain Uint8Array over the same bytes: Buffer (what grpc-js hands over) must not reach the rows.
  const buf = plain(data);
  try {
    const r = new Reader(buf, 0);
    const end = buf.length;
    let queryId = "";
    let out: ExecuteScriptResponse | undefined;
    while (r.pos < end) {
      const tag = r.u32(end);
      if (tag === 0x12) {
        queryId = r.ascii(end);
      } else if (tag === 0x1a) {
        // QueryData; a second one would be merged by protobufjs.
        if (out !== undefined) throw FALLBACK;
        const e = r.len(end);
        out = { queryId: "" };
        let batch = false;
        while (r.pos < e) {
          const t = r.u32(e);
          if (t === 0x0a) {
            if (batch) throw FALLBACK;
            batch = true;
            const be = r.len(e);
            out.batch = rowBatch(r, be);
            r.pos = be;
          } else if (t === 0x1a) {
            const be = r.len(e);
            // Only a non-empty encrypted batch is one (as decodeExecuteScriptResponse says); the last one wins.
            if (be > r.pos) {
              out.encryptedBatch = new Uint8Array(buf.buffer, buf.byteOffset + r.pos, be - r.pos);
            } else delete out.encryptedBatch;
            r.pos = be;
          } else if (t >>> 3 >= 1 && t >>> 3 <= 3) throw FALLBACK;
          else r.skip(t & 7, e);
        }
      } else if (tag >>> 3 >= 1 && tag >>> 3 <= 5) {
        // status, meta_data, mutation_info, or a wire type that does not fit.
        throw FALLBACK;
      } else r.skip(tag & 7, end);
    }
    out ??= { queryId: "" };
    out.queryId = queryId;
    return out;
  } catch (e) {
    if (e === FALLBACK) return undefined;
    throw e;
  }
}
