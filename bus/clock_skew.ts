/**
 * Clock skew between nodes. A latency across nodes subtracts capture times taken by two kernels' clocks, so any
 * offset between them lands in the measurement as it is. Each node answers time requests on
 * `fsmpx.clock.n.<node>`, announces itself on `fsmpx.clock.hello`, and every interval asks a bounded set of
 * peers, NTP-style: offset = ((t1 − t0) + (t2 − t3)) / 2, keeping of N exchanges the one with the smallest
 * round trip (queueing delay inflates the round trip and skews the estimate; the fastest exchange is the
 * least disturbed). Core NATS request/reply: nothing is stored.
 * @module
 */
import { errors, type NatsConnection, type Subscription } from "@nats-io/transport-node";
import { CLOCK_HELLO_SUBJECT, clockSubject } from "./subjects.ts";
import { logger } from "../util/log.ts";

const log = logger("clock");

/** Where a NATS client's requests ask for their answers (the client's default inbox prefix, which fsm-px keeps). */
const REQUEST_INBOX = "_INBOX.";

/** One exchange: our send (t0), the peer's receive (t1) and reply (t2), our receive (t3), all ms. */
export interface ClockSample {
  /** Peer clock minus ours, ms. */
  offsetMs: number;
  /** Round trip without the peer's own processing time, ms. */
  rttMs: number;
}

/** NTP offset and round-trip delay of one exchange. */
export function ntpSample(t0: number, t1: number, t2: number, t3: number): ClockSample {
  return { offsetMs: ((t1 - t0) + (t2 - t3)) / 2, rttMs: (t3 - t0) - (t2 - t1) };
}

/** The sample with the smallest round trip (null when there is none). */
export function bestSample(samples: readonly ClockSample[]): ClockSample | null {
  let best: ClockSample | null = null;
  for (const s of samples) if (best === null || s.rttMs < best.rttMs) best = s;
  return best;
}

/** Median of numbers (null when empty). */
export function median(values: readonly number[]): number | null {
  if (values.length === 0) return null;
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** Options of an estimator. */
export interface ClockSkewOptions {
  nc: NatsConnection;
  /** This node's name. */
  node: string;
  /** This node's wall clock, ms since the epoch (tests inject an offset clock). Default `Date.now`. */
  now?: () => number;
  /** Between rounds. Default 30 s. */
  intervalMs?: number;
  /** Exchanges per peer per round; the fastest is kept. Default 8. */
  samples?: number;
  /** Per exchange. Default 1 s. */
  timeoutMs?: number;
  /** Warn when this node's offset from its peers' median exceeds this (`nats.clock_skew_warn_ms`). */
  warnMs?: number;
  /**
   * Peers probed: the first ones heard from, plus those added with {@link ClockSkewEstimator.addPeer}. Bounded
   * so that the cost per node stays flat as the cluster grows (1000 nodes: 16 peers × 8 exchanges / 30 s).
   */
  maxPeers?: number;
  /**
   * Source peers probed besides them: the nodes whose signatures this node matches
   * ({@link ClockSkewEstimator.addSource}), the most recently heard from kept. Default 64.
   */
  maxSourcePeers?: number;
  /** Each new estimate against one peer (seconds, peer minus us). */
  onOffset?: (peer: string, offsetSeconds: number, rttMs: number) => void;
  /** A peer was forgotten (it left: nothing listens on its subject any more): its estimate is gone (e.g. its gauge). */
  onForget?: (peer: string) => void;
  /** After each round: this node's clock minus the median of its peers' (seconds); the exported gauge. */
  onNodeOffset?: (offsetSeconds: number) => void;
}

const REPLY_BYTES = 16;

/**
 * Longest clock subject probed (a peer name is at most a third of it once %-encoded). A request's subject must
 * fit the server's protocol line (4 KiB by default): past it the server closes the connection, which the node's
 * bus shares. Kubernetes node names are at most 253 bytes; anything longer in a hello is garbage.
 */
const MAX_CLOCK_SUBJECT = 1024;

/** Estimates this node's clock offset against its peers and answers their requests. */
export class ClockSkewEstimator {
  readonly #o: Required<Omit<ClockSkewOptions, "onOffset" | "onForget" | "onNodeOffset">> & ClockSkewOptions;
  readonly #peers = new Set<string>();
  /** Source peers (see {@link addSource}) and when each last sent a signature (ms of `now`). */
  readonly #sources = new Map<string, number>();
  readonly #offsets = new Map<string, number>();
  #subs: Subscription[] = [];
  #timer: ReturnType<typeof setTimeout> | null = null;
  #round: Promise<void> = Promise.resolve();
  #stopped = false;
  readonly #listeners: ((offsets: Map<string, number>) => void)[] = [];
  #badNames = 0;

  constructor(opts: ClockSkewOptions) {
    this.#o = {
      ...opts,
      now: opts.now ?? (() => Date.now()),
      intervalMs: opts.intervalMs ?? 30_000,
      samples: opts.samples ?? 8,
      timeoutMs: opts.timeoutMs ?? 1000,
      warnMs: opts.warnMs ?? 50,
      maxPeers: opts.maxPeers ?? 16,
      maxSourcePeers: opts.maxSourcePeers ?? 64,
    };
  }

  /** Starts answering, listening for peers and, unless `rounds` is false, probing every interval. */
  async start(rounds = true): Promise<void> {
    const { nc, node, now } = this.#o;
    this.#subs.push(nc.subscribe(clockSubject(node), {
      callback: (err, msg) => {
        // Only a request's own inbox: the sensors' NATS user may answer (allow_responses) on any subject a
        // request names, so a message naming another (a stream's API subject, a signature subject) would have
        // had this sensor publish there.
        if (err || !msg.reply?.startsWith(REQUEST_INBOX)) return;
        const t1 = now();
        const out = new Uint8Array(REPLY_BYTES);
        const view = new DataView(out.buffer);
        view.setFloat64(0, t1, true);
        view.setFloat64(8, now(), true);
        msg.respond(out);
      },
    }));
    this.#subs.push(nc.subscribe(CLOCK_HELLO_SUBJECT, {
      callback: (err, msg) => {
        if (!err) this.addPeer(new TextDecoder().decode(msg.data));
      },
    }));
    // Our subscriptions must be known to the server before anyone is told we exist. A connection down now fails
    // the flush: the client subscribes again on reconnecting and every round says hello, so start anyway (`run`
    // does not await this: a rejection would end the process, and no round would ever be scheduled).
    await nc.flush().catch(() => {});
    this.#hello();
    if (rounds) this.#schedule(Math.min(this.#o.intervalMs, 2000));
  }

  #hello(): void {
    try {
      this.#o.nc.publish(CLOCK_HELLO_SUBJECT, new TextEncoder().encode(this.#o.node));
    } catch {
      // disconnected: the next round says hello again
    }
  }

  #schedule(ms: number): void {
    if (this.#stopped) return;
    this.#timer = setTimeout(() => {
      this.#timer = null;
      this.#round = this.round().finally(() => this.#schedule(this.#o.intervalMs));
    }, ms);
  }

  /** Adds a peer to probe (one heard saying hello); ignored past `maxPeers`. */
  addPeer(node: string): void {
    if (node === "" || node === this.#o.node || this.#peers.has(node) || this.#sources.has(node)) return;
    if (this.#peers.size >= this.#o.maxPeers || !this.#probeable(node)) return;
    this.#peers.add(node);
  }

  /**
   * Adds a node whose signatures this node matches: its offset is the one a cross-node latency from it carries,
   * and the one the matcher widens its search by when its clock is ahead. It is probed whatever the hello peers
   * are: with only the first `maxPeers` heard from probed, a cluster of more than 17 nodes left most sources
   * unmeasured, and a source whose clock was ahead lost its matches once the skew passed the latency plus the
   * search's margin. Past `maxSourcePeers`, the source heard from longest ago makes room. Called per signature:
   * a known source costs a map write.
   */
  addSource(node: string): void {
    const at = this.#o.now();
    if (this.#sources.has(node)) {
      this.#sources.set(node, at);
      return;
    }
    if (node === "" || node === this.#o.node || !this.#probeable(node)) return;
    if (this.#sources.size >= this.#o.maxSourcePeers) {
      let oldest: string | undefined, oldestAt = Infinity;
      for (const [n, t] of this.#sources) if (t < oldestAt) [oldest, oldestAt] = [n, t];
      if (oldest !== undefined) this.#forget(oldest);
    }
    // A hello peer that turns out to be a source moves over, and leaves its slot to another.
    this.#peers.delete(node);
    this.#sources.set(node, at);
  }

  /** Whether `node` fits a clock subject (counted and warned about when not). */
  #probeable(node: string): boolean {
    if (node.length <= MAX_CLOCK_SUBJECT && clockSubject(node).length <= MAX_CLOCK_SUBJECT) return true;
    this.#badNames++;
    if (this.#badNames === 1 || this.#badNames % 1000 === 0) {
      log.warn("peer name too long for a clock subject; not probed", {
        bytes: new TextEncoder().encode(node).length,
        count: this.#badNames,
      });
    }
    return false;
  }

  /** Stops probing `peer` and drops its estimate. */
  #forget(peer: string): void {
    this.#peers.delete(peer);
    this.#sources.delete(peer);
    this.#offsets.delete(peer);
    this.#o.onForget?.(peer);
  }

  /**
   * Calls `fn` after every round with the peers' offsets (peer clock minus ours, seconds), e.g. so the matcher
   * searches far enough before a signature's instant when a peer's clock is ahead.
   */
  addListener(fn: (offsets: Map<string, number>) => void): void {
    this.#listeners.push(fn);
  }

  /** Known peers: the source peers, then the others. */
  peers(): string[] {
    return [...this.#sources.keys(), ...this.#peers];
  }

  /** Peer clock minus ours, seconds, from the last round that reached each peer. */
  offsets(): Map<string, number> {
    return new Map(this.#offsets);
  }

  /** This node's clock minus the median of its peers', seconds (null before any estimate). */
  nodeOffsetSeconds(): number | null {
    const m = median([...this.#offsets.values()]);
    return m === null ? null : -m;
  }

  /** N exchanges with one peer; the fastest one, or null if none was answered. */
  async probe(peer: string): Promise<ClockSample | null> {
    return (await this.#exchanges(peer)).best;
  }

  /**
   * {@link probe}, and whether the peer is gone: none of the exchanges was answered and the server said no one
   * listens on its subject. Unanswered exchanges that merely timed out say nothing about the peer: this node's
   * own connection may be down.
   */
  async #exchanges(peer: string): Promise<{ best: ClockSample | null; gone: boolean }> {
    const { nc, now, samples, timeoutMs } = this.#o;
    const got: ClockSample[] = [];
    let noResponders = false;
    for (let i = 0; i < samples && !this.#stopped; i++) {
      const t0 = now();
      let reply;
      try {
        reply = await nc.request(clockSubject(peer), undefined, { timeout: timeoutMs });
      } catch (e) {
        if (e instanceof errors.RequestError && e.isNoResponders()) noResponders = true;
        continue;
      }
      const t3 = now();
      if (reply.data.length !== REPLY_BYTES) continue;
      const view = new DataView(reply.data.buffer, reply.data.byteOffset, REPLY_BYTES);
      const t1 = view.getFloat64(0, true), t2 = view.getFloat64(8, true);
      // Times that are no numbers are no reply: a NaN round trip is never beaten by `<` and poisoned the round.
      if (!Number.isFinite(t1) || !Number.isFinite(t2)) continue;
      got.push(ntpSample(t0, t1, t2, t3));
    }
    return { best: bestSample(got), gone: got.length === 0 && noResponders };
  }

  /** Probes every peer once and updates the estimates. */
  async round(): Promise<void> {
    this.#hello();
    for (const peer of this.peers()) {
      if (this.#stopped) return;
      const { best: s, gone } = await this.#exchanges(peer);
      if (gone) {
        // A peer that left the cluster (nothing listens on its subject) makes room for another.
        this.#forget(peer);
        continue;
      }
      // Forgotten while it was probed (a source pushed out by newer ones): its estimate is not kept.
      if (!this.#peers.has(peer) && !this.#sources.has(peer)) continue;
      // Not answered, not gone (timeouts: this node's connection down, or the peer busy): its last estimate
      // stands. Forgetting every peer when this node's own connection was down for a round told the matcher
      // there was no skew until the peers' next hellos and the round after them.
      if (s === null) continue;
      this.#offsets.set(peer, s.offsetMs / 1000);
      this.#o.onOffset?.(peer, s.offsetMs / 1000, s.rttMs);
      log.debug("clock offset", { peer, offset_ms: round3(s.offsetMs), rtt_ms: round3(s.rttMs) });
    }
    for (const fn of this.#listeners) {
      try {
        fn(this.offsets());
      } catch (e) {
        log.warn("clock offset listener failed", { error: (e as Error).message });
      }
    }
    const own = this.nodeOffsetSeconds();
    if (own === null) return;
    this.#o.onNodeOffset?.(own);
    if (Math.abs(own) * 1000 > this.#o.warnMs) {
      log.warn("this node's clock differs from its peers': cross-node latencies are off by as much", {
        offset_ms: round3(own * 1000),
        warn_ms: this.#o.warnMs,
        peers: this.#offsets.size,
      });
    }
  }

  /** Stops probing and answering. */
  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
    await this.#round.catch(() => {});
    for (const s of this.#subs) s.unsubscribe();
    this.#subs = [];
  }
}

function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}
