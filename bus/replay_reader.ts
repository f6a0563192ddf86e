/**
 * Reads signatures and match records back from the stream by time range (`replay`): what the sensors published,
 * as the record contract, in stream order. It needs only the server: the sensors may be long gone.
 *
 * The range is in stream time (when the server stored each message), which the server indexes; sensors publish
 * within moments of capture, so it is event time to within the pipeline's delay.
 * @module
 */
import type { NatsConnection } from "@nats-io/transport-node";
import {
  type Consumer,
  jetstream,
  type JetStreamClient,
  type JsMsg,
  type OrderedConsumerOptions,
} from "@nats-io/jetstream";
import { decodeSignature } from "../audio/fingerprint/signature.ts";
import { type AnyRecord, parseRecord, signatureRecord } from "../report/records.ts";
import { connectNats, type NatsConnectOptions } from "./connection.ts";
import { checkServerVersion } from "./stream_setup.ts";
import { IDLE_HEARTBEAT_MS } from "./ordered_subscription.ts";
import { matchFilter, parseSubject, signatureSubject } from "./subjects.ts";
import { logger } from "../util/log.ts";

const log = logger("replay");

/** What to read. */
export interface ReadRecordsOptions {
  stream: string;
  /** First stored message wanted (wall-clock ms since the epoch). */
  startMs: number;
  /** Last stored message wanted (inclusive); default: whatever is stored when the read starts. */
  untilMs?: number;
  /** Only this measurement's signatures and matches. */
  measurement?: string;
  /** A skipped message: undecodable signature or malformed match record (already logged, throttled). */
  onSkip?: (reason: string, detail: string) => void;
  /**
   * A consumer that delivers nothing for this long although messages were pending is re-created after the last
   * message read; after a few in a row the read stalls for good. Default 10 s.
   */
  idleTimeoutMs?: number;
  /**
   * A read that stalls for good throws {@link StreamReadStalledError} (`replay`: an incomplete range is an error,
   * not a smaller result). Default false: it ends there, logged (the UI's live tail completes it).
   */
  stallError?: boolean;
  /**
   * Every stored message read (skipped ones too), before its record: its stream sequence and when the server
   * stored it (ns, the server's clock), e.g. to follow the stream on from exactly there.
   */
  onStored?: (seq: number, storedNs: bigint) => void;
}

/**
 * The stream to read is not on the server. A reportable error (cli/main.ts prints `format()` as it is, exit 1)
 * because the cause is nearly always one of two mistakes a user can fix.
 */
export class StreamNotFoundError extends Error {
  override name = "StreamNotFoundError";
  readonly exitCode = 1;
  constructor(readonly stream: string, readonly server: string) {
    super(
      `JetStream stream "${stream}" does not exist on ${server}: no sensor has published to this server yet ` +
        `(a 'run' sensor with nats.url set creates it on start), or nats.stream names another stream than ` +
        `the sensors' one`,
    );
  }
  /** The text a command prints. */
  format(): string {
    return this.message;
  }
}

/** Reads records from the server at `connection.url` (connects, reads, closes). */
export async function* readRecords(
  connection: NatsConnectOptions,
  opts: ReadRecordsOptions,
): AsyncGenerator<AnyRecord> {
  const nc = await connectNats({ ...connection, name: connection.name ?? "fsmpx-replay" });
  try {
    checkServerVersion(nc.info?.version);
    yield* readRecordsFrom(nc, opts);
  } finally {
    await nc.close().catch(() => {});
  }
}

/** Reads records over an open connection. */
export async function* readRecordsFrom(
  nc: NatsConnection,
  opts: ReadRecordsOptions,
): AsyncGenerator<AnyRecord> {
  const js = jetstream(nc);
  // Server 2.9 takes one filter subject per consumer: a measurement's signatures and matches are two
  // consumers, merged back into stream order by sequence.
  const filters = opts.measurement === undefined
    ? [undefined]
    : [signatureSubject(opts.measurement), matchFilter(opts.measurement)];
  const untilNs = opts.untilMs === undefined ? null : BigInt(Math.floor(opts.untilMs)) * 1_000_000n;
  const sources = filters.map((f) => storedMessages(js, opts, f, untilNs, nc.getServer()));
  let skipped = 0;
  for await (const m of mergeBySeq(sources)) {
    opts.onStored?.(m.seq, m.timestampNanos);
    const r = toRecord(m);
    if (typeof r === "string") {
      skipped++;
      if (skipped === 1 || skipped % 1000 === 0) {
        log.warn("stored message skipped", { seq: m.seq, reason: r, skipped });
      }
      opts.onSkip?.(r.split(":")[0]!, r);
      continue;
    }
    yield r;
  }
}

/** The record a stored message carries, or why it carries none. */
export function toRecord(m: { subject: string; data: Uint8Array }): AnyRecord | string {
  const s = parseSubject(m.subject);
  if (s === null) return `subject: not an fsm-px subject ${m.subject}`;
  if (s.kind === "signature") {
    try {
      return signatureRecord(decodeSignature(m.data), m.data.length);
    } catch (e) {
      return `decode: ${(e as Error).message}`;
    }
  }
  let v: unknown;
  try {
    v = JSON.parse(new TextDecoder().decode(m.data));
  } catch (e) {
    return `json: ${(e as Error).message}`;
  }
  const r = parseRecord(v);
  if (typeof r === "string") return `record: ${r}`;
  return r;
}

/** Consumers re-created in a row without a message read before a stalled read ends (or fails: `stallError`). */
const STALLED_ATTEMPTS = 3;
/** Pause before a consumer is re-created (a restarting server takes a moment to have JetStream again), ms. */
const RECREATE_PAUSE_MS = 500;

/** The stream read stalled for good (with `stallError`): the range read is incomplete. */
export class StreamReadStalledError extends Error {
  override name = "StreamReadStalledError";
}

/**
 * Messages of one filter from the start time until caught up with the stream (or past `untilNs`). A consumer
 * lost under the read (server restart) or one that stalls is re-created after the last message read, so the
 * read goes on where it was: the client's own re-creation keeps the start time beside the start sequence, which
 * the server refuses, and the read stalled there (ending early with what it had).
 */
async function* storedMessages(
  js: JetStreamClient,
  opts: ReadRecordsOptions,
  filter: string | undefined,
  untilNs: bigint | null,
  server: string,
): AsyncGenerator<JsMsg> {
  let lastSeq = 0;
  let stalled = 0;
  /** When the stream read was created: another value later means another stream of the same name. */
  let created: string | null = null;
  while (true) {
    const co: Partial<OrderedConsumerOptions> = lastSeq > 0
      ? { opt_start_seq: lastSeq + 1 }
      : { opt_start_time: new Date(opts.startMs).toISOString() };
    if (filter !== undefined) co.filter_subjects = filter;
    let why: string;
    try {
      // A stream deleted, or lost with its server's store, and created again by the sensors numbers its messages
      // from 1: going on after the last sequence read found nothing there (or only what came after the loss) and
      // the read ended as if complete. What came after that sequence in the old stream is gone.
      const now = (await (await js.streams.get(opts.stream)).info(true)).created;
      if (created !== null && now !== created) {
        const detail = `stream ${opts.stream} was deleted and created again during the read of ` +
          `${filter ?? ">"} (a server restarted without its store?): the messages stored after sequence ` +
          `${lastSeq} of the old stream are gone`;
        if (opts.stallError) throw new StreamReadStalledError(`${detail}; the range read is incomplete`);
        log.warn("stream created again during the read; ending the read here", {
          filter: filter ?? ">",
          after_seq: lastSeq,
        });
        return;
      }
      created = now;
      const consumer = await js.consumers.get(opts.stream, co);
      const read = yield* consumedMessages(consumer, opts, filter, untilNs, (seq) => {
        lastSeq = seq;
        stalled = 0;
      });
      if (read === "done") return;
      why = read;
    } catch (e) {
      if (e instanceof StreamReadStalledError) throw e;
      // Gone mid-read: a server coming back without its store, until the sensors create the stream again.
      if (/stream not found/i.test((e as Error).message) && lastSeq === 0) {
        throw new StreamNotFoundError(opts.stream, server);
      }
      // The first consumer is the read's start: its failure is the command's error. Later, the server may be
      // coming back from a restart.
      if (lastSeq === 0) throw e;
      why = (e as Error).message;
    }
    if (++stalled >= STALLED_ATTEMPTS) {
      const detail =
        `the read of ${filter ?? ">"} stalled ${stalled} times in a row after sequence ${lastSeq} ` +
        `(last: ${why})`;
      if (opts.stallError) throw new StreamReadStalledError(`${detail}; the range read is incomplete`);
      log.warn("stream read stalled; ending the read here", {
        filter: filter ?? ">",
        after_seq: lastSeq,
        why,
      });
      return;
    }
    log.info("stream read interrupted; going on after the last message read", {
      filter: filter ?? ">",
      from_seq: lastSeq + 1,
      why,
    });
    await new Promise((r) => setTimeout(r, RECREATE_PAUSE_MS));
  }
}

/**
 * One consumer's messages until caught up ("done"), or until it is lost ("lost": the client reset it) or
 * delivers nothing for the idle timeout although messages were pending ("stalled").
 */
async function* consumedMessages(
  consumer: Consumer,
  opts: ReadRecordsOptions,
  filter: string | undefined,
  untilNs: bigint | null,
  onRead: (seq: number) => void,
): AsyncGenerator<JsMsg, "done" | "lost" | "stalled"> {
  const info = await consumer.info(true);
  if (info.num_pending === 0) {
    await consumer.delete().catch(() => {});
    return "done";
  }
  const messages = await consumer.consume({ max_messages: 512, idle_heartbeat: IDLE_HEARTBEAT_MS });
  // The client re-creates a lost ordered consumer from its first config plus a start sequence, which the
  // server refuses (see ordered_subscription.ts): end this iterator instead; the caller re-creates it.
  (async () => {
    for await (const s of messages.status()) {
      if (s.type === "reset" || s.type === "stream_not_found") {
        messages.stop();
        return;
      }
    }
  })().catch(() => {});
  const it = messages[Symbol.asyncIterator]();
  const idleMs = opts.idleTimeoutMs ?? 10_000;
  try {
    while (true) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const idle = new Promise<"idle">((r) => timer = setTimeout(() => r("idle"), idleMs));
      const next = await Promise.race([it.next(), idle]);
      clearTimeout(timer);
      if (next === "idle") {
        log.warn("stream read stalled", { filter: filter ?? ">", idle_ms: idleMs });
        return "stalled";
      }
      if (next.done) return "lost";
      const m = next.value;
      if (untilNs !== null && m.timestampNanos > untilNs) return "done";
      onRead(m.seq);
      yield m;
      // pending: messages left after this one when it was delivered; 0 means caught up.
      if (m.info.pending === 0) return "done";
    }
  } finally {
    // Not close(): it waits for the iterator to consume its end marker, and nobody iterates any more.
    messages.stop();
    await it.return?.(undefined);
    await consumer.delete().catch(() => {});
  }
}

/** Merges sequence-ordered message sources into one sequence-ordered source. */
export async function* mergeBySeq<T extends { seq: number }>(
  sources: AsyncGenerator<T>[],
): AsyncGenerator<T> {
  const heads: (IteratorResult<T> | null)[] = await Promise.all(sources.map((s) => s.next()));
  try {
    while (true) {
      let best = -1;
      for (let i = 0; i < heads.length; i++) {
        const h = heads[i];
        if (h && !h.done && (best < 0 || h.value.seq < (heads[best] as IteratorYieldResult<T>).value.seq)) {
          best = i;
        }
      }
      if (best < 0) return;
      yield (heads[best] as IteratorYieldResult<T>).value;
      heads[best] = await sources[best]!.next();
    }
  } finally {
    await Promise.all(sources.map((s) => s.return(undefined)));
  }
}
