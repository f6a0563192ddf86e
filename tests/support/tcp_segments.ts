/**
 * Hand-built TCP packets and a recording stream sink for the packet-layer unit tests.
 * @module
 */

import type { Packet } from "../../packets/types.ts";
import { SkipCounter, TcpFlag } from "../../packets/types.ts";
import {
  type TcpCloseReason,
  type TcpDirectionInfo,
  TcpReassembler,
  type TcpStreamSink,
} from "../../packets/tcp_reassembly.ts";

/** Builds TCP packets of one direction (or its reverse) with explicit sequence numbers. */
export class Conn {
  constructor(
    readonly src = "10.0.0.1",
    readonly srcPort = 40000,
    readonly dst = "10.0.0.2",
    readonly dstPort = 8080,
  ) {}

  /** A segment from src to dst. */
  seg(seq: number, payload: Uint8Array | string, timeNs: bigint, flags: number = TcpFlag.ACK): Packet {
    return {
      timeNs,
      transport: "tcp",
      src: this.src,
      srcPort: this.srcPort,
      dst: this.dst,
      dstPort: this.dstPort,
      payload: typeof payload === "string" ? new TextEncoder().encode(payload) : payload,
      tcp: { seq: seq >>> 0, ack: 0, flags },
      truncated: false,
    };
  }

  /** A segment from dst to src. */
  back(seq: number, payload: Uint8Array | string, timeNs: bigint, flags: number = TcpFlag.ACK): Packet {
    return { ...new Conn(this.dst, this.dstPort, this.src, this.srcPort).seg(seq, payload, timeNs, flags) };
  }

  /** The SYN from src (its ISN is `isn`: data starts at isn + 1). */
  syn(isn: number, timeNs: bigint): Packet {
    return this.seg(isn, "", timeNs, TcpFlag.SYN);
  }
}

/** One call a sink received. */
export type SinkEvent =
  | { kind: "data"; bytes: string; timeNs: bigint }
  | { kind: "gap"; lost: number; timeNs: bigint }
  | { kind: "close"; reason: TcpCloseReason; timeNs: bigint };

/** Records every call (data as latin1 text for easy asserts). */
export class RecordingSink implements TcpStreamSink {
  readonly events: SinkEvent[] = [];
  constructor(readonly info: TcpDirectionInfo) {}
  data(bytes: Uint8Array, timeNs: bigint): void {
    this.events.push({ kind: "data", bytes: new TextDecoder("latin1").decode(bytes), timeNs });
  }
  gap(lost: number, timeNs: bigint): void {
    this.events.push({ kind: "gap", lost, timeNs });
  }
  close(timeNs: bigint, reason: TcpCloseReason): void {
    this.events.push({ kind: "close", reason, timeNs });
  }
  /** All delivered bytes concatenated, gaps shown as `[gap n]`. */
  text(): string {
    return this.events.map((e) => e.kind === "data" ? e.bytes : e.kind === "gap" ? `[gap ${e.lost}]` : "")
      .join("");
  }
}

/** 1 ms in ns. */
export const MS = 1_000_000n;

/** A reassembler recording each direction it opens (a restarted one is a new sink), and its skip counter. */
export function recorder(): { r: TcpReassembler; sinks: RecordingSink[]; skips: SkipCounter } {
  const sinks: RecordingSink[] = [];
  const skips = new SkipCounter();
  const r = new TcpReassembler((info) => {
    const s = new RecordingSink(info);
    sinks.push(s);
    return s;
  }, skips);
  return { r, sinks, skips };
}
