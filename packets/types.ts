/**
 * Types shared by the packet-capture layers: captured frames (pcap/pcapng or live), decoded transport packets,
 * and the application messages the protocol parsers (RTP, WebSocket, HTTP/1, NATS, Redis) hand on.
 *
 * This layer knows no config: filters and codec maps arrive as plain values from `cli/`.
 * @module
 */

/** Link-layer header types (pcap LINKTYPE_* values) this layer decodes. */
export const LinkType = {
  /** BSD loopback: 4-byte address family in host byte order. */
  NULL: 0,
  ETHERNET: 1,
  /** Raw IP (DLT_RAW on most systems). */
  RAW: 101,
  /** OpenBSD loopback: 4-byte address family in network byte order. */
  LOOP: 108,
  /** Linux cooked capture v1 (`tcpdump -i any` before libpcap 1.10). */
  LINUX_SLL: 113,
  IPV4: 228,
  IPV6: 229,
  /** Linux cooked capture v2 (`tcpdump -i any` with libpcap 1.10+). */
  LINUX_SLL2: 276,
} as const;

/** One captured frame as read from a file or a live capture, before any decoding. */
export interface Frame {
  /** Kernel capture time, ns since the Unix epoch (the same clock Pixie's `time_` uses). */
  timeNs: bigint;
  /** pcap LINKTYPE_* of `data`. */
  linkType: number;
  /** The captured bytes (possibly shorter than `origLen` when the snap length cut it). */
  data: Uint8Array;
  /** Length of the packet on the wire. */
  origLen: number;
  /** pcapng interface index (0 for classic pcap and live captures). */
  iface: number;
}

/** A transport-layer packet: one UDP datagram or TCP segment, with its addresses. */
export interface Packet {
  timeNs: bigint;
  transport: "udp" | "tcp";
  /** Textual address: dotted IPv4 or RFC 5952 IPv6. */
  src: string;
  srcPort: number;
  dst: string;
  dstPort: number;
  /** UDP payload, or TCP segment payload (possibly empty). */
  payload: Uint8Array;
  /** TCP only. */
  tcp?: TcpHeader;
  /** True when the capture cut the packet short (payload incomplete). */
  truncated: boolean;
  /**
   * Payload bytes the capture cut off the end (the snap length), when `truncated` and known: TCP reassembly
   * steps over them as a gap at once instead of waiting for them as a hole.
   */
  cutBytes?: number;
}

/** The TCP header fields reassembly needs. */
export interface TcpHeader {
  /** Sequence number (uint32). */
  seq: number;
  /** Acknowledgement number (uint32). */
  ack: number;
  /** Flag bits: FIN 0x01, SYN 0x02, RST 0x04, PSH 0x08, ACK 0x10. */
  flags: number;
}

/** TCP flag bits. */
export const TcpFlag = { FIN: 0x01, SYN: 0x02, RST: 0x04, PSH: 0x08, ACK: 0x10 } as const;

/** One direction of a flow: where the bytes come from and where they go. */
export interface FlowDirection {
  transport: "udp" | "tcp";
  src: string;
  srcPort: number;
  dst: string;
  dstPort: number;
}

/** Renders a flow direction as `tcp 10.0.0.1:5000>10.0.0.2:80` (IPv6 addresses in brackets). */
export function flowName(f: FlowDirection): string {
  return `${f.transport} ${hostPort(f.src, f.srcPort)}>${hostPort(f.dst, f.dstPort)}`;
}

/** `addr:port`, with IPv6 addresses in brackets. */
export function hostPort(addr: string, port: number): string {
  return addr.includes(":") ? `[${addr}]:${port}` : `${addr}:${port}`;
}

/** Application protocols the packet source understands. */
export type AppProtocol = "rtp" | "websocket" | "http" | "nats" | "redis" | "grpc";

/** RTP header fields of one packet. */
export interface RtpInfo {
  /** Payload type 0..127. */
  pt: number;
  /** Sequence number (uint16). */
  seq: number;
  /** RTP timestamp (uint32), in the payload type's clock rate. */
  ts: number;
  /** Synchronisation source (uint32). */
  ssrc: number;
  marker: boolean;
  /**
   * Packets missing just before this one in sequence order (lost, or given up on by the jitter window);
   * 0 when contiguous. Set by the jitter buffer.
   */
  lostBefore: number;
}

/**
 * One application message: an RTP packet's payload, a complete WebSocket message, an HTTP/1 request body, a NATS
 * PUB/MSG payload or a Redis PUBLISH/XADD argument. Messages of one direction of one flow (and, for RTP, one
 * SSRC) are handed on in stream order.
 */
export interface AppMessage {
  protocol: AppProtocol;
  /** Capture time of the packet that completed the message, ns. */
  timeNs: bigint;
  /** Direction the message travelled. */
  flow: FlowDirection;
  /**
   * Stream identity within the flow direction, stable for the stream's life: the flow name, plus
   * ` ssrc=0x<hex>` for RTP. Each direction of a connection is its own stream.
   */
  stream: string;
  /** The audio-carrying bytes: RTP payload (after CSRC, extension, padding), message body, or argument. */
  payload: Uint8Array;
  /** RTP only. */
  rtp?: RtpInfo;
  /** WebSocket only: a text (opcode 1) rather than binary (opcode 2) message. */
  text?: boolean;
  /**
   * Protocol details useful for filtering and stream keys: `method`, `path` (HTTP), `subject` (NATS),
   * `command`, `key` (Redis), `content_type`.
   */
  meta?: Record<string, string>;
}

/** Why a frame, packet or message was skipped: counters are keyed by these. */
export type SkipReason =
  | "unsupported_link_type"
  | "not_ip"
  | "bad_ip_header"
  | "ip_fragment"
  | "not_udp_or_tcp"
  | "bad_transport_header"
  | "snap_truncated"
  | "not_rtp"
  | "rtcp"
  | "stun"
  | "rtp_late"
  | "rtp_duplicate"
  | "tcp_gap"
  | "tcp_retransmission"
  | "tcp_buffer_overflow"
  | "ws_control"
  | "ws_bad_frame"
  | "http_bad_message"
  | "nats_bad_message"
  | "redis_bad_message"
  | "not_audio_protocol"
  /** A TCP direction dropped to keep the flow count bounded (its buffered bytes were handed on after a gap). */
  | "tcp_flow_evicted"
  /** A permessage-deflate WebSocket message that did not inflate (corrupt, or not deflate at all). */
  | "ws_deflate_error"
  /**
   * A permessage-deflate WebSocket message (context takeover) that copies bytes from earlier messages this parser
   * does not know (lost to a gap, a skipped message, the budget, or before a capture begun mid-connection): it
   * cannot be decoded exactly, so it is not handed on. Messages that copy only bytes seen since are decoded.
   */
  | "ws_deflate_history_lost"
  /** A message over the parser's safety bound (skipped whole, never cut). */
  | "message_too_large"
  /** An HTTP response body (responses are not emitted unless asked for). */
  | "http_response"
  /** An HTTP body whose Content-Encoding (gzip, deflate, br) did not decode, or decoded past the bound. */
  | "http_encoding_error"
  /** A gRPC message lost to a gap, the connection's end or a bad prefix (h2c: packets/grpc.ts). */
  | "grpc_bad_message"
  /** A gRPC message a RST_STREAM cut short (the RPC was cancelled). */
  | "grpc_reset"
  /** A gRPC response message where the taps of its port take requests only (the default `http_bodies`). */
  | "grpc_response"
  /** NATS PING/PONG/INFO/CONNECT/SUB/UNSUB/+OK/-ERR. */
  | "nats_control"
  /** A Redis command or reply that carries no payload this layer hands on. */
  | "redis_other";

/** Counts skip reasons; one instance per source so metrics can export them. */
export class SkipCounter {
  readonly counts: Map<SkipReason, number> = new Map();
  /** Adds `n` (default 1) to `reason`. */
  add(reason: SkipReason, n = 1): void {
    this.counts.set(reason, (this.counts.get(reason) ?? 0) + n);
  }
  /** The counts as a plain object (for JSON and summaries). */
  toJSON(): Record<string, number> {
    return Object.fromEntries(this.counts);
  }
}
