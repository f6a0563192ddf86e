/**
 * Messages between one node's actors (the arrows of the architecture diagram).
 * @module
 */
import type { Match, Signature } from "../audio/types.ts";
import type { RepeatOutcome } from "../audio/match/repeats.ts";
import type { Row } from "../pixie/row.ts";

/** PixieReader input: a row from a live query or a capture replay. */
export type ReaderMsg =
  | { kind: "row"; row: Row }
  /** Several rows at once (a live source's batch, a capture replay): one message instead of one per row. */
  | { kind: "rows"; rows: readonly Row[] }
  /** The live source failed: the reader crashes on this message so its supervisor restarts the source. */
  | { kind: "source-failed"; error: string }
  /** A live reader's local-clock tick while no rows come (pixie_reader.ts, ReaderDeps.quietTickMs). */
  | { kind: "quiet" }
  /** End of input (capture replay): flush everything downstream; `reply` when done. */
  | { kind: "finish"; reply: (ok: true) => void };

/** Rows of the taps an actor follows, in order (the reader routes a tap's rows to one actor). */
export type TapRowsMsg =
  | { kind: "row"; row: Row }
  /** Several rows at once: one message instead of one per row. */
  | { kind: "rows"; rows: readonly Row[] }
  /**
   * The reader shed rows of every stream since the last rows it sent (late, under overload): what comes next
   * follows a gap in every stream that began at `fromNs`, the event time of the earliest row shed (see
   * StreamTable.shed).
   */
  | { kind: "shed"; fromNs: bigint }
  /**
   * Event time moved on to `nowNs` without rows (a live node with nothing to read: the reader carries event time on
   * by its local clock, pixie_reader.ts): idle streams end and counters are reported as a row at that time would.
   */
  | { kind: "time"; nowNs: bigint };

/**
 * The weight of a row-carrying actor's message in its mailbox (SpawnOptions.weigh): a batch weighs its rows, any
 * other message 1, so the reader's, Detectors' and Matcher's mailboxes are bounded in rows (and drop and count rows)
 * however the rows are batched.
 */
export function rowWeight(msg: { readonly kind: string; readonly rows?: readonly unknown[] }): number {
  return msg.kind === "rows" && msg.rows !== undefined && msg.rows.length > 1 ? msg.rows.length : 1;
}

/** Detector input (one Detector per measurement): rows of its source tap. */
export type DetectorMsg =
  | TapRowsMsg
  | { kind: "finish"; reply: (ok: true) => void };

/** SignatureRegistry input. */
export type RegistryMsg =
  /** A signature from the bus (any node). */
  | { kind: "signature"; sig: Signature }
  /** Event time advanced on this node: expire what is past its TTL (and what is beyond the clock window). */
  /** Event time moved on to `nowNs`; `back`: the rows' clock stepped back to it (NTP), so it is lower. */
  | { kind: "tick"; nowNs: bigint; back?: boolean }
  /** A (re)started Matcher has no signatures: send it every active one again. */
  | { kind: "resync" }
  | { kind: "finish"; reply: (ok: true) => void };

/** Matcher input: rows of every stage's tap, and what the registry and the Detectors say. */
export type MatcherMsg =
  | TapRowsMsg
  /** The registry made a signature active. */
  | { kind: "activate"; sig: Signature }
  /** The registry expired or evicted a signature. */
  | { kind: "deactivate"; measurement: string; id: string }
  /** A measurement's Detector saw a source stream; rules with exclude_source_streams skip it. */
  | { kind: "source-stream"; measurement: string; stream: string }
  /**
   * How far other nodes' clocks are ahead of this one (the skew estimator's largest positive peer offset, ns):
   * target audio is searched that much further before a signature's source instant.
   */
  | { kind: "clock-ahead"; aheadNs: bigint }
  | { kind: "finish"; reply: (ok: true) => void };

/** Decode counters of one tap's stream pipelines since the last report. */
export interface DecodeDelta {
  measurement: string;
  /** The tap: `source` or the stage name (the metrics' `stream` label). */
  tap: string;
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

/** Why the registry stopped holding a signature, or never took it. */
export type ExpireReason = "ttl" | "late" | "future" | "evicted" | "invalid";

/** Every {@link ExpireReason}, for series that must exist at 0. */
export const EXPIRE_REASONS: readonly ExpireReason[] = ["ttl", "late", "future", "evicted", "invalid"];

/**
 * Why a row was fed to no pipeline (`fsmpx_rows_skipped_total{reason}`, listed in the README): the same stream,
 * time and payload again, again from a Pixie re-run's overlap, a query or stage the config does not name, no
 * usable `time_` (capture replay), or past `engine.max_streams`.
 */
export const ROW_SKIP_REASONS = [
  "duplicate",
  "rerun_duplicate",
  "unknown_query",
  "unknown_stage",
  "no_time",
  "stream_limit",
] as const;

/** One of {@link ROW_SKIP_REASONS}. */
export type RowSkipReason = typeof ROW_SKIP_REASONS[number];

/**
 * Counters the node's actors bump directly (FsmMetrics has them): cheap, synchronous, label values from the
 * config or from fixed sets only.
 */
export interface NodeCounters {
  /** Signatures expired or refused by the registry. */
  signaturesExpired(measurement: string, reason: ExpireReason, n?: number): void;
  /** Streams finished early at the engine.max_streams cap (`tap`: `source` or the stage; the `stream` label). */
  streamsEvicted(measurement: string, tap: string, n?: number): void;
  /** Rows skipped before any pipeline (`query`: a configured query name, or `(other)`). */
  rowsSkipped(query: string, reason: RowSkipReason, n?: number): void;
  /** Rows too far ahead to move the event clock. */
  clockOutliers(n?: number): void;
  /**
   * A signature searched from before the target audio a live node's memory plan keeps, which the configured
   * lookback would still hold (stream_budget.ts).
   */
  lookbackShort?(measurement: string, n?: number): void;
  /** A match met a repeat of its audio (audio/match/repeats.ts): dropped, or released before its nearer twin. */
  matchesRepeated?(measurement: string, stage: string, outcome: RepeatOutcome): void;
}

/** Counters that count nothing (tests, tools). */
export const NO_COUNTERS: NodeCounters = {
  signaturesExpired: () => {},
  streamsEvicted: () => {},
  rowsSkipped: () => {},
  clockOutliers: () => {},
};

/** The label of rows of queries the config does not name (so input cannot create series). */
export const OTHER_QUERY = "(other)";
