/**
 * WebSocket (RFC 6455) per direction over reassembled TCP. The HTTP/1.1 Upgrade request and the 101 response are
 * read when the capture has them (the 101 says whether permessage-deflate was negotiated); then frames: FIN and
 * continuation fragments, client masking, 7/16/64-bit lengths. Ping/pong/close are counted `ws_control`; text and
 * binary messages become `AppMessage`s (`text` set for opcode 1) timed by the packet that completed them.
 *
 * After a TCP gap the partial message is dropped (`ws_bad_frame`): inside a frame of known length the framing is kept
 * exactly; otherwise the parser scans for the next plausible frame header (valid opcode and reserved bits, minimal
 * length encoding, the direction's masking, and the frame after it also plausible). A capture that starts mid-stream
 * begins with that scan.
 *
 * permessage-deflate is inflated synchronously by a decompressor kept from message to message (ws_inflate.ts), whose
 * window is the LZ77 history context takeover needs; it is charged to the parsers' budget (~40 KiB a direction).
 * Without room for it, or while the history is partly unknown, each message is inflated on its own with `node:zlib`:
 * the direction's last 32 KiB of output put in front of it as a stored deflate block. After a loss (a gap, a compressed
 * message skipped, a capture begun mid-connection, no room in the budget) the history is unknown: each message is then
 * inflated against two histories that differ in every unknown byte (a deflate stream's structure does not depend on
 * what its copies copy, so both runs copy the same positions), and the bytes that come out the same both ways are
 * exactly those that depend on nothing lost. A message wholly known is handed on; one that is not is counted
 * `ws_deflate_history_lost`, never decoded wrong. The two runs end when the last 32 KiB of output are known again. A
 * sender that resets its compressor every message (`*_no_context_takeover`) recovers at once; with context takeover,
 * messages that copy (through any chain of copies) from lost bytes stay lost: text whose keys repeat in every message
 * (JSON) can stay lost until the connection ends, while audio bytes, mostly literals, come back within a message or
 * two.
 *
 * A WebSocket direction tells TCP reassembly that it holds state later bytes cannot rebuild (`holdsState`), so a
 * quiet spell longer than the generic 120 s idle timeout (a call on hold or muted, no pings) does not close it and
 * reopen it mid-stream with its history unknown: it is kept up to the reassembler's `statefulIdleTimeoutNs` (1 h).
 * @module
 */

import { Buffer } from "node:buffer";
import { createRequire } from "node:module";
import type { AppMessage, FlowDirection, SkipCounter } from "./types.ts";
import { ByteBudget, ByteQueue, MessageParts, SkipRest, type TcpStreamSink } from "./tcp_reassembly.ts";
import { findHeadEnd, parseHead } from "./http1.ts";
import { freshInflater, INFLATER_BYTES, StreamInflater } from "./ws_inflate.ts";

/**
 * `node:zlib`, loaded at the first message inflated one by one: loading it costs ~70 ms of CPU (Deno evaluates
 * its Node zlib module on import), at the start of every command that reads captures, most of which never see a
 * compressed WebSocket.
 */
let zlib: typeof import("node:zlib") | undefined;
const nodeZlib = (): typeof import("node:zlib") => zlib ??= createRequire(import.meta.url)("node:zlib");

/** permessage-deflate parameters from the 101 response. */
export interface WsDeflate {
  /** The server resets its compressor after each message. */
  serverNoContextTakeover: boolean;
  /** The client resets its compressor after each message. */
  clientNoContextTakeover: boolean;
}

/** State both directions of one WebSocket connection share (the handshake's outcome). */
export class WsConnection {
  /** `open` after a 101, `refused` after another response to the upgrade request. */
  state: "unknown" | "open" | "refused" = "unknown";
  /** Set when the 101 negotiated permessage-deflate. */
  deflate: WsDeflate | undefined;
  /** Directions attached (so the owner can forget the connection when both closed). */
  refs = 0;
}

/** Parses a `Sec-WebSocket-Extensions` response value; undefined when permessage-deflate is not in it. */
export function parseDeflateExtension(value: string | undefined): WsDeflate | undefined {
  if (value === undefined) return undefined;
  for (const ext of value.split(",")) {
    const params = ext.split(";").map((s) => s.trim().toLowerCase());
    if (params[0] !== "permessage-deflate") continue;
    return {
      serverNoContextTakeover: params.includes("server_no_context_takeover"),
      clientNoContextTakeover: params.includes("client_no_context_takeover"),
    };
  }
  return undefined;
}

/** True when `bytes` start with an HTTP request or 101 response that upgrades to WebSocket. */
export function looksLikeWebSocketUpgrade(bytes: Uint8Array): boolean {
  const end = findHeadEnd(bytes);
  const head = parseHead(bytes.subarray(0, end < 0 ? Math.min(bytes.length, 8192) : end - 4));
  if (head === undefined) return false;
  const up = (head.headers.get("upgrade") ?? "").toLowerCase();
  return up.includes("websocket") && (head.kind === "request" || head.status === 101);
}

/** Options of the WebSocket parser. */
export interface WebSocketOptions {
  /** Safety bound per message (after inflating); larger ones are skipped whole, `message_too_large` (16 MiB). */
  maxMessageBytes?: number;
  /** Shared cap on buffered bytes. */
  budget?: ByteBudget;
}

const enum Mode {
  Start,
  Handshake,
  Frames,
  Skip,
  Resync,
  /** The connection is not (or no longer) WebSocket: bytes are ignored. */
  Opaque,
}

const WINDOW = 32 * 1024;
const EMPTY = new Uint8Array(0);
const SYNC_TAIL = new Uint8Array([0, 0, 0xff, 0xff]);
/**
 * An unknown history, twice: the two differ in every byte, so an output byte copied (through any chain of copies)
 * from them differs between the two runs, and one made of literals does not. Shared, never written, not charged.
 */
const UNKNOWN_A = new Uint8Array(WINDOW);
const UNKNOWN_B = new Uint8Array(WINDOW).fill(0xff);

/** One direction of a WebSocket connection. */
export class WebSocketDirection implements TcpStreamSink {
  private readonly q: ByteQueue;
  private readonly parts: MessageParts;
  private readonly max: number;
  private mode: Mode;
  private scan = 0;
  /** Frames of this direction are masked (client to server); undefined until known. */
  private masked: boolean | undefined;
  /** Opcode of the message being assembled (0: none). */
  private msgOp = 0;
  private msgCompressed = false;
  /** The message being assembled is skipped (too large, or budget): its frames are framed and dropped. */
  private msgSkip = false;
  /** Bytes of the current frame still to drop in Skip mode. */
  private readonly skip = new SkipRest();
  /** Resync: positions before this were rejected as frame starts. */
  private resyncPos = 0;
  /** Inflate history (last output bytes) for context takeover. */
  private window: Uint8Array = EMPTY;
  /**
   * While part of the history is unknown: the same history with every unknown byte different (see UNKNOWN_A); bytes
   * equal in both are known. Undefined while all of it is known.
   */
  private shadow: Uint8Array | undefined;
  /**
   * The decompressor kept across messages while the history is known and the budget had room for it; `window` is
   * then empty (the history is in it).
   */
  private inflater: StreamInflater | undefined;
  /** Bytes of `window` and `shadow`, or of `inflater`, charged to the budget. */
  private historyCharged = 0;
  private readonly budget: ByteBudget;

  /**
   * @param conn shared state of the connection (one per TCP connection, both directions)
   * @param midstream the capture began inside the connection: resync first
   */
  constructor(
    private readonly flow: FlowDirection,
    private readonly stream: string,
    private readonly conn: WsConnection,
    midstream: boolean,
    private readonly emit: (m: AppMessage) => void,
    private readonly skips: SkipCounter,
    opts: WebSocketOptions = {},
  ) {
    this.max = opts.maxMessageBytes ?? 16 << 20;
    const budget = opts.budget ?? new ByteBudget();
    this.budget = budget;
    this.q = new ByteQueue(budget, this.max + 64 * 1024);
    this.parts = new MessageParts(budget);
    this.mode = midstream ? Mode.Resync : Mode.Start;
    // Messages before the capture began may be copied from.
    if (midstream) this.loseHistory();
    conn.refs++;
  }

  /** @inheritdoc */
  data(bytes: Uint8Array, timeNs: bigint): void {
    if (this.mode === Mode.Opaque) return;
    let b = bytes;
    if (this.mode === Mode.Skip) {
      const rest = this.skip.take(b);
      if (rest === undefined) return;
      b = rest;
      this.mode = Mode.Frames;
    }
    if (!this.q.push(b)) {
      this.skips.add("tcp_buffer_overflow");
      this.lose();
      return;
    }
    this.run(timeNs);
    if (!this.q.settle()) {
      // No room to keep the unparsed bytes: they are lost like a gap (a frame of known length keeps its framing).
      this.skips.add("tcp_buffer_overflow");
      this.gap(0, timeNs);
      this.q.clear();
    }
  }

  /** @inheritdoc */
  gap(lostBytes: number, _timeNs: bigint): void {
    if (this.mode === Mode.Opaque) return;
    if (this.mode === Mode.Skip) {
      // The frame skipped is a compressed message's only if that message was skipped, which lost the history
      // already; lost bytes inside an uncompressed or control frame touch no history.
      if (!this.skip.gapInside(lostBytes)) this.lose();
      return;
    }
    if (this.mode === Mode.Frames) {
      const v = this.q.view();
      const need = this.frameLength(v);
      if (need > 0 && need <= this.max + 14 && this.q.length + lostBytes <= need) {
        // The hole is inside this frame, or ends where it ends (the next bytes start the next frame): drop the frame
        // (and its message), keep the framing. Its message went through the sender's compressor only if compressed
        // (RSV1 on its first frame).
        const op = v[0]! & 15;
        const compressed = op >= 8
          ? false
          : op !== 0
          ? (v[0]! & 0x40) !== 0
          : this.msgOp === 0 || this.msgCompressed;
        if (compressed) this.loseHistory();
        this.dropMessage(true);
        this.skip.left = need - this.q.length - lostBytes;
        this.q.clear();
        this.mode = Mode.Skip;
        return;
      }
    }
    this.lose();
  }

  /** @inheritdoc */
  close(_timeNs: bigint): void {
    // A frame still incomplete when the connection ends (FIN or RST mid-frame, end of capture) is lost: counted.
    if (this.mode !== Mode.Opaque) this.dropMessage(this.mode === Mode.Frames && this.q.length > 0);
    this.q.clear();
    this.mode = Mode.Opaque;
    this.dropInflater();
    this.budget.give(this.historyCharged);
    this.historyCharged = 0;
    this.window = EMPTY;
    this.shadow = undefined;
    this.conn.refs--;
  }

  /**
   * True while the direction is WebSocket (not refused, not another protocol on the port): what it holds, later
   * packets cannot give back. With permessage-deflate and context takeover, the history every later message may copy
   * from (opened again mid-stream, the direction would lose every message that copies from before); in any case
   * the handshake's outcome (whether and how deflate was negotiated, also forgotten by the connection once both
   * directions are closed) and where frames begin (found again only by the resync scan's heuristic). Keeping it
   * costs its table entry and what its parser holds (charged to the budget).
   */
  holdsState(): boolean {
    return this.mode !== Mode.Opaque;
  }

  /**
   * Loses sync: the partial frame and message go, the scan for the next frame header starts. What the scan passes
   * over may be compressed messages: the history is unknown.
   */
  private lose(): void {
    this.dropMessage(this.q.length > 0);
    this.q.clear();
    this.loseHistory();
    this.mode = Mode.Resync;
    this.resyncPos = 0;
  }

  private dropMessage(partialFrame: boolean): void {
    if (this.msgOp !== 0 || partialFrame) this.skips.add("ws_bad_frame");
    this.msgOp = 0;
    this.msgSkip = false;
    this.parts.reset();
  }

  private run(t: bigint): void {
    for (;;) {
      switch (this.mode) {
        case Mode.Start: {
          const v = this.q.view();
          if (v.length < 5) return;
          const s = String.fromCharCode(v[0]!, v[1]!, v[2]!, v[3]!, v[4]!);
          this.mode = s.startsWith("GET ") || s === "HTTP/" ? Mode.Handshake : Mode.Resync;
          continue;
        }
        case Mode.Handshake:
          if (!this.handshake()) return;
          continue;
        case Mode.Frames:
          if (this.conn.state === "refused") {
            this.mode = Mode.Opaque;
            this.q.clear();
            return;
          }
          this.frames(t);
          if (this.mode === Mode.Frames) return;
          continue;
        case Mode.Resync:
          if (!this.resync()) return;
          this.mode = Mode.Frames;
          continue;
        case Mode.Skip: {
          const n = Math.min(this.skip.left, this.q.length);
          this.q.consume(n);
          this.skip.left -= n;
          if (this.skip.left > 0) return;
          this.mode = Mode.Frames;
          continue;
        }
        case Mode.Opaque:
          this.q.clear();
          return;
      }
    }
  }

  /** Reads the upgrade request or response; false when it needs more bytes. */
  private handshake(): boolean {
    const v = this.q.view();
    const end = findHeadEnd(v, this.scan);
    if (end < 0) {
      this.scan = Math.max(0, v.length - 3);
      if (v.length > 64 * 1024) {
        this.skips.add("http_bad_message");
        this.scan = 0;
        this.lose();
        return true;
      }
      return false;
    }
    this.scan = 0;
    const head = parseHead(v.subarray(0, end - 4));
    this.q.consume(end);
    if (head === undefined) {
      this.skips.add("http_bad_message");
      this.lose();
      return true;
    }
    const upgrade = (head.headers.get("upgrade") ?? "").toLowerCase().includes("websocket");
    if (head.kind === "request") {
      if (!upgrade) {
        // A plain HTTP request on a WebSocket port (a health check): not audio, and the rest is not frames.
        this.skips.add("not_audio_protocol");
        this.mode = Mode.Opaque;
        return true;
      }
      this.masked = true;
      this.mode = Mode.Frames;
      return true;
    }
    if (head.status === 101 && upgrade) {
      this.conn.state = "open";
      this.conn.deflate = parseDeflateExtension(head.headers.get("sec-websocket-extensions"));
      this.masked = false;
      this.mode = Mode.Frames;
      return true;
    }
    this.conn.state = "refused";
    this.skips.add("not_audio_protocol");
    this.mode = Mode.Opaque;
    return true;
  }

  /** Total length (header + payload) of the frame at the start of `v`; -1 when the header is not complete. */
  private frameLength(v: Uint8Array): number {
    if (v.length < 2) return -1;
    const b1 = v[1]!;
    let len = b1 & 127;
    let p = 2;
    if (len === 126) {
      if (v.length < 4) return -1;
      len = (v[2]! << 8) | v[3]!;
      p = 4;
    } else if (len === 127) {
      if (v.length < 10) return -1;
      len = readU64(v, 2);
      p = 10;
    }
    return p + ((b1 & 0x80) !== 0 ? 4 : 0) + len;
  }

  /**
   * Checks a frame header at `i`: its total length, -1 when implausible, -2 when more bytes are needed to judge.
   */
  private plausible(v: Uint8Array, i: number): number {
    if (i + 2 > v.length) return -2;
    const b0 = v[i]!;
    const b1 = v[i + 1]!;
    const op = b0 & 15;
    const rsv = b0 & 0x70;
    if (op > 10 || (op > 2 && op < 8)) return -1;
    // RSV1 marks a compressed message where permessage-deflate was negotiated, or may have been (the capture began
    // after the handshake): frames() takes those, so the scan for a frame must too.
    const deflate = this.conn.deflate !== undefined || this.conn.state === "unknown";
    if (rsv !== 0 && !(rsv === 0x40 && (op === 1 || op === 2) && deflate)) return -1;
    const masked = (b1 & 0x80) !== 0;
    if (this.masked !== undefined && masked !== this.masked) return -1;
    let len = b1 & 127;
    let p = i + 2;
    if (op >= 8 && ((b0 & 0x80) === 0 || len > 125)) return -1;
    if (len === 126) {
      if (i + 4 > v.length) return -2;
      len = (v[i + 2]! << 8) | v[i + 3]!;
      if (len < 126) return -1;
      p += 2;
    } else if (len === 127) {
      if (i + 10 > v.length) return -2;
      len = readU64(v, i + 2);
      if (len < 65536 || len > this.max) return -1;
      p += 8;
    }
    if (len > this.max) return -1;
    return p - i + (masked ? 4 : 0) + len;
  }

  /**
   * Finds the next frame header after lost sync; true when the queue now starts with one. A candidate must start a
   * chain of plausible frames that ends exactly where the bytes end, or holds two whole frames before one that runs
   * past them: random payload bytes pass one header check often enough, a chain almost never. Until a candidate
   * qualifies, bytes from the first one that might still (its frame runs past the data) are kept for the next try.
   */
  private resync(): boolean {
    const v = this.q.view();
    let pending = -1;
    let i = this.resyncPos;
    for (; i < v.length; i++) {
      const n = this.plausible(v, i);
      if (n === -2) break;
      if (n < 0) continue;
      let frames = 0;
      let at = i;
      let len = n;
      for (;;) {
        if (at + len > v.length) {
          if (frames >= 2) return this.resynced(i);
          if (pending < 0 && v.length - i <= 256 * 1024) pending = i;
          break;
        }
        frames++;
        at += len;
        if (at === v.length) return this.resynced(i);
        len = this.plausible(v, at);
        if (len === -2) {
          if (frames >= 2) return this.resynced(i);
          if (pending < 0) pending = i;
          break;
        }
        if (len < 0) break;
      }
    }
    const keep = pending >= 0 ? pending : i;
    this.q.consume(keep);
    // Positions before `i` were judged; the pending candidate is judged again with more bytes.
    this.resyncPos = 0;
    return false;
  }

  private resynced(i: number): boolean {
    this.q.consume(i);
    this.resyncPos = 0;
    return true;
  }

  /** Parses whole frames at the front of the queue. Leaves Frames mode on a bad header or a skipped frame. */
  private frames(t: bigint): void {
    const q = this.q;
    for (;;) {
      const v = q.view();
      const n = v.length;
      if (n < 2) return;
      const b0 = v[0]!;
      const b1 = v[1]!;
      const fin = (b0 & 0x80) !== 0;
      const op = b0 & 15;
      const masked = (b1 & 0x80) !== 0;
      let len = b1 & 127;
      let p = 2;
      if (len === 126) {
        if (n < 4) return;
        len = (v[2]! << 8) | v[3]!;
        p = 4;
      } else if (len === 127) {
        if (n < 10) return;
        len = readU64(v, 2);
        p = 10;
      }
      const rsv = b0 & 0x70;
      const badRsv = rsv !== 0 && !(rsv === 0x40 && op !== 0 && op < 8 && this.conn.deflate !== undefined) &&
        !(rsv === 0x40 && op !== 0 && op < 8 && this.conn.state === "unknown");
      if (
        op > 10 || (op > 2 && op < 8) || badRsv || (op >= 8 && (!fin || len > 125)) ||
        !Number.isFinite(len) ||
        (this.masked !== undefined && masked !== this.masked)
      ) {
        this.skips.add("ws_bad_frame");
        this.dropMessage(false);
        this.loseHistory();
        this.mode = Mode.Resync;
        this.resyncPos = 1;
        return;
      }
      if (this.masked === undefined) this.masked = masked;
      const hdr = p + (masked ? 4 : 0);
      const total = hdr + len;
      if (op >= 8) {
        if (n < total) return;
        this.skips.add("ws_control");
        q.consume(total);
        continue;
      }
      if (op === 0 && this.msgOp === 0) {
        // A continuation without its first frame (lost before the capture or a gap): nothing to attach it to.
        this.skips.add("ws_bad_frame");
        if (this.skipFrame(total)) return;
        continue;
      }
      const starting = op !== 0;
      const skipping = !starting && this.msgSkip;
      if (skipping || (starting ? 0 : this.parts.bytes) + len > this.max) {
        if (starting) this.begin(op, rsv);
        if (!skipping) {
          this.skips.add("message_too_large");
          this.skipMessage();
        }
        if (fin) this.msgOp = 0;
        if (this.skipFrame(total)) return;
        continue;
      }
      // Wait for the whole frame before touching message state (this runs again when more bytes come).
      if (n < total) return;
      if (starting) this.begin(op, rsv);
      const payload = new Uint8Array(len);
      if (masked) {
        const m0 = v[p]!, m1 = v[p + 1]!, m2 = v[p + 2]!, m3 = v[p + 3]!;
        let j = 0;
        let k = hdr;
        for (; j + 4 <= len; j += 4, k += 4) {
          payload[j] = v[k]! ^ m0;
          payload[j + 1] = v[k + 1]! ^ m1;
          payload[j + 2] = v[k + 2]! ^ m2;
          payload[j + 3] = v[k + 3]! ^ m3;
        }
        if (j < len) payload[j] = v[k]! ^ m0;
        if (j + 1 < len) payload[j + 1] = v[k + 1]! ^ m1;
        if (j + 2 < len) payload[j + 2] = v[k + 2]! ^ m2;
      } else {
        payload.set(v.subarray(hdr, total));
      }
      q.consume(total);
      if (fin && this.parts.bytes === 0) {
        this.finish(payload, t);
        continue;
      }
      if (!this.parts.add(payload, true)) {
        this.skips.add("tcp_buffer_overflow");
        this.skipMessage();
      }
      if (fin) {
        if (this.msgSkip) this.msgOp = 0;
        else this.finish(this.parts.take(), t);
      }
    }
  }

  /** Starts a new data message (a previous unfinished one is dropped). */
  private begin(op: number, rsv: number): void {
    if (this.msgOp !== 0) this.dropMessage(false);
    this.msgOp = op;
    this.msgCompressed = rsv === 0x40;
    this.msgSkip = false;
  }

  /**
   * The message being assembled is dropped, its later frames framed and skipped. A compressed one went through the
   * sender's compressor all the same: the history later messages refer to is unknown from here (a message that
   * copies from it is lost, counted, instead of inflating against the wrong bytes).
   */
  private skipMessage(): void {
    this.msgSkip = true;
    this.parts.reset();
    if (this.msgCompressed) this.loseHistory();
  }

  /** Drops a whole frame of `total` bytes; true when part of it is still to come (Skip mode entered). */
  private skipFrame(total: number): boolean {
    const have = Math.min(total, this.q.length);
    this.q.consume(have);
    if (have === total) return false;
    this.skip.left = total - have;
    this.mode = Mode.Skip;
    return true;
  }

  private finish(payload: Uint8Array, t: bigint): void {
    const op = this.msgOp;
    this.msgOp = 0;
    let out: Uint8Array | undefined = payload;
    if (this.msgCompressed) {
      out = this.inflate(payload);
      if (out === undefined) return;
      if (out.length > this.max) {
        this.skips.add("message_too_large");
        return;
      }
    }
    this.emit({
      protocol: "websocket",
      timeNs: t,
      flow: this.flow,
      stream: this.stream,
      payload: out,
      text: op === 1,
    });
  }

  /**
   * Inflates one permessage-deflate message with this direction's history; undefined (counted) when it fails or,
   * the history being partly unknown, its bytes depend on what is unknown.
   */
  private inflate(data: Uint8Array): Uint8Array | undefined {
    const d = this.conn.deflate;
    // The sender starts afresh every message: nothing earlier matters, a loss included.
    if (d !== undefined && (this.masked ? d.clientNoContextTakeover : d.serverNoContextTakeover)) {
      // No history: one decompressor for every such direction, reset for each message.
      const r = freshInflater().inflate(data, this.max, true);
      if (typeof r !== "string") return r;
      this.skips.add(r === "too_large" ? "message_too_large" : "ws_deflate_error");
      return undefined;
    }
    if (this.inflater === undefined && this.shadow === undefined) this.startInflater();
    const inf = this.inflater;
    if (inf !== undefined) {
      const r = inf.inflate(data, this.max);
      if (typeof r !== "string") return r;
      // Corrupt, or over the bound: what the sender's compressor holds next is unknown here.
      this.skips.add(r === "too_large" ? "message_too_large" : "ws_deflate_error");
      this.loseHistory();
      return undefined;
    }
    const a = this.inflateWith(this.window, data);
    if (a === undefined) {
      this.loseHistory();
      return undefined;
    }
    const shadow = this.shadow;
    if (shadow === undefined) {
      this.keepHistory(lastWindow(a.all), undefined);
      return a.out;
    }
    // Same structure, so the same outcome; the history the second run copies from differs in every unknown byte.
    const b = this.inflateWith(shadow, data, false);
    if (b === undefined) {
      this.loseHistory();
      return undefined;
    }
    const wa = lastWindow(a.all);
    const wb = lastWindow(b.all);
    this.keepHistory(wa, sameBytes(wa, wb) ? undefined : wb);
    if (!sameBytes(a.out, b.out)) {
      this.skips.add("ws_deflate_history_lost");
      return undefined;
    }
    return a.out;
  }

  /**
   * Inflates `data` after history `hist`: `all` is the history followed by the message's output, `out` the output.
   * Undefined on failure, counted when `count`.
   */
  private inflateWith(
    hist: Uint8Array,
    data: Uint8Array,
    count = true,
  ): { all: Uint8Array; out: Uint8Array } | undefined {
    // A stored (uncompressed, non-final) block holding the history, then the message, then the sync-flush tail the
    // sender removed (RFC 7692 7.2.2).
    const pre = hist.length > 0 ? 5 : 0;
    const input = new Uint8Array(pre + hist.length + data.length + 4);
    if (pre > 0) {
      input[0] = 0;
      input[1] = hist.length & 255;
      input[2] = hist.length >> 8;
      input[3] = ~hist.length & 255;
      input[4] = (~hist.length >> 8) & 255;
      input.set(hist, 5);
    }
    input.set(data, pre + hist.length);
    input.set(SYNC_TAIL, pre + hist.length + data.length);
    try {
      const z = nodeZlib();
      const r = z.inflateRawSync(input, {
        finishFlush: z.constants.Z_SYNC_FLUSH,
        maxOutputLength: hist.length + this.max + 1,
      });
      const all = new Uint8Array(r.buffer, r.byteOffset, r.length);
      return { all, out: all.subarray(hist.length) };
    } catch (e) {
      // Inflating past the bound is a message over it (skipped whole, as uncompressed ones are); the history it
      // would have left is unknown either way.
      if (count) {
        const tooLarge = (e as { code?: unknown }).code === "ERR_BUFFER_TOO_LARGE";
        this.skips.add(tooLarge ? "message_too_large" : "ws_deflate_error");
      }
      return undefined;
    }
  }

  /**
   * Starts the kept decompressor with the known history, if the budget has room for it in place of the history's
   * charge; else messages go on being inflated one by one.
   */
  private startInflater(): void {
    const delta = INFLATER_BYTES - this.historyCharged;
    if (delta > 0 && !this.budget.take(delta)) return;
    if (delta < 0) this.budget.give(-delta);
    this.historyCharged = INFLATER_BYTES;
    this.inflater = new StreamInflater(this.window);
    this.window = EMPTY;
  }

  /** Drops the kept decompressor (its charge stays in `historyCharged` for the caller to settle). */
  private dropInflater(): void {
    this.inflater?.end();
    this.inflater = undefined;
  }

  /** Keeps `window` (and `shadow`, while part is unknown) as the history, charged; lost when the budget is spent. */
  private keepHistory(window: Uint8Array, shadow: Uint8Array | undefined): void {
    const need = window.length + (shadow?.length ?? 0);
    const delta = need - this.historyCharged;
    if (delta > 0 && !this.budget.take(delta)) {
      this.skips.add("tcp_buffer_overflow");
      this.loseHistory();
      return;
    }
    if (delta < 0) this.budget.give(-delta);
    this.historyCharged = need;
    this.window = window;
    this.shadow = shadow;
  }

  /** The history is unknown from here: what later messages copy from it is lost (see UNKNOWN_A). */
  private loseHistory(): void {
    this.dropInflater();
    this.budget.give(this.historyCharged);
    this.historyCharged = 0;
    this.window = UNKNOWN_A;
    this.shadow = UNKNOWN_B;
  }
}

/** A copy of the last 32 KiB of `all` (the history a next message may copy from). */
function lastWindow(all: Uint8Array): Uint8Array {
  return all.slice(Math.max(0, all.length - WINDOW));
}

/** Whether two byte arrays hold the same bytes. */
function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  return Buffer.from(a.buffer, a.byteOffset, a.length).equals(Buffer.from(b.buffer, b.byteOffset, b.length));
}

/** Reads a 64-bit big-endian length as a number; Infinity when above 2^53 (never a real frame). */
function readU64(v: Uint8Array, p: number): number {
  const hi = ((v[p]! << 24) | (v[p + 1]! << 16) | (v[p + 2]! << 8) | v[p + 3]!) >>> 0;
  const lo = ((v[p + 4]! << 24) | (v[p + 5]! << 16) | (v[p + 6]! << 8) | v[p + 7]!) >>> 0;
  if (hi > 0x1fffff) return Infinity;
  return hi * 0x1_0000_0000 + lo;
}
