/**
 * TCP packets to application messages: reassembly per direction, then the protocol parser the caller chose for that
 * direction (from its filters) — WebSocket, HTTP/1, NATS or Redis. Each direction of a connection is its own stream
 * named `flowName(direction)`. Also the auto-detection helpers `discover` uses on a direction's first bytes.
 * @module
 */

import { GrpcDirection, H2_PREFACE } from "./grpc.ts";
import type { AppMessage, AppProtocol, FlowDirection, Packet } from "./types.ts";
import { SkipCounter } from "./types.ts";
import {
  ByteBudget,
  type TcpDirectionInfo,
  TcpReassembler,
  type TcpReassemblyOptions,
  type TcpStreamSink,
} from "./tcp_reassembly.ts";
import { looksLikeWebSocketUpgrade, WebSocketDirection, WsConnection } from "./websocket.ts";
import { Http1Direction, HttpConnection, looksLikeHttp } from "./http1.ts";
import { looksLikeNats, NatsDirection } from "./nats_proto.ts";
import { looksLikeResp, RedisDirection } from "./redis_proto.ts";

export { looksLikeHttp, looksLikeNats, looksLikeResp, looksLikeWebSocketUpgrade };

/** The TCP protocols this source parses. */
export type TcpAppProtocol = Exclude<AppProtocol, "rtp">;

/** Options of a TCP source. */
export interface TcpSourceOptions {
  /**
   * Which protocol a direction carries (from the caller's filters: port, host, pod); undefined ignores the
   * direction (nothing is buffered for it). `rtp` is not a TCP protocol and is ignored too.
   */
  protocolFor: (flow: FlowDirection) => AppProtocol | undefined;
  /** Receives every message, in stream order per direction. */
  emit: (m: AppMessage) => void;
  /** Skip counters (a new one when absent; see `skips`). */
  skips?: SkipCounter;
  /** Bounds of the reassembler. */
  reassembly?: TcpReassemblyOptions;
  /** Safety bound per application message (default 16 MiB), counted `message_too_large` when exceeded. */
  maxMessageBytes?: number;
  /** Bytes all parsers together may buffer (default 256 MiB). */
  maxParserBytes?: number;
  /** HTTP: emit response bodies too (with `meta.status`). */
  httpResponses?: boolean;
  /** Redis: commands whose arguments are emitted (default PUBLISH, SPUBLISH, XADD, SET, LPUSH, RPUSH). */
  redisCommands?: readonly string[];
}

/** TCP segments in, application messages out. */
export class TcpSource {
  /** Counts of everything skipped, by reason. */
  readonly skips: SkipCounter;
  private readonly reassembler: TcpReassembler;
  private readonly budget: ByteBudget;
  private readonly wsConnections = new Map<string, WsConnection>();
  private readonly httpConnections = new Map<string, HttpConnection>();

  /** @param opts the caller's protocol choice and the message sink */
  constructor(private readonly opts: TcpSourceOptions) {
    this.skips = opts.skips ?? new SkipCounter();
    this.budget = new ByteBudget(opts.maxParserBytes ?? 256 << 20);
    this.reassembler = new TcpReassembler((info) => this.open(info), this.skips, opts.reassembly);
  }

  /** Feeds one packet (UDP packets are ignored). */
  push(p: Packet): void {
    this.reassembler.push(p);
  }

  /** Advances capture time without packets (live): gives up old holes, closes idle directions. */
  tick(nowNs: bigint): void {
    this.reassembler.tick(nowNs);
    for (const [k, c] of this.wsConnections) if (c.refs <= 0) this.wsConnections.delete(k);
    for (const [k, c] of this.httpConnections) if (c.refs <= 0) this.httpConnections.delete(k);
  }

  /** End of input: flushes buffered segments and closes every direction (HTTP bodies until close are emitted). */
  finish(nowNs?: bigint): void {
    this.reassembler.finish(nowNs);
    this.wsConnections.clear();
    this.httpConnections.clear();
  }

  /** Directions tracked now. */
  get flowCount(): number {
    return this.reassembler.flowCount;
  }

  /** Bytes buffered now (out-of-order segments plus parser buffers). */
  get bufferedBytes(): number {
    return this.reassembler.bufferedBytes + this.budget.used;
  }

  private open(info: TcpDirectionInfo): TcpStreamSink | undefined {
    const proto = this.opts.protocolFor(info.flow);
    const o = this.opts;
    const common = { maxMessageBytes: o.maxMessageBytes, budget: this.budget };
    switch (proto) {
      case "websocket": {
        let conn = this.wsConnections.get(info.connection);
        if (conn === undefined || (conn.refs <= 0 && !info.midstream)) {
          conn = new WsConnection();
          this.wsConnections.set(info.connection, conn);
        }
        const sink = new WebSocketDirection(
          info.flow,
          info.name,
          conn,
          info.midstream,
          o.emit,
          this.skips,
          common,
        );
        return {
          ...sharedSink(sink, this.wsConnections, info.connection, conn),
          // Kept through quiet spells past the generic idle timeout (a call on hold): see WebSocketDirection.
          holdsState: () => sink.holdsState(),
        };
      }
      case "http": {
        // Both directions share which requests are outstanding (a response to HEAD has no body). A direction that
        // opens with its SYN after the connection carried messages starts a new one on the 4-tuple (the old one's
        // end unseen): what the old one left outstanding is not carried over.
        let conn = this.httpConnections.get(info.connection);
        if (conn === undefined || conn.refs <= 0 || (!info.midstream && conn.started)) {
          conn = new HttpConnection();
          this.httpConnections.set(info.connection, conn);
        }
        const sink = new Http1Direction(info.flow, info.name, info.midstream, o.emit, this.skips, {
          ...common,
          responses: o.httpResponses,
          connection: conn,
        });
        return sharedSink(sink, this.httpConnections, info.connection, conn);
      }
      case "grpc":
        return new GrpcDirection(info.flow, info.name, info.midstream, o.emit, this.skips, common);
      case "nats":
        return new NatsDirection(info.flow, info.name, info.midstream, o.emit, this.skips, common);
      case "redis":
        return new RedisDirection(info.flow, info.name, info.midstream, o.emit, this.skips, {
          ...common,
          commands: o.redisCommands,
        });
      default:
        return undefined;
    }
  }
}

/**
 * Guesses the protocol of a TCP direction from its first bytes (for `discover`): a WebSocket upgrade before plain
 * HTTP; undefined when nothing matches (WebSocket frames without their handshake are not guessed).
 */
export function detectTcpProtocol(firstBytes: Uint8Array): TcpAppProtocol | undefined {
  if (looksLikeWebSocketUpgrade(firstBytes)) return "websocket";
  // HTTP/2's client preface: gRPC, in a cluster nearly always (plain h2c otherwise carries no audio we read).
  if (firstBytes.length >= H2_PREFACE.length && H2_PREFACE.every((b, i) => firstBytes[i] === b)) {
    return "grpc";
  }
  if (looksLikeHttp(firstBytes)) return "http";
  if (looksLikeNats(firstBytes)) return "nats";
  if (looksLikeResp(firstBytes)) return "redis";
  return undefined;
}

/**
 * A direction's sink whose connection state both directions share (WebSocket, HTTP/1): the state is forgotten once
 * both directions are closed, unless a newer connection on the same 4-tuple has taken its place in `map`.
 */
function sharedSink<K, C extends { refs: number }>(
  sink: {
    data(bytes: Uint8Array, timeNs: bigint): void;
    gap(n: number, timeNs: bigint): void;
    close(t: bigint): void;
  },
  map: Map<K, C>,
  key: K,
  conn: C,
): Pick<TcpStreamSink, "data" | "gap" | "close"> {
  return {
    data: (b, t) => sink.data(b, t),
    gap: (n, t) => sink.gap(n, t),
    close: (t) => {
      sink.close(t);
      if (conn.refs <= 0 && map.get(key) === conn) map.delete(key);
    },
  };
}
