/**
 * Payload envelopes: where the audio field sits in a captured body (`json` path, `regex` group, `raw` bytes),
 * and Pixie's own markers for bodies it did not keep. A {@link PayloadEnvelope} parses its JSON at most once, so
 * the stream key and the audio field of one message share the parse.
 * @module
 */

import { detectPixieMarker, type PixieMarker } from "../../pixie/markers.ts";
import type { AudioFormat } from "../types.ts";
import { compileLinearRegex, type LinearRegex } from "../../util/linear_regex.ts";
import { bytePath, BYTES_BAD, BYTES_MISSING, scanJsonPathBytes } from "./json_scan_bytes.ts";

/** Pixie's markers are recognised in one place (pixie/markers.ts); the decoder reads them through here. */
export { detectPixieMarker, type PixieMarker };
/** Why the audio field could not be found in a payload. */
export type EnvelopeErrorReason =
  | "bad_json"
  | "missing_path"
  | "not_a_string"
  | "no_regex_match"
  | "short_payload";

/** The envelope-related part of an {@link AudioFormat}. */
export type EnvelopeFormat = Pick<AudioFormat, "envelope" | "path" | "skip_bytes">;

/**
 * Result of {@link extractAudioField}. `data` is text for json and regex (decoded by the encoding layer), bytes
 * for raw. `overhead` is how many payload bytes are not the audio field: it sizes the gap of a later truncated
 * message of the same stream from its original body size.
 */
export type AudioFieldResult =
  | { ok: true; data: Uint8Array | string; overhead: number }
  | { ok: false; reason: EnvelopeErrorReason };

const utf8 = new TextDecoder("utf-8");
const win1252 = new TextDecoder("windows-1252");
const NOT_PARSED: unique symbol = Symbol("not parsed");
const BAD_JSON: unique symbol = Symbol("bad json");

/** One message's payload with lazily computed views, each computed at most once. */
export class PayloadEnvelope {
  #json: unknown = NOT_PARSED;
  #text: string | undefined;
  #latin1: string | undefined;

  /** Wraps the payload bytes; nothing is decoded until asked. */
  constructor(readonly bytes: Uint8Array) {}

  /** The payload as UTF-8 text (invalid sequences become U+FFFD). */
  text(): string {
    if (this.#text === undefined) this.#text = utf8.decode(this.bytes);
    return this.#text;
  }

  /** The payload parsed as UTF-8 JSON, or `{ ok: false }` if it is not JSON. Parsed on first call only. */
  json(): { ok: true; value: unknown } | { ok: false } {
    if (this.#json === NOT_PARSED) {
      try {
        this.#json = JSON.parse(this.text());
      } catch {
        this.#json = BAD_JSON;
      }
    }
    return this.#json === BAD_JSON ? { ok: false } : { ok: true, value: this.#json };
  }

  /** True once {@link text} has run (the text scanner then needs no decode). */
  get hasText(): boolean {
    return this.#text !== undefined;
  }

  /** True once {@link json} has run, so walking the parsed value is cheaper than scanning the text. */
  get parsed(): boolean {
    return this.#json !== NOT_PARSED;
  }

  /** The payload as latin1 text: one UTF-16 code unit per byte, so text positions are byte positions. */
  latin1(): string {
    if (this.#latin1 === undefined) this.#latin1 = latin1Of(this.bytes);
    return this.#latin1;
  }
}

function latin1Of(bytes: Uint8Array): string {
  // The "latin1" TextDecoder is windows-1252, which differs from latin1 only on 0x80-0x9F.
  let plain = true;
  for (let i = 0; i < bytes.length; i++) {
    const c = bytes[i]!;
    if (c >= 0x80 && c <= 0x9f) {
      plain = false;
      break;
    }
  }
  if (plain) return win1252.decode(bytes);
  const parts: string[] = [];
  for (let i = 0; i < bytes.length; i += 8192) {
    parts.push(String.fromCharCode.apply(null, Array.from(bytes.subarray(i, i + 8192))));
  }
  return parts.join("");
}

function envelopeOf(payload: Uint8Array | PayloadEnvelope): PayloadEnvelope {
  return payload instanceof PayloadEnvelope ? payload : new PayloadEnvelope(payload);
}

const pathCache = new Map<string, readonly string[]>();

/**
 * Splits a dotted path (`media.payload`, `a.0.b`, optionally prefixed `$.`) into its segments. Cached, since the
 * same few paths are walked for every message.
 */
export function compileJsonPath(path: string): readonly string[] {
  let segs = pathCache.get(path);
  if (!segs) {
    const body = path === "$" ? "" : path.startsWith("$.") ? path.slice(2) : path;
    segs = body === "" ? [] : body.split(".");
    if (pathCache.size > 1024) pathCache.clear();
    pathCache.set(path, segs);
  }
  return segs;
}

/** Walks `segments` from `root`; an all-digit segment indexes arrays. Returns undefined when a step is missing. */
export function walkJsonPath(root: unknown, segments: readonly string[]): unknown {
  let cur: unknown = root;
  for (const seg of segments) {
    if (Array.isArray(cur)) {
      if (!/^\d+$/.test(seg)) return undefined;
      cur = cur[Number(seg)];
    } else if (cur !== null && typeof cur === "object") {
      if (!Object.hasOwn(cur, seg)) return undefined;
      cur = (cur as Record<string, unknown>)[seg];
    } else {
      return undefined;
    }
    if (cur === undefined) return undefined;
  }
  return cur;
}

/**
 * The value at `path` (`$.streamSid`, `media.track`, `a.0.b`) in the payload's JSON, or undefined if the payload
 * is not JSON or the path is missing. Reuses the envelope's parse.
 */
export function jsonPathValue(payload: Uint8Array | PayloadEnvelope, path: string): unknown {
  const env = envelopeOf(payload);
  const segs = compileJsonPath(path);
  if (!env.parsed && !env.hasText) {
    const hit = scanJsonPathBytes(env.bytes, bytePath(segs));
    if (hit === BYTES_MISSING) return undefined;
    if (hit !== BYTES_BAD) {
      const raw = env.bytes.subarray(hit.start, hit.end);
      // An unescaped string is the text between its quotes; anything else as JSON.parse reads it.
      if (hit.string && !hit.escaped) return utf8.decode(raw.subarray(1, raw.length - 1));
      const v = parseValue(utf8.decode(raw));
      if (v !== BAD) return v;
    }
  }
  if (!env.parsed) {
    const hit = scanJsonPath(env.text(), segs);
    if (hit === MISSING) return undefined;
    if (hit !== BAD) {
      const v = scannedValue(env.text(), hit);
      if (v !== BAD) return v;
    }
  }
  const parsed = env.json();
  return parsed.ok ? walkJsonPath(parsed.value, segs) : undefined;
}

// ---------------------------------------------------------------------------------------------------------------
// A JSON path scanner: finds where the value at a path lies in the payload text without building objects
// (JSON.parse of a whole 20 ms packet costs more than the rest of its decode). Strings, which are most of the
// text, are skipped with the engine's string search. It checks structure (brackets, commas, colons, string
// ends, literal spelling) but is lenient inside strings and numbers; anything it cannot handle reports BAD and
// the caller falls back to JSON.parse, which then decides.
// ---------------------------------------------------------------------------------------------------------------

/** Where the scanned value lies: text [start, end), quotes included for strings. */
interface ScanHit {
  start: number;
  end: number;
  string: boolean;
  /** The string holds a backslash escape. */
  escaped: boolean;
}

const BAD: unique symbol = Symbol("bad");
const MISSING: unique symbol = Symbol("missing");
const MAX_DEPTH = 128;
const segIndexCache = new WeakMap<readonly string[], number[]>();

class JsonScanner {
  s = "";
  pos = 0;
  segs: readonly string[] = [];
  segIndex: number[] = [];
  hit: ScanHit | undefined;
  /** Whether the string just skipped holds an escape. */
  escaped = false;
  /** Position of the next backslash at or after the last search start (length if none). */
  nextBackslash = -1;

  ws(): void {
    const s = this.s;
    let p = this.pos;
    while (p < s.length) {
      const c = s.charCodeAt(p);
      if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) p++;
      else break;
    }
    this.pos = p;
  }

  value(onPath: boolean, depth: number): boolean {
    if (depth > MAX_DEPTH) return false;
    this.ws();
    if (this.pos >= this.s.length) return false;
    const c = this.s.charCodeAt(this.pos);
    const start = this.pos;
    const descend = onPath && depth < this.segs.length;
    let ok: boolean;
    if (c === 0x7b) ok = this.object(descend, depth);
    else if (c === 0x5b) ok = this.array(descend, depth);
    else if (c === 0x22) ok = this.string();
    else ok = this.scalar();
    if (ok && onPath && depth === this.segs.length) {
      this.hit = { start, end: this.pos, string: c === 0x22, escaped: c === 0x22 && this.escaped };
    }
    return ok;
  }

  object(onPath: boolean, depth: number): boolean {
    const s = this.s;
    this.pos++;
    this.ws();
    if (s.charCodeAt(this.pos) === 0x7d) {
      this.pos++;
      return true;
    }
    for (;;) {
      this.ws();
      if (s.charCodeAt(this.pos) !== 0x22) return false;
      const keyStart = this.pos;
      if (!this.string()) return false;
      const match = onPath && this.keyIs(keyStart, this.pos, depth);
      this.ws();
      if (s.charCodeAt(this.pos) !== 0x3a) return false;
      this.pos++;
      // A later duplicate key wins, as in JSON.parse: forget what an earlier one led to.
      if (match) this.hit = undefined;
      if (!this.value(match, depth + 1)) return false;
      this.ws();
      const c = s.charCodeAt(this.pos);
      this.pos++;
      if (c === 0x2c) continue;
      return c === 0x7d;
    }
  }

  array(onPath: boolean, depth: number): boolean {
    const s = this.s;
    this.pos++;
    this.ws();
    if (s.charCodeAt(this.pos) === 0x5d) {
      this.pos++;
      return true;
    }
    const want = onPath ? this.segIndex[depth]! : -1;
    for (let i = 0;; i++) {
      if (!this.value(i === want, depth + 1)) return false;
      this.ws();
      const c = s.charCodeAt(this.pos);
      this.pos++;
      if (c === 0x2c) continue;
      return c === 0x5d;
    }
  }

  /**
   * Skips a string, noting whether it holds a backslash escape. The next backslash is remembered, so the whole
   * scan searches for backslashes only forward, once.
   */
  string(): boolean {
    const s = this.s;
    const from = this.pos + 1;
    const q = s.indexOf('"', from);
    if (q < 0) return false;
    if (this.nextBackslash < from) {
      const bs = s.indexOf("\\", from);
      this.nextBackslash = bs < 0 ? s.length : bs;
    }
    if (this.nextBackslash > q) {
      this.escaped = false;
      this.pos = q + 1;
      return true;
    }
    let p = from;
    for (;;) {
      while (p < s.length) {
        const c = s.charCodeAt(p);
        if (c === 0x22 || c === 0x5c) break;
        p++;
      }
      if (p >= s.length) return false;
      if (s.charCodeAt(p) === 0x22) break;
      p += 2;
    }
    this.escaped = true;
    this.pos = p + 1;
    return true;
  }

  scalar(): boolean {
    const s = this.s;
    const c = s.charCodeAt(this.pos);
    if (c === 0x74) return this.literal("true");
    if (c === 0x66) return this.literal("false");
    if (c === 0x6e) return this.literal("null");
    if (c !== 0x2d && (c < 0x30 || c > 0x39)) return false;
    let p = this.pos + 1;
    while (p < s.length) {
      const d = s.charCodeAt(p);
      if ((d >= 0x30 && d <= 0x39) || d === 0x2e || d === 0x65 || d === 0x45 || d === 0x2b || d === 0x2d) p++;
      else break;
    }
    this.pos = p;
    return true;
  }

  literal(word: string): boolean {
    if (!this.s.startsWith(word, this.pos)) return false;
    this.pos += word.length;
    return true;
  }

  /** Whether the key string at text [start, end) (quotes included) is path segment `depth`. */
  keyIs(start: number, end: number, depth: number): boolean {
    const want = this.segs[depth]!;
    if (this.escaped) {
      try {
        return JSON.parse(this.s.slice(start, end)) === want;
      } catch {
        return false;
      }
    }
    return end - start - 2 === want.length && this.s.startsWith(want, start + 1);
  }
}

const scanner = new JsonScanner();

/** Finds the value at `segs` in JSON `text`: its range, MISSING, or BAD (not handled: ask JSON.parse). */
function scanJsonPath(text: string, segs: readonly string[]): ScanHit | typeof MISSING | typeof BAD {
  let index = segIndexCache.get(segs);
  if (!index) {
    index = segs.map((s) => (/^\d+$/.test(s) ? Number(s) : -1));
    segIndexCache.set(segs, index);
  }
  const sc = scanner;
  sc.s = text;
  sc.pos = 0;
  sc.segs = segs;
  sc.segIndex = index;
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
  sc.s = "";
  if (!ok || end !== text.length) return BAD;
  return sc.hit ?? MISSING;
}

/** The scanned value as JSON.parse would give it; an unescaped string is a slice of the text. */
function scannedValue(text: string, hit: ScanHit): unknown {
  if (hit.string && !hit.escaped) return text.slice(hit.start + 1, hit.end - 1);
  return parseValue(text.slice(hit.start, hit.end));
}

/**
 * A scanned value through JSON.parse, or BAD: the scanner is lenient inside strings and numbers, so a bad
 * escape or number is found here, and the whole document then goes to JSON.parse, which rejects it.
 */
function parseValue(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return BAD;
  }
}

const regexCache = new Map<string, LinearRegex>();

/**
 * Compiles an envelope regex once, for the linear-time engine (util/linear_regex.ts: a hostile body cannot make
 * it backtrack); throws SyntaxError on a pattern that does not compile there (config validation catches it).
 */
export function compileEnvelopeRegex(pattern: string): LinearRegex {
  let re = regexCache.get(pattern);
  if (!re) {
    const compiled = compileLinearRegex(pattern);
    if ("error" in compiled) throw new SyntaxError(compiled.error);
    re = compiled;
    if (regexCache.size > 256) regexCache.clear();
    regexCache.set(pattern, re);
  }
  return re;
}

/** Number of capture groups in `pattern`, or undefined if it does not compile in the linear-time engine. */
export function regexGroupCount(pattern: string): number | undefined {
  const compiled = compileLinearRegex(pattern);
  return "error" in compiled ? undefined : compiled.groups;
}

/**
 * {@link extractAudioField} for the decoder: a JSON field that is a plain string (no escapes) is found in the
 * payload's bytes without decoding the body to text, and handed on as a view of the payload (`data` is then a
 * Uint8Array even for `json`). Its bytes are the UTF-8 of the string extractAudioField returns, so base64 and
 * hex decode them to the same bytes; where they could differ (binary, whose text maps code units to bytes, and
 * the length of a field that fails to decode: see {@link fieldTextLength}) the decoder uses the text. Anything
 * else takes extractAudioField's path.
 */
export function extractAudioFieldView(
  payload: Uint8Array | PayloadEnvelope,
  fmt: EnvelopeFormat & Pick<AudioFormat, "encoding">,
): AudioFieldResult {
  if (fmt.envelope !== "json" || fmt.encoding === "binary") return extractAudioField(payload, fmt);
  const env = envelopeOf(payload);
  if (env.parsed || env.hasText) return extractAudioField(env, fmt);
  const hit = scanJsonPathBytes(env.bytes, bytePath(compileJsonPath(fmt.path)));
  if (hit === BYTES_MISSING) return { ok: false, reason: "missing_path" };
  if (hit === BYTES_BAD || (hit.string && hit.escaped)) return extractAudioField(env, fmt);
  if (!hit.string) return { ok: false, reason: "not_a_string" };
  const data = env.bytes.subarray(hit.start + 1, hit.end - 1);
  return { ok: true, data, overhead: Math.max(0, env.bytes.length - data.length) };
}

/**
 * The `data` extractAudioField would have given: for a view from {@link extractAudioFieldView} of a JSON field,
 * its text (whose length differs from its byte count when it is not ASCII); otherwise `data` itself.
 */
export function fieldAsText(
  data: Uint8Array | string,
  envelope: EnvelopeFormat["envelope"],
): string | Uint8Array {
  return typeof data !== "string" && envelope === "json" ? utf8.decode(data) : data;
}

/** Finds the audio field of one payload as `fmt` describes it. Never throws on payload content. */
export function extractAudioField(
  payload: Uint8Array | PayloadEnvelope,
  fmt: EnvelopeFormat,
): AudioFieldResult {
  const env = envelopeOf(payload);
  const size = env.bytes.length;
  switch (fmt.envelope) {
    case "json": {
      const segs = compileJsonPath(fmt.path);
      if (!env.parsed) {
        const hit = scanJsonPath(env.text(), segs);
        if (hit === MISSING) return { ok: false, reason: "missing_path" };
        if (hit !== BAD) {
          if (!hit.string) return { ok: false, reason: "not_a_string" };
          const data = scannedValue(env.text(), hit);
          if (typeof data === "string") return { ok: true, data, overhead: Math.max(0, size - data.length) };
        }
      }
      const parsed = env.json();
      if (!parsed.ok) return { ok: false, reason: "bad_json" };
      const v = walkJsonPath(parsed.value, segs);
      if (v === undefined) return { ok: false, reason: "missing_path" };
      if (typeof v !== "string") return { ok: false, reason: "not_a_string" };
      return { ok: true, data: v, overhead: Math.max(0, size - v.length) };
    }
    case "regex": {
      // Sees the first MAX_REGEX_INPUT (256 KiB) characters of the body only.
      const g = compileEnvelopeRegex(fmt.path).capture(env.latin1());
      if (g === undefined) return { ok: false, reason: "no_regex_match" };
      return { ok: true, data: g, overhead: Math.max(0, size - g.length) };
    }
    case "raw": {
      const skip = fmt.skip_bytes;
      if (size < skip) return { ok: false, reason: "short_payload" };
      return { ok: true, data: env.bytes.subarray(skip), overhead: skip };
    }
  }
}
