/**
 * The JSON path scanner of payload.ts on the payload's bytes instead of its text: the audio field is found
 * without decoding the body to a string first (a UTF-8 decode of every 20 ms message cost as much as the scan),
 * and the field's bytes go to the base64 decoder as a view of the payload.
 *
 * It accepts exactly what the text scanner accepts and finds the same value: JSON's structure is ASCII, and a
 * multi-byte UTF-8 sequence (or an invalid one, which the text decoder turns into U+FFFD) holds no ASCII byte,
 * so strings end at the same quotes in the bytes as in the text. Where bytes and text could differ it defers: a
 * key that is escaped or not ASCII is compared as the text scanner compares it (decoded), and a byte-order mark
 * (which the text decoder drops) makes the scan BAD, so the caller takes the text path.
 * @module
 */

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
/** Not handled here: ask the text scanner (and JSON.parse). */
export const BYTES_BAD: unique symbol = Symbol("bad");

const MAX_DEPTH = 128;
const utf8 = new TextDecoder("utf-8");

/** A compiled path for the byte scanner: segments, their array indices (-1: a key) and their UTF-8 bytes. */
export interface BytePath {
  segs: readonly string[];
  index: readonly number[];
  bytes: readonly Uint8Array[];
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
    };
    compiled.set(segs, p);
  }
  return p;
}

class ByteScanner {
  b: Uint8Array = new Uint8Array(0);
  len = 0;
  pos = 0;
  path: BytePath = { segs: [], index: [], bytes: [] };
  hit: ByteScanHit | undefined;
  escaped = false;
  /** Position of the next backslash at or after the last search start (len if none). */
  nextBackslash = -1;

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

  value(onPath: boolean, depth: number): boolean {
    if (depth > MAX_DEPTH) return false;
    this.ws();
    if (this.pos >= this.len) return false;
    const c = this.b[this.pos]!;
    const start = this.pos;
    const segs = this.path.segs.length;
    const descend = onPath && depth < segs;
    let ok: boolean;
    if (c === 0x7b) ok = this.object(descend, depth);
    else if (c === 0x5b) ok = this.array(descend, depth);
    else if (c === 0x22) ok = this.string();
    else ok = this.scalar();
    if (ok && onPath && depth === segs) {
      this.hit = { start, end: this.pos, string: c === 0x22, escaped: c === 0x22 && this.escaped };
    }
    return ok;
  }

  object(onPath: boolean, depth: number): boolean {
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
      const match = onPath && this.keyIs(keyStart, this.pos, depth);
      this.ws();
      if (this.at(this.pos) !== 0x3a) return false;
      this.pos++;
      // A later duplicate key wins, as in JSON.parse: forget what an earlier one led to.
      if (match) this.hit = undefined;
      if (!this.value(match, depth + 1)) return false;
      this.ws();
      const c = this.at(this.pos);
      this.pos++;
      if (c === 0x2c) continue;
      return c === 0x7d;
    }
  }

  array(onPath: boolean, depth: number): boolean {
    this.pos++;
    this.ws();
    if (this.at(this.pos) === 0x5d) {
      this.pos++;
      return true;
    }
    const want = onPath ? this.path.index[depth]! : -1;
    for (let i = 0;; i++) {
      if (!this.value(i === want, depth + 1)) return false;
      this.ws();
      const c = this.at(this.pos);
      this.pos++;
      if (c === 0x2c) continue;
      return c === 0x5d;
    }
  }

  /** Skips a string, noting whether it holds a backslash escape (see the text scanner). */
  string(): boolean {
    const b = this.b, len = this.len;
    const from = this.pos + 1;
    // Keys and short values end within a few bytes: a loop finds their quote sooner than a call into the
    // engine's search, which takes over for long values (the audio).
    let q = -1;
    const near = from + 24 < len ? from + 24 : len;
    for (let p = from; p < near; p++) {
      if (b[p] === 0x22) {
        q = p;
        break;
      }
    }
    if (q < 0 && near < len) q = b.indexOf(0x22, near);
    if (q < 0 || q >= len) return false;
    if (this.nextBackslash < from) {
      const bs = b.indexOf(0x5c, from);
      this.nextBackslash = bs < 0 || bs >= this.len ? this.len : bs;
    }
    if (this.nextBackslash > q) {
      this.escaped = false;
      this.pos = q + 1;
      return true;
    }
    let p = from;
    for (;;) {
      while (p < this.len) {
        const c = b[p]!;
        if (c === 0x22 || c === 0x5c) break;
        p++;
      }
      if (p >= this.len) return false;
      if (b[p] === 0x22) break;
      p += 2;
    }
    this.escaped = true;
    this.pos = p + 1;
    return true;
  }

  scalar(): boolean {
    const c = this.b[this.pos]!;
    if (c === 0x74) return this.literal(TRUE);
    if (c === 0x66) return this.literal(FALSE);
    if (c === 0x6e) return this.literal(NULL);
    if (c !== 0x2d && (c < 0x30 || c > 0x39)) return false;
    let p = this.pos + 1;
    while (p < this.len) {
      const d = this.b[p]!;
      if ((d >= 0x30 && d <= 0x39) || d === 0x2e || d === 0x65 || d === 0x45 || d === 0x2b || d === 0x2d) p++;
      else break;
    }
    this.pos = p;
    return true;
  }

  literal(word: Uint8Array): boolean {
    if (this.pos + word.length > this.len) return false;
    for (let i = 0; i < word.length; i++) if (this.b[this.pos + i] !== word[i]) return false;
    this.pos += word.length;
    return true;
  }

  /**
   * Whether the key at bytes [start, end) (quotes included) is path segment `depth`: by bytes when the key is
   * plain ASCII, else decoded as the text scanner sees it.
   */
  keyIs(start: number, end: number, depth: number): boolean {
    const b = this.b;
    if (this.escaped || hasNonAscii(b, start + 1, end - 1)) {
      const text = utf8.decode(b.subarray(start, end));
      const want = this.path.segs[depth]!;
      if (!this.escaped) return text.slice(1, -1) === want;
      try {
        return JSON.parse(text) === want;
      } catch {
        return false;
      }
    }
    const want = this.path.bytes[depth]!;
    if (end - start - 2 !== want.length) return false;
    for (let i = 0; i < want.length; i++) if (b[start + 1 + i] !== want[i]) return false;
    return true;
  }
}

const TRUE = encoder.encode("true");
const FALSE = encoder.encode("false");
const NULL = encoder.encode("null");

function hasNonAscii(b: Uint8Array, from: number, to: number): boolean {
  for (let i = from; i < to; i++) if (b[i]! >= 0x80) return true;
  return false;
}

const scanner = new ByteScanner();

/**
 * Finds the value at `path` in the JSON `bytes`: its range, {@link BYTES_MISSING}, or {@link BYTES_BAD} (not
 * handled here, including anything malformed: the caller asks the text scanner and JSON.parse).
 */
export function scanJsonPathBytes(
  bytes: Uint8Array,
  path: BytePath,
): ByteScanHit | typeof BYTES_MISSING | typeof BYTES_BAD {
  // A byte-order mark is dropped by the text decoder: the text path reads such a body.
  if (bytes.length >= 3 && bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) return BYTES_BAD;
  const sc = scanner;
  sc.b = bytes;
  sc.len = bytes.length;
  sc.pos = 0;
  sc.path = path;
  sc.hit = undefined;
  sc.nextBackslash = -1;
  let ok = false;
  try {
    ok = sc.value(true, 0);
    sc.ws();
  } catch {
    ok = false; // stack exhaustion on hostile nesting
  }
  const end = sc.pos;
  sc.b = EMPTY;
  if (!ok || end !== bytes.length) return BYTES_BAD;
  return sc.hit ?? BYTES_MISSING;
}

const EMPTY = new Uint8Array(0);
