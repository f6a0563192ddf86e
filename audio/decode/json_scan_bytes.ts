/**
 * The JSON path scanner: finds where the value at a configured path lies in a payload's bytes without building
 * objects (JSON.parse of a whole 20 ms message costs more than the rest of its decode) and without decoding the
 * body to text first (a UTF-8 decode of every message cost as much as the scan). Strings, which are most of a
 * payload, are skipped sixteen bytes a step (the base64 kernel's WebAssembly, see {@link ByteScanner.special}),
 * and the audio field is decoded where it lies in the payload.
 *
 * It accepts what JSON.parse accepts on the body's UTF-8 text and finds the value JSON.parse and a path lookup
 * would (a later duplicate key wins), or answers {@link BYTES_BAD} and the caller asks JSON.parse. JSON's
 * structure is ASCII, and a multi-byte UTF-8 sequence (or an invalid one, which the text decoder turns into
 * U+FFFD) holds no ASCII byte, so strings end at the same quotes in the bytes as in the text. A key that is
 * escaped or not ASCII is compared decoded; a byte-order mark (which the text decoder drops), nesting deeper than
 * it walks, and anything malformed are BAD.
 *
 * Several paths are found in one pass ({@link scanJsonPathsBytes}); a payload envelope keeps its body's answers
 * ({@link ByteScans}), so a message whose stream key and audio field are both JSON fields is read once.
 * @module
 */

import { base64Kernel, FIELD_MAX_BODY } from "./base64_simd.ts";

/** Where the scanned value lies: bytes [start, end), quotes included for strings. */
export interface ByteScanHit {
  start: number;
  end: number;
  string: boolean;
  /** The string holds a backslash escape. */
  escaped: boolean;
}

/** No value at the path (the JSON is well formed). */
export const BYTES_MISSING: unique symbol = Symbol("missing");
/** Not handled here (malformed, a byte-order mark, deep nesting): ask JSON.parse. */
export const BYTES_BAD: unique symbol = Symbol("bad");

const MAX_DEPTH = 128;
/** Decodes pieces of a body: a leading U+FEFF in a piece is part of a string, not a byte-order mark. */
const utf8 = new TextDecoder("utf-8", { ignoreBOM: true });

/** A compiled path for the byte scanner: segments, their array indices (-1: a key) and their UTF-8 bytes. */
export interface BytePath {
  segs: readonly string[];
  index: readonly number[];
  bytes: readonly Uint8Array[];
  /** Per segment: all ASCII (a key without escapes then matches it exactly when its bytes are the same). */
  ascii: readonly boolean[];
}

const encoder = new TextEncoder();
const compiled = new WeakMap<readonly string[], BytePath>();

/** The byte form of a path's segments (cached per segment array). */
export function bytePath(segs: readonly string[]): BytePath {
  let p = compiled.get(segs);
  if (!p) {
    p = {
      segs,
      index: segs.map((s) => (/^\d+$/.test(s) ? Number(s) : -1)),
      bytes: segs.map((s) => encoder.encode(s)),
      ascii: segs.map((s) => [...s].every((ch) => ch.charCodeAt(0) < 0x80)),
    };
    compiled.set(segs, p);
  }
  return p;
}

/** Most paths one scan looks for (bits of a mask; see {@link ByteScans}). */
const MAX_PATHS = 8;
/** Most string values a {@link Shape} stands for (a body with more is only ever scanned). */
const MAX_SHAPE_STRINGS = 64;

class ByteScanner {
  b: Uint8Array = new Uint8Array(0);
  len = 0;
  pos = 0;
  /** The paths looked for; a mask's bit p stands for `paths[p]`. */
  paths: readonly BytePath[] = [];
  /** Each path's segment count. */
  readonly lens = new Int32Array(MAX_PATHS);
  /** Each path's hit so far (the first `paths.length`; reused from scan to scan). */
  readonly hits: (ByteScanHit | undefined)[] = new Array<ByteScanHit | undefined>(MAX_PATHS).fill(undefined);
  escaped = false;
  /**
   * The payload's buffer as 32-bit words, made when a long string is read in a buffer not seen last (see
   * {@link special}).
   */
  words: Uint32Array | undefined;
  /** The body is in the SIMD kernel's memory (copied there by this scan's first long string; see {@link special}). */
  loaded = false;
  /** The string values without escapes the last scan read, in order (the first {@link MAX_SHAPE_STRINGS}). */
  readonly strStart = new Int32Array(MAX_SHAPE_STRINGS);
  readonly strEnd = new Int32Array(MAX_SHAPE_STRINGS);
  strings = 0;

  /**
   * Whether the body (`b`) is `shape`'s: its fixed bytes the same and a plain string between them (no quote,
   * backslash or control character) in place of each of the shape's strings. The hits are then left as a scan's.
   */
  matches(shape: Shape): boolean {
    const b = this.b, len = this.len, fixed = shape.fixed, ends = shape.ends;
    const at = this.strStart, to = this.strEnd;
    let p = 0, f = 0;
    for (let j = 0;; j++) {
      const end = ends[j]!;
      if (p + end - f > len) return false;
      while (f < end) if (b[p++] !== fixed[f++]) return false;
      if (j === ends.length - 1) break;
      // A plain string runs from the quote the fixed bytes end with to the next special byte, which must be a quote.
      const q = this.special(p);
      if (q >= len || b[q] !== 0x22) return false;
      at[j] = p - 1;
      to[j] = q + 1;
      p = q;
    }
    if (p !== len) return false;
    const paths = this.paths.length, of = shape.hitString;
    for (let i = 0; i < paths; i++) {
      const k = of[i]!;
      this.hits[i] = k < 0 ? undefined : { start: at[k]!, end: to[k]!, string: true, escaped: false };
    }
    return true;
  }

  ws(): void {
    const b = this.b, len = this.len;
    let p = this.pos;
    while (p < len) {
      const c = b[p]!;
      if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) p++;
      else break;
    }
    this.pos = p;
  }

  at(p: number): number {
    return p < this.len ? this.b[p]! : -1;
  }

  /**
   * A value; `mask`: the paths whose first `depth` segments lead here (their value, when that is all of them; a
   * step on the way otherwise).
   */
  value(mask: number, depth: number): boolean {
    if (depth > MAX_DEPTH) return false;
    this.ws();
    if (this.pos >= this.len) return false;
    const c = this.b[this.pos]!;
    const start = this.pos;
    let ends = 0, descend = 0;
    if (mask !== 0) {
      const lens = this.lens;
      for (let m = mask, i = 0; m !== 0; m >>>= 1, i++) {
        if ((m & 1) === 0) continue;
        if (lens[i] === depth) ends |= 1 << i;
        else descend |= 1 << i;
      }
    }
    let ok: boolean;
    if (c === 0x7b) ok = this.object(descend, depth);
    else if (c === 0x5b) ok = this.array(descend, depth);
    else if (c === 0x22) {
      ok = this.string();
      // The body's shape: where its plain string values lie (see Shape).
      if (ok && !this.escaped) {
        const n = this.strings;
        if (n < MAX_SHAPE_STRINGS) {
          this.strStart[n] = start;
          this.strEnd[n] = this.pos;
        }
        this.strings = n + 1;
      }
    } else ok = this.scalar();
    if (ok && ends !== 0) {
      const hit = { start, end: this.pos, string: c === 0x22, escaped: c === 0x22 && this.escaped };
      for (let m = ends, i = 0; m !== 0; m >>>= 1, i++) if ((m & 1) !== 0) this.hits[i] = hit;
    }
    return ok;
  }

  object(mask: number, depth: number): boolean {
    this.pos++;
    this.ws();
    if (this.at(this.pos) === 0x7d) {
      this.pos++;
      return true;
    }
    for (;;) {
      this.ws();
      if (this.at(this.pos) !== 0x22) return false;
      const keyStart = this.pos;
      if (!this.string()) return false;
      let match = 0;
      if (mask !== 0) {
        for (let m = mask, i = 0; m !== 0; m >>>= 1, i++) {
          if ((m & 1) !== 0 && this.keyIs(keyStart, this.pos, this.paths[i]!, depth)) match |= 1 << i;
        }
      }
      this.ws();
      if (this.at(this.pos) !== 0x3a) return false;
      this.pos++;
      // A later duplicate key wins, as in JSON.parse: forget what an earlier one led to.
      if (match !== 0) {
        for (let m = match, i = 0; m !== 0; m >>>= 1, i++) if ((m & 1) !== 0) this.hits[i] = undefined;
      }
      if (!this.value(match, depth + 1)) return false;
      this.ws();
      const c = this.at(this.pos);
      this.pos++;
      if (c === 0x2c) continue;
      return c === 0x7d;
    }
  }

  array(mask: number, depth: number): boolean {
    this.pos++;
    this.ws();
    if (this.at(this.pos) === 0x5d) {
      this.pos++;
      return true;
    }
    for (let i = 0;; i++) {
      let match = 0;
      if (mask !== 0) {
        for (let m = mask, k = 0; m !== 0; m >>>= 1, k++) {
          if ((m & 1) !== 0 && this.paths[k]!.index[depth] === i) match |= 1 << k;
        }
      }
      if (!this.value(match, depth + 1)) return false;
      this.ws();
      const c = this.at(this.pos);
      this.pos++;
      if (c === 0x2c) continue;
      return c === 0x5d;
    }
  }

  /**
   * Skips a string, noting whether it holds a backslash escape; false on what JSON.parse refuses in a string (a
   * raw control character, an unknown escape, a short \u).
   */
  string(): boolean {
    const b = this.b, len = this.len;
    let p = this.pos + 1;
    let escaped = false;
    for (;;) {
      p = this.special(p);
      if (p >= len) return false;
      const c = b[p]!;
      if (c === 0x22) break;
      if (c < 0x20) return false;
      escaped = true; // a backslash
      const e = p + 1 < len ? b[p + 1]! : -1;
      if (e === 0x75) {
        if (p + 6 > len) return false;
        for (let k = p + 2; k < p + 6; k++) if (!isHex(b[k]!)) return false;
        p += 6;
      } else if (e >= 0 && SIMPLE_ESCAPE[e] === 1) p += 2;
      else return false;
    }
    this.escaped = escaped;
    this.pos = p + 1;
    return true;
  }

  /**
   * The first position at or after `p` holding a quote, a backslash or a control character (len if none). Keys
   * and short values end within a few bytes, which a loop reads; past those, the rest (the audio field, most of a
   * payload) is read sixteen bytes at a time by the base64 kernel's WebAssembly (base64_simd.ts), the body copied
   * into its memory once a scan. The JS scanned it eight bytes a step, one pass for all three (the engine's byte
   * search takes a pass per byte value, and is no faster per byte), ~110 ns for a 20 ms message's 216 digits,
   * ~10% of a live row's keying and decoding: the kernel's copy and scan cost about half. Fusing this pass with
   * the digits' decode was weighed: a batch's rows are all keyed (scanned) before any is decoded, so the decoded
   * bytes would have to be kept per row. Where the kernel is missing (or the body is longer than it takes), a word
   * holds one of them when, XORed with 0x02 in each byte (a quote becomes 0x20, a control character stays below
   * 0x20, and nothing else goes below 0x21), it holds a byte below 0x21, which borrows in x - 0x21212121 with its
   * top bit clear; or when, XORed with 0x5c, it holds a zero byte (a backslash), found the same way
   * (x - 0x01010101).
   */
  special(p: number): number {
    const b = this.b, len = this.len;
    const near = p + 16 < len ? p + 16 : len;
    for (; p < near; p++) if (SPECIAL[b[p]!] !== 0) return p;
    if (len - p >= KERNEL_FROM && len <= FIELD_MAX_BODY && specialKernel) {
      const kernel = base64Kernel();
      if (kernel !== undefined) {
        const q = kernel.special(b, p, !this.loaded);
        this.loaded = true;
        return q;
      }
    }
    const base = b.byteOffset;
    for (; p < len && (base + p) & 3; p++) if (SPECIAL[b[p]!] !== 0) return p;
    if (p >= len) return len;
    let words = this.words;
    if (!words || words.buffer !== b.buffer || words.length !== b.buffer.byteLength >>> 2) {
      words = this.words = wordsOf(b.buffer);
    }
    const end = (base + len) >>> 2;
    let i = (base + p) >>> 2;
    // Two words a step: one test and one branch for eight bytes.
    for (; i + 1 < end; i += 2) {
      const w = words[i]!, v = words[i + 1]!;
      const x = w ^ 0x02020202, e = w ^ 0x5c5c5c5c, y = v ^ 0x02020202, f = v ^ 0x5c5c5c5c;
      if (
        (((x - 0x21212121) & ~x) | ((e - 0x01010101) & ~e) | ((y - 0x21212121) & ~y) |
          ((f - 0x01010101) & ~f)) &
        0x80808080
      ) break;
    }
    for (p = (i << 2) - base; p < len; p++) if (SPECIAL[b[p]!] !== 0) return p;
    return len;
  }

  scalar(): boolean {
    const c = this.b[this.pos]!;
    if (c === 0x74) return this.literal(TRUE);
    if (c === 0x66) return this.literal(FALSE);
    if (c === 0x6e) return this.literal(NULL);
    return this.number();
  }

  /** Skips a number spelled as JSON spells it: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)? */
  number(): boolean {
    const b = this.b, len = this.len;
    let p = this.pos;
    if (b[p] === 0x2d) p++;
    if (p >= len) return false;
    if (b[p] === 0x30) p++;
    else if (isDigit(b[p]!)) p = this.digits(p);
    else return false;
    if (p < len && b[p] === 0x2e) {
      const d = this.digits(p + 1);
      if (d === p + 1) return false;
      p = d;
    }
    if (p < len && (b[p] === 0x65 || b[p] === 0x45)) {
      p++;
      if (p < len && (b[p] === 0x2b || b[p] === 0x2d)) p++;
      const d = this.digits(p);
      if (d === p) return false;
      p = d;
    }
    this.pos = p;
    return true;
  }

  /** The position after the run of digits starting at `p`. */
  digits(p: number): number {
    const b = this.b, len = this.len;
    while (p < len && isDigit(b[p]!)) p++;
    return p;
  }

  literal(word: Uint8Array): boolean {
    if (this.pos + word.length > this.len) return false;
    for (let i = 0; i < word.length; i++) if (this.b[this.pos + i] !== word[i]) return false;
    this.pos += word.length;
    return true;
  }

  /**
   * Whether the key at bytes [start, end) (quotes included) is path segment `depth`: by bytes when the key is
   * plain ASCII, else decoded as JSON.parse reads the body's text.
   */
  keyIs(start: number, end: number, path: BytePath, depth: number): boolean {
    const b = this.b;
    // A key without escapes matches an ASCII segment exactly when its bytes are the segment's: any byte above
    // 0x7f decodes to a character (U+FFFD if invalid) no ASCII text holds.
    if (!this.escaped && path.ascii[depth]!) {
      const want = path.bytes[depth]!;
      if (end - start - 2 !== want.length) return false;
      for (let i = 0; i < want.length; i++) if (b[start + 1 + i] !== want[i]) return false;
      return true;
    }
    if (this.escaped || hasNonAscii(b, start + 1, end - 1)) {
      const text = utf8.decode(b.subarray(start, end));
      const want = path.segs[depth]!;
      if (!this.escaped) return text.slice(1, -1) === want;
      try {
        return JSON.parse(text) === want;
      } catch {
        return false;
      }
    }
    const want = path.bytes[depth]!;
    if (end - start - 2 !== want.length) return false;
    for (let i = 0; i < want.length; i++) if (b[start + 1 + i] !== want[i]) return false;
    return true;
  }
}

const TRUE = encoder.encode("true");
const FALSE = encoder.encode("false");
const NULL = encoder.encode("null");

/** 1 at the bytes that may follow a backslash on their own: " \\ / b f n r t. */
const SIMPLE_ESCAPE = new Uint8Array(128);
for (const c of '"\\/bfnrt') SIMPLE_ESCAPE[c.charCodeAt(0)] = 1;

/** A byte that ends a run of plain string bytes: a quote, a backslash, a control character. */
function isSpecial(c: number): boolean {
  return c === 0x22 || c === 0x5c || c < 0x20;
}

/** 1 for the bytes {@link isSpecial} names: one load where a short run is read a byte at a time. */
const SPECIAL: Uint8Array = (() => {
  const t = new Uint8Array(256);
  for (let c = 0; c < 256; c++) t[c] = isSpecial(c) ? 1 : 0;
  return t;
})();

function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}

function isHex(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66);
}

function hasNonAscii(b: Uint8Array, from: number, to: number): boolean {
  for (let i = from; i < to; i++) if (b[i]! >= 0x80) return true;
  return false;
}

const scanner = new ByteScanner();

/** Runs left after the first 16 bytes from which {@link ByteScanner.special} asks the kernel. */
const KERNEL_FROM = 16;
/** Whether {@link ByteScanner.special} may use the kernel (tests turn it off to compare). */
let specialKernel = true;

/** Turns the SIMD search for a string's end off (`true`: the JS alone, for tests comparing the two), or on again. */
export function disableSpecialKernel(off: boolean): void {
  specialKernel = !off;
}

/** Buffers up to this size keep their word view between payloads (a capture slab is 64 KiB). */
const KEEP_WORDS_BYTES = 1 << 20;

/** The whole buffer as 32-bit words (its last 0–3 bytes are read bytewise). */
function wordsOf(buffer: ArrayBufferLike): Uint32Array {
  return new Uint32Array(buffer, 0, buffer.byteLength >>> 2);
}

/**
 * Finds the value at `path` in the JSON `bytes`: its range, {@link BYTES_MISSING}, or {@link BYTES_BAD} (not
 * handled here, including anything malformed: the caller asks JSON.parse).
 */
export function scanJsonPathBytes(
  bytes: Uint8Array,
  path: BytePath,
): ByteScanHit | typeof BYTES_MISSING | typeof BYTES_BAD {
  ONE[0] = path;
  const ok = scan(bytes, ONE);
  ONE[0] = NO_PATH;
  if (!ok) return BYTES_BAD;
  const hit = scanner.hits[0];
  scanner.hits[0] = undefined;
  return hit ?? BYTES_MISSING;
}

const NO_PATH: BytePath = { segs: [], index: [], bytes: [], ascii: [] };
/** The one path of {@link scanJsonPathBytes} (no array made per scan). */
const ONE: BytePath[] = [NO_PATH];

/**
 * {@link scanJsonPathBytes} for several paths (at most {@link MAX_PATHS}) in one pass over the body: each
 * path's answer, the same as a scan for it alone, or {@link BYTES_BAD} for all (the body is refused whatever the
 * path).
 */
export function scanJsonPathsBytes(
  bytes: Uint8Array,
  paths: readonly BytePath[],
): (ByteScanHit | typeof BYTES_MISSING)[] | typeof BYTES_BAD {
  if (paths.length > MAX_PATHS) throw new RangeError(`at most ${MAX_PATHS} paths a scan`);
  const ok = scan(bytes, paths);
  const hits = scanner.hits;
  const out: (ByteScanHit | typeof BYTES_MISSING)[] = new Array(paths.length);
  for (let i = 0; i < paths.length; i++) {
    out[i] = hits[i] ?? BYTES_MISSING;
    hits[i] = undefined;
  }
  return ok ? out : BYTES_BAD;
}

/** Most fixed bytes a {@link Shape} keeps (a body with more is only ever scanned). */
const MAX_SHAPE_FIXED = 1024;
/** Shapes kept (the bodies of a few taps, or of a few kinds of message, interleave). */
const SHAPES = 4;

/**
 * What a scanned body looked like: its bytes outside its string values without escapes, and which of those
 * strings each path found. A stream's messages differ from one another in the values of such strings only
 * (`streamSid`, `sequenceNumber`, the audio), so the next body is recognised by comparing its fixed bytes and
 * finding where each plain string ends, instead of a scan through its structure (the larger part of scanning a
 * 20 ms message: its keys compared, its values dispatched). A body that matches tokenises as the scanned one did,
 * string for string (a plain string ends at its first quote), so the scan would answer the same.
 */
interface Shape {
  /** The paths scanned for. */
  readonly paths: readonly BytePath[];
  /** The fixed bytes; each plain string's content lies between two runs of them. */
  readonly fixed: Uint8Array;
  /** Where each run of fixed bytes ends in `fixed` (one more run than strings). */
  readonly ends: Int32Array;
  /** Per path, the index of the string it found, or -1: missing. */
  readonly hitString: Int32Array;
  /** When it was made or last matched ({@link shapeClock}): the least recently used is replaced. */
  used: number;
  /** Bodies it matched. */
  hits: number;
}

const shapes: (Shape | undefined)[] = new Array<Shape | undefined>(SHAPES).fill(undefined);
/** The shape matched or made last (tried first). */
let lastShape = 0;
let shapeClock = 0;
/** The shape made last, and the scans since that did not make one because it matched nothing. */
let lastMade: Shape | undefined;
let unmade = 0;
/**
 * While the shape made last has matched nothing, one scan in this many makes one: bodies that never repeat a shape
 * (a number that changes, a new key each time) would otherwise make one per scan, and replace the shapes that do
 * match bodies of other streams.
 */
const REMAKE_EVERY = 16;

/** How bodies were read: by a {@link Shape} or by a scan, and shapes made (for tests and benchmarks). */
export const scanCounts = { shaped: 0, scanned: 0, shapes: 0 };

function samePaths(a: readonly BytePath[], b: readonly BytePath[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** The shape of the body just scanned for `paths` (hits and strings in the scanner), or undefined: none fits. */
function shapeOf(bytes: Uint8Array, paths: readonly BytePath[]): Shape | undefined {
  const sc = scanner, n = sc.strings;
  if (n > MAX_SHAPE_STRINGS) return undefined;
  const hitString = new Int32Array(paths.length);
  for (let i = 0; i < paths.length; i++) {
    const hit = sc.hits[i];
    let k = -1;
    if (hit !== undefined) {
      // Only a hit that is one of the plain strings moves with them.
      for (let j = 0; j < n && k < 0; j++) if (sc.strStart[j] === hit.start) k = j;
      if (k < 0) return undefined;
    }
    hitString[i] = k;
  }
  let size = bytes.length;
  for (let j = 0; j < n; j++) size -= sc.strEnd[j]! - sc.strStart[j]! - 2;
  if (size > MAX_SHAPE_FIXED) return undefined;
  const fixed = new Uint8Array(size), ends = new Int32Array(n + 1);
  let from = 0, f = 0;
  for (let j = 0; j <= n; j++) {
    const to = j < n ? sc.strStart[j]! + 1 : bytes.length;
    fixed.set(bytes.subarray(from, to), f);
    f += to - from;
    ends[j] = f;
    if (j < n) from = sc.strEnd[j]! - 1;
  }
  return { paths: paths.slice(), fixed, ends, hitString, used: ++shapeClock, hits: 0 };
}

/** Reads the scanner's body by a shape of `paths` (hits left in the scanner's), or false: none matches. */
function byShape(paths: readonly BytePath[]): boolean {
  const sc = scanner;
  for (let t = 0; t < SHAPES; t++) {
    const i = (lastShape + t) % SHAPES;
    const shape = shapes[i];
    if (shape === undefined || !samePaths(shape.paths, paths)) continue;
    if (sc.matches(shape)) {
      lastShape = i;
      shape.used = ++shapeClock;
      shape.hits++;
      return true;
    }
  }
  return false;
}

/** Keeps a shape just made in place of the least recently used. */
function keepShape(shape: Shape | undefined): void {
  if (shape === undefined) return;
  let at = 0;
  for (let i = 0; i < SHAPES; i++) {
    const s = shapes[i];
    if (s === undefined) {
      at = i;
      break;
    }
    if (s.used < shapes[at]!.used) at = i;
  }
  shapes[at] = shape;
  lastShape = at;
  lastMade = shape;
  unmade = 0;
  scanCounts.shapes++;
}

/** Scans `bytes` for `paths` (hits left in the scanner's); false when the body is not handled here. */
function scan(bytes: Uint8Array, paths: readonly BytePath[]): boolean {
  // A byte-order mark is dropped by the text decoder before JSON.parse: that path reads such a body.
  if (bytes.length >= 3 && bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) return false;
  const sc = scanner;
  sc.b = bytes;
  sc.len = bytes.length;
  sc.pos = 0;
  sc.loaded = false;
  sc.paths = paths;
  for (let i = 0; i < paths.length; i++) {
    sc.lens[i] = paths[i]!.segs.length;
    sc.hits[i] = undefined;
  }
  let ok = false;
  let end = -1;
  if (byShape(paths)) {
    scanCounts.shaped++;
    ok = true;
    end = bytes.length;
  } else {
    scanCounts.scanned++;
    sc.strings = 0;
    try {
      ok = sc.value((1 << paths.length) - 1, 0);
      sc.ws();
    } catch {
      ok = false; // stack exhaustion on hostile nesting
    }
    end = sc.pos;
    if (
      ok && end === bytes.length &&
      (lastMade === undefined || lastMade.hits > 0 || ++unmade % REMAKE_EVERY === 0)
    ) {
      keepShape(shapeOf(bytes, paths));
    }
  }
  sc.b = EMPTY;
  sc.paths = NO_PATHS;
  // The word view is kept for the next payload (rows' bodies share slabs: a view is costly to make in Deno),
  // unless it would hold a large buffer alive.
  if (sc.words !== undefined && sc.words.byteLength > KEEP_WORDS_BYTES) sc.words = undefined;
  return ok && end === bytes.length;
}

const NO_PATHS: readonly BytePath[] = [];

/**
 * The paths asked of {@link ByteScans} lately, in the order first asked (the oldest dropped past MAX_PATHS): a body is scanned for all of them at once, so
 * a message whose stream key and audio field are both JSON fields (`$.streamSid`, `media.payload`) is read
 * once, not twice (the scan was the largest part of a live row's intake).
 */
let wanted: readonly BytePath[] = NO_PATHS;

/**
 * The byte scans of one body, each path's answer kept: the first path asked scans the body for every path asked
 * lately ({@link wanted}), and later ones read what that scan found (or scan again for a path it did not look
 * for). The body's bytes must not change while this is used (a payload envelope's never do).
 */
export class ByteScans {
  #paths: readonly BytePath[] = NO_PATHS;
  #hits: (ByteScanHit | typeof BYTES_MISSING)[] | typeof BYTES_BAD = BYTES_BAD;
  #passes = 0;

  /** Scans of `bytes`; nothing is scanned until asked. */
  constructor(readonly bytes: Uint8Array) {}

  /** The paths the last pass looked for (the same list from body to body while no new path is asked). */
  get paths(): readonly BytePath[] {
    return this.#paths;
  }

  /** Passes over the body so far. */
  get passes(): number {
    return this.#passes;
  }

  /** {@link scanJsonPathBytes} of the body for `path`. */
  get(path: BytePath): ByteScanHit | typeof BYTES_MISSING | typeof BYTES_BAD {
    let i = this.#paths.indexOf(path);
    if (i < 0) {
      if (this.#paths.length > 0 && this.#hits === BYTES_BAD) return BYTES_BAD;
      // A new list only for a path not in it (the scans made with the old one keep theirs): streams of different
      // paths interleave row by row, and reordering the list for each would make three arrays a message.
      let w = wanted.indexOf(path);
      if (w < 0) {
        wanted = [...wanted.slice(-(MAX_PATHS - 1)), path];
        w = wanted.length - 1;
      }
      this.#paths = wanted;
      this.#hits = scanJsonPathsBytes(this.bytes, this.#paths);
      this.#passes++;
      i = w;
    }
    const hits = this.#hits;
    return hits === BYTES_BAD ? BYTES_BAD : hits[i]!;
  }
}

const EMPTY = new Uint8Array(0);

/** UTF-8 text of a piece of a body, as it stands in the body's text (a leading U+FEFF is kept). */
export function utf8Piece(bytes: Uint8Array): string {
  return utf8.decode(bytes);
}

/**
 * The value of a hit in `bytes` as JSON.parse gives it: an unescaped string is the text between its quotes,
 * anything else goes through JSON.parse (the scan has checked its spelling), or {@link BYTES_BAD}.
 */
export function hitValue(bytes: Uint8Array, hit: ByteScanHit): unknown {
  if (hit.string && !hit.escaped) return utf8.decode(bytes.subarray(hit.start + 1, hit.end - 1));
  try {
    return JSON.parse(utf8.decode(bytes.subarray(hit.start, hit.end)));
  } catch {
    return BYTES_BAD; // not expected after a scan that passed; JSON.parse of the whole body then decides
  }
}
