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

/** The record of a signature; `bytes` is its encoded wire size. */
export function signatureRecord(sig: Signature, bytes: number): SignatureRecord {
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
  };
}

/** The record of a match. */
export function matchRecord(m: Match): MatchRecord {
  return {
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
}

/** Latency in seconds from two capture times, exact in bigint before the division. */
export function latencySeconds(sourceNs: bigint, targetNs: bigint): number {
  return Number(targetNs - sourceNs) / 1e9;
}

function isObj(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

function isTap(v: unknown): v is TapRecord {
  return isObj(v) && typeof v.node === "string" && typeof v.pod === "string" &&
    typeof v.stream === "string" &&
    typeof v.time_ns === "string" && /^-?\d+$/.test(v.time_ns) && typeof v.offset_ms === "number";
}

function isIds(v: unknown): v is Record<string, string> {
  return isObj(v) && Object.values(v).every((x) => typeof x === "string");
}

/** Validates a parsed JSON value as a record; returns the reason when it is not one. */
export function parseRecord(v: unknown): AnyRecord | string {
  if (!isObj(v)) return "not a JSON object";
  if (v.kind === "signature") {
    if (
      typeof v.measurement === "string" && typeof v.signature_id === "string" && typeof v.node === "string" &&
      typeof v.pod === "string" && typeof v.stream === "string" && typeof v.time_ns === "string" &&
      typeof v.offset_ms === "number" && isIds(v.ids) && typeof v.bytes === "number"
    ) return v as unknown as SignatureRecord;
    return "signature record with missing or mistyped fields";
  }
  if (v.kind === "match") {
    if (
      typeof v.measurement === "string" && typeof v.stage === "string" &&
      typeof v.signature_id === "string" &&
      isIds(v.ids) && isTap(v.source) && isTap(v.target) && typeof v.latency_s === "number" &&
      typeof v.ber === "number"
    ) return v as unknown as MatchRecord;
    return "match record with missing or mistyped fields";
  }
  return `unknown record kind ${JSON.stringify(v.kind)}`;
}
