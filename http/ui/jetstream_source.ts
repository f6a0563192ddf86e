/**
 * Records from JetStream for the web UI (and for exporters that want other nodes' matches): the stored history
 * of a time window, then a live tail of what the sensors publish from then on. Both read the contract subjects
 * `fsmpx.sig.<measurement>` and `fsmpx.match.<measurement>.<stage>`; a record seen in both (the tail starts at
 * the history's last message, by the server's clock) is held once by the store.
 * @module
 */
import { jetstream } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { readRecordsFrom, toRecord } from "../../bus/replay_reader.ts";
import { OrderedSubscription } from "../../bus/ordered_subscription.ts";
import { MATCH_PREFIX, STREAM_SUBJECTS } from "../../bus/subjects.ts";
import type { AnyRecord, MatchRecord } from "../../report/records.ts";
import type { MatchFeed } from "../../actors/exporter.ts";
import { logger } from "../../util/log.ts";

const log = logger("bus");

/** A running live tail. */
export interface Tail {
  stop(): Promise<void>;
}

/** What {@link readHistory} read. */
export interface History {
  /** Records read (skipped messages not counted). */
  records: number;
  /** When the server stored the last message read (ms, the server's clock); null when none was read. */
  lastStoredMs: number | null;
}

/** Reads the history from `startMs` into `onRecord` (with when the server stored it, ms). */
export async function readHistory(
  nc: NatsConnection,
  stream: string,
  startMs: number,
  onRecord: (r: AnyRecord, storedMs: number) => void,
  onSkip?: () => void,
): Promise<History> {
  let records = 0;
  let lastNs: bigint | null = null;
  const opts = {
    stream,
    startMs,
    onSkip: () => onSkip?.(),
    onStored: (_seq: number, ns: bigint) => lastNs = ns,
  };
  for await (const r of readRecordsFrom(nc, opts)) {
    // onStored told this record's stored time just before it came.
    onRecord(r, Number(lastNs! / 1_000_000n));
    records++;
  }
  return { records, lastStoredMs: lastNs === null ? null : Number(lastNs / 1_000_000n) };
}

/**
 * Follows the stream from `startMs` (wall ms) on: every signature and match record published, as records (with
 * when the server stored each, ms). `filter` narrows the subjects (default: all of fsm-px's stored subjects).
 */
export async function tailRecords(
  nc: NatsConnection,
  stream: string,
  startMs: number,
  onRecord: (r: AnyRecord, storedMs: number) => void,
  opts: { filter?: string; onSkip?: (reason: string) => void } = {},
): Promise<Tail> {
  const js = jetstream(nc);
  // Server 2.9 takes one filter subject per consumer: `fsmpx.>` covers both signature and match subjects.
  const filter = opts.filter ?? (STREAM_SUBJECTS.length > 1 ? "fsmpx.>" : STREAM_SUBJECTS[0]!);
  const sub = await OrderedSubscription.start({
    js,
    stream,
    filter,
    startTimeMs: startMs,
    onMessage: (m) => {
      const r = toRecord(m);
      if (typeof r === "string") opts.onSkip?.(r);
      else onRecord(r, Number(m.timestampNanos / 1_000_000n));
      return Promise.resolve();
    },
  });
  return { stop: () => sub.stop() };
}

/**
 * Other nodes' match records from JetStream as an exporter's {@link MatchFeed} (hops across nodes, live):
 * from `startMs` (default now) on, of the given measurements. A stored message that is not a match record is
 * skipped, logged (throttled) and told to `onSkip` with its reason (`json`, `record`, `subject`), e.g. for
 * `fsmpx_bus_receive_failed_total{kind="match"}`.
 */
export function jetStreamMatchFeed(
  nc: NatsConnection,
  stream: string,
  startMs?: number,
  onSkip?: (reason: string) => void,
): MatchFeed {
  let skipped = 0;
  return {
    async subscribe(measurements, handler) {
      const wanted = new Set(measurements);
      const tail = await tailRecords(nc, stream, startMs ?? Date.now(), (r) => {
        if (r.kind === "match" && (wanted.size === 0 || wanted.has(r.measurement))) handler(r as MatchRecord);
      }, {
        filter: `${MATCH_PREFIX}.>`,
        onSkip: (why) => {
          skipped++;
          if (skipped === 1 || skipped % 1000 === 0) {
            log.warn("stored message on a match subject is not a match record; skipped", {
              why,
              count: skipped,
            });
          }
          onSkip?.(why.split(":")[0]!);
        },
      });
      return { unsubscribe: () => tail.stop() };
    },
  };
}
