/**
 * A live, self-healing read of one filter subject: an ordered (ephemeral, unacknowledged, in-order) consumer
 * from a start time, kept alive across server restarts. When the consumer is lost (a restart drops ephemeral
 * consumers) or its iterator ends, this loop makes a new one from the sequence after the last message handled,
 * so nothing is skipped or repeated; the client's own re-creation is not used (see `#watch`). A stream deleted and
 * created again (sequences start over at 1) is read from its first message.
 * @module
 */
import {
  DeliverPolicy,
  type JetStreamClient,
  type JsMsg,
  type OrderedConsumerOptions,
} from "@nats-io/jetstream";
import type { ConsumerMessages } from "@nats-io/jetstream";
import { ReconnectBackoff } from "./connection.ts";
import { logger } from "../util/log.ts";

const log = logger("bus");

/**
 * Idle heartbeat of the pull requests. The client's default (half of a 30 s expiry) lets a consumer stall for
 * ~45 s after a server restart before it notices; 1 s makes it notice in ~2 s at one tiny status message a
 * second per node.
 */
export const IDLE_HEARTBEAT_MS = 1000;

/** How far before its creation a "from now on" subscription restarts when it must be re-created. */
const RESTART_MARGIN_MS = 5000;

/** Options of an ordered subscription. */
export interface OrderedSubscriptionOptions {
  js: JetStreamClient;
  stream: string;
  /** One filter subject (server 2.9 accepts exactly one). */
  filter: string;
  /** Wall-clock ms of the first message wanted (stream time); absent: only messages published from now on. */
  startTimeMs?: number;
  /** Handles one message; awaited, so a slow handler back-pressures the read. Must not throw. */
  onMessage: (m: JsMsg) => Promise<void>;
  /** Messages fetched per pull. */
  batch?: number;
}

/** A running ordered subscription. */
export class OrderedSubscription {
  readonly #opts: OrderedSubscriptionOptions;
  #stopped = false;
  #messages: ConsumerMessages | null = null;
  #lastSeq = 0;
  /** When the stream read was created (server time, as it reports it): another value means a new stream. */
  #streamCreated: string | null = null;
  /** The stream's consumer limit as last read (-1 or 0: none). */
  #maxConsumers = -1;
  /** The stream was re-created before a message of it was handled: read it from its first message. */
  #fromStreamStart = false;
  #createdAtMs: number | null = null;
  /** A message is in the handler. */
  #handling = false;
  /** Stream sequence of the last message whose handler has returned (0: none yet). */
  #handledSeq = 0;
  /** Waits of {@link handled}, each resolved once. */
  readonly #waiters = new Set<{ seq: number; done: (ok: boolean) => void }>();
  #loop: Promise<void> = Promise.resolve();
  #wake: (() => void) | null = null;
  #ready: Promise<void>;
  #readyResolve!: (v: void) => void;
  #readyReject!: (e: Error) => void;

  private constructor(opts: OrderedSubscriptionOptions) {
    this.#opts = opts;
    this.#ready = new Promise((res, rej) => {
      this.#readyResolve = res;
      this.#readyReject = rej;
    });
  }

  /** Starts the subscription; resolves once the first consumer exists (rejects if it cannot be created). */
  static async start(opts: OrderedSubscriptionOptions): Promise<OrderedSubscription> {
    const s = new OrderedSubscription(opts);
    s.#loop = s.#run();
    try {
      await s.#ready;
    } catch (e) {
      await s.stop();
      throw e;
    }
    return s;
  }

  /** Stream sequence of the last message handled (0: none yet). */
  get lastSeq(): number {
    return this.#lastSeq;
  }

  /**
   * Resolves true once the handler has returned for the message at stream sequence `seq`, or for a later one (the
   * filter's messages come in order); false when `timeoutMs` passes first or the subscription stops. `seq` must be
   * the sequence of a message the filter reads, or earlier than one to come.
   */
  handled(seq: number, timeoutMs: number): Promise<boolean> {
    if (this.#handledSeq >= seq) return Promise.resolve(true);
    if (this.#stopped) return Promise.resolve(false);
    return new Promise((resolve) => {
      const w = {
        seq,
        done: (ok: boolean) => {
          clearTimeout(timer);
          this.#waiters.delete(w);
          resolve(ok);
        },
      };
      const timer = setTimeout(() => w.done(false), timeoutMs);
      this.#waiters.add(w);
    });
  }

  #consumerOptions(): Partial<OrderedConsumerOptions> {
    const o: Partial<OrderedConsumerOptions> = { filter_subjects: this.#opts.filter };
    if (this.#lastSeq > 0) o.opt_start_seq = this.#lastSeq + 1;
    else if (this.#fromStreamStart) o.deliver_policy = DeliverPolicy.All;
    else if (this.#opts.startTimeMs !== undefined) {
      o.opt_start_time = new Date(this.#opts.startTimeMs).toISOString();
    } else if (this.#createdAtMs !== null) {
      // "From now on", re-created before any message: from when we subscribed (a little earlier, for clock
      // differences with the server; a repeat is harmless, a gap is not).
      o.opt_start_time = new Date(this.#createdAtMs - RESTART_MARGIN_MS).toISOString();
    } else {
      o.deliver_policy = DeliverPolicy.New;
      this.#createdAtMs = Date.now();
    }
    return o;
  }

  async #run(): Promise<void> {
    const backoff = new ReconnectBackoff(250, 5000);
    let first = true;
    while (!this.#stopped) {
      try {
        await this.#checkStream();
        const consumer = await this.#opts.js.consumers.get(this.#opts.stream, this.#consumerOptions());
        const messages = await consumer.consume({
          max_messages: this.#opts.batch ?? 256,
          idle_heartbeat: IDLE_HEARTBEAT_MS,
        });
        this.#messages = messages;
        if (first) {
          first = false;
          this.#readyResolve();
        }
        // Stopped meanwhile: stop() pushes an end marker that the loop below consumes (close() would wait for it).
        if (this.#stopped) messages.stop();
        void this.#watch(messages);
        for await (const m of messages) {
          this.#lastSeq = m.seq;
          this.#handling = true;
          try {
            await this.#opts.onMessage(m);
          } finally {
            this.#handling = false;
          }
          this.#handledSeq = m.seq;
          for (const w of this.#waiters) if (w.seq <= m.seq) w.done(true);
          backoff.reset();
          if (this.#stopped) break;
        }
        await messages.close().catch(() => {});
        // Ended by this loop (a stalled handler, a reset): nothing reads this consumer any more. Not awaited (a
        // server that is down would hold the loop for the request's timeout); it expires on its own anyway.
        if (!this.#stopped) {
          void consumer.delete().catch(() => {});
          log.debug("consumer iterator ended; re-creating it", { filter: this.#opts.filter });
        }
      } catch (e) {
        const err = this.#explain(e as Error);
        if (first) {
          this.#readyReject(err);
          return;
        }
        if (!this.#stopped) {
          log.warn("signature consumer failed; retrying", {
            filter: this.#opts.filter,
            error: err.message,
          });
        }
      }
      this.#messages = null;
      if (!this.#stopped) await this.#sleep(backoff.next());
    }
  }

  /**
   * Notes when the stream was created. A stream deleted and created again while this subscription lives numbers
   * its messages from 1 again: resuming after the last sequence handled would skip as many of its messages as
   * the old stream had (silently: nothing is received until the new stream grows past that sequence). Every
   * message of the new stream is newer than the deletion, so it is read from its first one.
   */
  async #checkStream(): Promise<void> {
    const { created, config } = await (await this.#opts.js.streams.get(this.#opts.stream)).info(true);
    if (this.#streamCreated !== null && created !== this.#streamCreated && this.#lastSeq > 0) {
      log.warn("the stream was deleted and created again; reading the new one from its first message", {
        stream: this.#opts.stream,
        filter: this.#opts.filter,
        last_seq_of_old: this.#lastSeq,
      });
      this.#lastSeq = 0;
      this.#handledSeq = 0;
      this.#fromStreamStart = true;
    }
    this.#streamCreated = created;
    this.#maxConsumers = config.max_consumers ?? -1;
  }

  /**
   * The server's "maximum consumers limit reached" with what it means here: the stream was made (by hand, by
   * another tool) with a consumer limit, which the server cannot raise on a live stream, and every reader of it
   * (each sensor, the UI, each `replay`) holds consumers of its own.
   */
  #explain(e: Error): Error {
    if (!/maximum consumers limit reached/i.test(e.message)) return e;
    const limit = this.#maxConsumers > 0 ? ` to ${this.#maxConsumers}` : "";
    return new Error(
      `${e.message}: stream ${this.#opts.stream} limits its consumers${limit} (max_consumers, which the server ` +
        `cannot change on a live stream) and every sensor, UI and replay reading it holds its own; delete the ` +
        `stream (the sensors create it again without a limit) or set nats.stream to another name`,
    );
  }

  async #watch(messages: ConsumerMessages): Promise<void> {
    try {
      for await (const s of messages.status()) {
        if (s.type === "heartbeats_missed") {
          if (this.#handling || messages.getPending() > 0) {
            // Not the server's silence: the batch asked for has come and waits behind a slow handler, so no
            // pull is open for the server to beat on. The client's answer is one more batch, queued behind
            // the handler, every two seconds of it; they all go out when it moves on, and as many batches
            // come back at once to be held in memory (up to 256 messages per two seconds stalled). End this
            // iterator instead: what it holds is handled, then the loop reads on after the last one.
            log.debug("consumer heartbeats missed behind a slow handler; re-creating it after it", {
              filter: this.#opts.filter,
              from_seq: this.#lastSeq + 1,
            });
            messages.stop();
            return;
          }
          log.debug("consumer heartbeats missed", { filter: this.#opts.filter });
        } else if (s.type === "reset") {
          // The v3.4 client re-creates a lost ordered consumer from its original config plus a start sequence.
          // With an opt_start_time in that config the server refuses every attempt ("deliver by start
          // sequence, but optional start time is also set") and the read stalls for good; before the first
          // message the start sequence is 1, which would replay the whole stream. End this iterator instead:
          // the loop re-creates the consumer from the sequence after the last message handled, or with the
          // original start when there was none.
          log.info("consumer lost (server restart?); re-creating it", {
            filter: this.#opts.filter,
            from_seq: this.#lastSeq + 1,
          });
          messages.stop();
          return;
        } else if (s.type === "stream_not_found") {
          // The stream was deleted: the client would look for it again only every 30 s. The loop looks sooner
          // (with its backoff) and, once a new stream exists, reads that from its start (see #checkStream).
          log.warn("the stream is gone; waiting for it to be created again", {
            stream: this.#opts.stream,
            filter: this.#opts.filter,
          });
          messages.stop();
          return;
        } else if (s.type === "ordered_consumer_recreated") {
          log.info("consumer re-created after a gap", {
            filter: this.#opts.filter,
            from_seq: this.#lastSeq + 1,
          });
        }
      }
    } catch {
      // the status iterator ends with the messages iterator
    }
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.#wake = null;
        resolve();
      }, ms);
      this.#wake = () => {
        clearTimeout(t);
        this.#wake = null;
        resolve();
      };
    });
  }

  /** Stops reading: the iterator is stopped before anyone closes the connection (else the process hangs). */
  async stop(): Promise<void> {
    this.#stopped = true;
    for (const w of this.#waiters) w.done(false);
    this.#wake?.();
    await this.#messages?.close().catch(() => {});
    await this.#loop;
  }
}
