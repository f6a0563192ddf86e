/**
 * Signature and match records (a contract): the JSON Lines that `analyze --out` writes, that are published on
 * JetStream, and that `replay --format json` prints.
 * @module
 */
import type { Match, Signature, Tap } from "../audio/types.ts";

/** A tap as it appears in a match record. */
export interface TapRecord {
  node: string;
  pod: string;
  stream: string;
  /** Decimal ns since the epoch (the `time_` of the message that carries the instant). */
  time_ns: string;
  offset_ms: number;
}

/** `{"kind":"signature", ...}` */
export interface SignatureRecord {
  kind: "signature";
  measurement: string;
  signature_id: string;
  node: string;
  pod: string;
  stream: string;
  time_ns: string;
  offset_ms: number;
  ids: Record<string, string>;
  /** Encoded size on the wire. */
  bytes: number;
  /**
   * Optional (added with the web UI's Signature page): the sub-fingerprints as little-endian uint32 words,
   * base64. Readers must not require it: records written before it have none.
   */
  fingerprint_b64?: string;
  /** Optional: frames ignored as too quiet at the source (bit j = frame j), base64. */
  mask_b64?: string;
  /** Optional: the fine-timing level envelope (256 values 0..7, 1 ms apart from 64 ms before the instant), base64. */
  envelope_b64?: string;
}

/** How much the tap just before this one adds: `target time − the previous tap's target time`. */
export interface HopRecord {
  /** The stage before this one (`match_rules[].after`), or `source`. */
  from_stage: string;
  latency_s: number;
  /**
   * Optional (absent from the source, and in records written before session 27): the node and stream of the
   * previous stage's match the hop is measured from, which a trace needs to name that match's span as the parent
   * when the signature was found on several streams there.
   */
  from_node?: string;
  from_stream?: string;
}

/** `{"kind":"match", ...}` */
export interface MatchRecord {
  kind: "match";
  measurement: string;
  stage: string;
  signature_id: string;
  ids: Record<string, string>;
  source: TapRecord;
  target: TapRecord;
  latency_s: number;
  ber: number;
  /** Optional: the hop from the previous stage, when that stage's match of this signature was known. */
  hop?: HopRecord;
  /** Optional: the target's level envelope at the matched instant (256 levels 0..7, base64), for the UI. */
  target_envelope_b64?: string;
}

/** Either record. */
export type AnyRecord = SignatureRecord | MatchRecord;

/** Offsets are reported to the microsecond: finer digits are noise from float arithmetic. */
function roundMs(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}

function tapRecord(t: Tap): TapRecord {
  return {
    node: t.node,
    pod: t.pod,
    stream: t.stream,
    time_ns: t.timeNs.toString(),
    offset_ms: roundMs(t.offsetMs),
  };
}

type NativeToBase64 = (this: Uint8Array) => string;
const nativeToBase64: NativeToBase64 | undefined =
  (Uint8Array.prototype as unknown as { toBase64?: NativeToBase64 }).toBase64;

/**
 * Base64 of bytes (no Buffer: this also runs where only web APIs exist): the engine's encoder where it has one,
 * else btoa of the bytes' text, made with apply (a spread made an iterator result per byte).
 */
export function toBase64(bytes: Uint8Array): string {
  if (nativeToBase64) return nativeToBase64.call(bytes);
  return toBase64Portable(bytes);
}

/** {@link toBase64} without the engine's encoder (the same text). */
export function toBase64Portable(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    s += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000) as unknown as number[]);
  }
  return btoa(s);
}

/** Bytes of base64 text; undefined when it is not base64. */
export function fromBase64(text: string): Uint8Array | undefined {
  try {
    const s = atob(text);
    const out = new Uint8Array(s.length);
    for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
    return out;
  } catch {
    return undefined;
  }
}

/** Little-endian bytes of uint32 words (the platform order is not assumed). */
function wordsLe(words: Uint32Array): Uint8Array {
  const out = new Uint8Array(words.length * 4);
  const view = new DataView(out.buffer);
  words.forEach((w, i) => view.setUint32(i * 4, w, true));
  return out;
}

/** The record of a signature; `bytes` is its encoded wire size. */
export function signatureRecord(sig: Signature, bytes: number): SignatureRecord {
  const bits: Partial<SignatureRecord> = { fingerprint_b64: toBase64(wordsLe(sig.fingerprint)) };
  if (sig.mask) bits.mask_b64 = toBase64(sig.mask);
  if (sig.levelEnvelope) bits.envelope_b64 = toBase64(sig.levelEnvelope);
  return {
    kind: "signature",
    measurement: sig.measurement,
    signature_id: sig.id,
    node: sig.source.node,
    pod: sig.source.pod,
    stream: sig.source.stream,
    time_ns: sig.source.timeNs.toString(),
    offset_ms: roundMs(sig.source.offsetMs),
    ids: sig.ids,
    bytes,
    ...bits,
  };
}

/** A match, with its hop when it is known (the record carries it). */
export type MatchWithHop = Match & { hop?: HopRecord };

/** The record of a match (with `hop` when the match carries one). */
export function matchRecord(m: MatchWithHop): MatchRecord {
  const rec: MatchRecord = {
    kind: "match",
    measurement: m.measurement,
    stage: m.stage,
    signature_id: m.signatureId,
    ids: m.ids,
    source: tapRecord(m.source),
    target: tapRecord(m.target),
    latency_s: m.latencyS,
    ber: Math.round(m.ber * 10000) / 10000,
  };
  if (m.hop) rec.hop = hopCopy(m.hop);
  if (m.targetEnvelope) rec.target_envelope_b64 = toBase64(m.targetEnvelope);
  return rec;
}

/** A hop record with its fields only (a tracker's or a match's hop may be a wider object). */
export function hopCopy(h: HopRecord): HopRecord {
  const out: HopRecord = { from_stage: h.from_stage, latency_s: h.latency_s };
  if (h.from_node !== undefined && h.from_stream !== undefined) {
    out.from_node = h.from_node;
    out.from_stream = h.from_stream;
  }
  return out;
}

/** Latency in seconds from two capture times, exact in bigint before the division. */
export function latencySeconds(sourceNs: bigint, targetNs: bigint): number {
  return Number(targetNs - sourceNs) / 1e9;
}

function isObj(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

/**
 * A decimal-ns capture time: what every reader hands to BigInt. At most 19 digits (int64's range, ±292 years of
 * ns around 1970): a longer one made the UI's time bands Infinity wide and every overview fail.
 */
function isNs(v: unknown): v is string {
  return typeof v === "string" && /^-?\d{1,19}$/.test(v);
}

function isTap(v: unknown): v is TapRecord {
  return isObj(v) && typeof v.node === "string" && typeof v.pod === "string" &&
    typeof v.stream === "string" && isNs(v.time_ns) && typeof v.offset_ms === "number";
}

/**
 * Ids: string values under names that are not Object.prototype's (`constructor`, `__proto__`...): a reader looks
 * an id type up as `ids[type]`, and a record without that id would then yield the inherited member.
 */
function isIds(v: unknown): v is Record<string, string> {
  return isObj(v) && Object.entries(v).every(([k, x]) => typeof x === "string" && !(k in Object.prototype));
}

function optString(v: unknown): boolean {
  return v === undefined || typeof v === "string";
}

function isHop(v: unknown): v is HopRecord {
  return isObj(v) && typeof v.from_stage === "string" && typeof v.latency_s === "number" &&
    Number.isFinite(v.latency_s) && optString(v.from_node) && optString(v.from_stream);
}

/** Validates a parsed JSON value as a record; returns the reason when it is not one. */
export function parseRecord(v: unknown): AnyRecord | string {
  if (!isObj(v)) return "not a JSON object";
  if (v.kind === "signature") {
    if (
      typeof v.measurement === "string" && typeof v.signature_id === "string" && typeof v.node === "string" &&
      typeof v.pod === "string" && typeof v.stream === "string" && isNs(v.time_ns) &&
      typeof v.offset_ms === "number" && isIds(v.ids) && typeof v.bytes === "number" &&
      optString(v.fingerprint_b64) && optString(v.mask_b64) && optString(v.envelope_b64)
    ) return v as unknown as SignatureRecord;
    return "signature record with missing or mistyped fields";
  }
  if (v.kind === "match") {
    if (
      typeof v.measurement === "string" && typeof v.stage === "string" &&
      typeof v.signature_id === "string" &&
      isIds(v.ids) && isTap(v.source) && isTap(v.target) && typeof v.latency_s === "number" &&
      typeof v.ber === "number" && (v.hop === undefined || isHop(v.hop)) && optString(v.target_envelope_b64)
    ) return v as unknown as MatchRecord;
    return "match record with missing or mistyped fields";
  }
  return `unknown record kind ${JSON.stringify(v.kind)}`;
}
