/**
 * NATS client protocol per direction over reassembled TCP: `PUB <subject> [reply] <#bytes>` and
 * `HPUB <subject> [reply] <#header bytes> <#total bytes>` from clients, `MSG <subject> <sid> [reply] <#bytes>` and
 * `HMSG ...` from the server. Each payload (headers removed) is one `AppMessage` with `meta.subject` (and
 * `meta.reply`, `meta.command`). PING/PONG/INFO/CONNECT/SUB/UNSUB/+OK/-ERR are counted `nats_control`.
 * A gap inside a payload of known length keeps the framing; elsewhere the parser resyncs to the next line that
 * starts with a protocol verb.
 * @module
 */

import type { AppMessage, FlowDirection, SkipCounter } from "./types.ts";
import { ByteBudget, ByteQueue, SkipRest, type TcpStreamSink } from "./tcp_reassembly.ts";

/** Options of the NATS parser. */
export interface NatsOptions {
  /** Safety bound per payload; larger ones are skipped whole, `message_too_large` (default 16 MiB). */
  maxMessageBytes?: number;
  /** Shared cap on buffered bytes. */
  budget?: ByteBudget;
}

const LATIN1 = new TextDecoder("latin1");
/** Longest control line accepted (INFO can be a few KiB). */
const MAX_LINE = 64 * 1024;
const CONTROL = new Set(["PING", "PONG", "INFO", "CONNECT", "SUB", "UNSUB", "+OK", "-ERR"]);
const RESYNC_TARGET = /(?:^|\n)(?:PUB|HPUB|MSG|HMSG|PING|PONG|INFO|CONNECT|SUB|UNSUB|\+OK|-ERR)[ \t\r]/i;

/** True when `bytes` start like a NATS protocol line. */
export function looksLikeNats(bytes: Uint8Array): boolean {
  const s = LATIN1.decode(bytes.subarray(0, Math.min(bytes.length, 64)));
  return /^(?:INFO \{|CONNECT \{|(?:PUB|SUB|HPUB) \S+ |MSG \S+ \S+ |HMSG \S+ \S+ |PING\r\n|PONG\r\n)/i.test(
    s,
  );
}

const enum Mode {
  Line,
  Payload,
  Skip,
  Resync,
  Closed,
}

interface Pending {
  command: string;
  subject: string;
  reply: string | undefined;
  /** Header bytes at the start of the payload (HPUB/HMSG). */
  headerBytes: number;
  /** Payload bytes (headers included). */
  total: number;
}

/** Parses one `PUB`/`HPUB`/`MSG`/`HMSG` line's arguments; undefined when malformed. */
export function parseNatsLine(command: string, args: string[]): Pending | undefined {
  const num = (s: string | undefined) => (s !== undefined && /^[0-9]{1,12}$/.test(s) ? Number(s) : -1);
  let subject: string | undefined, reply: string | undefined, hdr = 0, total = -1;
  switch (command) {
    case "PUB":
      if (args.length !== 2 && args.length !== 3) return undefined;
      subject = args[0];
      if (args.length === 3) reply = args[1];
      total = num(args[args.length - 1]);
      break;
    case "HPUB":
      if (args.length !== 3 && args.length !== 4) return undefined;
      subject = args[0];
      if (args.length === 4) reply = args[1];
      hdr = num(args[args.length - 2]);
      total = num(args[args.length - 1]);
      break;
    case "MSG":
      if (args.length !== 3 && args.length !== 4) return undefined;
      subject = args[0];
      if (args.length === 4) reply = args[2];
      total = num(args[args.length - 1]);
      break;
    case "HMSG":
      if (args.length !== 4 && args.length !== 5) return undefined;
      subject = args[0];
      if (args.length === 5) reply = args[2];
      hdr = num(args[args.length - 2]);
      total = num(args[args.length - 1]);
      break;
    default:
      return undefined;
  }
  if (subject === undefined || total < 0 || hdr < 0 || hdr > total) return undefined;
  return { command, subject, reply, headerBytes: hdr, total };
}

/** One direction of a NATS client connection. */
export class NatsDirection implements TcpStreamSink {
  private readonly q: ByteQueue;
  private readonly max: number;
  private mode: Mode;
  private scan = 0;
  private pending: Pending | undefined;
  private readonly skip = new SkipRest();

  /** @param midstream the capture began inside the connection: resync first */
  constructor(
    private readonly flow: FlowDirection,
    private readonly stream: string,
    midstream: boolean,
    private readonly emit: (m: AppMessage) => void,
    private readonly skips: SkipCounter,
    opts: NatsOptions = {},
  ) {
    this.max = opts.maxMessageBytes ?? 16 << 20;
    this.q = new ByteQueue(opts.budget ?? new ByteBudget(), Math.max(this.max + 2, MAX_LINE) + 64);
    this.mode = midstream ? Mode.Resync : Mode.Line;
  }

  /** @inheritdoc */
  data(bytes: Uint8Array, timeNs: bigint): void {
    if (this.mode === Mode.Closed) return;
    let b = bytes;
    if (this.mode === Mode.Skip) {
      const rest = this.skip.take(b);
      if (rest === undefined) return;
      b = rest;
      this.mode = Mode.Line;
    }
    if (!this.q.push(b)) {
      this.skips.add("tcp_buffer_overflow");
      this.pending = undefined;
      this.mode = Mode.Resync;
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
    if (this.mode === Mode.Closed) return;
    if (this.mode === Mode.Payload && this.pending !== undefined) {
      const need = this.pending.total + 2;
      if (this.q.length + lostBytes < need) {
        this.skips.add("nats_bad_message");
        this.skip.left = need - this.q.length - lostBytes;
        this.pending = undefined;
        this.q.clear();
        this.mode = Mode.Skip;
        return;
      }
    }
    if (this.mode === Mode.Skip && this.skip.gapInside(lostBytes)) return;
    if (this.pending !== undefined || this.q.length > 0) this.skips.add("nats_bad_message");
    this.pending = undefined;
    this.q.clear();
    this.scan = 0;
    this.mode = Mode.Resync;
  }

  /** @inheritdoc */
  close(_timeNs: bigint): void {
    // A payload, or a protocol line, that the connection's end cut off is lost.
    if (this.pending !== undefined || (this.mode === Mode.Line && this.q.length > 0)) {
      this.skips.add("nats_bad_message");
    }
    this.pending = undefined;
    this.q.clear();
    this.mode = Mode.Closed;
  }

  private run(t: bigint): void {
    const q = this.q;
    for (;;) {
      switch (this.mode) {
        case Mode.Line: {
          const v = q.view();
          if (v.length === 0) return;
          let nl = -1;
          for (let i = this.scan; i < v.length; i++) {
            if (v[i] === 10) {
              nl = i;
              break;
            }
          }
          if (nl < 0) {
            this.scan = v.length;
            if (v.length > MAX_LINE) this.bad(true);
            else return;
            continue;
          }
          this.scan = 0;
          const end = nl > 0 && v[nl - 1] === 13 ? nl - 1 : nl;
          const line = LATIN1.decode(v.subarray(0, end));
          q.consume(nl + 1);
          if (line.length === 0) continue;
          const parts = line.split(/[ \t]+/).filter((s) => s.length > 0);
          const command = (parts[0] ?? "").toUpperCase();
          if (CONTROL.has(command)) {
            this.skips.add("nats_control");
            continue;
          }
          const p = parseNatsLine(command, parts.slice(1));
          if (p === undefined) {
            this.bad(false);
            continue;
          }
          if (p.total > this.max) {
            this.skips.add("message_too_large");
            this.skip.left = p.total + 2;
            this.mode = Mode.Skip;
            const n = Math.min(this.skip.left, q.length);
            q.consume(n);
            this.skip.left -= n;
            if (this.skip.left === 0) this.mode = Mode.Line;
            continue;
          }
          this.pending = p;
          this.mode = Mode.Payload;
          continue;
        }
        case Mode.Payload: {
          const p = this.pending!;
          if (q.length < p.total + 2) return;
          const v = q.view();
          if (v[p.total] !== 13 || v[p.total + 1] !== 10) {
            this.pending = undefined;
            this.bad(true);
            continue;
          }
          const payload = v.slice(p.headerBytes, p.total);
          q.consume(p.total + 2);
          this.pending = undefined;
          this.mode = Mode.Line;
          const meta: Record<string, string> = { command: p.command, subject: p.subject };
          if (p.reply !== undefined) meta.reply = p.reply;
          this.emit({ protocol: "nats", timeNs: t, flow: this.flow, stream: this.stream, payload, meta });
          continue;
        }
        case Mode.Skip: {
          const n = Math.min(this.skip.left, q.length);
          q.consume(n);
          this.skip.left -= n;
          if (this.skip.left > 0) return;
          this.mode = Mode.Line;
          continue;
        }
        case Mode.Resync: {
          const v = q.view();
          if (v.length === 0) return;
          const text = LATIN1.decode(v);
          const m = RESYNC_TARGET.exec(text);
          if (m === null) {
            if (v.length > 16) q.consume(v.length - 16);
            return;
          }
          q.consume(m.index + (text[m.index] === "\n" ? 1 : 0));
          this.mode = Mode.Line;
          this.scan = 0;
          continue;
        }
        case Mode.Closed:
          return;
      }
    }
  }

  /** Loses sync; `step` moves past the current byte so the resync does not find the same bad line again. */
  private bad(step: boolean): void {
    this.skips.add("nats_bad_message");
    this.mode = Mode.Resync;
    this.scan = 0;
    if (step) this.q.consume(1);
  }
}
