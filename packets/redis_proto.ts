/**
 * Redis RESP2/RESP3 per direction over reassembled TCP. Client commands are arrays of bulk strings:
 * `PUBLISH`/`SPUBLISH channel message` emit the message (`meta.channel`); `XADD key [NOMKSTREAM]
 * [MAXLEN|MINID [=|~] threshold [LIMIT count]] id field value ...` emits each field's value (`meta.key`,
 * `meta.field`), one message per field; `SET key value` and `LPUSH`/`RPUSH key value...` emit their values
 * (`meta.key`). From the server, pub/sub pushes (`message`, `pmessage`, `smessage`, as RESP2 arrays or RESP3 `>`
 * pushes) emit their payload with `meta.channel`. Every message has `meta.command`. Anything else (replies, other
 * commands, inline commands) is counted `redis_other`. Whole values wait in the buffer until complete, bounded by
 * `maxMessageBytes`; a gap drops the partial value and the parser resyncs to the next `*<n>\r\n$` array start.
 * @module
 */

import type { AppMessage, FlowDirection, SkipCounter } from "./types.ts";
import { ByteBudget, ByteQueue, SkipRest, type TcpStreamSink } from "./tcp_reassembly.ts";

/** Options of the Redis parser. */
export interface RedisOptions {
  /** Safety bound per command or reply; larger ones are skipped, `message_too_large` (default 16 MiB). */
  maxMessageBytes?: number;
  /** Commands whose arguments are emitted (upper case); default PUBLISH, SPUBLISH, XADD, SET, LPUSH, RPUSH. */
  commands?: readonly string[];
  /** Shared cap on buffered bytes. */
  budget?: ByteBudget;
}

const LATIN1 = new TextDecoder("latin1");
const UTF8 = new TextDecoder();
const MAX_LINE = 64 * 1024;
const NEED = -1;
const BAD = -2;
/** The shared budget has no room for a command's argument positions. */
const OVERFLOW = -3;
const MAX_DEPTH = 32;
const DEFAULT_COMMANDS = ["PUBLISH", "SPUBLISH", "XADD", "SET", "LPUSH", "RPUSH"];
const RESYNC_TARGET = /(?:^|\n)[*>][0-9]{1,7}\r\n\$[0-9]{1,10}\r\n/;
/** Aggregate types parsed element by element at the top level: array, push, set, map. */
const AGGREGATES = new Set([0x2a, 0x3e, 0x7e, 0x25]);

/** The pushes whose payload is emitted, besides the configured commands. */
const PUSHES = new Set(["MESSAGE", "SMESSAGE", "PMESSAGE"]);

/**
 * Start and end offsets of a command's bulk strings, charged to the shared budget: a 16 MiB command of empty
 * arguments (6 bytes each) has 2.8 million of them, which as a plain array held ~54 MiB of heap per connection that
 * the budget did not see.
 */
class Positions {
  private buf = new Uint32Array(64);
  private charged = 0;
  /** Offsets stored (two per bulk string). */
  length = 0;

  constructor(private readonly budget: ByteBudget) {}

  /** Offset `i`. */
  at(i: number): number {
    return this.buf[i]!;
  }

  /** Stores one bulk string's range; false (nothing stored) when the budget has no room to grow. */
  push(a: number, b: number): boolean {
    if (this.length + 2 > this.buf.length) {
      const next = this.buf.length * 2;
      const delta = next * 4 - this.charged;
      if (!this.budget.take(delta)) return false;
      this.charged += delta;
      const grown = new Uint32Array(next);
      grown.set(this.buf);
      this.buf = grown;
    }
    this.buf[this.length++] = a;
    this.buf[this.length++] = b;
    return true;
  }

  /** Forgets the offsets, giving large storage back so an idle connection holds little. */
  clear(): void {
    this.length = 0;
    if (this.charged > 0) {
      this.budget.give(this.charged);
      this.charged = 0;
      this.buf = new Uint32Array(64);
    }
  }
}

/** True when `bytes` start like a RESP array of bulk strings (a command or a push). */
export function looksLikeResp(bytes: Uint8Array): boolean {
  const s = LATIN1.decode(bytes.subarray(0, Math.min(bytes.length, 32)));
  return /^[*>][0-9]{1,7}\r\n\$[0-9]{1,10}\r\n/.test(s) || /^\+(?:OK|PONG)\r\n/.test(s);
}

const enum Mode {
  Value,
  Skip,
  Resync,
  Closed,
}

/** One direction of a Redis connection. */
export class RedisDirection implements TcpStreamSink {
  private readonly q: ByteQueue;
  private readonly max: number;
  private readonly commands: Set<string>;
  private mode: Mode;
  /** Bytes the current value needs at least before it is worth parsing again. */
  private need = 0;
  private readonly rest = new SkipRest();
  /** Byte ranges of the top-level array's bulk strings (start, end pairs), while it is one worth emitting from. */
  private readonly elems: Positions;
  private allBulk = true;
  /** The top-level array at the front of the queue is incomplete: element `i` of `n` starts at `p`. */
  private resume: { i: number; n: number; p: number } | undefined;

  /** @param midstream the capture began inside the connection: resync first */
  constructor(
    private readonly flow: FlowDirection,
    private readonly stream: string,
    midstream: boolean,
    private readonly emit: (m: AppMessage) => void,
    private readonly skips: SkipCounter,
    opts: RedisOptions = {},
  ) {
    this.max = opts.maxMessageBytes ?? 16 << 20;
    this.commands = new Set((opts.commands ?? DEFAULT_COMMANDS).map((c) => c.toUpperCase()));
    const budget = opts.budget ?? new ByteBudget();
    this.q = new ByteQueue(budget, this.max + MAX_LINE);
    this.elems = new Positions(budget);
    this.mode = midstream ? Mode.Resync : Mode.Value;
  }

  /** @inheritdoc */
  data(bytes: Uint8Array, timeNs: bigint): void {
    if (this.mode === Mode.Closed) return;
    let b = bytes;
    if (this.mode === Mode.Skip) {
      const rest = this.rest.take(b);
      if (rest === undefined) return;
      b = rest;
      this.mode = Mode.Resync;
    }
    if (!this.q.push(b)) {
      this.skips.add("tcp_buffer_overflow");
      this.need = 0;
      this.resume = undefined;
      this.elems.clear();
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
    if (this.mode === Mode.Skip && this.rest.gapInside(lostBytes)) return;
    if (this.q.length > 0) this.skips.add("redis_bad_message");
    this.q.clear();
    this.need = 0;
    this.resume = undefined;
    this.elems.clear();
    this.mode = Mode.Resync;
  }

  /** @inheritdoc */
  close(_timeNs: bigint): void {
    if (this.q.length > 0 && this.mode === Mode.Value) this.skips.add("redis_bad_message");
    this.q.clear();
    this.resume = undefined;
    this.elems.clear();
    this.mode = Mode.Closed;
  }

  private run(t: bigint): void {
    const q = this.q;
    for (;;) {
      if (this.mode === Mode.Resync) {
        const v = q.view();
        if (v.length === 0) return;
        const text = LATIN1.decode(v);
        const m = RESYNC_TARGET.exec(text);
        if (m === null) {
          if (v.length > 32) q.consume(v.length - 32);
          return;
        }
        q.consume(m.index + (text[m.index] === "\n" ? 1 : 0));
        this.mode = Mode.Value;
        this.need = 0;
      }
      if (this.mode !== Mode.Value) return;
      if (q.length === 0 || q.length < this.need) return;
      const v = q.view();
      this.need = 0;
      const end = this.top(v);
      if (end === NEED) {
        if (this.need > this.max + MAX_LINE) {
          // Too large to hold: skip the whole value when its size is known from the front.
          this.skips.add("message_too_large");
          this.rest.left = this.need - q.length;
          q.clear();
          this.need = 0;
          this.resume = undefined;
          this.elems.clear();
          this.mode = Mode.Skip;
        }
        return;
      }
      if (end === OVERFLOW) {
        // No room for the command's argument positions: its bytes are lost like a gap's.
        this.skips.add("tcp_buffer_overflow");
        q.clear();
        this.need = 0;
        this.resume = undefined;
        this.elems.clear();
        this.mode = Mode.Resync;
        return;
      }
      if (end === BAD) {
        this.skips.add("redis_bad_message");
        q.consume(1);
        this.mode = Mode.Resync;
        continue;
      }
      this.handle(v, t);
      this.elems.clear();
      q.consume(end);
    }
  }

  /**
   * Parses one top-level value at the front of `v`: its end, NEED (with `need` set when known) or BAD. Fills `elems`
   * with the bulk strings of a top-level array or push. An array still arriving is parsed on from the element where
   * the bytes ran out (`resume`), not from its start: re-reading it whole for every segment made a command of many
   * small arguments (a bulk RPUSH, a long reply) quadratic, minutes of CPU for one within the size bound.
   */
  private top(v: Uint8Array): number {
    let i = 0;
    let n: number;
    let p: number;
    const r = this.resume;
    if (r !== undefined) {
      ({ i, n, p } = r);
    } else {
      this.elems.clear();
      this.allBulk = false;
      const type = v[0]!;
      if (!AGGREGATES.has(type)) {
        if (!isRespType(type)) {
          // An inline command (`PING\r\n`): one line.
          const e = lineEnd(v, 0);
          return e < 0 ? e : e + 2;
        }
        return this.skip(v, 0, 0);
      }
      const e = lineEnd(v, 1);
      if (e < 0) return e;
      const count = intOf(v, 1, e);
      if (count === undefined) return BAD;
      p = e + 2;
      if (count < 0) return p;
      // Commands and pushes are arrays of bulk strings; sets and maps (replies) are only framed.
      this.allBulk = type === 0x2a || type === 0x3e;
      n = type === 0x25 ? count * 2 : count;
    }
    this.resume = undefined;
    for (; i < n; i++) {
      if (p >= v.length) return this.suspend(i, n, p, NEED);
      if (v[p] === 0x24) {
        const le = lineEnd(v, p + 1);
        if (le < 0) return this.suspend(i, n, p, le);
        const len = intOf(v, p + 1, le);
        if (len === undefined) return BAD;
        const s = le + 2;
        if (len < 0) {
          this.allBulk = false;
          p = s;
          continue;
        }
        if (s + len + 2 > v.length) {
          this.need = s + len + 2;
          return this.suspend(i, n, p, NEED);
        }
        if (v[s + len] !== 13 || v[s + len + 1] !== 10) return BAD;
        if (this.allBulk) {
          // Positions are kept only for a command or push something is emitted from (not a long reply).
          if (i === 0 && !this.wanted(v, s, len)) this.allBulk = false;
          else if (!this.elems.push(s, s + len)) return OVERFLOW;
        }
        p = s + len + 2;
      } else {
        this.allBulk = false;
        const q = this.skip(v, p, 1);
        if (q < 0) return this.suspend(i, n, p, q);
        p = q;
      }
    }
    return p;
  }

  /** True when a top-level array whose first bulk string is `v[s..s+len)` may carry a message. */
  private wanted(v: Uint8Array, s: number, len: number): boolean {
    if (len > 32) return false;
    const word = LATIN1.decode(v.subarray(s, s + len)).toUpperCase();
    return PUSHES.has(word) || this.commands.has(word);
  }

  /** Remembers where an incomplete array stopped (when more bytes are needed) and returns `why`. */
  private suspend(i: number, n: number, p: number, why: number): number {
    if (why === NEED) this.resume = { i, n, p };
    return why;
  }

  /** Skips any RESP value at `p`; its end, NEED or BAD. */
  private skip(v: Uint8Array, p: number, depth: number): number {
    if (depth > MAX_DEPTH) return BAD;
    if (p >= v.length) return NEED;
    const type = v[p]!;
    const e = lineEnd(v, p + 1);
    if (e < 0) return e;
    switch (type) {
      case 0x2b: // + simple string
      case 0x2d: // - error
      case 0x3a: // : integer
      case 0x5f: // _ null
      case 0x2c: // , double
      case 0x23: // # boolean
      case 0x28: // ( big number
        return e + 2;
      case 0x24: // $ bulk string
      case 0x3d: // = verbatim string
      case 0x21: { // ! bulk error
        const len = intOf(v, p + 1, e);
        if (len === undefined) return BAD;
        if (len < 0) return e + 2;
        const end = e + 2 + len + 2;
        if (end > v.length) {
          this.need = end;
          return NEED;
        }
        return end;
      }
      case 0x2a: // * array
      case 0x7e: // ~ set
      case 0x3e: // > push
      case 0x25: // % map
      case 0x7c: { // | attribute (then the value it annotates)
        const n = intOf(v, p + 1, e);
        if (n === undefined) return BAD;
        let q = e + 2;
        const count = type === 0x25 || type === 0x7c ? n * 2 : n;
        for (let i = 0; i < count; i++) {
          q = this.skip(v, q, depth + 1);
          if (q < 0) return q;
        }
        return type === 0x7c ? this.skip(v, q, depth + 1) : q;
      }
      default:
        return BAD;
    }
  }

  /** Emits what a complete top-level value carries, or counts it. */
  private handle(v: Uint8Array, t: bigint): void {
    const el = this.elems;
    if (!this.allBulk || el.length < 2) {
      this.skips.add("redis_other");
      return;
    }
    const word = (i: number) => UTF8.decode(v.subarray(el.at(2 * i), el.at(2 * i + 1)));
    const arg = (i: number) => v.slice(el.at(2 * i), el.at(2 * i + 1));
    const argc = el.length / 2;
    const command = LATIN1.decode(v.subarray(el.at(0), Math.min(el.at(1), el.at(0) + 32))).toUpperCase();
    const out = (payload: Uint8Array, meta: Record<string, string>) =>
      this.emit({ protocol: "redis", timeNs: t, flow: this.flow, stream: this.stream, payload, meta });
    switch (command) {
      case "MESSAGE":
      case "SMESSAGE":
        if (argc === 3) {
          out(arg(2), { command: command.toLowerCase(), channel: word(1) });
          return;
        }
        break;
      case "PMESSAGE":
        if (argc === 4) {
          out(arg(3), { command: "pmessage", pattern: word(1), channel: word(2) });
          return;
        }
        break;
      default:
        if (!this.commands.has(command)) break;
        switch (command) {
          case "PUBLISH":
          case "SPUBLISH":
            if (argc === 3) {
              out(arg(2), { command, channel: word(1) });
              return;
            }
            break;
          case "SET":
            if (argc >= 3) {
              out(arg(2), { command, key: word(1) });
              return;
            }
            break;
          case "LPUSH":
          case "RPUSH":
            if (argc >= 3) {
              const key = word(1);
              for (let i = 2; i < argc; i++) out(arg(i), { command, key });
              return;
            }
            break;
          case "XADD": {
            const first = xaddFields(argc, (i) => word(i).toUpperCase());
            if (first < 0) {
              this.skips.add("redis_bad_message");
              return;
            }
            const key = word(1);
            for (let i = first; i + 1 < argc; i += 2) out(arg(i + 1), { command, key, field: word(i) });
            return;
          }
        }
        this.skips.add("redis_bad_message");
        return;
    }
    this.skips.add("redis_other");
  }
}

/**
 * Index of the first field of an `XADD` whose arguments (index 0 = `XADD`) are read by `upper`; -1 when the
 * options, id or field/value pairs are malformed.
 */
export function xaddFields(argc: number, upper: (i: number) => string): number {
  let i = 2;
  for (;;) {
    if (i >= argc) return -1;
    const tok = upper(i);
    if (tok === "NOMKSTREAM") i++;
    else if (tok === "MAXLEN" || tok === "MINID") {
      i++;
      if (i < argc && (upper(i) === "=" || upper(i) === "~")) i++;
      i++;
    } else if (tok === "LIMIT") i += 2;
    else break;
  }
  // `i` is the entry id; pairs follow.
  const first = i + 1;
  const rest = argc - first;
  return rest > 0 && rest % 2 === 0 ? first : -1;
}

function isRespType(b: number): boolean {
  return b === 0x2b || b === 0x2d || b === 0x3a || b === 0x24 || b === 0x2a || b === 0x5f || b === 0x2c ||
    b === 0x23 || b === 0x28 || b === 0x21 || b === 0x3d || b === 0x25 || b === 0x7e || b === 0x3e ||
    b === 0x7c;
}

/** Index of the `\r` of the CRLF ending the line that starts at `p`; NEED or BAD (too long). */
function lineEnd(v: Uint8Array, p: number): number {
  const lim = Math.min(v.length - 1, p + MAX_LINE);
  for (let i = p; i < lim; i++) {
    if (v[i] === 13 && v[i + 1] === 10) return i;
  }
  return v.length - p > MAX_LINE ? BAD : NEED;
}

/** Decimal integer in `v[a..b)` (optional leading `-`); undefined when not one. */
function intOf(v: Uint8Array, a: number, b: number): number | undefined {
  if (a >= b || b - a > 16) return undefined;
  let neg = false;
  let i = a;
  if (v[i] === 0x2d) {
    neg = true;
    i++;
    if (i === b) return undefined;
  }
  let n = 0;
  for (; i < b; i++) {
    const c = v[i]! - 48;
    if (c < 0 || c > 9) return undefined;
    n = n * 10 + c;
  }
  return neg ? -n : n;
}
