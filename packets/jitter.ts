/**
 * Per-stream reorder window for RTP: each stream (one flow direction + SSRC, keyed by `AppMessage.stream`) is
 * handed on in sequence order with `rtp.lostBefore` telling how many packets are missing just before a packet.
 *
 * - A new stream is on probation: nothing is emitted until `probation` packets agree (same SSRC by key, sequence
 *   numbers close to each other, timestamps close), so random UDP that happens to start with version bits 2 is not
 *   taken for RTP. The probation packets are then emitted too (in order), not lost.
 * - A packet ahead of the next expected one is held; a gap is given up (its packets counted in the next
 *   `lostBefore`) when the held span reaches `windowPackets` or the first held packet has waited `windowNs` of
 *   capture time, whichever comes first. A packet arriving after its place was given up is `rtp_late`; one
 *   already emitted or held is `rtp_duplicate`.
 * - Sequence numbers are extended past uint16 wrap-around; RTP timestamps are compared modulo 2^32.
 * - A far jump (more than `maxDropout` ahead or `maxMisorder` behind) is taken for a sender restart only when
 *   the next packet follows it; a lone far packet is counted `not_rtp`. A restart emits with `lostBefore` 0.
 * - Memory is bounded: `windowPackets` held packets per stream (payloads copied when held so file chunks are
 *   not pinned), at most `maxStreams` streams (the least recently active are evicted beyond that), and streams
 *   idle for `idleNs` are flushed and forgotten by {@link RtpJitter.tick}.
 *
 * Messages of one stream come out in sequence order; streams interleave in arrival order, so a message released
 * from the window can have an earlier capture time than one emitted before it from another stream.
 * @module
 */

import type { AppMessage, RtpInfo, SkipCounter } from "./types.ts";
import { seqDiff, tsDiff } from "./rtp.ts";

/** Reorder window settings; every field has a default. */
export interface JitterOptions {
  /** Largest sequence span held waiting for a missing packet (default 50). */
  windowPackets?: number;
  /** Longest capture time a gap is waited for, ns (default 200 ms). */
  windowNs?: number;
  /** Packets a new stream needs, close in sequence, before it is emitted (default 2; 1 trusts the first). */
  probation?: number;
  /** Streams tracked at once (default 10,000). */
  maxStreams?: number;
  /** Capture time after which a silent stream is flushed and forgotten, ns (default 60 s). */
  idleNs?: number;
  /** A packet further ahead than this is a jump (default 3000, RFC 3550 MAX_DROPOUT). */
  maxDropout?: number;
  /** A packet further behind than this is a jump (default 100 or twice the window, RFC 3550 MAX_MISORDER). */
  maxMisorder?: number;
}

/** Counters of the window. */
export interface JitterStats {
  /** Streams tracked now. */
  streams: number;
  /** Streams that passed probation. */
  confirmed: number;
  /** Streams dropped because `maxStreams` was reached, and because they went idle. */
  evicted: number;
  idled: number;
  /** Confirmed sequence jumps (sender restarts). */
  restarts: number;
  /** Gaps given up (each is one `lostBefore` > 0). */
  gaps: number;
  /** Packets declared lost in total. */
  lost: number;
  emitted: number;
}

/** Most sequence numbers a probation packet may be away from the previous one. */
const PROBATION_SEQ_SPAN = 16;
/** Most timestamp units a probation packet may be away from the previous one (~6 min at 48 kHz). */
const PROBATION_TS_SPAN = 1 << 24;
/** Extended sequence numbers start here so a slightly earlier packet stays positive. */
const EXT_BASE = 1 << 20;

class Stream {
  readonly key: string;
  confirmed = false;
  cand: AppMessage[] = [];
  /** Next extended sequence number to emit. */
  expected = 0;
  /** Highest extended sequence number accepted (reference for extending uint16 numbers). */
  highest = 0;
  /** Held packets by extended sequence modulo the window. */
  readonly slots: (AppMessage | undefined)[];
  readonly slotExt: Float64Array;
  readonly slotTime: Float64Array;
  held = 0;
  /** Arrival time of the earliest held packet (valid when held > 0). */
  gapSince = 0;
  /** Packets given up since the last emission, added to the next `lostBefore`. */
  lostCarry = 0;
  /** Recently emitted extended sequence numbers, to tell duplicates from late packets. */
  readonly hist: Float64Array;
  lastSeen = 0;
  jump: AppMessage | undefined = undefined;

  constructor(key: string, window: number, histSize: number) {
    this.key = key;
    this.slots = new Array(window).fill(undefined);
    this.slotExt = new Float64Array(window).fill(-1);
    this.slotTime = new Float64Array(window);
    this.hist = new Float64Array(histSize).fill(-1);
  }
}

function copyPayload(m: AppMessage): AppMessage {
  m.payload = m.payload.slice();
  return m;
}

/**
 * The reorder window over any number of RTP streams. Feed messages (with `rtp` set and `stream` naming the
 * flow direction + SSRC) to {@link push}; ordered messages go to the `emit` callback given at construction.
 */
export class RtpJitter {
  readonly stats: JitterStats = {
    streams: 0,
    confirmed: 0,
    evicted: 0,
    idled: 0,
    restarts: 0,
    gaps: 0,
    lost: 0,
    emitted: 0,
  };
  readonly #emit: (m: AppMessage) => void;
  readonly #skips: SkipCounter;
  readonly #window: number;
  readonly #windowNs: number;
  readonly #probation: number;
  readonly #maxStreams: number;
  readonly #idleNs: number;
  readonly #maxDropout: number;
  readonly #maxMisorder: number;
  readonly #histSize: number;
  readonly #streams = new Map<string, Stream>();
  /** Streams with held packets (the only ones a time-based release can concern). */
  readonly #holding = new Set<Stream>();

  constructor(emit: (m: AppMessage) => void, skips: SkipCounter, opts: JitterOptions = {}) {
    this.#emit = emit;
    this.#skips = skips;
    this.#window = Math.max(2, Math.floor(opts.windowPackets ?? 50));
    this.#windowNs = opts.windowNs ?? 200e6;
    this.#probation = Math.max(1, Math.floor(opts.probation ?? 2));
    this.#maxStreams = Math.max(1, Math.floor(opts.maxStreams ?? 10_000));
    this.#idleNs = opts.idleNs ?? 60e9;
    this.#maxDropout = Math.max(this.#window, opts.maxDropout ?? 3000);
    this.#maxMisorder = Math.max(2 * this.#window, opts.maxMisorder ?? 100);
    let h = 1;
    while (h < this.#maxMisorder + 1) h <<= 1;
    this.#histSize = h;
  }

  /**
   * Takes one RTP message (`m.rtp` set; `m.rtp.lostBefore` is overwritten). `nowNs` is its capture time as a
   * number (ns; precision loss below a microsecond does not matter here), passed to spare a conversion.
   */
  push(m: AppMessage, nowNs: number = Number(m.timeNs)): void {
    const rtp = m.rtp!;
    let s = this.#streams.get(m.stream);
    if (s === undefined) {
      if (this.#streams.size >= this.#maxStreams) this.#evictOldest();
      s = new Stream(m.stream, this.#window, this.#histSize);
      this.#streams.set(m.stream, s);
      this.stats.streams = this.#streams.size;
    }
    s.lastSeen = nowNs;
    if (!s.confirmed) {
      this.#probate(s, m, nowNs);
    } else {
      this.#accept(s, m, rtp, nowNs);
    }
    if (s.held > 0 && nowNs - s.gapSince >= this.#windowNs) this.#releaseExpired(s, nowNs);
  }

  /**
   * Advances capture time without a packet: gaps that have waited `windowNs` are given up and streams silent for
   * `idleNs` are flushed and forgotten. Call it now and then (e.g. every few tens of ms of capture time).
   */
  tick(nowNs: number): void {
    for (const s of this.#holding) {
      if (nowNs - s.gapSince >= this.#windowNs) this.#releaseExpired(s, nowNs);
    }
    for (const s of this.#streams.values()) {
      if (nowNs - s.lastSeen >= this.#idleNs) {
        this.#drop(s);
        this.stats.idled++;
      }
    }
    this.stats.streams = this.#streams.size;
  }

  /** End of input: every held packet is emitted (gaps counted as lost), unconfirmed streams count `not_rtp`. */
  flush(): void {
    for (const s of this.#streams.values()) this.#drop(s);
    this.stats.streams = 0;
  }

  // ---- probation ----

  #probate(s: Stream, m: AppMessage, nowNs: number): void {
    const rtp = m.rtp!;
    const last = s.cand[s.cand.length - 1];
    if (last !== undefined) {
      const d = seqDiff(rtp.seq, last.rtp!.seq);
      const dt = tsDiff(rtp.ts, last.rtp!.ts);
      if (d === 0 && dt === 0) {
        this.#skips.add("rtp_duplicate");
        return;
      }
      if (
        d === 0 || d > PROBATION_SEQ_SPAN || d < -PROBATION_SEQ_SPAN || dt > PROBATION_TS_SPAN ||
        dt < -PROBATION_TS_SPAN
      ) {
        // Not a stream (yet): what was gathered was something else.
        this.#skips.add("not_rtp", s.cand.length);
        s.cand = [];
      }
    }
    s.cand.push(this.#probation > 1 ? copyPayload(m) : m);
    if (s.cand.length < this.#probation) return;
    // Confirmed: start at the lowest sequence number gathered, then replay the candidates in arrival order.
    const first = s.cand[0]!.rtp!.seq;
    let lo = 0, hi = 0;
    for (const c of s.cand) {
      const d = seqDiff(c.rtp!.seq, first);
      if (d < lo) lo = d;
      if (d > hi) hi = d;
    }
    s.confirmed = true;
    this.stats.confirmed++;
    // EXT_BASE is a multiple of 65536, so base's low 16 bits are the first packet's sequence number.
    const base = EXT_BASE + first;
    s.highest = base + hi;
    s.expected = base + lo;
    const cands = s.cand;
    s.cand = [];
    for (const c of cands) this.#accept(s, c, c.rtp!, nowNs);
  }

  // ---- ordered emission ----

  #accept(s: Stream, m: AppMessage, rtp: RtpInfo, nowNs: number): void {
    const ext = s.highest + seqDiff(rtp.seq, s.highest & 0xffff);
    const d = ext - s.expected;
    if (d > this.#maxDropout || d < -this.#maxMisorder) {
      this.#jump(s, m, rtp, nowNs);
      return;
    }
    if (s.jump !== undefined) {
      this.#skips.add("not_rtp"); // the lone far packet was a stray
      s.jump = undefined;
    }
    if (d < 0) {
      this.#skips.add(s.hist[ext & (this.#histSize - 1)] === ext ? "rtp_duplicate" : "rtp_late");
      return;
    }
    if (ext > s.highest) s.highest = ext;
    if (d === 0) {
      this.#out(s, m, ext);
      this.#drain(s);
      return;
    }
    const w = this.#window;
    if (d >= w) {
      // Beyond the window: give up what keeps the span too wide.
      this.#advanceTo(s, ext - w + 1);
      if (ext === s.expected) {
        this.#out(s, m, ext);
        this.#drain(s);
        return;
      }
    }
    const i = ext % w;
    if (s.slotExt[i] === ext) {
      this.#skips.add("rtp_duplicate");
      return;
    }
    s.slots[i] = copyPayload(m);
    s.slotExt[i] = ext;
    s.slotTime[i] = nowNs;
    if (s.held++ === 0) {
      s.gapSince = nowNs;
      this.#holding.add(s);
    }
  }

  #out(s: Stream, m: AppMessage, ext: number): void {
    const lost = ext - s.expected + s.lostCarry;
    m.rtp!.lostBefore = lost;
    if (lost > 0) {
      this.stats.gaps++;
      this.stats.lost += lost;
    }
    s.lostCarry = 0;
    s.expected = ext + 1;
    s.hist[ext & (this.#histSize - 1)] = ext;
    this.stats.emitted++;
    this.#emit(m);
  }

  /** Emits held packets that follow on from `expected`. */
  #drain(s: Stream): void {
    const w = this.#window;
    while (s.held > 0) {
      const i = s.expected % w;
      if (s.slotExt[i] !== s.expected) break;
      const m = s.slots[i]!;
      s.slots[i] = undefined;
      s.slotExt[i] = -1;
      s.held--;
      this.#out(s, m, s.expected);
    }
    if (s.held === 0) this.#holding.delete(s);
    else s.gapSince = this.#earliestHeld(s);
  }

  #earliestHeld(s: Stream): number {
    let t = Infinity;
    for (let i = 0; i < this.#window; i++) if (s.slotExt[i]! >= 0 && s.slotTime[i]! < t) t = s.slotTime[i]!;
    return t;
  }

  /** The lowest held extended sequence number (held > 0). */
  #lowestHeld(s: Stream): number {
    let lo = Infinity;
    for (let i = 0; i < this.#window; i++) if (s.slotExt[i]! >= 0 && s.slotExt[i]! < lo) lo = s.slotExt[i]!;
    return lo;
  }

  /** Gives up the gap before the lowest held packet and emits what follows it. */
  #releaseGap(s: Stream): void {
    const lo = this.#lowestHeld(s);
    const i = lo % this.#window;
    const m = s.slots[i]!;
    s.slots[i] = undefined;
    s.slotExt[i] = -1;
    s.held--;
    this.#out(s, m, lo);
    this.#drain(s);
  }

  /** Gives up gaps while the earliest held packet has waited the window's time. */
  #releaseExpired(s: Stream, nowNs: number): void {
    while (s.held > 0 && nowNs - s.gapSince >= this.#windowNs) this.#releaseGap(s);
  }

  /** Moves `expected` up to `target`, emitting held packets below it and counting the rest as lost. */
  #advanceTo(s: Stream, target: number): void {
    while (s.expected < target) {
      if (s.held > 0 && this.#lowestHeld(s) < target) {
        this.#releaseGap(s);
        continue;
      }
      s.lostCarry += target - s.expected;
      s.expected = target;
    }
    this.#drain(s);
  }

  #jump(s: Stream, m: AppMessage, rtp: RtpInfo, nowNs: number): void {
    const j = s.jump;
    if (j !== undefined && seqDiff(rtp.seq, j.rtp!.seq) === 1) {
      // Two packets in a row far from the old sequence: the sender restarted it.
      this.#releaseAll(s);
      s.jump = undefined;
      s.lostCarry = 0;
      s.hist.fill(-1);
      s.highest = s.expected = EXT_BASE + j.rtp!.seq;
      this.stats.restarts++;
      this.#accept(s, j, j.rtp!, nowNs);
      this.#accept(s, m, rtp, nowNs);
      return;
    }
    if (j !== undefined) this.#skips.add("not_rtp");
    s.jump = copyPayload(m);
  }

  #releaseAll(s: Stream): void {
    while (s.held > 0) this.#releaseGap(s);
  }

  /** Flushes a stream and forgets it. */
  #drop(s: Stream): void {
    if (s.confirmed) this.#releaseAll(s);
    else if (s.cand.length > 0) this.#skips.add("not_rtp", s.cand.length);
    if (s.jump !== undefined) this.#skips.add("not_rtp");
    this.#holding.delete(s);
    this.#streams.delete(s.key);
  }

  /** Evicts the least recently active tenth of the streams (at least one). */
  #evictOldest(): void {
    const times: number[] = [];
    for (const s of this.#streams.values()) times.push(s.lastSeen);
    times.sort((a, b) => a - b);
    const cut = times[Math.max(0, Math.floor(times.length / 10) - 1)]!;
    for (const s of this.#streams.values()) {
      if (s.lastSeen <= cut) {
        this.#drop(s);
        this.stats.evicted++;
      }
    }
    this.stats.streams = this.#streams.size;
  }
}
