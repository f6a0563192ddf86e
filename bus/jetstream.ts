/**
 * The bus across nodes: NATS JetStream. Signatures (binary codec) go to `fsmpx.sig.<measurement>` with the
 * signature id as message id; match records (the JSON record contract) go to `fsmpx.match.<measurement>.<stage>`
 * with {@link matchDedupeId}. Publishing enqueues in a bounded outbox and returns at once; every node reads all
 * signatures with an ordered consumer from a start time, so a restarted sensor recovers the live ones.
 * @module
 */
import type { NatsConnection } from "@nats-io/transport-node";
import { jetstream, type JetStreamClient, jetstreamManager, type JsMsg } from "@nats-io/jetstream";
import type { Signature } from "../audio/types.ts";
import { decodeSignature, encodeSignature } from "../audio/fingerprint/signature.ts";
import type { Bus, Handler, SubscribeOptions, Subscription } from "./bus.ts";
import { connectNats, type NatsConnectOptions, safeServers } from "./connection.ts";
import { OrderedSubscription } from "./ordered_subscription.ts";
import { type BusMetrics, Outbox, type OutboxItem, type OutboxStats, type PublishOutcome } from "./outbox.ts";
import { checkServerVersion, DEFAULT_MAX_MSG_SIZE, ensureStream, type StreamSpec } from "./stream_setup.ts";
import {
  matchDedupeId,
  matchSubject,
  type MessageKind,
  parseSubject,
  SIG_PREFIX,
  signatureSubject,
  SubjectError,
} from "./subjects.ts";
import type { MatchRecord } from "../report/records.ts";
import { logger, redact } from "../util/log.ts";

export type { BusMetrics } from "./outbox.ts";

const log = logger("bus");

/** Options of {@link JetStreamBus.connect} (mirrors the `nats` config keys, durations in ms). */
export interface JetStreamBusOptions extends Omit<NatsConnectOptions, "name"> {
  /** Stream name (`nats.stream`). */
  stream: string;
  replicas: number;
  retentionMs: number;
  maxBytes: number;
  duplicateWindowMs: number;
  /** Messages held while the server is unreachable (`nats.outbox_size`). */
  outboxSize: number;
  /** This node's name (client name; also what peers see). */
  node: string;
  metrics?: BusMetrics;
  /** Largest message the stream accepts. Default 64 KiB. */
  maxMsgSize?: number;
  /** How long one publish waits for its ack before it is retried. Default 5 s. */
  publishTimeoutMs?: number;
  /** Acks awaited at once by the outbox. Default 256. */
  maxInFlight?: number;
}

/** Counters of one bus. */
export interface JetStreamBusStats extends OutboxStats {
  /** Messages received that could not be decoded (skipped). */
  decodeErrors: number;
  /** Messages a handler threw on (skipped). */
  handlerErrors: number;
  /** Signatures delivered to handlers. */
  delivered: number;
}

/** The consumer start that makes a (re)started node see every live signature: now − the longest TTL. */
export function signatureStartTimeMs(ttlSeconds: number, nowMs: number = Date.now()): number {
  // Stream time is the server's arrival time (wall clock); signatures older than the TTL in wall time are at
  // least as old in event time while the sensors keep up, and the registry expires by event time anyway.
  return nowMs - ttlSeconds * 1000;
}

const UTF8 = new TextEncoder();

/**
 * The `Nats-Msg-Id` header value of a message id. A header value cannot hold CR or LF (the client refuses the
 * publish) and the client trims whitespace from both ends; a match's id holds its target stream key, which may
 * come from any JSON field of the payload: a key with a line break was refused for good (the match never reached
 * the stream), and two keys differing only in trailing spaces had one id, so the second match was dropped as a
 * duplicate. Such an id is sent with those characters (and `%`) %-encoded behind a `~`, which no plain id starts
 * with (they start with a hex signature id); every other id is sent as it is, as before.
 */
export function wireMsgId(id: string): string {
  const lead = id.length - id.trimStart().length;
  const tail = id.length - id.trimEnd().length;
  if (lead === 0 && tail === 0 && !/[\r\n]/.test(id)) return id;
  let out = "~", i = 0;
  for (const c of id) {
    const edge = i < lead || i >= id.length - tail;
    out += edge || c === "%" || c === "\r" || c === "\n"
      ? [...UTF8.encode(c)].map((b) => `%${b.toString(16).toUpperCase().padStart(2, "0")}`).join("")
      : c;
    i += c.length;
  }
  return out;
}

function classify(e: unknown): PublishOutcome {
  const err = e as Error & { code?: number; status?: number };
  const detail = err.message;
  // The server refuses the subject to this user (a RequestError caused by it): no retry can succeed, and
  // retried ones go first on every attempt, so a batch of them held back every message behind it for good.
  if ((err.cause as Error | undefined)?.name === "PermissionViolationError") {
    return { ok: false, retry: false, reason: "rejected", detail };
  }
  switch (err.name) {
    case "TimeoutError":
      return { ok: false, retry: true, reason: "timeout", detail };
    case "JetStreamNotEnabled":
    case "NoResponders":
      // No stream listens (JetStream still starting after a restart, or the stream was removed).
      return { ok: false, retry: true, reason: "no_stream", detail };
    case "ConnectionError":
    case "ClosedConnectionError":
    case "DrainingConnectionError":
    case "RequestError":
      return { ok: false, retry: true, reason: "disconnected", detail };
    case "InvalidArgumentError":
      if (/max_payload/.test(detail)) return { ok: false, retry: false, reason: "too_large", detail };
      return { ok: false, retry: false, reason: "rejected", detail };
    case "JetStreamApiError":
    case "StreamNotFoundError":
      if (err.status === 503) return { ok: false, retry: true, reason: "unavailable", detail };
      if (/size exceeds|maximum.*(size|payload)/i.test(detail)) {
        return { ok: false, retry: false, reason: "too_large", detail };
      }
      return { ok: false, retry: false, reason: "rejected", detail };
    default:
      return { ok: false, retry: false, reason: "rejected", detail };
  }
}

/** The JetStream bus of one node. */
export class JetStreamBus implements Bus {
  /** The connection (the clock-skew estimator shares it). */
  readonly connection: NatsConnection;
  /** Server version reported at connect time. */
  readonly serverVersion: string;
  readonly #js: JetStreamClient;
  readonly #opts: JetStreamBusOptions;
  readonly #spec: StreamSpec;
  readonly #outbox: Outbox;
  /** Each signature subscription, with which signature subjects it reads. */
  readonly #subs = new Map<OrderedSubscription, (subject: string) => boolean>();
  /** The stream sequence of the newest signature acknowledged, by subject (see {@link delivered}). */
  readonly #sigSeqs = new Map<string, number>();
  /** The stream sequence of the last message acknowledged as new (not a duplicate), any subject. */
  #lastSeq = 0;
  #closed = false;
  /** Why the connection ended for good while the bus was open (see {@link lost}). */
  #lost: string | undefined;
  #decodeErrors = 0;
  #handlerErrors = 0;
  #delivered = 0;
  #lastEnsure = 0;
  #statusLoop: Promise<void> = Promise.resolve();

  private constructor(nc: NatsConnection, js: JetStreamClient, opts: JetStreamBusOptions, spec: StreamSpec) {
    this.connection = nc;
    this.serverVersion = nc.info?.version ?? "";
    this.#js = js;
    this.#opts = opts;
    this.#spec = spec;
    const timeout = opts.publishTimeoutMs ?? 5000;
    this.#outbox = new Outbox({
      capacity: opts.outboxSize,
      maxInFlight: opts.maxInFlight,
      metrics: opts.metrics,
      publish: (item) => this.#publishOnce(item, timeout),
    });
  }

  /**
   * Connects, checks the server version, creates or updates the stream, and starts the outbox. Fails with a
   * clear message when the server is unreachable, too old, lacks JetStream or refuses the credentials.
   */
  static async connect(opts: JetStreamBusOptions): Promise<JetStreamBus> {
    const nc = await connectNats({ ...opts, name: `fsmpx-${opts.node}` });
    try {
      checkServerVersion(nc.info?.version);
      let jsm;
      try {
        jsm = await jetstreamManager(nc);
      } catch (e) {
        throw new Error(
          `JetStream is not available on ${safeServers(opts.url).join(",")} (start the server with -js): ${
            (e as Error).message
          }`,
        );
      }
      const spec: StreamSpec = {
        name: opts.stream,
        replicas: opts.replicas,
        retentionMs: opts.retentionMs,
        maxBytes: opts.maxBytes,
        duplicateWindowMs: opts.duplicateWindowMs,
        maxMsgSize: opts.maxMsgSize ?? DEFAULT_MAX_MSG_SIZE,
      };
      await ensureStream(jsm, spec);
      const bus = new JetStreamBus(nc, jetstream(nc, { timeout: opts.publishTimeoutMs ?? 5000 }), opts, spec);
      bus.#statusLoop = bus.#watchConnection();
      void nc.closed().then((err) => bus.#connectionEnded(err));
      log.info("connected to NATS JetStream", {
        servers: safeServers(opts.url),
        server_version: bus.serverVersion,
        stream: opts.stream,
      });
      return bus;
    } catch (e) {
      await nc.close().catch(() => {});
      throw e;
    }
  }

  /**
   * The client closed the connection for good (it reconnects forever otherwise, so something it cannot recover
   * from): said loudly once, and kept for {@link lost}, so the sensor's liveness fails and Kubernetes restarts it,
   * instead of a sensor that runs on without publishing or receiving anything.
   */
  #connectionEnded(err: Error | void): void {
    if (this.#closed) return;
    this.#lost = redact(err instanceof Error ? err.message : "the NATS client closed the connection");
    this.#outbox.pause();
    log.error("NATS connection closed for good: nothing is published or received until the sensor restarts", {
      error: this.#lost,
    });
  }

  /** Why the connection ended for good while the bus was open, or undefined while it stands. */
  lost(): string | undefined {
    return this.#lost;
  }

  async #watchConnection(): Promise<void> {
    for await (const s of this.connection.status()) {
      if (s.type === "disconnect") {
        this.#outbox.pause();
        log.warn("NATS connection lost; publishing into the outbox until it is back", {
          depth: this.#outbox.depth,
        });
      } else if (s.type === "reconnect") {
        log.info("NATS connection back; publishing the outbox", { depth: this.#outbox.depth });
        void this.#reEnsureStream();
        this.#outbox.resume();
      }
    }
  }

  /** After a reconnect or a "no stream": the server may have come back without the stream (new store). */
  async #reEnsureStream(): Promise<void> {
    const now = Date.now();
    if (this.#closed || now - this.#lastEnsure < 5000) return;
    this.#lastEnsure = now;
    try {
      await ensureStream(await jetstreamManager(this.connection, { checkAPI: false }), this.#spec);
    } catch (e) {
      log.debug("stream check after reconnect failed; the outbox keeps retrying", {
        error: (e as Error).message,
      });
    }
  }

  async #publishOnce(item: OutboxItem, timeout: number): Promise<PublishOutcome> {
    try {
      const ack = await this.#js.publish(item.subject, item.data, { msgID: wireMsgId(item.msgId), timeout });
      if (!ack.duplicate) {
        // A stream's sequences only grow, and one connection's messages are stored and acknowledged in the order
        // sent: a smaller one is a new stream's (deleted and created again, a server back with an empty store),
        // whose subscriptions will never reach the old stream's sequences.
        if (ack.seq < this.#lastSeq) this.#sigSeqs.clear();
        this.#lastSeq = ack.seq;
      }
      if (item.kind === "signature" && ack.seq > (this.#sigSeqs.get(item.subject) ?? 0)) {
        this.#sigSeqs.set(item.subject, ack.seq);
      }
      return { ok: true, duplicate: ack.duplicate };
    } catch (e) {
      const r = classify(e);
      if (!r.ok && r.reason === "no_stream") void this.#reEnsureStream();
      return r;
    }
  }

  #reject(kind: MessageKind, reason: string, e: unknown): void {
    this.#outbox.refuse(kind, reason, `${kind} not published`, (e as Error).message);
  }

  /** Encodes and enqueues; returns at once (the outbox publishes). A bad signature is counted, never thrown. */
  publishSignature(sig: Signature, encoded?: Uint8Array): Promise<void> {
    let subject: string, data: Uint8Array;
    try {
      subject = signatureSubject(sig.measurement);
      data = encoded ?? encodeSignature(sig);
    } catch (e) {
      this.#reject("signature", e instanceof SubjectError ? "bad_subject" : "encode", e);
      return Promise.resolve();
    }
    this.#outbox.enqueue({ kind: "signature", subject, data, msgId: sig.id });
    return Promise.resolve();
  }

  /** Enqueues the match record (JSON); returns at once. */
  publishMatch(rec: MatchRecord): Promise<void> {
    let subject: string;
    try {
      subject = matchSubject(rec.measurement, rec.stage);
    } catch (e) {
      this.#reject("match", "bad_subject", e);
      return Promise.resolve();
    }
    // The target's level envelope (for the UI's Signature page) stays in local records: it would grow every
    // match message by ~60% (2.6 M of them a day at 30 matches/s), and no node needs another's.
    const { target_envelope_b64: _local, ...onWire } = rec;
    const data = new TextEncoder().encode(JSON.stringify(onWire));
    this.#outbox.enqueue({ kind: "match", subject, data, msgId: matchDedupeId(rec) });
    return Promise.resolve();
  }

  /**
   * Reads every signature of `measurements` (all when empty), this node's own included, from
   * `opts.startTimeMs` (see {@link signatureStartTimeMs}) or, without it, from now on. One measurement reads
   * its own subject; several read `fsmpx.sig.>` and filter here (server 2.9 takes one filter subject per
   * consumer, and a DaemonSet's nodes share one config, so the others are rarely wasted).
   */
  async subscribeSignatures(
    measurements: readonly string[],
    handler: Handler<Signature>,
    opts: SubscribeOptions = {},
  ): Promise<Subscription> {
    const wanted = new Set(measurements);
    const filter = wanted.size === 1 ? signatureSubject([...wanted][0]!) : `${SIG_PREFIX}.>`;
    const sub = await OrderedSubscription.start({
      js: this.#js,
      stream: this.#opts.stream,
      filter,
      startTimeMs: opts.startTimeMs,
      onMessage: (m) => this.#deliver(m, wanted, handler),
    });
    this.#subs.set(sub, (subject) => {
      const p = parseSubject(subject);
      return p?.kind === "signature" && (wanted.size === 0 || wanted.has(p.measurement));
    });
    return {
      unsubscribe: async () => {
        this.#subs.delete(sub);
        await sub.stop();
      },
    };
  }

  async #deliver(m: JsMsg, wanted: Set<string>, handler: Handler<Signature>): Promise<void> {
    const parsed = parseSubject(m.subject);
    if (parsed?.kind !== "signature") {
      // `fsmpx.sig.>` (several measurements) also holds subjects of another shape (`fsmpx.sig.m.extra`).
      this.#decodeErrors++;
      this.#opts.metrics?.receiveFailed?.("signature", "subject");
      if (this.#decodeErrors === 1 || this.#decodeErrors % 1000 === 0) {
        log.warn("message on a signature subject of another shape skipped", {
          subject: m.subject,
          seq: m.seq,
          count: this.#decodeErrors,
        });
      }
      return;
    }
    if (wanted.size > 0 && !wanted.has(parsed.measurement)) return;
    let sig: Signature;
    try {
      sig = decodeSignature(m.data);
    } catch (e) {
      this.#decodeErrors++;
      this.#opts.metrics?.receiveFailed?.("signature", "decode");
      if (this.#decodeErrors === 1 || this.#decodeErrors % 1000 === 0) {
        log.warn("undecodable signature skipped", {
          subject: m.subject,
          seq: m.seq,
          error: (e as Error).message,
          count: this.#decodeErrors,
        });
      }
      return;
    }
    try {
      this.#delivered++;
      await handler(sig);
    } catch (e) {
      this.#handlerErrors++;
      log.warn("subscriber failed on a signature; skipped", { id: sig.id, error: (e as Error).message });
    }
  }

  /** Waits until the outbox is empty (everything acknowledged) or the deadline passes (then logs what is left). */
  async flush(deadlineMs: number): Promise<void> {
    const ok = await this.#outbox.drained(deadlineMs);
    if (!ok) log.warn("bus flush deadline passed with messages unpublished", { depth: this.#outbox.depth });
  }

  /**
   * Waits until every subscription has handed on each signature this bus has had acknowledged so far (of the
   * measurements it reads): a node's own signatures come back through the server, and a finish
   * (actors/node.ts finishNodes) lets its matcher verify its last signatures only once they are in its registry.
   */
  async delivered(deadlineMs: number): Promise<boolean> {
    const waits: Promise<boolean>[] = [];
    for (const [sub, reads] of this.#subs) {
      let seq = 0;
      for (const [subject, s] of this.#sigSeqs) if (s > seq && reads(subject)) seq = s;
      if (seq > 0) waits.push(sub.handled(seq, deadlineMs));
    }
    const ok = (await Promise.all(waits)).every(Boolean);
    if (!ok) log.warn("signatures published were not all received back within the deadline", { deadlineMs });
    return ok;
  }

  /** Counters. */
  stats(): JetStreamBusStats {
    return {
      ...this.#outbox.stats(),
      decodeErrors: this.#decodeErrors,
      handlerErrors: this.#handlerErrors,
      delivered: this.#delivered,
    };
  }

  /** Stops the consumers first (a closed connection under a live iterator keeps the process alive), then the
   * outbox (what is left is counted and logged; call {@link flush} before), then the connection. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.all([...this.#subs.keys()].map((s) => s.stop()));
    this.#subs.clear();
    const left = this.#outbox.close();
    if (left > 0) log.warn("bus closed with unpublished messages", { dropped: left });
    await this.connection.close().catch(() => {});
    await this.#statusLoop.catch(() => {});
  }
}
