/**
 * A direct reader for the usual capture line, `{"query":"m/s","row":{"time_":"…","pod":"…",…}}`: one pass over
 * the text that writes string cells' UTF-8 bytes straight into a slab, without `JSON.parse` building the line's
 * objects and strings and the encoder turning the strings back into bytes (together most of a row's read cost).
 *
 * It takes only what it is sure of: ASCII strings whose escapes are the simple ones or `\u` below 0x80, integer
 * numbers, booleans, `{"base64":"…"}` cells, each key once, column names that are not array indices or
 * `__proto__`, `query` before `row` and nothing else at the top. Anything else, including every malformed line,
 * returns undefined and the caller parses the line with `JSON.parse` (pixie/capture.ts), which then decides: the
 * rows of both readers are the same (tests/pixie_capture_line_fast_test.ts compares them on mutated lines).
 *
 * In a capture file's bytes the reader finds the line's end itself ({@link readCaptureLine}): a newline is
 * whitespace nowhere in a line, so a usual line is read in one pass up to its newline; the file reader searches
 * for the newline only for a line the direct reader leaves (a separate search for every line's newline cost about
 * a fifth of reading it). The capture reader keeps a file's bytes in the memory of a WebAssembly kernel that copies
 * and unescapes string cells sixteen bytes at a time (string_cell_simd.ts); this reader finishes whatever the
 * kernel leaves, and reads every other buffer (a line of text, a test's bytes) itself.
 * @module
 */
import type { Cell, Row } from "./row.ts";
import { parseQueryName } from "./row.ts";
import { type CellKernel, cellKernelOf, OUT_ROOM } from "./string_cell_simd.ts";

/** Where string cells' bytes go: `reserve(n)` returns the slab with at least n bytes free from `used()`. */
export interface ByteSlab {
  reserve(n: number): Uint8Array;
  used(): number;
  /** Marks `n` more bytes of the current slab used. */
  advance(n: number): void;
}

// Character codes the reader looks for.
const TAB = 0x09, LF = 0x0a, CR = 0x0d, SPACE = 0x20, QUOTE = 0x22, COMMA = 0x2c, MINUS = 0x2d;
const D0 = 0x30, D9 = 0x39, COLON = 0x3a, BACKSLASH = 0x5c, LBRACE = 0x7b, RBRACE = 0x7d;

/** Bytes of the single-character escapes (`\"` and the rest); 0 where the escape is not one of them. */
const SIMPLE_ESCAPE: Uint8Array = (() => {
  const t = new Uint8Array(128);
  t[0x22] = 0x22;
  t[0x5c] = 0x5c;
  t[0x2f] = 0x2f;
  t[0x62] = 0x08;
  t[0x66] = 0x0c;
  t[0x6e] = 0x0a;
  t[0x72] = 0x0d;
  t[0x74] = 0x09;
  return t;
})();

/** Runs at least this long are copied with `set` (a view made) rather than byte by byte. */
const COPY_SET_MIN = 48;

/** Copies `from[a..b)` to `to[at..)`: a view and `set` for a long run, byte by byte for a short one. */
function copyBytes(from: Uint8Array, a: number, b: number, to: Uint8Array, at: number): void {
  if (b - a >= COPY_SET_MIN) to.set(from.subarray(a, b), at);
  else for (let i = a; i < b; i++) to[at++] = from[i]!;
}

/** A byte {@link LineReader.stringCell} does not copy as it is: a quote, a backslash, a control byte, non-ASCII. */
function notPlain(c: number): boolean {
  return c === QUOTE || c === BACKSLASH || c < 0x20 || c > 0x7f;
}

/** 1 for the bytes {@link notPlain} refuses: one load per byte of a short run rather than four comparisons. */
const NOT_PLAIN: Uint8Array = (() => {
  const t = new Uint8Array(256);
  for (let c = 0; c < 256; c++) t[c] = notPlain(c) ? 1 : 0;
  return t;
})();

/** The smallest view of the kernel's output a cell is copied through (see LineReader's outView). */
const VIEW_MIN = 64;

/** Bytes a string cell is first given in the slab (a longer one moves to a slab with room as it grows). */
const CELL_ROOM = 2048;

/** A name read from lines (a key, a query): its text and bytes, and whether it may be a column's name here. */
interface Name {
  readonly text: string;
  readonly bytes: Uint8Array;
  /** Not empty, not an array index, not `__proto__` (the general reader's way for those). */
  readonly column: boolean;
  /** It is `time_`. */
  readonly time: boolean;
  /** It is a query name, `<measurement>/<tap>`. */
  readonly query: boolean;
}

function nameOf(text: string): Name {
  const first = text.charCodeAt(0);
  return {
    text,
    bytes: new TextEncoder().encode(text),
    column: text !== "" && !(first >= D0 && first <= D9) && text !== "__proto__",
    time: text === "time_",
    query: parseQueryName(text) !== undefined,
  };
}

const QUERY_KEY = nameOf("query");
const ROW_KEY = nameOf("row");
const BASE64_KEY = nameOf("base64");
const TIME_KEY = nameOf("time_");

/** The value of each base64 digit of atob's alphabet (`+` and `/`), 255 for every other byte. */
const B64: Uint8Array = (() => {
  const t = new Uint8Array(256).fill(255);
  const digits = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  for (let i = 0; i < 64; i++) t[digits.charCodeAt(i)] = i;
  return t;
})();
const EQUALS = 0x3d;

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  if (c >= 0x41 && c <= 0x46) return c - 0x37;
  return -1;
}

/** Bytes of the line being read (ASCII, so byte positions are string positions). */
let scratch = new Uint8Array(4096);
const encoder = new TextEncoder();

/** ASCII bytes as text (callers have checked they are ASCII). */
const asciiDecoder = new TextDecoder("utf-8");
function asciiText(b: Uint8Array, from: number, to: number): string {
  return asciiDecoder.decode(b.subarray(from, to));
}

/** The value of the decimal digits `b[from..to)` (at most 15 of them: exact in a number). */
function digitsValue(b: Uint8Array, from: number, to: number): number {
  let v = 0;
  for (let i = from; i < to; i++) v = v * 10 + (b[i]! - D0);
  return v;
}

/** Words read from bytes in little-endian order (every platform Deno runs on; the bigint path otherwise). */
const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;
const WORDS = new Uint32Array(2);
const I64 = new BigInt64Array(WORDS.buffer);
const TWO32 = 4294967296;

/**
 * `hi * 10^9 + lo` (`hi` < 2^34, `lo` < 10^9) as a bigint made once, from its two 32-bit words: a time of 19
 * digits was two bigints, a product and a sum (four bigints made). Undefined at 2^63 or beyond.
 */
function int64Of(hi: number, lo: number): bigint | undefined {
  // 16-bit pieces of hi keep every product below 2^53. Remainders by a power of two from floored quotients (exact
  // below 2^53): `%` of doubles is a call to fmod.
  const hiH = Math.floor(hi / 65536), hiL = hi - hiH * 65536;
  const a = hiL * 1e9 + lo;
  const b = hiH * 1e9;
  const bH = Math.floor(b / 65536), bL = b - bH * 65536;
  const t = a + bL * 65536;
  const tH = Math.floor(t / TWO32), lo32 = t - tH * TWO32;
  const hi32 = bH + tH;
  if (hi32 >= 0x80000000) return undefined;
  WORDS[0] = lo32;
  WORDS[1] = hi32;
  return I64[0]!;
}

const E15 = 10n ** 15n;

/**
 * One line being read, as bytes `b[pos..len)` (scanning a typed array is many times faster than `charCodeAt`
 * in Deno's V8): a capture file's own bytes, or a line of text encoded into a scratch; `pos` moves forward.
 * Text is made only for what a row keeps as text (a new column name, a base64 value).
 */
class LineReader {
  b: Uint8Array = scratch;
  len = 0;
  pos = 0;
  /**
   * Reading a file's bytes: a newline ends the line (it is whitespace nowhere in it), and the line may also end
   * at `len` when {@link endsAtLen}. Reading a line of text: the line is all of `b[..len)`.
   */
  fromFile = false;
  endsAtLen = true;
  /** Where the line read last ended: its newline, or `len`. */
  end = 0;
  /** The string cell kernel whose memory holds {@link b}, if any (looked up again when the buffer changes). */
  kernel: CellKernel | undefined;
  #kernelOf: ArrayBufferLike | undefined;

  /** Loads `line`; false if it is not all ASCII (then it is left to JSON.parse). */
  load(line: string): boolean {
    if (scratch.length < line.length) scratch = new Uint8Array(Math.max(line.length, 2 * scratch.length));
    const r = encoder.encodeInto(line, scratch);
    if (r.written !== line.length || r.read !== line.length) return false;
    this.b = scratch;
    this.len = line.length;
    this.pos = 0;
    this.fromFile = false;
    this.endsAtLen = true;
    this.kernel = undefined;
    this.#kernelOf = undefined;
    return true;
  }

  /**
   * Loads the line that opens at `bytes[from]` and ends at its newline before `limit`, or at `limit` when
   * `endsAtLimit` (UTF-8; a byte above 0x7f anywhere leaves the line to JSON.parse).
   */
  loadBytes(bytes: Uint8Array, from: number, limit: number, endsAtLimit: boolean): void {
    this.b = bytes;
    this.len = limit;
    this.pos = from;
    this.fromFile = true;
    this.endsAtLen = endsAtLimit;
    if (bytes.buffer !== this.#kernelOf) {
      this.#kernelOf = bytes.buffer;
      this.kernel = cellKernelOf(bytes);
    }
  }

  /** The byte at `p`, or -1 past the end. */
  at(p: number): number {
    return p < this.len ? this.b[p]! : -1;
  }

  ws(): void {
    const b = this.b, len = this.len;
    let p = this.pos;
    while (p < len) {
      const c = b[p]!;
      if (c === SPACE || c === TAB || c === CR || (c === LF && !this.fromFile)) p++;
      else break;
    }
    this.pos = p;
  }

  /** Consumes `c` (after whitespace); false if it is not next. */
  eat(c: number): boolean {
    this.ws();
    if (this.at(this.pos) !== c) return false;
    this.pos++;
    return true;
  }

  /**
   * {@link plainString} for names that repeat on every line (keys, the query): the same string object as last
   * time when the bytes are the same, so no string is made per row and property stores and map lookups with it
   * find it already internalized. `expect` (the name at this place in the line before) is compared first: a hit
   * costs one comparison per byte, no hash.
   */
  name(expect: Name | undefined): Name | undefined {
    const b = this.b, len = this.len;
    const from = this.pos + 1;
    if (expect !== undefined) {
      const e = expect.bytes, n = e.length;
      if (from + n < len && b[from + n] === QUOTE) {
        let i = 0;
        while (i < n && b[from + i] === e[i]) i++;
        if (i === n) {
          this.pos = from + n + 1;
          return expect;
        }
      }
    }
    let p = from;
    let h = 0;
    for (;;) {
      if (p >= len) return undefined;
      const c = b[p]!;
      if (c === QUOTE) break;
      if (c < 0x20 || c >= 0x7f || c === BACKSLASH) return undefined;
      h = (Math.imul(h, 31) + c) | 0;
      p++;
    }
    const n = p - from;
    const slot = (h ^ n) & (NAME_SLOTS - 1);
    const known = names[slot];
    this.pos = p + 1;
    if (known !== undefined && known.bytes.length === n) {
      const k = known.bytes;
      let i = 0;
      while (i < n && k[i] === b[from + i]) i++;
      if (i === n) return known;
    }
    const fresh = nameOf(asciiText(b, from, p));
    names[slot] = fresh;
    return fresh;
  }

  /**
   * A string without escapes and with printable ASCII only (time_, base64): the position after its closing
   * quote, its text being `b[pos + 1 .. end - 1)`; -1 otherwise. `pos` is at its opening quote and is left there.
   */
  plainString(): number {
    const b = this.b, len = this.len;
    let p = this.pos + 1;
    for (;;) {
      if (p >= len) return -1;
      const c = b[p]!;
      if (c === QUOTE) break;
      // Control characters, DEL and escapes are not handled here.
      if (c < 0x20 || c >= 0x7f || c === BACKSLASH) return -1;
      p++;
    }
    return p + 1;
  }

  /** `time_`'s text, a string at `pos` matching /^-?\d+$/, as a bigint; undefined otherwise. */
  decimalString(): bigint | undefined {
    const b = this.b, len = this.len;
    let p = this.pos + 1;
    const neg = p < len && b[p] === MINUS;
    if (neg) p++;
    // Digits up to the closing quote; anything else (an escape too) is not the usual time.
    let to = p;
    while (to < len) {
      const c = b[to]!;
      if (c < D0 || c > D9) break;
      to++;
    }
    if (to === p || to >= len || b[to] !== QUOTE) return undefined;
    this.pos = to + 1;
    // BigInt of the text, from numbers rather than from a string made first: up to 18 digits (or 19 below 2^63,
    // every time until the year 2262) from the two 32-bit words of their value, one bigint made.
    const n = to - p;
    let v: bigint | undefined;
    if (n <= 15) v = BigInt(digitsValue(b, p, to));
    else if (n <= 19 && LITTLE_ENDIAN) v = int64Of(digitsValue(b, p, to - 9), digitsValue(b, to - 9, to));
    if (v === undefined) {
      if (n <= 30) v = BigInt(digitsValue(b, p, to - 15)) * E15 + BigInt(digitsValue(b, to - 15, to));
      else v = BigInt(asciiText(b, p, to));
    }
    return neg ? -v : v;
  }

  /**
   * A base64 string at `pos` decoded into the slab, when it is the usual kind: whole groups of four digits, then
   * two or three more with or without their padding; undefined for anything else, which atob decides (whitespace,
   * misplaced padding, a lone digit, a bad character) and for a value beyond {@link CELL_ROOM} bytes. Bits past
   * the last byte are dropped, as atob drops them.
   */
  base64Cell(slab: ByteSlab): Uint8Array | undefined {
    const b = this.b, len = this.len;
    let p = this.pos + 1;
    const out = slab.reserve(CELL_ROOM);
    const at = slab.used(), room = at + CELL_ROOM - 3;
    let o = at;
    for (; p + 4 <= len; p += 4) {
      const d0 = B64[b[p]!]!, d1 = B64[b[p + 1]!]!, d2 = B64[b[p + 2]!]!, d3 = B64[b[p + 3]!]!;
      if ((d0 | d1 | d2 | d3) > 63 || o > room) break;
      const v = (d0 << 18) | (d1 << 12) | (d2 << 6) | d3;
      out[o] = v >>> 16;
      out[o + 1] = (v >>> 8) & 255;
      out[o + 2] = v & 255;
      o += 3;
    }
    if (o > room) return undefined;
    let end: number;
    const c0 = this.at(p);
    if (c0 === QUOTE) end = p + 1;
    else {
      const d0 = c0 < 0 ? 255 : B64[c0]!, d1 = B64[this.at(p + 1) & 255]!;
      const c2 = this.at(p + 2), c3 = this.at(p + 3);
      if (d0 > 63 || d1 > 63) return undefined;
      const d2 = c2 < 0 ? 255 : B64[c2]!;
      if (d2 > 63) {
        // Two digits: one byte.
        if (c2 === QUOTE) end = p + 3;
        else if (c2 === EQUALS && c3 === EQUALS && this.at(p + 4) === QUOTE) end = p + 5;
        else return undefined;
        out[o++] = (d0 << 2) | (d1 >>> 4);
      } else {
        // Three digits: two bytes.
        if (c3 === QUOTE) end = p + 4;
        else if (c3 === EQUALS && this.at(p + 4) === QUOTE) end = p + 5;
        else return undefined;
        out[o++] = (d0 << 2) | (d1 >>> 4);
        out[o++] = ((d1 & 15) << 4) | (d2 >>> 2);
      }
    }
    this.pos = end;
    slab.advance(o - at);
    return out.subarray(at, o);
  }

  /** A plain string at `pos` as text; undefined if not one. */
  plainText(): string | undefined {
    const end = this.plainString();
    if (end < 0) return undefined;
    const text = asciiText(this.b, this.pos + 1, end - 1);
    this.pos = end;
    return text;
  }

  /** The bytes of `word` (ASCII) at `pos`, consumed; false if they are not there. */
  literal(word: Uint8Array): boolean {
    const b = this.b, p = this.pos;
    if (p + word.length > this.len) return false;
    for (let i = 0; i < word.length; i++) if (b[p + i] !== word[i]) return false;
    this.pos = p + word.length;
    return true;
  }

  /**
   * A string's UTF-8 bytes (escapes decoded) as a cell carved from the slab; undefined when not handled. Every
   * escape is at least two characters for one byte, so a run of the line bounds the bytes it adds: the cell is
   * given room as it grows (moved to a fresh slab when the current one is short), not the rest of the line first
   * (which in a file's bytes is not known until the line is read).
   */
  stringCell(slab: ByteSlab): Uint8Array | undefined {
    const b = this.b, len = this.len;
    let p = this.pos + 1;
    let out: Uint8Array, at: number, o: number;
    const k = this.kernel;
    if (k !== undefined) {
      // The kernel copies what it can (nearly always the whole cell); this loop takes over where it stops.
      const q = k.run(b, p, len);
      const done = k.out, from = k.outAt, to = k.outEnd(), n = to - from;
      if (q < len && b[q] === QUOTE) {
        this.pos = q + 1;
        if (n <= SHARED_CELL_MAX) {
          const shared = sharedCell(done, from, to);
          if (shared !== undefined) return shared;
        }
        if (n < COPY_SET_MIN) {
          out = slab.reserve(n);
          at = slab.used();
          copyBytes(done, from, to, out, at);
        } else {
          // The output area's view of the least size class that holds the cell, copied whole: the bytes past the
          // cell land in the slab's free part. A view of exactly the cell's bytes was an object made per row.
          const view = this.#outView(k, n);
          out = slab.reserve(view.length);
          at = slab.used();
          out.set(view, at);
        }
        slab.advance(n);
        return out.subarray(at, at + n);
      }
      out = slab.reserve(n + Math.min(len - q + 1, CELL_ROOM));
      at = slab.used();
      copyBytes(done, from, to, out, at);
      o = at + n;
      p = q;
    } else {
      out = slab.reserve(Math.min(len - p + 1, CELL_ROOM));
      at = slab.used();
      o = at;
    }
    for (;;) {
      // The run of plain bytes up to the next quote, backslash, control or non-ASCII byte, copied as it is.
      const q = this.plainRun(p);
      if (o + (q - p) + 1 > out.length) {
        // The cell so far moves to a slab with room for this run and an escape's byte.
        const kept = o - at;
        const fresh = slab.reserve(kept + (q - p) + 1);
        const to = slab.used();
        fresh.set(out.subarray(at, o), to);
        out = fresh;
        at = to;
        o = to + kept;
      }
      if (q - p >= COPY_SET_MIN) {
        out.set(b.subarray(p, q), o);
        o += q - p;
        p = q;
      } else for (; p < q; p++) out[o++] = b[p]!;
      if (p >= len) return undefined;
      const c = b[p]!;
      if (c === QUOTE) break;
      if (c === BACKSLASH) {
        const e = this.at(p + 1);
        if (e === 0x75) {
          const v = (hexValue(this.at(p + 2)) << 12) | (hexValue(this.at(p + 3)) << 8) |
            (hexValue(this.at(p + 4)) << 4) | hexValue(this.at(p + 5));
          if (v < 0 || v >= 0x80) return undefined;
          out[o++] = v;
          p += 6;
          continue;
        }
        // SIMPLE_ESCAPE covers ASCII only: a byte above 0x7f after a backslash is no escape (it read as 0 before).
        const x = e >= 0 && e < 0x80 ? SIMPLE_ESCAPE[e]! : 0;
        if (x === 0) return undefined;
        out[o++] = x;
        p += 2;
        continue;
      }
      // Control characters go to JSON.parse; so does any byte above 0x7f (a line is read here only if ASCII).
      return undefined;
    }
    this.pos = p + 1;
    if (o - at <= SHARED_CELL_MAX) {
      const shared = sharedCell(out, at, o);
      if (shared !== undefined) return shared;
    }
    slab.advance(o - at);
    return out.subarray(at, o);
  }

  /**
   * A view of `k`'s output from its start, of the least size class (64 bytes times a power of two, up to the
   * area's {@link OUT_ROOM}) that holds `n` bytes (kept with the kernel, {@link CellKernel.views}).
   */
  #outView(k: CellKernel, n: number): Uint8Array {
    let c = 0;
    while (VIEW_MIN << c < n) c++;
    return k.views[c] ??= new Uint8Array(
      k.out.buffer,
      k.out.byteOffset + k.outAt,
      Math.min(VIEW_MIN << c, OUT_ROOM),
    );
  }

  /** 32-bit words of {@link b}'s buffer (for {@link plainRun}), made again when the buffer changes. */
  #words: Uint32Array | undefined;

  /**
   * The first position at or after `p` whose byte is a quote, a backslash, a control character or above 0x7f
   * (`len` if none): the end of a run {@link stringCell} copies as it is. A few bytes (a key, a short value) are
   * read one by one; a long run (the payload of a body) four bytes at a time, as json_scan_bytes.ts does: a byte
   * below 0x20 borrows in w - 0x20202020 with its top bit clear, a quote or backslash is a zero byte after an XOR,
   * and a byte above 0x7f has its top bit set. A word with any of them is read again byte by byte.
   */
  plainRun(p: number): number {
    const b = this.b, len = this.len;
    const near = p + 16 < len ? p + 16 : len;
    for (; p < near; p++) if (NOT_PLAIN[b[p]!] !== 0) return p;
    const base = b.byteOffset;
    for (; p < len && (base + p) & 3; p++) if (notPlain(b[p]!)) return p;
    if (p >= len) return len;
    // The kernel's words when `b` is in a kernel's memory (it is that memory's kernel), else made for the buffer.
    let words = this.kernel?.words ?? this.#words;
    if (words === undefined || words.buffer !== b.buffer || words.length !== b.buffer.byteLength >>> 2) {
      words = this.#words = new Uint32Array(b.buffer, 0, b.buffer.byteLength >>> 2);
    }
    const end = (base + len) >>> 2;
    let i = (base + p) >>> 2;
    for (; i < end; i++) {
      const w = words[i]!;
      const qt = w ^ 0x22222222, bs = w ^ 0x5c5c5c5c;
      if (
        (w | ((w - 0x20202020) & ~w) | ((qt - 0x01010101) & ~qt) | ((bs - 0x01010101) & ~bs)) & 0x80808080
      ) break;
    }
    for (p = (i << 2) - base; p < len; p++) if (notPlain(b[p]!)) return p;
    return len;
  }

  /** An integer (no fraction or exponent: those go to JSON.parse) as a number; undefined if not one. */
  integer(): number | undefined {
    const from = this.pos;
    let p = from;
    if (this.at(p) === MINUS) p++;
    const d0 = p;
    for (;;) {
      const c = this.at(p);
      if (c < D0 || c > D9) break;
      p++;
    }
    if (p === d0) return undefined;
    // JSON forbids leading zeros; a fraction or exponent is left to JSON.parse's number reading.
    if (this.at(d0) === D0 && p - d0 > 1) return undefined;
    const next = this.at(p);
    if (next === 0x2e || next === 0x65 || next === 0x45) return undefined;
    this.pos = p;
    // Up to 15 digits the value is exact as a number; beyond, Number's rounding of the text decides.
    if (p - d0 <= 15) {
      const v = digitsValue(this.b, d0, p);
      return d0 > from ? -v : v;
    }
    return Number(asciiText(this.b, from, p));
  }
}

const TRUE = new TextEncoder().encode("true");
const FALSE = new TextEncoder().encode("false");

/** Names seen recently, by a hash of their bytes (a slot holds the last name that hashed there). */
const NAME_SLOTS = 256;
const names: (Name | undefined)[] = new Array(NAME_SLOTS).fill(undefined);
/** The row's keys in the line read last, in order (each line is compared with it first), and the last query. */
const shape: Name[] = [];
/** The keys of the line being read from the first that differs from {@link shape}. */
const fresh: Name[] = [];
let lastQuery: Name | undefined;

const reader = new LineReader();

/**
 * String cells up to this many bytes (a pod, an address, a method: values that repeat from row to row) may be
 * shared: see {@link sharedCell}.
 */
const SHARED_CELL_MAX = 64;
/** Short cells seen twice lately, by a hash of their bytes (a slot holds the last cell that hashed there). */
const CELL_SLOTS = 8192;
const cells: (Uint8Array | undefined)[] = new Array(CELL_SLOTS).fill(undefined);
/** Per slot, the hash of the last short cell seen there once and not shared yet (0: none). */
const seen = new Int32Array(CELL_SLOTS);

/**
 * The cell of bytes `out[at..o)` (written past the slab's used part, which is left as it is) when it repeats: the
 * same array as last time for the same bytes, or, on their second sighting, an array of their own from then on;
 * undefined the first time (the caller makes a view of the slab, as for any cell). A view was ~100 bytes a cell,
 * and rows wait in the capture merge's window long enough for the young-generation collector to copy them, so
 * most of a row's bytes there were the views of its repeating short cells. An array of its own costs ~5 views
 * to make, hence only for bytes seen before. Cells are read-only, as every reader of a row treats them.
 */
function sharedCell(out: Uint8Array, at: number, o: number): Uint8Array | undefined {
  const n = o - at;
  let h = n + 1;
  for (let i = at; i < o; i++) h = (Math.imul(h, 31) + out[i]!) | 0;
  h |= 1; // never 0, which marks an empty slot of `seen`
  const slot = (h ^ (h >>> 13)) & (CELL_SLOTS - 1);
  const known = cells[slot];
  if (known !== undefined && known.length === n) {
    let i = 0;
    while (i < n && known[i] === out[at + i]) i++;
    if (i === n) return known;
  }
  if (seen[slot] !== h) {
    seen[slot] = h;
    return undefined;
  }
  seen[slot] = 0;
  const own = out.slice(at, o);
  cells[slot] = own;
  return own;
}

/**
 * The row of a capture line of the usual shape (see the module doc), or undefined when the line is anything
 * else (then parse it with `JSON.parse`). `base64` decodes a `{"base64": …}` cell as capture.ts does (throws
 * on bad base64: the line is then left to the general reader, which reports it).
 */
export function parseCaptureLineFast(
  line: string,
  node: string,
  slab: ByteSlab,
  base64: (b64: string) => Uint8Array,
): Row | undefined {
  const r = reader;
  if (!r.load(line)) return undefined;
  try {
    return readLine(r, node, slab, base64);
  } catch {
    return undefined;
  }
}

/**
 * {@link parseCaptureLineFast} for the line `bytes[from..to)` of a capture file, read from its bytes (no text
 * made of the line). Undefined when the line is anything but the usual shape in ASCII: then decode it and
 * give it to `parseCaptureLine`, which decides.
 */
export function parseCaptureLineBytes(
  bytes: Uint8Array,
  from: number,
  to: number,
  node: string,
  slab: ByteSlab,
  base64: (b64: string) => Uint8Array,
): Row | undefined {
  const row = readCaptureLine(bytes, from, to, true, node, slab, base64);
  return row !== undefined && reader.end === to ? row : undefined;
}

/**
 * The row of the line that opens at `bytes[from]`, read from the file's bytes up to its newline, which must come
 * before `limit`; or up to `limit` itself when `endsAtLimit` (the file's last line). {@link lineEnd} then tells
 * where the line ended (its newline, or `limit`). Undefined when the line is anything but the usual shape in
 * ASCII, or does not end before `limit`: then find its newline, decode the line and give it to
 * `parseCaptureLine`, which decides.
 */
export function readCaptureLine(
  bytes: Uint8Array,
  from: number,
  limit: number,
  endsAtLimit: boolean,
  node: string,
  slab: ByteSlab,
  base64: (b64: string) => Uint8Array,
): Row | undefined {
  const r = reader;
  r.loadBytes(bytes, from, limit, endsAtLimit);
  try {
    return readLine(r, node, slab, base64);
  } catch {
    return undefined;
  } finally {
    r.b = scratch;
  }
}

/** The usual line's start, `{"query":"m/s","row":{`: its query (the reader after the brace), or undefined. */
function linePrefix(r: LineReader): Name | undefined {
  if (!r.eat(LBRACE) || !r.eat(QUOTE)) return undefined;
  r.pos--;
  if (r.name(QUERY_KEY) !== QUERY_KEY || !r.eat(COLON)) return undefined;
  r.ws();
  if (r.at(r.pos) !== QUOTE) return undefined;
  const query = r.name(lastQuery);
  if (query === undefined || !query.query) return undefined;
  lastQuery = query;
  if (!r.eat(COMMA) || !r.eat(QUOTE)) return undefined;
  r.pos--;
  if (r.name(ROW_KEY) !== ROW_KEY || !r.eat(COLON) || !r.eat(LBRACE)) return undefined;
  return query;
}

/** What {@link peekCaptureLine} read of a line, valid until the next peek. */
export const peeked: { query: string; time: bigint; end: number } = { query: "", time: 0n, end: 0 };

/**
 * The query and time of the line that opens at `bytes[from]`, without reading its cells: true when the line
 * starts as the usual one does, `{"query":"m/s","row":{"time_":"…"` (query and time as {@link readCaptureLine}
 * reads them), and its newline comes before `limit` (or `endsAtLimit`); {@link peeked} then holds them and where
 * the line ends. The rest of the line is not looked at: a line whose cells turn out malformed is found when it is
 * read ({@link readCaptureLine}, then the general reader, which decides). False for any other start: read the line
 * as before.
 */
export function peekCaptureLine(
  bytes: Uint8Array,
  from: number,
  limit: number,
  endsAtLimit: boolean,
): boolean {
  const r = reader;
  r.loadBytes(bytes, from, limit, endsAtLimit);
  try {
    const query = linePrefix(r);
    if (query === undefined) return false;
    r.ws();
    if (r.at(r.pos) !== QUOTE || r.name(TIME_KEY) !== TIME_KEY || !r.eat(COLON)) return false;
    r.ws();
    if (r.at(r.pos) !== QUOTE) return false;
    const time = r.decimalString();
    if (time === undefined) return false;
    const kernel = r.kernel;
    let end = kernel !== undefined ? kernel.newline(bytes, r.pos, limit) : bytes.indexOf(LF, r.pos);
    if (end < 0 || end >= limit) {
      if (!endsAtLimit) return false;
      end = limit;
    }
    peeked.query = query.text;
    peeked.time = time;
    peeked.end = end;
    return true;
  } finally {
    r.b = scratch;
  }
}

/** Where the line {@link readCaptureLine} read last ended: the position of its newline, or its limit. */
export function lineEnd(): number {
  return reader.end;
}

function readLine(
  r: LineReader,
  node: string,
  slab: ByteSlab,
  base64: (b64: string) => Uint8Array,
): Row | undefined {
  const query = linePrefix(r);
  if (query === undefined) return undefined;
  // The cells in line order (time_ aside), made into the row's record at the end (see columnsBuilder).
  let count = 0;
  let time: bigint | undefined;
  r.ws();
  if (r.at(r.pos) === RBRACE) return undefined; // no time_
  // While every key is the one at its place in the last line read (whose keys were checked and distinct), a key
  // cannot repeat an earlier one. From the first that differs, the keys are checked and kept for the next line.
  let same = shape.length;
  // Setting an array's length is a call into the runtime even when it does not change: only when it does.
  if (fresh.length !== 0) fresh.length = 0;
  for (let k = 0;; k++) {
    r.ws();
    if (r.at(r.pos) !== QUOTE) return undefined;
    const asBefore = k < same;
    const expect = asBefore ? shape[k] : undefined;
    const key = r.name(expect);
    if (key === undefined || !r.eat(COLON)) return undefined;
    if (key !== expect) {
      if (asBefore) same = k;
      fresh.push(key);
    }
    r.ws();
    const c = r.at(r.pos);
    if (key.time) {
      if (time !== undefined || c !== QUOTE) return undefined;
      time = r.decimalString();
      if (time === undefined) return undefined;
    } else {
      // Array-index names enumerate first and `__proto__` would set the prototype: the general reader's way.
      const name = key.text;
      if (!key.column || (key !== expect && seenColumn(name, count))) return undefined;
      let cell: Cell;
      if (c === QUOTE) {
        const bytes = r.stringCell(slab);
        if (bytes === undefined) return undefined;
        cell = bytes;
      } else if (c === LBRACE) {
        r.pos++;
        if (!r.eat(QUOTE)) return undefined;
        r.pos--;
        if (r.name(BASE64_KEY) !== BASE64_KEY || !r.eat(COLON)) return undefined;
        r.ws();
        if (r.at(r.pos) !== QUOTE) return undefined;
        // The usual digits are decoded from the line's bytes; anything else is made text and decoded as atob does.
        const direct = r.base64Cell(slab);
        if (direct !== undefined) {
          if (!r.eat(RBRACE)) return undefined;
          cell = direct;
        } else {
          const b64 = r.plainText();
          if (b64 === undefined || !r.eat(RBRACE)) return undefined;
          cell = base64(b64);
        }
      } else if (c === 0x74 && r.literal(TRUE)) {
        cell = true;
      } else if (c === 0x66 && r.literal(FALSE)) {
        cell = false;
      } else {
        const v = r.integer();
        if (v === undefined) return undefined;
        cell = v;
      }
      rowKeys[count] = key;
      rowCells[count++] = cell;
    }
    r.ws();
    const sep = r.at(r.pos++);
    if (sep === COMMA) continue;
    if (sep !== RBRACE) return undefined;
    const kept = same < k + 1 ? same : k + 1;
    if (shape.length !== kept) shape.length = kept;
    for (let i = 0; i < fresh.length; i++) shape.push(fresh[i]!);
    break;
  }
  if (time === undefined || !r.eat(RBRACE)) return undefined;
  r.ws();
  // The line ends here: at its newline (a file's bytes), or at the end of what was given.
  if (r.pos < r.len ? !r.fromFile || r.b[r.pos] !== LF : !r.endsAtLen) return undefined;
  r.end = r.pos;
  // rowCells is not cleared (a builtin call per row): the next line's cells replace these.
  const columns = columnsBuilder(count)(time, rowCells);
  return { query: query.text, node, time, columns };
}

/** The row's column keys and cells (time_ aside) while its line is read. */
const rowKeys: Name[] = [];
const rowCells: (Cell | undefined)[] = [];

/** Whether the line read so far has a column named `name` (its first `count`). */
function seenColumn(name: string, count: number): boolean {
  for (let i = 0; i < count; i++) if (rowKeys[i]!.text === name) return true;
  return false;
}

/** Builds a row's record: time_ first, then the cells in line order (the general reader's key order). */
type ColumnsOf = (time: bigint, cells: readonly (Cell | undefined)[]) => Record<string, Cell>;

/**
 * Builders by their keys: one object literal of a fixed shape each (as pixie/columns.ts builds a batch's rows),
 * so a record is one allocation with its properties inside, not a literal grown key by key (whose added
 * properties took arrays of their own: a record outlives the young generation in the capture merge's window).
 * Keys are quoted by JSON.stringify; a column key is never `__proto__` nor an array index (Name.column).
 */
const builders = new Map<string, ColumnsOf>();
/** The builder used last, and its keys (the next line nearly always has the same). */
let lastBuilder: ColumnsOf | undefined;
const lastKeys: Name[] = [];

function columnsBuilder(count: number): ColumnsOf {
  if (lastBuilder !== undefined && lastKeys.length === count) {
    let i = 0;
    while (i < count && lastKeys[i] === rowKeys[i]) i++;
    if (i === count) return lastBuilder;
  }
  const keys = rowKeys.slice(0, count);
  const id = keys.map((k) => k.text).join("\u0000");
  let f = builders.get(id);
  if (f === undefined) {
    const body = keys.map((k, i) => `${JSON.stringify(k.text)}: cells[${i}]`).join(", ");
    f = new Function(
      "time",
      "cells",
      `"use strict"; return { "time_": time${count > 0 ? ", " : ""}${body} };`,
    ) as ColumnsOf;
    if (builders.size >= 256) builders.clear();
    builders.set(id, f);
  }
  lastBuilder = f;
  lastKeys.length = 0;
  for (const k of keys) lastKeys.push(k);
  return f;
}
