/**
 * Messages between one node's actors (the arrows of the architecture diagram).
 * @module
 */
import type { Match, Signature } from "../audio/types.ts";
import type { Row } from "../pixie/row.ts";

/** PixieReader input: a row from a live query or a capture replay. */
export type ReaderMsg =
  | { kind: "row"; row: Row }
  /** The live source failed: the reader crashes on this message so its supervisor restarts the source. */
  | { kind: "source-failed"; error: string }
  /** End of input (capture replay): flush everything downstream; `reply` when done. */
  | { kind: "finish"; reply: (ok: true) => void };

/** Detector input (one Detector per measurement). */
export type DetectorMsg =
  | { kind: "row"; row: Row }
  | { kind: "finish"; reply: (ok: true) => void };

/** SignatureRegistry input. */
export type RegistryMsg =
  /** A signature from the bus (any node). */
  | { kind: "signature"; sig: Signature }
  /** Event time advanced on this node: expire what is past its TTL. */
  | { kind: "tick"; nowNs: bigint }
  | { kind: "finish"; reply: (ok: true) => void };

/** Matcher input. */
export type MatcherMsg =
  | { kind: "row"; row: Row }
  /** The registry made a signature active. */
  | { kind: "activate"; sig: Signature }
  /** The registry expired or evicted a signature. */
  | { kind: "deactivate"; measurement: string; id: string }
  /** A measurement's Detector saw a source stream; rules with exclude_source_streams skip it. */
  | { kind: "source-stream"; measurement: string; stream: string }
  | { kind: "finish"; reply: (ok: true) => void };

/** Decode counters of one stream's pipeline since the last report. */
export interface DecodeDelta {
  measurement: string;
  /** `source` or the stage name. */
  stream: string;
  query: string;
  markers: Record<string, number>;
  errors: Record<string, number>;
}

/** Exporter input. */
export type ExporterMsg =
  | { kind: "signature"; sig: Signature; bytes: number }
  | { kind: "match"; match: Match }
  | { kind: "active"; measurement: string; count: number }
  | { kind: "rows"; query: string; n: number }
  | { kind: "decode"; delta: DecodeDelta }
  | { kind: "finish"; reply: (ok: true) => void };
