/**
 * Text encodings of an audio field: base64 (standard or url-safe, padding optional), hex, binary.
 * Everything decodes straight into a Uint8Array; no per-character strings are built.
 * @module
 */

import type { AudioFormat } from "../types.ts";
import { B64_MAX_IN, base64Kernel } from "./base64_simd.ts";
import type { BytePath } from "./json_scan_bytes.ts";

/** An encoding named in the `audio.encoding` config key. */
export type Encoding = AudioFormat["encoding"];

/** Why an audio field could not be turned into bytes. */
export type EncodingErrorReason = "bad_base64" | "bad_hex" | "bad_binary";

/** Result of {@link decodeField}. */
export type DecodeFieldResult =
  | { ok: true; bytes: Uint8Array }
  | { ok: false; reason: EncodingErrorReason };

const INVALID = -1;
const SKIP = -2;

/** Base64 digit values of both alphabets; ASCII whitespace is skipped (MIME bodies wrap lines). */
const B64: Int8Array = (() => {
  const t = new Int8Array(256).fill(INVALID);
  const digits = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  for (let i = 0; i < digits.length; i++) t[digits.charCodeAt(i)] = i;
  t[0x2b] = 62; // +
  t[0x2f] = 63; // /
  t[0x2d] = 62; // -
  t[0x5f] = 63; // _
  for (const c of [0x09, 0x0a, 0x0d, 0x20]) t[c] = SKIP;
  return t;
})();

type NativeSetFromBase64 = (
  this: Uint8Array,
  s: string,
  opts: { alphabet: "base64" | "base64url" },
) => { read: number; written: number };
const nativeSetFromBase64: NativeSetFromBase64 | undefined =
  (Uint8Array.prototype as unknown as { setFromBase64?: NativeSetFromBase64 }).setFromBase64;

let scratch = new Uint8Array(4096);
const ascii = new TextDecoder("utf-8");
/** Base64 bytes longer than this go to the engine's decoder (see {@link decodeBase64}). */
const NATIVE_FROM_BYTES = 864;
/** Base64 bytes from this many to B64_MAX_IN go to the SIMD kernel first (below, the call costs more). */
const KERNEL_FROM_BYTES = 48;

/**
 * Output space for `n` bytes: the shared scratch when `transient` (overwritten by the next transient decode;
 * the decode chain consumes it at once, and typed-array allocation costs more than a whole small decode), else
 * a fresh array.
 */
function target(n: number, transient: boolean): Uint8Array {
  if (!transient) return new Uint8Array(n);
  if (scratch.length < n) scratch = new Uint8Array(Math.max(n, scratch.length * 2));
  return scratch;
}

/**
 * Decodes base64 text (standard and url-safe digits, even mixed; `=` padding optional; ASCII whitespace ignored).
 * Returns undefined for anything else, including a lone trailing digit or digits after padding. With `transient`
 * the result is a view of shared scratch memory, valid until the next base64 decode of any kind (a decode in
 * the SIMD kernel writes its output in the kernel's memory, which every kernel decode reuses).
 */
export function decodeBase64(input: string | Uint8Array, transient = false): Uint8Array | undefined {
  if (!nativeSetFromBase64) return decodeBase64Portable(input, transient);
  if (typeof input !== "string") {
    // Bytes (a JSON field found in the payload's bytes, a raw body): whole blocks of 16 digits in the SIMD kernel
    // (base64_simd.ts), the rest in JS, with no text made; where the kernel is missing, up to ~640 decoded bytes
    // (an 80 ms μ-law message) the JS decoder beats making text for the engine's decoder, beyond, the engine's is
    // faster.
    if (input.length >= KERNEL_FROM_BYTES && input.length <= B64_MAX_IN) {
      const kernel = base64Kernel();
      if (kernel !== undefined) {
        const done = kernel.decode(input);
        const bytes = decodeBase64Bytes(input, kernel.out, done, (done >> 2) * 3);
        return bytes === undefined || transient ? bytes : bytes.slice();
      }
    }
    if (input.length <= NATIVE_FROM_BYTES) return decodeBase64Portable(input, transient);
    // Valid base64 is ASCII, so any decoding of the bytes to text serves; non-ASCII bytes then fail as they should.
    input = ascii.decode(input);
  }
  const out = target(Math.floor((input.length * 3) / 4) + 3, transient);
  const url = input.indexOf("-") >= 0 || input.indexOf("_") >= 0;
  // The engine's decoder takes one alphabet at a time; a mixed value goes the slow way.
  if (url && (input.indexOf("+") >= 0 || input.indexOf("/") >= 0)) {
    return decodeBase64Portable(input, transient);
  }
  try {
    const r = nativeSetFromBase64.call(out, input, { alphabet: url ? "base64url" : "base64" });
    // The engine stops short of whitespace after a last whole block (no padding): that whitespace ends a valid value
    // (e.g. a MIME encoder's final newline) as it would anywhere else in it.
    return r.read === input.length || onlyWhitespaceFrom(input, r.read)
      ? out.subarray(0, r.written)
      : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The base64 string at `path` of the JSON `body`, decoded as {@link decodeBase64} decodes it with `transient`
 * (a view valid until the next transient decode), in one pass from the body's bytes: the kernel finds the field
 * and decodes its blocks in place (base64_simd.ts, json_field_simd.ts), the JS decoder its tail. Undefined
 * where the general path (finding the field with the JSON scanner, then {@link decodeField}) must decide: no
 * kernel, a body or path the kernel does not read, anything but a plain string there, or digits that do not
 * decode (whose reason and length that path reports).
 */
export function decodeJsonBase64Field(body: Uint8Array, path: BytePath): Uint8Array | undefined {
  const kernel = base64Kernel();
  const f = kernel?.field(body, path);
  if (f === undefined) return undefined;
  return decodeBase64Bytes(kernel!.input, kernel!.out, f.start + f.done, (f.done >> 2) * 3, f.end);
}

/**
 * {@link decodeBase64} with `transient` of the digits at [start, end) of `bytes` (a field the JSON scanner found
 * in a body), decoded where they lie: the same bytes, with no view of the body and no result object made. Undefined
 * where {@link decodeField} must decide: digits that do not decode (its reason and length come from there), or
 * more digits or a longer body than the SIMD kernel takes, or no kernel.
 */
export function decodeBase64Span(bytes: Uint8Array, start: number, end: number): Uint8Array | undefined {
  const n = end - start;
  if (n < KERNEL_FROM_BYTES || bytes.length > B64_MAX_IN || !nativeSetFromBase64) return undefined;
  const kernel = base64Kernel();
  if (kernel === undefined) return undefined;
  const done = kernel.decodeAt(bytes, start, end);
  return decodeBase64Bytes(kernel.input, kernel.out, start + done, (done >> 2) * 3, end);
}

/** True if `text` holds nothing but ASCII whitespace (what base64 skips) from `from` on. */
function onlyWhitespaceFrom(text: string, from: number): boolean {
  for (let i = from; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) return false;
  }
  return true;
}

/**
 * {@link decodeBase64} in plain JS, for engines without `Uint8Array.prototype.setFromBase64` and for values that
 * mix both alphabets. Same results.
 */
export function decodeBase64Portable(input: string | Uint8Array, transient = false): Uint8Array | undefined {
  const out = target(Math.floor((input.length * 3) / 4) + 3, transient);
  if (typeof input !== "string") return decodeBase64Bytes(input, out);
  const o = decodeBase64Units(input, 0, out, 0);
  return o < 0 ? undefined : out.subarray(0, o);
}

/**
 * Whole quads of digits take the fast loop; padding, whitespace or bad characters hand over to the general one.
 * From digit `i` on, into `out` from byte `o` (the digits before decoded there already).
 */
function decodeBase64Bytes(
  b: Uint8Array,
  out: Uint8Array,
  i = 0,
  o = 0,
  n = b.length,
): Uint8Array | undefined {
  // Four lookups in a 256-byte table: a table of digit pairs (128 KiB) halves the lookups but misses the cache
  // beside the rest of the pipeline's work. Any non-digit (negative) sets the sign bit of the quad.
  for (; i + 4 <= n; i += 4) {
    const v = (B64[b[i]!]! << 18) | (B64[b[i + 1]!]! << 12) | (B64[b[i + 2]!]! << 6) | B64[b[i + 3]!]!;
    if (v < 0) break;
    out[o++] = v >> 16;
    out[o++] = (v >> 8) & 0xff;
    out[o++] = v & 0xff;
  }
  // The tail (padding, most messages) in place: no closure and no views of `out` made for it.
  const end = i === n ? o : decodeBase64Units(b, i, out, o, n);
  return end < 0 ? undefined : viewOf(out, end);
}

/** Views {@link viewOf} handed out lately (a few, replaced in turn), and what each is of. */
const VIEWS = 4;
const viewOuts: (Uint8Array | undefined)[] = new Array<Uint8Array | undefined>(VIEWS).fill(undefined);
const views: Uint8Array[] = Array.from({ length: VIEWS }, () => new Uint8Array(0));
let nextView = 0;

/**
 * `out.subarray(0, end)`, the same view as before when one of the last few handed out is of the same array and
 * length: a tap's messages are nearly all of one size and decode into the same output (the kernel's, or the
 * scratch), and a view is ~100 bytes to make per message. A few are kept, not one: a node's taps interleave row
 * by row, and taps of two sizes (the bench's 160-byte G.711 and 640-byte PCM16 ones) made a view for ~40% of
 * messages (153k of an analyze run's). A fresh output array is never one of them, so its view is its own.
 */
function viewOf(out: Uint8Array, end: number): Uint8Array {
  for (let k = 0; k < VIEWS; k++) {
    const v = views[k]!;
    if (v.length === end && viewOuts[k] === out) return v;
  }
  const v = out.subarray(0, end);
  views[nextView] = v;
  viewOuts[nextView] = out;
  nextView = (nextView + 1) & (VIEWS - 1);
  return v;
}

/**
 * The general decoder: units of `input` from `from` on into `out` from byte `o`; the end of the bytes written, or
 * -1 on a malformed value.
 */
function decodeBase64Units(
  input: string | Uint8Array,
  from: number,
  out: Uint8Array,
  o: number,
  len = input.length,
): number {
  let acc = 0;
  let n = 0;
  let pad = 0;
  const text = typeof input === "string" ? input : undefined;
  const bytes = typeof input === "string" ? undefined : input;
  for (let i = from; i < len; i++) {
    const c = text !== undefined ? text.charCodeAt(i) : bytes![i]!;
    if (c === 0x3d) {
      pad++;
      continue;
    }
    const v = c < 256 ? B64[c]! : INVALID;
    if (v === SKIP) continue;
    // Digits after padding, or an unknown character, make the whole value malformed.
    if (v < 0 || pad > 0) return -1;
    acc = (acc << 6) | v;
    if (++n === 4) {
      out[o++] = acc >> 16;
      out[o++] = (acc >> 8) & 0xff;
      out[o++] = acc & 0xff;
      acc = 0;
      n = 0;
    }
  }
  if (n === 1 || pad > 2) return -1;
  if (pad > 0 && n + pad !== 4) return -1;
  if (n === 2) out[o++] = (acc >> 4) & 0xff;
  else if (n === 3) {
    out[o++] = (acc >> 10) & 0xff;
    out[o++] = (acc >> 2) & 0xff;
  }
  return o;
}

const HEX: Int8Array = (() => {
  const t = new Int8Array(256).fill(INVALID);
  for (let i = 0; i < 10; i++) t[0x30 + i] = i;
  for (let i = 0; i < 6; i++) {
    t[0x41 + i] = 10 + i;
    t[0x61 + i] = 10 + i;
  }
  return t;
})();

/**
 * Decodes hex digits (either case, no separators). Returns undefined on an odd count or a non-hex character.
 * `transient` as for {@link decodeBase64}.
 */
export function decodeHex(input: string | Uint8Array, transient = false): Uint8Array | undefined {
  const len = input.length;
  if (len % 2 !== 0) return undefined;
  const out = target(len / 2, transient).subarray(0, len / 2);
  if (typeof input === "string") {
    for (let i = 0, o = 0; i < len; i += 2, o++) {
      const a = input.charCodeAt(i);
      const b = input.charCodeAt(i + 1);
      const hi = a < 256 ? HEX[a]! : INVALID;
      const lo = b < 256 ? HEX[b]! : INVALID;
      if ((hi | lo) < 0) return undefined;
      out[o] = (hi << 4) | lo;
    }
  } else {
    for (let i = 0, o = 0; i < len; i += 2, o++) {
      const hi = HEX[input[i]!]!;
      const lo = HEX[input[i + 1]!]!;
      if ((hi | lo) < 0) return undefined;
      out[o] = (hi << 4) | lo;
    }
  }
  return out;
}

/**
 * Binary: bytes pass through untouched; a text value (a JSON string or regex group) maps each UTF-16 code unit
 * to one byte (latin1), and a code unit above 0xFF makes it undefined. `transient` as for {@link decodeBase64}.
 */
export function decodeBinary(input: string | Uint8Array, transient = false): Uint8Array | undefined {
  if (typeof input !== "string") return input;
  const out = target(input.length, transient).subarray(0, input.length);
  for (let i = 0; i < input.length; i++) {
    const c = input.charCodeAt(i);
    if (c > 0xff) return undefined;
    out[i] = c;
  }
  return out;
}

/**
 * Decodes an extracted audio field with `encoding`; failures carry the counter reason. With `transient` the
 * bytes may be a view of a shared scratch buffer, and the result object itself is shared: both valid until the
 * next transient decode.
 */
export function decodeField(
  data: string | Uint8Array,
  encoding: Encoding,
  transient = false,
): DecodeFieldResult {
  switch (encoding) {
    case "base64": {
      const bytes = decodeBase64(data, transient);
      return bytes ? decoded(bytes, transient) : BAD_BASE64;
    }
    case "hex": {
      const bytes = decodeHex(data, transient);
      return bytes ? decoded(bytes, transient) : BAD_HEX;
    }
    case "binary": {
      const bytes = decodeBinary(data, transient);
      return bytes ? decoded(bytes, transient) : BAD_BINARY;
    }
  }
}

const BAD_BASE64: DecodeFieldResult = Object.freeze({ ok: false, reason: "bad_base64" });
const BAD_HEX: DecodeFieldResult = Object.freeze({ ok: false, reason: "bad_hex" });
const BAD_BINARY: DecodeFieldResult = Object.freeze({ ok: false, reason: "bad_binary" });
/** The result of the transient decodes, reused: it is read at once, as its bytes are (an object a message). */
const transientResult: { ok: true; bytes: Uint8Array } = { ok: true, bytes: new Uint8Array(0) };

function decoded(bytes: Uint8Array, transient: boolean): DecodeFieldResult {
  if (!transient) return { ok: true, bytes };
  transientResult.bytes = bytes;
  return transientResult;
}

/** Decoded bytes per encoded character of `encoding` (3/4 for base64), for sizing a lost body's audio. */
export function encodingRatio(encoding: Encoding): number {
  return encoding === "base64" ? 3 / 4 : encoding === "hex" ? 1 / 2 : 1;
}

/**
 * How many bytes an encoded field of `encodedLength` characters carries: the inverse used to size the gap of a
 * truncated message from its original body size.
 */
export function decodedLengthEstimate(encodedLength: number, encoding: Encoding): number {
  if (encodedLength <= 0) return 0;
  switch (encoding) {
    case "base64":
      return Math.floor((encodedLength * 3) / 4);
    case "hex":
      return Math.floor(encodedLength / 2);
    case "binary":
      return encodedLength;
  }
}

const B64_STD = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const B64_URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/** Encodes bytes as base64 (for fixtures and benches). `urlSafe` picks the `-_` alphabet; `pad` adds `=`. */
export function encodeBase64(bytes: Uint8Array, urlSafe = false, pad = true): string {
  const a = urlSafe ? B64_URL : B64_STD;
  const parts: string[] = [];
  let s = "";
  let i = 0;
  for (; i + 2 < bytes.length; i += 3) {
    const v = (bytes[i]! << 16) | (bytes[i + 1]! << 8) | bytes[i + 2]!;
    s += a[v >> 18]! + a[(v >> 12) & 63]! + a[(v >> 6) & 63]! + a[v & 63]!;
    if (s.length >= 4096) {
      parts.push(s);
      s = "";
    }
  }
  const rest = bytes.length - i;
  if (rest === 1) {
    const v = bytes[i]! << 16;
    s += a[v >> 18]! + a[(v >> 12) & 63]! + (pad ? "==" : "");
  } else if (rest === 2) {
    const v = (bytes[i]! << 16) | (bytes[i + 1]! << 8);
    s += a[v >> 18]! + a[(v >> 12) & 63]! + a[(v >> 6) & 63]! + (pad ? "=" : "");
  }
  parts.push(s);
  return parts.join("");
}

/** Encodes bytes as lowercase hex (for fixtures and benches). */
export function encodeHex(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.length; i++) s += (bytes[i]! < 16 ? "0" : "") + bytes[i]!.toString(16);
  return s;
}
