/**
 * Frames to RTP application messages: link → IP → UDP → RTP classification → per-stream reorder window →
 * {@link AppMessage} `{protocol: "rtp", stream: "udp 10.0.0.1:4000>10.0.0.2:5000 ssrc=0x0123abcd", rtp, payload}`.
 *
 * Every frame that does not become a message is counted in `skips` by {@link SkipReason}: link and IP problems
 * (from the {@link FrameDecoder}), `not_audio_protocol` for TCP, `snap_truncated` for datagrams the capture cut,
 * `rtcp`, `stun`, `not_rtp` (including streams that never pass probation), `rtp_late`, `rtp_duplicate`. Flows a
 * caller's `acceptFlow` rejects are only counted in `stats.filtered` (they are not ours to judge).
 *
 * Telephone events (RFC 4733) and comfort noise come out like any payload type: the consumer, which knows the
 * payload-type map, skips them.
 *
 * Hot path: no strings are built per packet (flow and stream names are cached per flow direction and SSRC) and
 * header views are reused.
 * @module
 */

import { flowKey, FrameDecoder, IpProto } from "./ip.ts";
import { FragmentReassembler } from "./ip_fragments.ts";
import { type JitterOptions, RtpJitter } from "./jitter.ts";
import { PcapReader } from "./pcap.ts";
import { parseRtp, RtpHeader, ssrcLabel } from "./rtp.ts";
import {
  type AppMessage,
  type FlowDirection,
  flowName,
  type Frame,
  type Packet,
  SkipCounter,
} from "./types.ts";

/** Settings of an {@link RtpSource}. */
export interface RtpSourceOptions {
  /** Reorder window and stream bounds. */
  jitter?: JitterOptions;
  /**
   * Decides once per flow direction (its first datagram) whether the flow is looked at, e.g. a port or CIDR
   * filter composed from the config. Default: every UDP flow.
   */
  acceptFlow?: (flow: FlowDirection) => boolean;
  /**
   * Flow directions cached (names, filter verdict); one quiet for the reorder window's idle time (`jitter.idleNs`,
   * 60 s) is forgotten, and the cache is cleared when it grows past this (100,000) all the same.
   */
  maxFlows?: number;
}

/** Counters of an {@link RtpSource} beyond the skip reasons. */
export interface RtpSourceStats {
  frames: number;
  udp: number;
  /** Datagrams of flows `acceptFlow` rejected. */
  filtered: number;
  /** Datagrams whose header parsed as RTP (before probation and the window). */
  rtp: number;
}

interface FlowEntry {
  flow: FlowDirection;
  name: string;
  accept: boolean;
  /** Last SSRC seen on the flow and its stream name (almost always the only one). */
  lastSsrc: number;
  lastStream: string;
  streams: Map<number, string> | undefined;
  /** Capture time of its last datagram, ns (see {@link RtpSource.tick}). */
  lastNs: number;
}

/** Capture time between ticks of the window (releases of stalled gaps, idle eviction), ns. */
const TICK_NS = 20e6;
/**
 * Capture time between sweeps of the flow cache for quiet flows, ns: a sweep visits every flow, so not at every
 * tick (up to 100,000 flows every 20 ms).
 */
const FLOW_SWEEP_NS = 10e9;
/** The reorder window's default idle time, which quiet flows are forgotten after too (jitter.ts's default). */
const DEFAULT_IDLE_NS = 60e9;

/**
 * The RTP packet source. Push frames (or already decoded UDP {@link Packet}s); ordered messages go to `emit`.
 * Call {@link flush} at the end of input.
 */
export class RtpSource {
  readonly skips: SkipCounter;
  readonly decoder: FrameDecoder;
  readonly jitter: RtpJitter;
  /** IPv4 and IPv6 fragments of large datagrams (L16 at 44.1/48 kHz is over an Ethernet MTU), put back together. */
  readonly fragments: FragmentReassembler;
  readonly stats: RtpSourceStats = { frames: 0, udp: 0, filtered: 0, rtp: 0 };
  readonly #hdr = new RtpHeader();
  readonly #flows = new Map<string, FlowEntry>();
  readonly #accept: ((flow: FlowDirection) => boolean) | undefined;
  readonly #maxFlows: number;
  readonly #flowIdleNs: number;
  #lastTick = -Infinity;
  #flowSweepNs = -Infinity;

  constructor(
    emit: (m: AppMessage) => void,
    opts: RtpSourceOptions = {},
    skips: SkipCounter = new SkipCounter(),
  ) {
    this.skips = skips;
    this.decoder = new FrameDecoder(skips);
    this.decoder.holdFragments = true;
    this.fragments = new FragmentReassembler(skips);
    this.jitter = new RtpJitter(emit, skips, opts.jitter);
    this.#accept = opts.acceptFlow;
    this.#maxFlows = opts.maxFlows ?? 100_000;
    this.#flowIdleNs = opts.jitter?.idleNs ?? DEFAULT_IDLE_NS;
  }

  /** Decodes one captured frame; any resulting messages are emitted (possibly later, by the window). */
  pushFrame(frame: Frame): void {
    this.stats.frames++;
    const dec = this.decoder;
    if (!dec.decodeView(frame)) {
      if (dec.lastSkip !== "ip_fragment") return;
      // The fragment that completes a datagram brings it whole (decoded like any frame); others wait or count.
      const whole = this.fragments.push(frame, dec.l3, dec.view.fragmentHeader);
      if (whole === undefined || !dec.decodeView(whole)) return;
      frame = whole;
    }
    const v = dec.view;
    if (v.proto !== IpProto.UDP) {
      this.skips.add("not_audio_protocol");
      return;
    }
    this.stats.udp++;
    const data = frame.data;
    const key = flowKey(data, v);
    let f = this.#flows.get(key);
    if (f === undefined) {
      f = this.#newFlow(key, {
        transport: "udp",
        src: dec.address(data, v.srcOffset),
        srcPort: v.srcPort,
        dst: dec.address(data, v.dstOffset),
        dstPort: v.dstPort,
      });
    }
    const now = Number(frame.timeNs);
    f.lastNs = now;
    if (!f.accept) {
      this.stats.filtered++;
      return;
    }
    if (v.truncated) {
      this.skips.add("snap_truncated");
      return;
    }
    this.#rtp(f, data, v.payloadStart, v.payloadEnd, frame.timeNs, now);
  }

  /** Takes a UDP datagram already decoded elsewhere (TCP packets are counted `not_audio_protocol`). */
  pushPacket(p: Packet): void {
    this.stats.frames++;
    if (p.transport !== "udp") {
      this.skips.add("not_audio_protocol");
      return;
    }
    this.stats.udp++;
    const key = `${p.src} ${p.srcPort} ${p.dst} ${p.dstPort}`;
    const f = this.#flows.get(key) ??
      this.#newFlow(key, {
        transport: "udp",
        src: p.src,
        srcPort: p.srcPort,
        dst: p.dst,
        dstPort: p.dstPort,
      });
    const now = Number(p.timeNs);
    f.lastNs = now;
    if (!f.accept) {
      this.stats.filtered++;
      return;
    }
    if (p.truncated) {
      this.skips.add("snap_truncated");
      return;
    }
    this.#rtp(f, p.payload, 0, p.payload.length, p.timeNs, now);
  }

  /**
   * Advances capture time without a packet (live, while traffic pauses): gaps that have waited the window are given
   * up and idle streams forgotten.
   */
  tick(nowNs: number): void {
    this.#lastTick = nowNs;
    this.jitter.tick(nowNs);
    this.fragments.expire(nowNs);
    const sinceSweep = nowNs - this.#flowSweepNs;
    if (sinceSweep >= FLOW_SWEEP_NS || sinceSweep <= -FLOW_SWEEP_NS) this.#sweepFlows(nowNs);
  }

  /** Flow directions cached now (for tests). */
  get flowCount(): number {
    return this.#flows.size;
  }

  /**
   * Forgets flows quiet for the idle time (their streams left the window then too): every call's flows stayed
   * until the cache held 100,000 (~80 MB of names and maps, none of them live), rebuilt from the next datagram
   * if one comes. A flow whose last datagram is as far ahead (a clock stepped back) goes too.
   */
  #sweepFlows(nowNs: number): void {
    this.#flowSweepNs = nowNs;
    const idle = this.#flowIdleNs;
    for (const [key, f] of this.#flows) {
      const quiet = nowNs - f.lastNs;
      if (quiet >= idle || quiet <= -idle) this.#flows.delete(key);
    }
  }

  /** End of input: releases every held packet (gaps counted as lost) and forgets all streams. */
  flush(): void {
    this.fragments.flush();
    this.jitter.flush();
  }

  #newFlow(key: string, flow: FlowDirection): FlowEntry {
    if (this.#flows.size >= this.#maxFlows) this.#flows.clear();
    const f: FlowEntry = {
      flow,
      name: flowName(flow),
      accept: this.#accept === undefined ? true : this.#accept(flow),
      lastSsrc: -1,
      lastStream: "",
      streams: undefined,
      lastNs: 0,
    };
    this.#flows.set(key, f);
    return f;
  }

  #rtp(f: FlowEntry, data: Uint8Array, start: number, end: number, timeNs: bigint, now: number): void {
    const h = this.#hdr;
    const why = parseRtp(data, start, end, h);
    if (why !== undefined) {
      this.skips.add(why);
      return;
    }
    this.stats.rtp++;
    const m: AppMessage = {
      protocol: "rtp",
      timeNs,
      flow: f.flow,
      stream: this.#streamName(f, h.ssrc),
      payload: data.subarray(h.payloadStart, h.payloadEnd),
      rtp: { pt: h.pt, seq: h.seq, ts: h.ts, ssrc: h.ssrc, marker: h.marker, lostBefore: 0 },
    };
    this.jitter.push(m, now);
    // Also when capture time went back a tick or more (a clock stepped back, or one frame stamped far ahead):
    // waiting for time to pass the last tick again would hold every other stream's gaps and idle streams that long.
    const sinceTick = now - this.#lastTick;
    if (sinceTick >= TICK_NS || sinceTick <= -TICK_NS) this.tick(now);
  }

  #streamName(f: FlowEntry, ssrc: number): string {
    if (f.lastSsrc === ssrc) return f.lastStream;
    f.streams ??= new Map();
    let name = f.streams.get(ssrc);
    if (name === undefined) {
      // Bounded: a flow spraying SSRCs (not RTP) must not grow this without end.
      if (f.streams.size >= 64) f.streams.clear();
      name = `${f.name} ${ssrcLabel(ssrc)}`;
      f.streams.set(ssrc, name);
    }
    f.lastSsrc = ssrc;
    f.lastStream = name;
    return name;
  }
}

/**
 * Convenience: RTP messages of a frame sequence (e.g. a {@link PcapReader}), in per-stream order, flushed at the
 * end. The source (with its `skips` and `stats`) can be passed in to read counters afterwards.
 */
export async function* rtpMessages(
  frames: AsyncIterable<Frame> | Iterable<Frame>,
  opts: RtpSourceOptions = {},
  skips: SkipCounter = new SkipCounter(),
): AsyncGenerator<AppMessage, RtpSource> {
  const queue: AppMessage[] = [];
  const src = new RtpSource((m) => queue.push(m), opts, skips);
  const batched = frames instanceof PcapReader ? frames.batches() : undefined;
  if (batched !== undefined) {
    for await (const batch of batched) {
      for (const frame of batch) src.pushFrame(frame);
      if (queue.length > 0) {
        yield* queue;
        queue.length = 0;
      }
    }
  } else {
    for await (const frame of frames) {
      src.pushFrame(frame);
      if (queue.length > 0) {
        yield* queue;
        queue.length = 0;
      }
    }
  }
  src.flush();
  yield* queue;
  return src;
}
