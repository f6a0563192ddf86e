/**
 * Captured frames → rows for the configured packet taps: link/IP decoding, then UDP to the RTP source (reorder
 * window per SSRC) and TCP to reassembly and the WebSocket/HTTP/NATS/Redis parsers, then one row per message and
 * tap. The same object serves pcap files (`analyze`, `check`, `discover`, `run --capture`) and live capture.
 * Everything skipped is counted by reason.
 * @module
 */
import type { Row } from "../pixie/row.ts";
import { FrameDecoder, IpProto } from "./ip.ts";
import { RtpSource } from "./rtp_source.ts";
import { TcpSource } from "./tcp_source.ts";
import { PacketRowBuilder } from "./rows.ts";
import { hasPorts, type PacketTap, type PodResolver, tapMatchesAddresses } from "./taps.ts";
import { type AppMessage, type AppProtocol, type FlowDirection, type Frame, SkipCounter } from "./types.ts";

/** Options of a {@link PacketSource}. */
export interface PacketSourceOptions {
  taps: readonly PacketTap[];
  node: string;
  pods?: PodResolver;
  /** RTP reorder window, ms of capture time. */
  reorderMs?: number;
}

/** Counters of a packet source. */
export interface PacketSourceStats {
  frames: number;
  bytes: number;
  udp: number;
  tcp: number;
  /** Application messages parsed (before taps). */
  messages: number;
  rows: number;
}

/** Frames in, rows out. Rows of one stream come in stream order; rows of different streams may interleave. */
export class PacketSource {
  readonly skips: SkipCounter = new SkipCounter();
  readonly stats: PacketSourceStats = { frames: 0, bytes: 0, udp: 0, tcp: 0, messages: 0, rows: 0 };
  readonly builder: PacketRowBuilder;
  readonly #decoder: FrameDecoder;
  readonly #rtp: RtpSource | undefined;
  readonly #tcp: TcpSource | undefined;
  readonly #out: Row[] = [];
  #lastNs = 0n;

  /** Creates the source for `opts.taps`. */
  constructor(opts: PacketSourceOptions) {
    this.#decoder = new FrameDecoder(this.skips);
    this.builder = new PacketRowBuilder({
      taps: opts.taps,
      node: opts.node,
      pods: opts.pods,
      skips: this.skips,
    });
    const emit = (m: AppMessage) => {
      this.stats.messages++;
      for (const r of this.builder.build(m)) this.#out.push(r);
    };
    const rtpTaps = opts.taps.filter((t) => t.protocol === "rtp");
    const tcpTaps = opts.taps.filter((t) => t.protocol !== "rtp");
    if (rtpTaps.length > 0) {
      this.#rtp = new RtpSource(emit, {
        jitter: opts.reorderMs === undefined ? undefined : { windowNs: opts.reorderMs * 1e6 },
        // Ports and hosts only: pods are decided per stream when rows are made (they change; flows stay).
        acceptFlow: (f) => rtpTaps.some((t) => tapMatchesAddresses(t, f)),
      }, this.skips);
    }
    // Fragments go to the RTP source, which puts UDP datagrams back together and counts what it cannot.
    this.#decoder.holdFragments = this.#rtp !== undefined;
    if (tcpTaps.length > 0) {
      // One parser reads a direction: a tap that names a port of the flow before one of any port, so a tap without
      // ports (every HTTP body, say) does not take the port another measurement's WebSocket tap names, whose
      // connections the HTTP parser reads as an upgrade and then nothing (that measurement got no row at all).
      const byPort = [...tcpTaps.filter(hasPorts), ...tcpTaps.filter((t) => !hasPorts(t))];
      this.#tcp = new TcpSource({
        protocolFor: (f: FlowDirection): AppProtocol | undefined =>
          byPort.find((t) => tapMatchesAddresses(t, f))?.protocol,
        emit,
        skips: this.skips,
        // Response bodies are parsed only if a tap takes them (a TTS service's audio); else only counted.
        httpResponses: tcpTaps.some((t) =>
          t.protocol === "http" && (t.httpBodies ?? "requests") !== "requests"
        ),
      });
    }
  }

  /** Decodes one frame; returns the rows that became complete (possibly from earlier frames). */
  push(frame: Frame): Row[] {
    this.stats.frames++;
    this.stats.bytes += frame.origLen;
    if (frame.timeNs > this.#lastNs) this.#lastNs = frame.timeNs;
    const dec = this.#decoder;
    if (dec.decodeView(frame)) {
      const proto = dec.view.proto;
      if (proto === IpProto.UDP) {
        this.stats.udp++;
        if (this.#rtp) this.#rtp.pushFrame(frame);
        else this.skips.add("not_audio_protocol");
      } else if (proto === IpProto.TCP) {
        this.stats.tcp++;
        if (this.#tcp) this.#tcp.push(dec.packet(frame));
        else this.skips.add("not_audio_protocol");
      }
    } else if (dec.lastSkip === "ip_fragment" && this.#rtp) {
      this.#rtp.pushFrame(frame);
    }
    return this.#take();
  }

  /** Advances capture time with no frames (live: releases held RTP packets, gives up on TCP holes). */
  tick(nowNs: bigint): Row[] {
    this.#rtp?.tick(Number(nowNs));
    this.#tcp?.tick(nowNs);
    return this.#take();
  }

  /** End of input: everything held is released (gaps counted). */
  finish(): Row[] {
    this.#rtp?.flush();
    this.#tcp?.finish(this.#lastNs);
    return this.#take();
  }

  /** Every skip so far, packet- and message-level, by reason. */
  skipReport(): Record<string, number> {
    return { ...this.skips.toJSON(), ...Object.fromEntries(this.builder.skipped) };
  }

  #take(): Row[] {
    if (this.#out.length === 0) return EMPTY;
    const rows = this.#out.splice(0);
    this.stats.rows += rows.length;
    return rows;
  }
}

const EMPTY: Row[] = [];

/** The magic numbers of pcap and pcapng files: how `analyze` tells them from JSON Lines captures. */
export function isPacketCapture(head: Uint8Array): boolean {
  if (head.length < 4) return false;
  const m = ((head[0]! << 24) | (head[1]! << 16) | (head[2]! << 8) | head[3]!) >>> 0;
  return m === 0xa1b2c3d4 || m === 0xd4c3b2a1 || m === 0xa1b23c4d || m === 0x4d3cb2a1 ||
    m === 0x0a0d0d0a || m === 0xa1b2cd34 || m === 0x34cdb2a1;
}
