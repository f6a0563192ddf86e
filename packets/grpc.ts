/**
 * gRPC over cleartext HTTP/2 (h2c, RFC 9113) per direction over reassembled TCP: frames, then each stream's DATA
 * as gRPC length-prefixed messages (a flag byte, a 4-byte big-endian length, the message). Each message is one
 * `AppMessage` at the capture time of the packet that completed it, on a stream of its own per HTTP/2 stream (one
 * RPC: a streaming recognizer's call), `<flow> #<stream id>`, with `meta.grpc` `request` (the direction that sent
 * the connection preface), `response`, or `unknown` (a capture begun mid-connection) and `meta.h2_stream`.
 * Pixie keeps 512 bytes of an HTTP/2 body, so a streaming recognizer's audio is only readable here.
 *
 * Headers are not decoded (HPACK's table would need the connection from its start): the audio's field is found in
 * the messages themselves (the `protobuf` envelope). A message with the compressed flag is inflated as gzip, the
 * usual `grpc-encoding`, then deflate; one that is neither is counted `http_encoding_error`. After a gap the parser
 * resyncs on two consecutive plausible frame headers; the partial messages of every stream are dropped (which one
 * the lost bytes belonged to is unknown), counted `grpc_bad_message`, and each stream that goes on looks for its
 * next message in its DATA (a frame may start inside one); a message a RST_STREAM cut is `grpc_reset`.
 * @module
 */

import type { AppMessage, FlowDirection, SkipCounter } from "./types.ts";
import { ByteBudget, ByteQueue, MessageParts, type TcpStreamSink } from "./tcp_reassembly.ts";
import { decodeContent } from "./http1.ts";

/** The client's connection preface (RFC 9113 3.4). */
export const H2_PREFACE: Uint8Array = new TextEncoder().encode("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
/** Largest frame taken (SETTINGS_MAX_FRAME_SIZE may reach 2^24 − 1; gRPC servers keep 16 KiB). */
const MAX_FRAME = (1 << 24) - 1;
/**
 * Longest frame a resync believes (SETTINGS_MAX_FRAME_SIZE's initial value, which gRPC implementations keep):
 * bytes inside a message read as a header claim lengths up to 16 MiB, and waiting for such a "frame" would stall.
 */
const RESYNC_MAX_FRAME = 16_384;
/** Streams of one direction with a message in progress kept at once; the one opened first makes room. */
export const MAX_OPEN_STREAMS = 1024;

const enum FrameType {
  Data = 0,
  Headers = 1,
  Priority = 2,
  RstStream = 3,
  Settings = 4,
  PushPromise = 5,
  Ping = 6,
  GoAway = 7,
  WindowUpdate = 8,
  Continuation = 9,
}
const END_STREAM = 0x1, PADDED = 0x8;

const enum Mode {
  Start,
  Frames,
  Resync,
  Closed,
}

/** One HTTP/2 stream's gRPC message in progress. */
interface GrpcStream {
  /** The 5-byte prefix as read so far. */
  readonly prefix: Uint8Array;
  prefixFill: number;
  /** Message bytes still to come once the prefix is complete. */
  need: number;
  /** Bytes of a message over the bound, skipped. */
  skip: number;
  readonly parts: MessageParts;
  /**
   * Whether its DATA is known to start at a message (the stream opened after framing was found); else its next
   * DATA frame may start inside a message, and the first message boundary is looked for ({@link syncAt}).
   */
  synced: boolean;
  /** Bytes of it were dropped while its first message was looked for (counted once). */
  dropped: boolean;
}

/** Options of {@link GrpcDirection}. */
export interface GrpcOptions {
  /** Bound per message; a larger one is skipped whole and counted `message_too_large` (default 16 MiB). */
  maxMessageBytes?: number;
  /** Shared cap on buffered bytes. */
  budget?: ByteBudget;
}

/**
 * Whether the 9 bytes at `at` of `v` can be a frame header: a known type with flags and stream id it allows (an
 * unknown type is legal HTTP/2 but tells nothing, so resync does not trust it).
 */
function plausibleHeader(v: Uint8Array, at: number, maxFrame: number): boolean {
  const len = (v[at]! << 16) | (v[at + 1]! << 8) | v[at + 2]!;
  const type = v[at + 3]!, flags = v[at + 4]!;
  if ((v[at + 5]! & 0x80) !== 0 || len > maxFrame) return false;
  const id = ((v[at + 5]! << 24) | (v[at + 6]! << 16) | (v[at + 7]! << 8) | v[at + 8]!) >>> 0;
  switch (type) {
    case FrameType.Data:
      return id !== 0 && (flags & ~(END_STREAM | PADDED)) === 0;
    case FrameType.Headers:
      return id !== 0 && (flags & ~0x2d) === 0;
    case FrameType.RstStream:
      return id !== 0 && len === 4 && flags === 0;
    case FrameType.Settings:
      return id === 0 && len % 6 === 0 && (flags & ~1) === 0;
    case FrameType.Ping:
      return id === 0 && len === 8 && (flags & ~1) === 0;
    case FrameType.GoAway:
      return id === 0 && len >= 8 && flags === 0;
    case FrameType.WindowUpdate:
      return len === 4 && flags === 0;
    case FrameType.Continuation:
      return id !== 0 && (flags & ~4) === 0;
    default:
      return false;
  }
}

/** Whether `v[at..]` can start a gRPC message prefix of at most `max` bytes with a message of at least one byte. */
function plausiblePrefix(v: Uint8Array, at: number, max: number): boolean {
  if (at + 5 > v.length || v[at]! > 1) return false;
  const need = ((v[at + 1]! << 24) | (v[at + 2]! << 16) | (v[at + 3]! << 8) | v[at + 4]!) >>> 0;
  return need > 0 && need <= max;
}

/**
 * Where the first message starts in `data`, a DATA frame of a stream whose framing was lost (a gap, a capture
 * begun mid-connection): a prefix whose message ends exactly at the frame's end or is followed by another
 * prefix; or at 0 one whose message goes on past the frame (a message written alone starts its frame). -1: none
 * here. A sender that writes faster than the peer reads packs messages into frames regardless of their
 * boundaries (grpc-js streaming a TTS answer: most frames start inside a message), so a frame's start alone is
 * no message's start: read as one, the message's bytes claim a length that swallows the rest of the RPC.
 */
function syncAt(data: Uint8Array, max: number): number {
  for (let at = 0; at + 5 <= data.length; at++) {
    if (!plausiblePrefix(data, at, max)) continue;
    const next = at + 5 +
      (((data[at + 1]! << 24) | (data[at + 2]! << 16) | (data[at + 3]! << 8) | data[at + 4]!) >>> 0);
    if (next === data.length || (next < data.length && plausiblePrefix(data, next, max))) return at;
    if (at === 0 && next > data.length) return 0;
  }
  return -1;
}

/** One direction of a gRPC (h2c) connection. */
export class GrpcDirection implements TcpStreamSink {
  readonly #q: ByteQueue;
  readonly #budget: ByteBudget;
  readonly #max: number;
  readonly #streams = new Map<number, GrpcStream>();
  #mode: Mode;
  #role: "request" | "response" | "unknown" = "unknown";
  /** Framing was lost at least once (or the capture began mid-connection): streams must find their messages. */
  #lost: boolean;
  /** Streams whose HEADERS came since framing was found: their DATA starts at a message (bounded as #streams). */
  readonly #opened = new Set<number>();

  /**
   * @param flow direction these bytes travel
   * @param stream stream name (`flowName(flow)`); each HTTP/2 stream adds ` #<id>`
   * @param midstream the capture began inside the connection: resync first, the direction's role unknown
   */
  constructor(
    private readonly flow: FlowDirection,
    private readonly stream: string,
    midstream: boolean,
    private readonly emit: (m: AppMessage) => void,
    private readonly skips: SkipCounter,
    opts: GrpcOptions = {},
  ) {
    this.#max = opts.maxMessageBytes ?? 16 << 20;
    this.#budget = opts.budget ?? new ByteBudget();
    this.#q = new ByteQueue(this.#budget, Math.min(MAX_FRAME, this.#max) + 64);
    this.#mode = midstream ? Mode.Resync : Mode.Start;
    this.#lost = midstream;
  }

  /** @inheritdoc */
  data(bytes: Uint8Array, timeNs: bigint): void {
    if (this.#mode === Mode.Closed) return;
    if (!this.#q.push(bytes)) {
      this.skips.add("tcp_buffer_overflow");
      this.#lose();
      return;
    }
    this.#run(timeNs);
    if (!this.#q.settle()) {
      this.skips.add("tcp_buffer_overflow");
      this.#q.clear();
      this.#lose();
    }
  }

  /** @inheritdoc */
  gap(_lostBytes: number, _timeNs: bigint): void {
    if (this.#mode === Mode.Closed) return;
    this.#q.clear();
    this.#lose();
  }

  /** @inheritdoc */
  close(_timeNs: bigint): void {
    for (const s of this.#streams.values()) {
      if (s.prefixFill > 0 || s.parts.bytes > 0) this.skips.add("grpc_bad_message");
      s.parts.reset();
    }
    this.#streams.clear();
    this.#q.clear();
    this.#mode = Mode.Closed;
  }

  /**
   * Framing lost: every stream's message in progress is dropped (counted), each stream looks for its next message,
   * and the next frame is looked for.
   */
  #lose(): void {
    for (const s of this.#streams.values()) {
      s.dropped = s.prefixFill > 0 || s.parts.bytes > 0 || s.skip > 0;
      if (s.dropped) this.skips.add("grpc_bad_message");
      s.parts.reset();
      s.prefixFill = 0;
      s.skip = 0;
      s.synced = false;
    }
    this.#opened.clear();
    this.#lost = true;
    this.#mode = Mode.Resync;
  }

  #run(t: bigint): void {
    const q = this.#q;
    for (;;) {
      const v = q.view();
      if (this.#mode === Mode.Start) {
        const n = Math.min(v.length, H2_PREFACE.length);
        let same = true;
        for (let i = 0; i < n && same; i++) same = v[i] === H2_PREFACE[i];
        if (same && n < H2_PREFACE.length) return;
        if (same) {
          q.consume(H2_PREFACE.length);
          this.#role = "request";
        } else this.#role = "response";
        this.#mode = Mode.Frames;
        continue;
      }
      if (this.#mode === Mode.Resync && !this.#resync()) return;
      if (this.#mode !== Mode.Frames) return;
      const w = q.view();
      if (w.length < 9) return;
      const len = (w[0]! << 16) | (w[1]! << 8) | w[2]!;
      if (w.length < 9 + len) return;
      const type = w[3]!, flags = w[4]!;
      const id = ((w[5]! << 24) | (w[6]! << 16) | (w[7]! << 8) | w[8]!) >>> 0;
      const payload = w.subarray(9, 9 + len);
      if (type === FrameType.Data) {
        let data = payload;
        if ((flags & PADDED) !== 0) {
          const pad = payload[0] ?? 0;
          data = pad + 1 <= payload.length ? payload.subarray(1, payload.length - pad) : new Uint8Array(0);
        }
        this.#feed(id, data, t);
      } else if (type === FrameType.Headers && this.#lost && !this.#streams.has(id)) {
        // A stream's first HEADERS: its DATA, if any, starts at a message (trailers end it just below).
        if (this.#opened.size >= MAX_OPEN_STREAMS) this.#opened.delete(this.#opened.values().next().value!);
        this.#opened.add(id);
      }
      if (
        type === FrameType.RstStream ||
        ((type === FrameType.Data || type === FrameType.Headers) && (flags & END_STREAM) !== 0)
      ) {
        this.#end(id, type === FrameType.RstStream);
      }
      q.consume(9 + len);
    }
  }

  /**
   * Finds the next frame header: a plausible one (at most {@link RESYNC_MAX_FRAME} long) followed by another. True
   * when framing is back; else the bytes before the first candidate whose follower is not here yet are dropped,
   * and the rest waits for more (a candidate is never waited on while a later one is confirmed).
   */
  #resync(): boolean {
    const q = this.#q;
    const v = q.view();
    let waitAt = -1;
    for (let i = 0; i + 9 <= v.length; i++) {
      if (!plausibleHeader(v, i, RESYNC_MAX_FRAME)) continue;
      const next = i + 9 + ((v[i]! << 16) | (v[i + 1]! << 8) | v[i + 2]!);
      if (next + 9 > v.length) {
        if (waitAt < 0) waitAt = i;
        continue;
      }
      if (!plausibleHeader(v, next, RESYNC_MAX_FRAME)) continue;
      q.consume(i);
      this.#mode = Mode.Frames;
      return true;
    }
    // Keep what may still turn out to be a header: from the first unconfirmed candidate, or a tail of 8 bytes.
    q.consume(waitAt >= 0 ? waitAt : Math.max(0, v.length - 8));
    return false;
  }

  #feed(id: number, data: Uint8Array, t: bigint): void {
    let s = this.#streams.get(id);
    let at = 0;
    while (at < data.length) {
      if (s === undefined) {
        if (this.#streams.size >= MAX_OPEN_STREAMS) {
          const [oldest, o] = this.#streams.entries().next().value!;
          if (o.prefixFill > 0 || o.parts.bytes > 0) this.skips.add("grpc_bad_message");
          o.parts.reset();
          this.#streams.delete(oldest);
        }
        s = {
          prefix: new Uint8Array(5),
          prefixFill: 0,
          need: 0,
          skip: 0,
          parts: new MessageParts(this.#budget),
          synced: !this.#lost || this.#opened.delete(id),
          dropped: false,
        };
        this.#streams.set(id, s);
      }
      if (!s.synced) {
        // Framing was lost inside this stream's messages: what comes before the first message found is a lost
        // message's rest (counted at the loss when it had begun, else once here).
        const from = syncAt(data.subarray(at), this.#max);
        if (from !== 0 && !s.dropped) {
          s.dropped = true;
          this.skips.add("grpc_bad_message");
        }
        if (from < 0) return;
        at += from;
        s.synced = true;
      }
      if (s.skip > 0) {
        const n = Math.min(s.skip, data.length - at);
        s.skip -= n;
        at += n;
        continue;
      }
      if (s.prefixFill < 5) {
        while (s.prefixFill < 5 && at < data.length) s.prefix[s.prefixFill++] = data[at++]!;
        if (s.prefixFill < 5) break;
        const p = s.prefix;
        s.need = ((p[1]! << 24) | (p[2]! << 16) | (p[3]! << 8) | p[4]!) >>> 0;
        if (p[0]! > 1) {
          // Not a gRPC message prefix (another protocol over h2c): the rest of this frame says nothing.
          this.skips.add("grpc_bad_message");
          s.prefixFill = 0;
          return;
        }
        if (s.need > this.#max) {
          this.skips.add("message_too_large");
          s.skip = s.need;
          s.prefixFill = 0;
          continue;
        }
      }
      const n = Math.min(s.need - s.parts.bytes, data.length - at);
      if (!s.parts.add(data.subarray(at, at + n))) {
        this.skips.add("tcp_buffer_overflow");
        s.skip = s.need - s.parts.bytes - n;
        s.parts.reset();
        s.prefixFill = 0;
        at += n;
        continue;
      }
      at += n;
      if (s.parts.bytes === s.need) {
        const compressed = s.prefix[0] === 1;
        s.prefixFill = 0;
        const body = s.parts.take();
        this.#message(id, body, compressed, t);
      }
    }
  }

  #message(id: number, body: Uint8Array, compressed: boolean, t: bigint): void {
    if (body.length === 0) return;
    const payload = compressed
      ? decodeContent(body, "gzip", this.#max) ?? decodeContent(body, "deflate", this.#max)
      : body;
    if (payload === undefined) {
      this.skips.add("http_encoding_error");
      return;
    }
    // An empty message carries nothing, compressed or not.
    if (payload.length === 0) return;
    this.emit({
      protocol: "grpc",
      timeNs: t,
      flow: this.flow,
      stream: `${this.stream} #${id}`,
      payload,
      meta: { grpc: this.#role, h2_stream: String(id) },
    });
  }

  /** The stream ended (END_STREAM) or was reset: a message it cut short is lost (`grpc_reset` when reset). */
  #end(id: number, reset: boolean): void {
    this.#opened.delete(id);
    const s = this.#streams.get(id);
    if (s === undefined) return;
    if (s.prefixFill > 0 || s.parts.bytes > 0 || s.skip > 0) {
      this.skips.add(reset ? "grpc_reset" : "grpc_bad_message");
    }
    s.parts.reset();
    this.#streams.delete(id);
  }
}
