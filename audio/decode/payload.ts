/**
 * Payload envelopes: where the audio field sits in a captured body (`json` path, `regex` group, `raw` bytes,
 * `protobuf` field numbers),
 * and Pixie's own markers for bodies it did not keep. A {@link PayloadEnvelope} parses its JSON at most once, so
 * the stream key and the audio field of one message share the parse.
 * @module
 */

import { detectPixieMarker, type PixieMarker } from "../../pixie/markers.ts";
import type { AudioFormat } from "../types.ts";
import { compileLinearRegex, type LinearRegex } from "../../util/linear_regex.ts";
import { protobufField } from "./protobuf_path.ts";
import {
  type BytePath,
  bytePath,
  BYTES_BAD,
  BYTES_MISSING,
  type ByteScanHit,
  ByteScans,
  hitValue,
  utf8Piece,
} from "./json_scan_bytes.ts";

/** Pixie's markers are recognised in one place (pixie/markers.ts); the decoder reads them through here. */
export { detectPixieMarker, type PixieMarker };
/** Why the audio field could not be found in a payload. */
export type EnvelopeErrorReason =
  | "bad_json"
  | "missing_path"
  | "not_a_string"
  | "no_regex_match"
  | "short_payload"
  | "bad_protobuf";

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
  #scans: ByteScans | undefined;

  /** Wraps the payload bytes; nothing is decoded until asked. */
  constructor(readonly bytes: Uint8Array) {}

  /** The byte scans of its JSON fields (one pass for the stream key's fields and the audio field). */
  get scans(): ByteScans {
    return this.#scans ??= new ByteScans(this.bytes);
  }

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

  /** True once {@link text} has run: the usual message is read from its bytes and never needs it. */
  get hasText(): boolean {
    return this.#text !== undefined;
  }

  /** True once its JSON fields have been scanned or it was parsed: the answers are at hand. */
  get scanned(): boolean {
    return this.#scans !== undefined || this.#json !== NOT_PARSED;
  }

  /** True once {@link json} has run, so walking the parsed value is cheaper than scanning the bytes. */
  get parsed(): boolean {
    return this.#json !== NOT_PARSED;
  }

  /** The payload as latin1 text: one UTF-16 code unit per byte, so text positions are byte positions. */
  latin1(): string {
    if (this.#latin1 === undefined) this.#latin1 = latin1Text(this.bytes);
    return this.#latin1;
  }
}

/** Text of `bytes` with one code unit per byte (text positions are byte positions), as the regex envelope reads it. */
export function latin1Text(bytes: Uint8Array): string {
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
  const hit = scanUnparsed(env, segs);
  if (hit === BYTES_MISSING) return undefined;
  if (hit !== BYTES_BAD) {
    const v = hitValue(env.bytes, hit);
    if (v !== BYTES_BAD) return v;
  }
  const parsed = env.json();
  return parsed.ok ? walkJsonPath(parsed.value, segs) : undefined;
}

/**
 * The byte scan of `segs` in a payload not parsed yet (json_scan_bytes.ts, the one scanner; JSON.parse of a whole
 * message costs more than the rest of its decode); BAD once the payload is parsed, since walking the parsed
 * value is then cheaper. On BAD the caller asks JSON.parse, which decides.
 */
function scanUnparsed(
  env: PayloadEnvelope,
  segs: readonly string[],
): ByteScanHit | typeof BYTES_MISSING | typeof BYTES_BAD {
  return env.parsed ? BYTES_BAD : env.scans.get(bytePath(segs));
}

/** The audio path {@link bytePathOf} compiled last, and its byte form. */
let lastPath = "";
let lastBytePath: BytePath = bytePath(compileJsonPath(""));

/**
 * The byte form of a dotted path: the last one asked again is handed back at once (a message's audio field
 * is looked for by the same path as the last message's, where a Map and a WeakMap lookup cost as much as the
 * rest of finding the field).
 */
function bytePathOf(path: string): BytePath {
  if (path !== lastPath) {
    lastBytePath = bytePath(compileJsonPath(path));
    lastPath = path;
  }
  return lastBytePath;
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
 * else takes extractAudioField's path. A found field's result object is shared: valid until the next call.
 */
export function extractAudioFieldView(
  payload: Uint8Array | PayloadEnvelope,
  fmt: EnvelopeFormat & Pick<AudioFormat, "encoding">,
): AudioFieldResult {
  if (fmt.envelope !== "json" || fmt.encoding === "binary") return extractAudioField(payload, fmt);
  const env = envelopeOf(payload);
  const hit = env.parsed ? BYTES_BAD : env.scans.get(bytePathOf(fmt.path));
  if (hit === BYTES_MISSING) return { ok: false, reason: "missing_path" };
  if (hit === BYTES_BAD || (hit.string && hit.escaped)) return extractAudioField(env, fmt);
  if (!hit.string) return { ok: false, reason: "not_a_string" };
  const data = env.bytes.subarray(hit.start + 1, hit.end - 1);
  // One result object, reused: the decoder reads it at once (an object a message otherwise).
  const r = viewResult;
  r.data = data;
  r.overhead = Math.max(0, env.bytes.length - data.length);
  return r;
}

const viewResult: { ok: true; data: Uint8Array | string; overhead: number } = {
  ok: true,
  data: new Uint8Array(0),
  overhead: 0,
};

/**
 * The `data` extractAudioField would have given: for a view from {@link extractAudioFieldView} of a JSON field,
 * its text (whose length differs from its byte count when it is not ASCII); otherwise `data` itself.
 */
export function fieldAsText(
  data: Uint8Array | string,
  envelope: EnvelopeFormat["envelope"],
): string | Uint8Array {
  return typeof data !== "string" && envelope === "json" ? utf8Piece(data) : data;
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
      const hit = scanUnparsed(env, segs);
      if (hit === BYTES_MISSING) return { ok: false, reason: "missing_path" };
      if (hit !== BYTES_BAD) {
        if (!hit.string) return { ok: false, reason: "not_a_string" };
        const data = hitValue(env.bytes, hit);
        if (typeof data === "string") return { ok: true, data, overhead: Math.max(0, size - data.length) };
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
    case "protobuf": {
      const f = protobufField(env.bytes, fmt.path);
      if (typeof f === "string") return { ok: false, reason: f };
      return { ok: true, data: f, overhead: size - f.length };
    }
  }
}
