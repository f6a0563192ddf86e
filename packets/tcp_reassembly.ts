/**
 * TCP stream reassembly per flow direction: in-order bytes from captured segments, whatever order they arrived in.
 *
 * Each direction starts at its SYN (ISN + 1) or, when the capture began mid-connection, at the first segment seen
 * (the consumer is told it starts mid-stream and resyncs to a message boundary). Segments ahead of the expected
 * sequence number wait in a bounded buffer; retransmissions and overlaps are cut to the new bytes (counted
 * `tcp_retransmission`); a hole that stays open longer than `holeTimeoutNs` of capture time, or while the buffer is
 * over its bound, is given up as a gap (counted `tcp_gap`, and `tcp_buffer_overflow` when the bound forced it): the
 * consumer hears `gap(n)` and resyncs. Sequence numbers are uint32 and wrap: every comparison is a signed 32-bit
 * difference from the expected number, valid while a direction's window stays below 2 GiB.
 *
 * Memory is bounded per direction (`maxBufferedBytesPerFlow`), in total (`maxBufferedBytesTotal`) and in flow count
 * (`maxFlows`: idle directions are closed first, then the one quiet the longest is evicted). Nothing here throws on
 * bad input.
 *
 * A direction without packets for `idleTimeoutNs` (120 s) is closed: a later packet opens it again mid-stream. One
 * whose consumer holds state that later bytes cannot rebuild ({@link TcpStreamSink.holdsState}: a WebSocket's
 * inflate history) is kept up to `statefulIdleTimeoutNs` (1 h) instead, within the same flow bound and eviction.
 *
 * Timeouts (hole, idle, linger) run on capture time as the reassembler saw it pass, not on the difference of two
 * timestamps: at most {@link MAX_STEP_NS} passes between two sweeps (which run every second of it), and a step back
 * passes none, so a step of the host's clock (NTP, a VM resumed) neither closes every direction as idle nor holds a
 * hole for as long as the step. Live sources tick about once a second while no packet comes, so a quiet capture
 * still ages its directions in full; a capture file quiet everywhere for longer counts that pause as 5 s.
 * @module
 */

import { type FlowDirection, flowName, type Packet, type SkipCounter, TcpFlag } from "./types.ts";

/** Why a direction's stream ended. */
export type TcpCloseReason = "fin" | "rst" | "idle" | "evicted" | "restarted" | "finished";

/** What a consumer of one direction's bytes implements. */
export interface TcpStreamSink {
  /**
   * In-order bytes. `timeNs` is the capture time of the segment that completed them (the later of the segment's own
   * time and that of the segment that filled the hole before it; after a hole given up, the segment's own). The
   * array is only valid during the call: copy what you keep.
   */
  data(bytes: Uint8Array, timeNs: bigint): void;
  /** `lostBytes` are missing before the next `data` call (never captured): drop partial state, resync. */
  gap(lostBytes: number, timeNs: bigint): void;
  /** The direction ended; no more calls follow. */
  close(timeNs: bigint, reason: TcpCloseReason): void;
  /**
   * True while the consumer holds state that later bytes cannot rebuild, so that closing the direction and opening
   * it again mid-stream at its next packet would lose more than the quiet spell (a WebSocket's inflate history):
   * then the direction is closed after `statefulIdleTimeoutNs` without packets, not `idleTimeoutNs`. Asked only in
   * the sweep, of directions quiet longer than `idleTimeoutNs`.
   */
  holdsState?(): boolean;
}

/** What the reassembler tells the sink factory about a new direction. */
export interface TcpDirectionInfo {
  flow: FlowDirection;
  /** `flowName(flow)`: the stream name. */
  name: string;
  /** Same for both directions of one connection (the two endpoints in sorted order). */
  connection: string;
  /** No SYN was seen: the first bytes may be anywhere inside a message. */
  midstream: boolean;
}

/** Bounds of the reassembler. */
export interface TcpReassemblyOptions {
  /** Out-of-order bytes buffered per direction before the oldest hole is given up (default 1 MiB). */
  maxBufferedBytesPerFlow?: number;
  /** Out-of-order bytes buffered over all directions (default 64 MiB). */
  maxBufferedBytesTotal?: number;
  /** Directions tracked at once (default 100,000); beyond it idle ones, then the least recently active go. */
  maxFlows?: number;
  /** A direction without packets for this long (capture time) is closed (default 120 s). */
  idleTimeoutNs?: bigint;
  /**
   * Same for a direction whose sink {@link TcpStreamSink.holdsState} (default 1 h: a call on hold or muted whose
   * sender sends nothing, not even pings; see {@link STATEFUL_IDLE_NS}). Below `idleTimeoutNs` it changes nothing.
   */
  statefulIdleTimeoutNs?: bigint;
  /** A hole open this long (capture time) is given up as a gap (default 1 s: above Linux's 200 ms minimum RTO). */
  holeTimeoutNs?: bigint;
  /**
   * How long a closed direction is remembered so late retransmissions are not taken as a new stream, and how long an
   * open one may see old data following on before it is taken for a new connection whose SYN was missed (10 s).
   */
  closedLingerNs?: bigint;
}

interface Segment {
  seq: number;
  data: Uint8Array;
  timeNs: bigint;
}

interface Direction {
  sink: TcpStreamSink | undefined;
  /** Next expected sequence number (uint32). */
  next: number;
  /** Sequence number just after the SYN, when one was seen (-1 otherwise). */
  synNext: number;
  /** Out-of-order segments, sorted by sequence distance from `next`. */
  ooo: Segment[];
  oooBytes: number;
  /**
   * Capture time since which the hole at `next` has been open. This, `lastNs` and `staleSinceNs` are moved with
   * the clock at its steps (see {@link MAX_STEP_NS}): they are compared with capture times only.
   */
  holeSinceNs: bigint;
  /** FIN seen at this sequence number (-1: none yet). */
  finSeq: number;
  closed: boolean;
  lastNs: bigint;
  /**
   * `lastNs` when the direction took its place at the back of the flow table's order: a direction whose `lastNs`
   * differs has had packets since, and the eviction moves it to the back instead of ending it.
   */
  placedNs: bigint;
  /**
   * Capture time since which segments wholly before `next` have carried data, each following on from the one
   * before (-1: new bytes came last), and where the next such would follow on.
   */
  staleSinceNs: bigint;
  staleNext: number;
}

const MAX_U32 = 0x1_0000_0000;
/** Largest TCP window (65535 << 14, RFC 7323): no retransmission lies further behind the next expected byte. */
const MAX_WINDOW = 1 << 30;
/**
 * How long a direction whose consumer holds state later bytes cannot rebuild (a permessage-deflate WebSocket's
 * history) may be quiet before it is closed: an hour. A call on hold or muted, its sender sending nothing, lasts
 * minutes to tens of minutes (a queue on hold, a muted attendee of an hour-long meeting). Quiet that long, not one
 * packet either way, a connection has more likely ended unseen (its FIN or RST not captured): many WebSocket
 * stacks ping every 20-30 s (Python's `websockets`, Socket.IO) and proxies close a connection quiet for 60 s by
 * default (nginx, AWS ALB). Kept, such a direction costs its table entry and what its parser holds, charged to the
 * parsers' shared budget (~40 KiB with a kept decompressor), and the flow bound evicts it like any quiet direction.
 */
export const STATEFUL_IDLE_NS = 3_600_000_000_000n;
/** Capture time between sweeps for idle directions and old holes while packets flow. */
const SWEEP_NS = 1_000_000_000n;
/**
 * Most capture time that passes between two sweeps. More is a clock step (or a capture file quiet everywhere):
 * counting it in full closed every direction as idle at a step of 120 s. Well above the ~1 s at which sweeps run
 * while packets flow and live sources tick while none do, so a live capture's own time passes in full.
 */
export const MAX_STEP_NS = 5_000_000_000n;
/**
 * Capture time this far behind the last sweep is the clock stepped back: time stands there and counts on from it.
 * Less is packets a little out of order (captured on several CPUs), read as they are.
 */
const BACK_STEP_NS = SWEEP_NS;

/** Reassembles TCP directions from captured segments and feeds one sink per direction. */
export class TcpReassembler {
  private readonly flows = new Map<string, Direction>();
  private readonly maxPerFlow: number;
  private readonly maxTotal: number;
  private readonly maxFlows: number;
  private readonly idleNs: bigint;
  private readonly statefulIdleNs: bigint;
  private readonly holeNs: bigint;
  private readonly lingerNs: bigint;
  private totalBuffered = 0;
  private lastSweepNs = 0n;
  /**
   * A packet at or after `nextSweepNs` sweeps; one before `backNs` is a clock step back and sweeps too. Before the
   * first packet every time is before `backNs`, so the first one starts the clock at no cost per packet.
   */
  private nextSweepNs = 0n;
  private backNs = 1n << 126n;
  private started = false;

  /**
   * @param open called once per new direction; returns its sink, or undefined to ignore the direction (no bytes are
   *   buffered for it).
   * @param skips counter for `tcp_retransmission`, `tcp_gap`, `tcp_buffer_overflow`, `tcp_flow_evicted`.
   */
  constructor(
    private readonly open: (info: TcpDirectionInfo) => TcpStreamSink | undefined,
    private readonly skips: SkipCounter,
    opts: TcpReassemblyOptions = {},
  ) {
    this.maxPerFlow = opts.maxBufferedBytesPerFlow ?? 1 << 20;
    this.maxTotal = opts.maxBufferedBytesTotal ?? 64 << 20;
    this.maxFlows = Math.max(1, opts.maxFlows ?? 100_000);
    this.idleNs = opts.idleTimeoutNs ?? 120_000_000_000n;
    this.statefulIdleNs = opts.statefulIdleTimeoutNs ?? STATEFUL_IDLE_NS;
    this.holeNs = opts.holeTimeoutNs ?? 1_000_000_000n;
    this.lingerNs = opts.closedLingerNs ?? 10_000_000_000n;
  }

  /** Directions tracked now (open or lingering after close). */
  get flowCount(): number {
    return this.flows.size;
  }

  /** Out-of-order bytes buffered now over all directions. */
  get bufferedBytes(): number {
    return this.totalBuffered;
  }

  /** Feeds one packet; UDP packets and packets without a TCP header are ignored. */
  push(p: Packet): void {
    const tcp = p.tcp;
    if (p.transport !== "tcp" || tcp === undefined) return;
    const t = p.timeNs;
    // Also when capture time went back (a clock step): waiting for it to pass the last sweep again would hold holes
    // and idle directions that long.
    if (t >= this.nextSweepNs || t < this.backNs) this.tick(t);
    const key = `${p.src}|${p.srcPort}|${p.dst}|${p.dstPort}`;
    const flags = tcp.flags;
    const seq = tcp.seq >>> 0;
    const syn = (flags & TcpFlag.SYN) !== 0;
    const len = p.payload.length;
    // Bytes the snap length cut off the end: sent all the same, so they take their place in the sequence space.
    const cut = p.truncated ? p.cutBytes ?? 0 : 0;
    const wire = len + cut;
    let d = this.flows.get(key);
    if (d !== undefined && syn) {
      // A SYN for a known direction: a retransmitted SYN, or the 4-tuple reused by a new connection.
      if (d.synNext === ((seq + 1) >>> 0) && !d.closed) return;
      this.end(d, t, "restarted");
      this.flows.delete(key);
      d = undefined;
    }
    if (d === undefined) {
      // Pure ACKs, FINs and RSTs of unknown directions carry nothing to reassemble: keep no state for them.
      if (!syn && wire === 0) return;
      d = this.create(key, p, syn, seq);
    }
    if (!syn && wire > 0 && !d.closed && this.startsOver(d, seq, wire, t)) {
      // A new connection on this 4-tuple whose SYN the capture missed (and the old one's end too): its bytes were
      // all taken for retransmissions, and the direction, never idle, stayed silent for as long as it lasted.
      this.end(d, t, "restarted");
      this.flows.delete(key);
      d = this.create(key, p, false, seq);
    }
    d.lastNs = t;
    if (d.closed) {
      if (wire > 0) this.skips.add("tcp_retransmission");
      return;
    }
    const sink = d.sink;
    if (sink === undefined) return;
    if ((flags & TcpFlag.RST) !== 0) {
      this.end(d, t, "rst");
      return;
    }
    const start = syn ? (seq + 1) >>> 0 : seq;
    if (len > 0) this.segment(d, sink, start, p.payload, t);
    if (cut > 0) this.cutOff(d, sink, (start + len) >>> 0, cut, t);
    if ((flags & TcpFlag.FIN) !== 0) d.finSeq = (start + wire) >>> 0;
    if (d.ooo.length > 0 && t - d.holeSinceNs >= this.holeNs) this.giveUpHoles(d, sink, t, false);
    if (d.finSeq >= 0 && d.next === d.finSeq) this.end(d, t, "fin");
  }

  /**
   * Advances capture time without a packet (live sources call it periodically): gives up holes older than the hole
   * timeout, closes idle directions (those whose sink holds state after the longer timeout), forgets closed ones
   * after their linger time.
   */
  tick(nowNs: bigint): void {
    this.absorbStep(nowNs);
    for (const [key, d] of this.flows) {
      if (d.closed) {
        if (nowNs - d.lastNs >= this.lingerNs) this.flows.delete(key);
        continue;
      }
      const quiet = nowNs - d.lastNs;
      if (quiet >= this.idleNs && (quiet >= this.statefulIdleNs || !this.holdsState(d))) {
        this.end(d, nowNs, "idle");
        this.flows.delete(key);
        continue;
      }
      if (d.sink !== undefined && d.ooo.length > 0 && nowNs - d.holeSinceNs >= this.holeNs) {
        this.giveUpHoles(d, d.sink, nowNs, false);
        if (d.finSeq >= 0 && d.next === d.finSeq) this.end(d, nowNs, "fin");
      }
    }
  }

  /**
   * Makes capture time `t` a sweep: a clock step since the last sweep (more than {@link MAX_STEP_NS} ahead, or a
   * second or more back) is taken out of the directions' times by moving them with it, so that only 5 s (ahead) or
   * nothing (back) passed for them. Rare: it costs a pass over the directions, as the sweep itself does.
   */
  private absorbStep(t: bigint): void {
    if (!this.started) {
      this.started = true;
      this.lastSweepNs = t;
    }
    const since = t - this.lastSweepNs;
    const shift = since > MAX_STEP_NS ? since - MAX_STEP_NS : since < -BACK_STEP_NS ? since : 0n;
    if (shift !== 0n) {
      for (const d of this.flows.values()) {
        d.lastNs += shift;
        d.placedNs += shift;
        d.holeSinceNs += shift;
        if (d.staleSinceNs >= 0n) d.staleSinceNs += shift;
      }
      this.lastSweepNs += shift;
    }
    if (t > this.lastSweepNs) this.lastSweepNs = t;
    this.nextSweepNs = this.lastSweepNs + SWEEP_NS;
    this.backNs = this.lastSweepNs - BACK_STEP_NS;
  }

  /** End of input: delivers what is buffered (after gaps) and closes every direction. */
  finish(nowNs?: bigint): void {
    for (const d of this.flows.values()) this.end(d, nowNs ?? d.lastNs, "finished");
    this.flows.clear();
    this.totalBuffered = 0;
  }

  private create(key: string, p: Packet, syn: boolean, seq: number): Direction {
    if (this.flows.size >= this.maxFlows) this.evict(p.timeNs);
    const flow: FlowDirection = {
      transport: "tcp",
      src: p.src,
      srcPort: p.srcPort,
      dst: p.dst,
      dstPort: p.dstPort,
    };
    const a = `${p.src}|${p.srcPort}`;
    const b = `${p.dst}|${p.dstPort}`;
    let sink: TcpStreamSink | undefined;
    try {
      sink = this.open({
        flow,
        name: flowName(flow),
        connection: a < b ? `${a}|${b}` : `${b}|${a}`,
        midstream: !syn,
      });
    } catch {
      // A factory that throws ignores the direction rather than stopping the capture.
      sink = undefined;
    }
    const d: Direction = {
      sink,
      next: syn ? (seq + 1) >>> 0 : seq,
      synNext: syn ? (seq + 1) >>> 0 : -1,
      ooo: [],
      oooBytes: 0,
      holeSinceNs: p.timeNs,
      finSeq: -1,
      closed: false,
      lastNs: p.timeNs,
      placedNs: p.timeNs,
      staleSinceNs: -1n,
      staleNext: 0,
    };
    this.flows.set(key, d);
    return d;
  }

  /**
   * Whether a data segment starts a new stream rather than retransmitting old bytes: it lies wholly before `next`
   * by more than any TCP window (2^30 bytes), or such segments have followed on from one another, as a sender's
   * new bytes do, for the linger time. Retransmissions repeat what was sent (a sender whose acknowledgements are
   * lost sends the same segment again and again) and keep-alive probes carry one old byte: neither follows on.
   */
  private startsOver(d: Direction, seq: number, len: number, t: bigint): boolean {
    const rel = (seq - d.next) | 0;
    if (rel + len > 0) {
      d.staleSinceNs = -1n;
      return false;
    }
    if (rel < -MAX_WINDOW) return true;
    if (d.staleSinceNs < 0n || seq !== d.staleNext || len <= 1) d.staleSinceNs = t;
    d.staleNext = (seq + len) >>> 0;
    return t - d.staleSinceNs >= this.lingerNs;
  }

  /**
   * Makes room for one more direction: idle and closed ones first, then the least recently active. The sweep for
   * idle ones visits every direction, so it runs at most once per sweep interval: at the bound, with a new direction
   * a packet, sweeping each time cost milliseconds per packet.
   *
   * The table's order is when each direction last took its place (creation, at first): the front one is ended
   * unless it had packets since, in which case it moves to the back and the next is judged (a second chance, as in
   * the CLOCK page replacement). So a busy call, the oldest direction there is, is never ended for directions quiet
   * since, and nothing is spent per packet: a move costs what its direction's packets since did, at most once each.
   * Ending the oldest instead ended long calls in favour of one-packet directions.
   */
  private evict(nowNs: bigint): void {
    if (nowNs >= this.nextSweepNs || nowNs < this.backNs) this.tick(nowNs);
    while (this.flows.size >= this.maxFlows) {
      const first = this.flows.entries().next();
      if (first.done) return;
      const [key, d] = first.value;
      if (!d.closed && d.lastNs !== d.placedNs) {
        // Terminates: a direction moved now is ended when it comes round again within this loop.
        this.flows.delete(key);
        this.flows.set(key, d);
        d.placedNs = d.lastNs;
        continue;
      }
      if (!d.closed) this.skips.add("tcp_flow_evicted");
      this.end(d, nowNs, "evicted");
      this.flows.delete(key);
    }
  }

  private segment(d: Direction, sink: TcpStreamSink, seq: number, payload: Uint8Array, t: bigint): void {
    const rel = (seq - d.next) | 0;
    const len = payload.length;
    if (rel <= 0) {
      if (rel + len <= 0) {
        this.skips.add("tcp_retransmission");
        return;
      }
      let data = payload;
      if (rel < 0) {
        // Overlaps what was delivered: only the new tail counts.
        this.skips.add("tcp_retransmission");
        data = payload.subarray(-rel);
      }
      d.next = (d.next + data.length) % MAX_U32;
      this.deliver(sink, data, t);
      if (d.ooo.length > 0) this.drain(d, sink, t);
      return;
    }
    // Ahead of a hole: keep a copy (the capture may reuse the packet's memory) in sequence order.
    const ooo = d.ooo;
    let i = ooo.length;
    while (i > 0) {
      const prev = ooo[i - 1]!;
      const prel = (prev.seq - d.next) | 0;
      if (prel < rel) break;
      if (prel === rel && prev.data.length >= len) {
        this.skips.add("tcp_retransmission");
        return;
      }
      i--;
    }
    if (ooo.length === 0) d.holeSinceNs = t;
    ooo.splice(i, 0, { seq, data: payload.slice(), timeNs: t });
    d.oooBytes += len;
    this.totalBuffered += len;
    if (d.oooBytes > this.maxPerFlow || this.totalBuffered > this.maxTotal) {
      this.skips.add("tcp_buffer_overflow");
      this.giveUpHoles(d, sink, t, true);
    }
  }

  /**
   * The tail of a segment that the capture cut (its snap length) is never seen, whatever comes later: counted
   * `snap_truncated` and, where the captured bytes reach the direction's position, stepped over as a gap at once.
   * Waited for as a hole, it held the direction's later bytes for the hole timeout and was counted as a loss on
   * the way (`tcp_gap`), which a larger snap length does not cure. A tail that lies after a hole still open, or
   * within bytes already delivered, is left to the hole rules.
   */
  private cutOff(d: Direction, sink: TcpStreamSink, from: number, cut: number, t: bigint): void {
    this.skips.add("snap_truncated");
    if (d.next !== from) return;
    try {
      sink.gap(cut, t);
    } catch {
      // A consumer's failure must not stop reassembly.
    }
    d.next = (d.next + cut) % MAX_U32;
    if (d.ooo.length > 0) this.drain(d, sink, t);
  }

  /**
   * Delivers buffered segments that are now in order. Each is timed by the later of its own capture and `fromNs`,
   * and of the segments before it in this run (bytes are complete only when those before them are): `t`, the
   * filler's time, when a segment filled the hole; the first segment's own time when the hole was given up (no
   * packet completed those bytes later than their own). A hole still left has been open since the first segment
   * held after it was captured (not since `t`: counted from the previous hole's end, holes in a row were given up
   * one a second, and a capture missing more than one segment a second fell further behind without end); `t` at
   * the latest, so a segment stamped after it (the clock stepped back) does not hold the hole for the step.
   */
  private drain(d: Direction, sink: TcpStreamSink, t: bigint, fromNs: bigint = t): void {
    const ooo = d.ooo;
    let at = fromNs;
    let n = 0;
    while (n < ooo.length) {
      const s = ooo[n]!;
      const rel = (s.seq - d.next) | 0;
      if (rel > 0) break;
      n++;
      d.oooBytes -= s.data.length;
      this.totalBuffered -= s.data.length;
      if (rel + s.data.length <= 0) {
        this.skips.add("tcp_retransmission");
        continue;
      }
      let data = s.data;
      if (rel < 0) {
        this.skips.add("tcp_retransmission");
        data = data.subarray(-rel);
      }
      d.next = (d.next + data.length) % MAX_U32;
      if (s.timeNs > at) at = s.timeNs;
      this.deliver(sink, data, at);
    }
    if (n > 0) ooo.splice(0, n);
    if (ooo.length > 0) {
      const since = ooo[0]!.timeNs;
      d.holeSinceNs = since < t ? since : t;
    }
  }

  /**
   * Gives up the hole at `next`: the consumer hears the gap and the buffered bytes after it. With `toBound`, repeats
   * until the buffers are within their bounds; otherwise until no hole older than the timeout remains.
   */
  private giveUpHoles(d: Direction, sink: TcpStreamSink, t: bigint, toBound: boolean): void {
    while (d.ooo.length > 0) {
      if (toBound) {
        if (d.oooBytes <= this.maxPerFlow && this.totalBuffered <= this.maxTotal) return;
      } else if (t - d.holeSinceNs < this.holeNs) return;
      const first = d.ooo[0]!;
      const lost = (first.seq - d.next) | 0;
      this.skips.add("tcp_gap");
      try {
        sink.gap(lost > 0 ? lost : 0, t);
      } catch {
        // A consumer's failure must not stop reassembly.
      }
      d.next = first.seq;
      // The bytes after the hole were complete when they were captured: the give-up time (a timeout, a tick, the
      // end of the capture) is no capture time of theirs.
      this.drain(d, sink, t, first.timeNs);
    }
  }

  /** Closes a direction: buffered bytes are delivered after their gaps first. */
  private end(d: Direction, t: bigint, reason: TcpCloseReason): void {
    if (d.closed) return;
    const sink = d.sink;
    if (sink !== undefined) {
      while (d.ooo.length > 0) {
        d.holeSinceNs = t - this.holeNs;
        this.giveUpHoles(d, sink, t, false);
      }
      try {
        sink.close(t, reason);
      } catch {
        // ignored: the direction is over either way
      }
    }
    this.totalBuffered -= d.oooBytes;
    d.oooBytes = 0;
    d.ooo = [];
    d.closed = true;
    d.lastNs = t;
  }

  /** Whether the direction's sink holds state later bytes cannot rebuild (false when it fails to say). */
  private holdsState(d: Direction): boolean {
    const sink = d.sink;
    if (sink?.holdsState === undefined) return false;
    try {
      return sink.holdsState();
    } catch {
      return false;
    }
  }

  private deliver(sink: TcpStreamSink, data: Uint8Array, t: bigint): void {
    try {
      sink.data(data, t);
    } catch {
      // Parsers never throw by design; if one does, the stream goes on.
    }
  }
}

/** Shared cap on the bytes all parsers of one source hold in their buffers. */
export class ByteBudget {
  used = 0;
  /** @param limit bytes all holders together may keep. */
  constructor(readonly limit: number = 256 << 20) {}
  /** Reserves `n` bytes; false (nothing reserved) when that would pass the limit. */
  take(n: number): boolean {
    if (this.used + n > this.limit) return false;
    this.used += n;
    return true;
  }
  /** Returns `n` reserved bytes. */
  give(n: number): void {
    this.used = Math.max(0, this.used - n);
  }
}

const EMPTY = new Uint8Array(0);

/**
 * The unparsed bytes of one direction. The bytes of a `data` call are borrowed without copying while a parser works
 * on them; `settle()` copies what is left before the call returns. Storage is charged to a `ByteBudget`.
 */
export class ByteQueue {
  private buf: Uint8Array = EMPTY;
  private start = 0;
  private end = 0;
  private owned = false;
  private charged = 0;

  /** @param budget shared cap; `maxBytes` caps this queue alone. */
  constructor(private readonly budget: ByteBudget, private readonly maxBytes: number) {}

  /** Unread bytes. */
  get length(): number {
    return this.end - this.start;
  }

  /** The unread bytes (valid until the next push/consume/settle). */
  view(): Uint8Array {
    return this.buf.subarray(this.start, this.end);
  }

  /** Byte at `i` from the read position (no bounds check beyond returning undefined). */
  at(i: number): number | undefined {
    const j = this.start + i;
    return j < this.end ? this.buf[j] : undefined;
  }

  /**
   * Appends bytes. False when this queue or the shared budget would overflow: then the queue is emptied and the
   * caller treats it like a gap.
   */
  push(b: Uint8Array): boolean {
    if (b.length === 0) return true;
    if (this.start === this.end) {
      // Nothing pending: borrow the caller's bytes until settle().
      this.buf = b;
      this.start = 0;
      this.end = b.length;
      this.owned = false;
      return true;
    }
    const need = this.end - this.start + b.length;
    if (need > this.maxBytes) {
      this.clear();
      return false;
    }
    if (!this.owned || this.end + b.length > this.buf.length) {
      if (!this.reserve(need)) return false;
    }
    this.buf.set(b, this.end);
    this.end += b.length;
    return true;
  }

  /** Drops `n` bytes from the front. */
  consume(n: number): void {
    this.start = Math.min(this.end, this.start + n);
    if (this.start === this.end) {
      this.start = 0;
      this.end = 0;
      if (!this.owned) this.buf = EMPTY;
    }
  }

  /**
   * Copies borrowed bytes that are still unread so the caller's array can be reused. False when the shared budget
   * has no room for them: the queue is left as it is, and the caller must deal with the loss (as with a gap, which
   * can keep a known frame's framing) and then {@link clear} it before the borrowed bytes go.
   */
  settle(): boolean {
    if (this.owned || this.start === this.end) {
      if (!this.owned) this.buf = EMPTY;
      this.shrink();
      return true;
    }
    return this.reserve(this.end - this.start, false);
  }

  /** Empties the queue and frees its storage. */
  clear(): void {
    this.buf = EMPTY;
    this.start = 0;
    this.end = 0;
    this.owned = false;
    this.budget.give(this.charged);
    this.charged = 0;
  }

  /** Moves the unread bytes into owned storage of at least `need` bytes; on failure empties the queue if `drop`. */
  private reserve(need: number, drop = true): boolean {
    const cap = Math.max(256, need * 2);
    const delta = cap - this.charged;
    if (delta > 0 && !this.budget.take(delta)) {
      if (drop) this.clear();
      return false;
    }
    if (delta < 0) this.budget.give(-delta);
    const next = new Uint8Array(cap);
    next.set(this.buf.subarray(this.start, this.end));
    this.end -= this.start;
    this.start = 0;
    this.buf = next;
    this.owned = true;
    this.charged = cap;
    return true;
  }

  /** Gives back large storage once it is empty, so an idle direction holds little. */
  private shrink(): void {
    if (this.start === this.end && this.charged > 4096) {
      this.clear();
    }
  }
}

/** Collects the parts of one message (fragments, chunks) within a byte bound, charged to a budget. */
export class MessageParts {
  private parts: Uint8Array[] = [];
  /** Bytes collected. */
  bytes = 0;
  /** @param budget shared cap. */
  constructor(private readonly budget: ByteBudget) {}
  /** Adds a copy of `b` (or `b` itself when `owned`); false when the budget is exhausted (nothing kept). */
  add(b: Uint8Array, owned = false): boolean {
    if (b.length === 0) return true;
    if (!this.budget.take(b.length)) return false;
    this.parts.push(owned ? b : b.slice());
    this.bytes += b.length;
    return true;
  }
  /** The message's bytes in one array; the parts are released. */
  take(): Uint8Array {
    let out: Uint8Array;
    if (this.parts.length === 1) out = this.parts[0]!;
    else {
      out = new Uint8Array(this.bytes);
      let o = 0;
      for (const p of this.parts) {
        out.set(p, o);
        o += p.length;
      }
    }
    this.reset();
    return out;
  }
  /** Drops the collected parts. */
  reset(): void {
    this.budget.give(this.bytes);
    this.parts = [];
    this.bytes = 0;
  }
}

/**
 * The rest of a message or frame of known length that a parser skips after a gap inside it: those bytes must not
 * be parsed as the start of another one. Shared by the WebSocket, NATS and Redis parsers.
 */
export class SkipRest {
  /** Bytes still to skip. */
  left = 0;

  /** The part of `bytes` after what is still skipped; undefined while all of it is skipped. */
  take(bytes: Uint8Array): Uint8Array | undefined {
    const n = Math.min(this.left, bytes.length);
    this.left -= n;
    return this.left > 0 ? undefined : bytes.subarray(n);
  }

  /** A further gap: true when it lies wholly inside the skipped bytes (keep skipping what is left). */
  gapInside(lostBytes: number): boolean {
    if (lostBytes >= this.left) return false;
    this.left -= lostBytes;
    return true;
  }
}
