/**
 * The local outbox between the node and JetStream. Publishing only enqueues (the detector is never held up by an
 * unreachable server); a pump publishes with a bounded number of acks in flight, puts back what failed for a
 * transient reason (same message id, so the stream drops a copy that did land) and retries with a growing delay.
 * The queue is bounded: past `capacity` the oldest message is dropped and counted, never silently.
 * @module
 */
import type { MessageKind } from "./subjects.ts";
import { logger } from "../util/log.ts";

const log = logger("bus");

/** One message waiting to be published. */
export interface OutboxItem {
  kind: MessageKind;
  subject: string;
  data: Uint8Array;
  /** JetStream message id (`Nats-Msg-Id`): the same on every attempt. */
  msgId: string;
}

/** What one publish attempt came to. */
export type PublishOutcome =
  | { ok: true; duplicate: boolean }
  /** retry: transient (no connection, timeout, JetStream not ready); otherwise the message is dropped. */
  | { ok: false; retry: boolean; reason: string; detail?: string };

/** Performs one publish attempt; must not throw (a throw is treated as a transient failure). */
export type PublishFn = (item: OutboxItem) => Promise<PublishOutcome>;

/**
 * Bus counters, mapped by the caller to Prometheus (`fsmpx_bus_outbox_depth`, `fsmpx_bus_outbox_overflow_total`,
 * `fsmpx_bus_published_total`, ...). Every hook is called on the event, with the increment where it counts.
 */
export interface BusMetrics {
  /** Messages waiting or in flight (gauge). */
  outboxDepth(n: number): void;
  /** `n` messages were just dropped because the outbox was full (counter increment). */
  outboxOverflow(n: number): void;
  /** One message was stored by the stream. */
  published(kind: MessageKind): void;
  /** One message was refused for good (`reason` is a short, bounded label) or could not be encoded. */
  publishFailed(kind: MessageKind, reason: string): void;
  /** One message was a duplicate the stream dropped (optional). */
  duplicate?(kind: MessageKind): void;
  /** A received message could not be decoded and was skipped (optional). */
  receiveFailed?(kind: MessageKind, reason: string): void;
}

/** Outbox counters (also what the metrics hooks saw). */
export interface OutboxStats {
  published: number;
  duplicates: number;
  failed: number;
  overflow: number;
  retries: number;
  depth: number;
}

/** Options of an outbox. */
export interface OutboxOptions {
  /** Most messages held (queued plus in flight). */
  capacity: number;
  publish: PublishFn;
  /** Acks awaited at once; 1 would cap throughput at one round trip per message. Default 256. */
  maxInFlight?: number;
  metrics?: BusMetrics;
  /** Retry delay: `baseMs` doubling up to `maxMs`, with jitter. */
  retryBaseMs?: number;
  retryMaxMs?: number;
}

/** Logs the first occurrence of a kind of trouble and then every 1000th, with the running count. */
class Throttled {
  #counts = new Map<string, number>();
  warn(key: string, msg: string, fields: Record<string, unknown>): void {
    const n = (this.#counts.get(key) ?? 0) + 1;
    this.#counts.set(key, n);
    if (n === 1 || n % 1000 === 0) log.warn(msg, { ...fields, count: n });
  }
}

/** A FIFO with O(1) push and shift (array with a moving head, compacted now and then). */
class Deque<T> {
  #items: (T | undefined)[] = [];
  #head = 0;
  get length(): number {
    return this.#items.length - this.#head;
  }
  push(v: T): void {
    this.#items.push(v);
  }
  shift(): T | undefined {
    if (this.length === 0) return undefined;
    const v = this.#items[this.#head];
    this.#items[this.#head++] = undefined;
    if (this.#head > 1024 && this.#head * 2 > this.#items.length) {
      this.#items = this.#items.slice(this.#head);
      this.#head = 0;
    }
    return v;
  }
}

/** A queued message and its place in the order of enqueueing. */
interface Entry {
  item: OutboxItem;
  order: number;
}

/** The bounded outbox with its publishing pump. */
export class Outbox {
  readonly #opts: Required<Omit<OutboxOptions, "metrics">> & { metrics?: BusMetrics };
  readonly #queue = new Deque<Entry>();
  /**
   * Messages whose publish failed for a transient reason, by order of enqueueing: sent again before the queue.
   * Several are in flight at once and fail in the order their failures come back (e.g. all at once on a
   * disconnect): put back one by one at the queue's head, they went out again in reverse order.
   */
  readonly #retry: Entry[] = [];
  #nextOrder = 0;
  #inFlight = 0;
  #paused = false;
  #closed = false;
  #retryTimer: ReturnType<typeof setTimeout> | null = null;
  #retryAttempt = 0;
  #waiters: (() => void)[] = [];
  readonly #throttle = new Throttled();
  readonly #stats: OutboxStats = {
    published: 0,
    duplicates: 0,
    failed: 0,
    overflow: 0,
    retries: 0,
    depth: 0,
  };

  constructor(opts: OutboxOptions) {
    if (!(opts.capacity >= 1)) throw new RangeError("outbox capacity must be at least 1");
    this.#opts = {
      ...opts,
      maxInFlight: opts.maxInFlight ?? 256,
      retryBaseMs: opts.retryBaseMs ?? 100,
      retryMaxMs: opts.retryMaxMs ?? 5000,
    };
  }

  /** Messages queued or in flight. */
  get depth(): number {
    return this.#queue.length + this.#retry.length + this.#inFlight;
  }

  /** A copy of the counters. */
  stats(): OutboxStats {
    return { ...this.#stats, depth: this.depth };
  }

  /** Queues a message; when full, the oldest queued message is dropped (counted) to make room. */
  enqueue(item: OutboxItem): void {
    if (this.#closed) {
      this.refuse(item.kind, "closed", "bus closed; message dropped");
      return;
    }
    if (this.depth >= this.#opts.capacity) {
      // Oldest first: a stale signature is worth less than a fresh one (it may already be past its TTL).
      const dropped = this.#retry.shift()?.item ?? this.#queue.shift()?.item ?? item;
      this.#stats.overflow++;
      this.#opts.metrics?.outboxOverflow(1);
      this.#throttle.warn("overflow", "outbox full: oldest message dropped", {
        capacity: this.#opts.capacity,
        kind: dropped.kind,
      });
      if (dropped === item) return;
    }
    this.#queue.push({ item, order: this.#nextOrder++ });
    this.#depthChanged();
    this.#pump();
  }

  /** Holds publishing (the connection is down): messages accumulate, bounded. */
  pause(): void {
    this.#paused = true;
  }

  /** Publishes again, immediately. */
  resume(): void {
    this.#paused = false;
    this.#retryAttempt = 0;
    if (this.#retryTimer !== null) {
      clearTimeout(this.#retryTimer);
      this.#retryTimer = null;
    }
    this.#pump();
  }

  /** Resolves true once nothing is queued or in flight, false if the deadline passes first. */
  drained(deadlineMs: number): Promise<boolean> {
    if (this.depth === 0 || this.#closed) return Promise.resolve(this.depth === 0);
    return new Promise((resolve) => {
      let timer: ReturnType<typeof setTimeout> | null = null;
      const done = () => {
        if (timer !== null) clearTimeout(timer);
        resolve(this.depth === 0);
      };
      this.#waiters.push(done);
      timer = setTimeout(() => {
        this.#waiters = this.#waiters.filter((w) => w !== done);
        resolve(false);
      }, Math.max(0, deadlineMs));
    });
  }

  /** Stops publishing; queued messages are abandoned, each counted as failed ("closed"). Returns how many. */
  close(): number {
    this.#closed = true;
    if (this.#retryTimer !== null) clearTimeout(this.#retryTimer);
    this.#retryTimer = null;
    const left = this.#queue.length + this.#retry.length;
    for (const e of this.#retry.splice(0)) {
      this.refuse(e.item.kind, "closed", "bus closed before the message was published");
    }
    for (let e = this.#queue.shift(); e !== undefined; e = this.#queue.shift()) {
      this.refuse(e.item.kind, "closed", "bus closed before the message was published");
    }
    this.#depthChanged();
    this.#wake();
    return left;
  }

  #pump(): void {
    while (
      !this.#paused && !this.#closed && this.#retryTimer === null &&
      this.#inFlight < this.#opts.maxInFlight &&
      (this.#retry.length > 0 || this.#queue.length > 0)
    ) {
      this.#send(this.#retry.shift() ?? this.#queue.shift()!);
    }
  }

  /** Puts a failed message back among the other failed ones, in the order they were enqueued. */
  #putBack(e: Entry): void {
    let i = this.#retry.length;
    while (i > 0 && this.#retry[i - 1]!.order > e.order) i--;
    this.#retry.splice(i, 0, e);
  }

  #send(entry: Entry): void {
    const item = entry.item;
    this.#inFlight++;
    this.#opts.publish(item)
      .catch((e): PublishOutcome => ({
        ok: false,
        retry: true,
        reason: "error",
        detail: (e as Error).message,
      }))
      .then((r) => {
        this.#inFlight--;
        if (r.ok) {
          this.#retryAttempt = 0;
          if (r.duplicate) {
            this.#stats.duplicates++;
            this.#opts.metrics?.duplicate?.(item.kind);
          } else {
            this.#stats.published++;
            this.#opts.metrics?.published(item.kind);
          }
        } else if (r.retry && !this.#closed) {
          this.#stats.retries++;
          this.#putBack(entry);
          this.#scheduleRetry(r.reason, r.detail);
        } else {
          this.refuse(item.kind, r.reason, "publish refused; message dropped", r.detail);
        }
        this.#depthChanged();
        if (this.depth === 0) this.#wake();
        this.#pump();
      });
  }

  #scheduleRetry(reason: string, detail?: string): void {
    if (this.#retryTimer !== null) return;
    const base = Math.min(
      this.#opts.retryMaxMs,
      this.#opts.retryBaseMs * 2 ** Math.min(this.#retryAttempt, 20),
    );
    this.#retryAttempt++;
    const delay = base + Math.random() * base * 0.5;
    this.#throttle.warn(`retry:${reason}`, "publish failed; will retry with the same message id", {
      reason,
      detail,
      retry_in_ms: Math.round(delay),
      depth: this.depth,
    });
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = null;
      this.#pump();
    }, delay);
  }

  /** Counts (and logs, throttled) a message that will never be published: refused, unencodable, abandoned. */
  refuse(kind: MessageKind, reason: string, msg: string, detail?: string): void {
    this.#stats.failed++;
    this.#opts.metrics?.publishFailed(kind, reason);
    this.#throttle.warn(`fail:${reason}`, msg, { kind, reason, detail });
  }

  #depthChanged(): void {
    this.#opts.metrics?.outboxDepth(this.depth);
  }

  #wake(): void {
    const w = this.#waiters;
    this.#waiters = [];
    for (const f of w) f();
  }
}
