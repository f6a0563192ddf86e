/**
 * HTTP/1.x per direction over reassembled TCP: request line (or status line) and headers, then a body by
 * Content-Length, chunked transfer coding, or (responses only) until the connection closes. Pipelined and keep-alive
 * messages follow one another. Each request body is one `AppMessage` with `meta.method`, `meta.path` and
 * `meta.content_type`; response bodies are counted `http_response` unless `responses` is set (then emitted with
 * `meta.status`). A gap inside a body of known length drops that message and keeps the framing; elsewhere the
 * parser resyncs to the next request or status line. A 101 ends parsing; so does an upgrade request (or CONNECT)
 * unless the client's next bytes are another request line (the server refused it and the connection stays HTTP/1.1).
 * The two directions of a connection may share an {@link HttpConnection}: then a response to HEAD has no body
 * whatever its Content-Length says, and a 2xx to CONNECT opens a tunnel.
 * @module
 */

import { brotliDecompressSync, gunzipSync, inflateRawSync, inflateSync } from "node:zlib";
import type { AppMessage, FlowDirection, SkipCounter } from "./types.ts";
import { ByteBudget, ByteQueue, MessageParts, type TcpStreamSink } from "./tcp_reassembly.ts";

/** A parsed request or status line with its headers. */
export interface HttpHead {
  kind: "request" | "response";
  /** Request method (upper case as sent). */
  method: string;
  /** Request target. */
  path: string;
  /** `HTTP/1.0` or `HTTP/1.1`. */
  version: string;
  /** Response status (0 for requests). */
  status: number;
  /** Header fields by lower-case name; repeated fields joined with `, `. */
  headers: Map<string, string>;
}

const LATIN1 = new TextDecoder("latin1");
/** Longest head (start line + headers) accepted. */
const MAX_HEAD = 64 * 1024;

/** Index just past the `\r\n\r\n` ending a head in `v`, searching from `from`; -1 when not there yet. */
export function findHeadEnd(v: Uint8Array, from = 0): number {
  for (let i = Math.max(0, from); i + 3 < v.length; i++) {
    if (v[i + 3] === 10) {
      if (v[i] === 13 && v[i + 1] === 10 && v[i + 2] === 13) return i + 4;
    }
  }
  return -1;
}

const REQUEST_LINE = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+) ([^ \r\n]+) (HTTP\/1\.[01])$/;
const STATUS_LINE = /^(HTTP\/1\.[01]) ([0-9]{3})(?: .*)?$/;

/**
 * A body as sent before its Content-Encoding: gzip (what Pixie's Stirling inflates in http_events response bodies,
 * and most servers apply to JSON when the client accepts it), deflate or br; `identity` or none as it is. A list
 * (`gzip, br`: applied in that order, as repeated headers join too) is undone from its last coding on; `identity`
 * in it is nothing to undo. Undefined when it does not decode, or would decode to more than `max` bytes (a small
 * body may inflate a thousandfold). What an encoding not listed here covers is handed on as it is (the audio
 * envelope then fails on it, counted).
 */
export function decodeContent(
  body: Uint8Array,
  encoding: string | undefined,
  max: number,
): Uint8Array | undefined {
  const codings = (encoding ?? "").split(",").map((c) => c.trim().toLowerCase())
    .filter((c) => c !== "" && c !== "identity");
  let out = body;
  for (let i = codings.length - 1; i >= 0; i--) {
    const next = decodeOne(out, codings[i]!, max);
    if (next === undefined) return undefined;
    // A coding not known here: what it covers cannot be undone either.
    if (next === out) break;
    out = next;
  }
  return out;
}

/** One content coding undone: `body` itself for a coding not known here, undefined when it does not decode. */
function decodeOne(body: Uint8Array, coding: string, max: number): Uint8Array | undefined {
  const opts = { maxOutputLength: max };
  try {
    const out = coding === "gzip" || coding === "x-gzip"
      ? gunzipSync(body, opts)
      : coding === "deflate"
      ? inflateDeflate(body, opts)
      : coding === "br"
      ? brotliDecompressSync(body, opts)
      : undefined;
    return out === undefined ? body : new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
  } catch {
    return undefined;
  }
}

/**
 * A form body as Pixie's Stirling hands it on (HTTPUrlDecode): `+` is a space, `%XX` with two hex digits its byte,
 * anything else as it is.
 */
export function formUrlDecode(body: Uint8Array): Uint8Array {
  const out = new Uint8Array(body.length);
  let o = 0;
  const hex = (c: number) =>
    c >= 48 && c <= 57 ? c - 48 : c >= 65 && c <= 70 ? c - 55 : c >= 97 && c <= 102 ? c - 87 : -1;
  for (let i = 0; i < body.length; i++) {
    const c = body[i]!;
    if (c === 43) out[o++] = 32;
    else if (c === 37 && i + 2 < body.length && hex(body[i + 1]!) >= 0 && hex(body[i + 2]!) >= 0) {
      out[o++] = (hex(body[i + 1]!) << 4) | hex(body[i + 2]!);
      i += 2;
    } else out[o++] = c;
  }
  return out.subarray(0, o);
}

/** `deflate` is zlib-wrapped (RFC 9110 8.4.1.2), but some servers send the raw stream: either is taken. */
function inflateDeflate(body: Uint8Array, opts: { maxOutputLength: number }): Uint8Array {
  try {
    return inflateSync(body, opts);
  } catch (e) {
    // Past the bound is no reason to try the other form.
    if ((e as { code?: string }).code === "ERR_BUFFER_TOO_LARGE") throw e;
    return inflateRawSync(body, opts);
  }
}

/** Parses a head (start line and header lines, with or without the final blank line); undefined when malformed. */
export function parseHead(bytes: Uint8Array): HttpHead | undefined {
  const text = LATIN1.decode(bytes);
  const lines = text.split("\r\n");
  const first = lines[0] ?? "";
  let head: HttpHead;
  const rq = REQUEST_LINE.exec(first);
  if (rq !== null) {
    head = { kind: "request", method: rq[1]!, path: rq[2]!, version: rq[3]!, status: 0, headers: new Map() };
  } else {
    const st = STATUS_LINE.exec(first);
    if (st === null) return undefined;
    head = {
      kind: "response",
      method: "",
      path: "",
      version: st[1]!,
      status: Number(st[2]),
      headers: new Map(),
    };
  }
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!;
    if (line === "") continue;
    const c = line.indexOf(":");
    if (c <= 0) return undefined;
    const name = line.slice(0, c).trim().toLowerCase();
    const value = line.slice(c + 1).trim();
    const prev = head.headers.get(name);
    head.headers.set(name, prev === undefined ? value : `${prev}, ${value}`);
  }
  return head;
}

/** True when `bytes` start like an HTTP/1 request or response (enough for `discover`). */
export function looksLikeHttp(bytes: Uint8Array): boolean {
  const s = LATIN1.decode(bytes.subarray(0, Math.min(bytes.length, 256)));
  const nl = s.indexOf("\r\n");
  const line = nl < 0 ? s : s.slice(0, nl);
  if (nl < 0) {
    return /^(GET|POST|PUT|PATCH|DELETE|HEAD|OPTIONS) \S+ HTTP\/1\.[01]$|^HTTP\/1\.[01] \d{3}/.test(s);
  }
  return REQUEST_LINE.test(line) || STATUS_LINE.test(line);
}

/** Requests a connection may have outstanding before pairing them with responses is given up. */
const MAX_OUTSTANDING = 1024;

/**
 * What the two directions of one HTTP/1 connection share: the methods of the requests read and not answered yet,
 * oldest first, so a response knows its request's method (RFC 9112 6.3: a response to HEAD has no body, a 2xx to
 * CONNECT starts a tunnel). Once either direction loses sync (it began mid-connection, a gap, an unparsable head)
 * or a response comes with no request read, pairing is off for the connection's life and responses are framed by
 * their own headers alone.
 */
export class HttpConnection {
  private readonly methods: string[] = [];
  private unpaired = false;
  /** A head was read or sync lost: a direction opening with its SYN now belongs to a new connection. */
  started = false;
  /** Directions attached (so the owner can forget the connection when both closed). */
  refs = 0;

  /** A request's head was read. */
  requested(method: string): void {
    this.started = true;
    if (this.unpaired) return;
    if (this.methods.length >= MAX_OUTSTANDING) this.lose();
    else this.methods.push(method);
  }

  /** A final response's head was read: the method of the request it answers; undefined when not known. */
  answered(): string | undefined {
    this.started = true;
    if (this.unpaired) return undefined;
    const m = this.methods.shift();
    if (m === undefined) this.lose();
    return m;
  }

  /** A direction lost sync: requests and responses can no longer be paired. */
  lose(): void {
    this.started = true;
    this.unpaired = true;
    this.methods.length = 0;
  }
}

/** Options of the HTTP/1 parser. */
export interface Http1Options {
  /** Safety bound per body; a larger body is skipped whole and counted `message_too_large` (default 16 MiB). */
  maxMessageBytes?: number;
  /** Emit response bodies too, with `meta.status` (default false: counted `http_response`). */
  responses?: boolean;
  /** Shared cap on buffered bytes. */
  budget?: ByteBudget;
  /** State shared with the connection's other direction (without it, a HEAD's response waits for a body). */
  connection?: HttpConnection;
}

const enum Mode {
  Head,
  BodyLength,
  ChunkSize,
  ChunkData,
  ChunkEnd,
  Trailers,
  BodyUntilClose,
  Resync,
  /**
   * After a request that asked for an upgrade (or a CONNECT): the server may have refused it and answered in
   * HTTP/1.1, and the client then goes on in HTTP/1.1 (RFC 9110 7.8; Java's HttpClient asks every cold plain-text
   * connection for h2c on its first request). The client's next bytes tell: a request line, or the new protocol.
   */
  Upgraded,
  Opaque,
}

/** Longest first line looked at after an upgrade request before the bytes are taken for the new protocol. */
const MAX_UPGRADED_LINE = 8192;

/** A whole request or status line; not anchored to a line start, since a message follows a body directly. */
const RESYNC_TARGET =
  /(?:GET|POST|PUT|PATCH|DELETE|HEAD|OPTIONS|TRACE|CONNECT) [^ \r\n]+ HTTP\/1\.[01]\r\n|HTTP\/1\.[01] \d{3}[ \r]/;

/** One direction of an HTTP/1 connection. */
export class Http1Direction implements TcpStreamSink {
  private readonly q: ByteQueue;
  private readonly parts: MessageParts;
  private readonly max: number;
  private readonly responses: boolean;
  private mode: Mode;
  private scan = 0;
  /** Body bytes still to come in the current body or chunk (including nothing else). */
  private remaining = 0;
  private head: HttpHead | undefined;
  /** The current message is being collected (false: its bytes are only counted or discarded). */
  private collect = false;
  /** The current message lost bytes or passed the bound: it is framed but never emitted. */
  private discard = false;
  private bodyBytes = 0;
  /** After this message the connection carries another protocol. */
  private upgrade = false;
  /** Shared with the other direction until this one closes. */
  private conn: HttpConnection | undefined;

  /**
   * @param flow direction these bytes travel
   * @param stream stream name (`flowName(flow)`)
   * @param midstream the capture began inside the connection: resync first
   */
  constructor(
    private readonly flow: FlowDirection,
    private readonly stream: string,
    midstream: boolean,
    private readonly emit: (m: AppMessage) => void,
    private readonly skips: SkipCounter,
    opts: Http1Options = {},
  ) {
    this.max = opts.maxMessageBytes ?? 16 << 20;
    this.responses = opts.responses ?? false;
    const budget = opts.budget ?? new ByteBudget();
    this.q = new ByteQueue(budget, Math.max(this.max, MAX_HEAD) + 64);
    this.parts = new MessageParts(budget);
    this.conn = opts.connection;
    if (this.conn !== undefined) this.conn.refs++;
    this.mode = Mode.Head;
    if (midstream) this.lostSync();
  }

  /** Resyncs to the next start line; the messages lost meanwhile cannot be paired any more. */
  private lostSync(): void {
    this.mode = Mode.Resync;
    this.conn?.lose();
  }

  /** @inheritdoc */
  data(bytes: Uint8Array, timeNs: bigint): void {
    if (this.mode === Mode.Opaque) return;
    if (!this.q.push(bytes)) {
      this.skips.add("tcp_buffer_overflow");
      this.dropMessage();
      this.lostSync();
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
    if (
      (this.mode === Mode.BodyLength || this.mode === Mode.ChunkData) &&
      this.q.length + lostBytes < this.remaining
    ) {
      // The hole lies inside a body of known length: the framing survives, only this message is lost.
      this.remaining -= this.q.length + lostBytes;
      this.q.clear();
      if (!this.discard) this.skips.add("http_bad_message");
      this.discard = true;
      this.parts.reset();
      return;
    }
    if (this.mode !== Mode.Head || this.q.length > 0) this.dropMessage();
    this.q.clear();
    this.scan = 0;
    this.lostSync();
  }

  /** @inheritdoc */
  close(timeNs: bigint): void {
    if (this.mode === Mode.BodyUntilClose) this.complete(timeNs);
    else if (this.mode === Mode.Head) {
      // A head the connection's end cut off is a message lost.
      if (this.q.length > 0) this.skips.add("http_bad_message");
    } else if (this.mode !== Mode.Opaque && this.mode !== Mode.Resync) {
      this.dropMessage();
    }
    this.q.clear();
    this.parts.reset();
    if (this.conn !== undefined) this.conn.refs--;
    this.conn = undefined;
    this.mode = Mode.Opaque;
  }

  private dropMessage(): void {
    if (this.head !== undefined && !this.discard) this.skips.add("http_bad_message");
    this.head = undefined;
    this.parts.reset();
    this.discard = false;
  }

  private run(t: bigint): void {
    for (;;) {
      const q = this.q;
      switch (this.mode) {
        case Mode.Head: {
          // Blank lines between pipelined messages are allowed.
          while (q.length > 0 && (q.at(0) === 13 || q.at(0) === 10)) q.consume(1);
          if (q.length === 0) return;
          const v = q.view();
          const end = findHeadEnd(v, this.scan);
          if (end < 0) {
            this.scan = Math.max(0, v.length - 3);
            if (v.length > MAX_HEAD) {
              this.skips.add("http_bad_message");
              this.lostSync();
              q.consume(1);
              this.scan = 0;
              continue;
            }
            return;
          }
          this.scan = 0;
          const head = parseHead(v.subarray(0, end - 4));
          q.consume(end);
          if (head === undefined) {
            this.skips.add("http_bad_message");
            this.lostSync();
            continue;
          }
          if (!this.begin(head, t)) continue;
          continue;
        }
        case Mode.BodyLength:
        case Mode.ChunkData: {
          if (q.length === 0) return;
          const n = Math.min(q.length, this.remaining);
          this.body(q.view().subarray(0, n));
          q.consume(n);
          this.remaining -= n;
          if (this.remaining > 0) return;
          if (this.mode === Mode.BodyLength) this.complete(t);
          else this.mode = Mode.ChunkEnd;
          continue;
        }
        case Mode.ChunkEnd: {
          if (q.length < 2) return;
          if (q.at(0) !== 13 || q.at(1) !== 10) {
            this.badFraming();
            continue;
          }
          q.consume(2);
          this.mode = Mode.ChunkSize;
          continue;
        }
        case Mode.ChunkSize: {
          const v = q.view();
          const nl = v.indexOf(10);
          if (nl < 0) {
            if (v.length > 4096) this.badFraming();
            else return;
            continue;
          }
          const line = LATIN1.decode(v.subarray(0, nl)).replace(/\r$/, "");
          q.consume(nl + 1);
          const m = /^([0-9A-Fa-f]{1,12})(?:[ \t]*;.*)?[ \t]*$/.exec(line);
          if (m === null) {
            this.badFraming();
            continue;
          }
          const size = parseInt(m[1]!, 16);
          if (size === 0) {
            this.mode = Mode.Trailers;
            continue;
          }
          this.remaining = size;
          this.mode = Mode.ChunkData;
          continue;
        }
        case Mode.Trailers: {
          const v = q.view();
          const nl = v.indexOf(10);
          if (nl < 0) {
            if (v.length > MAX_HEAD) this.badFraming();
            else return;
            continue;
          }
          const empty = nl === 0 || (nl === 1 && v[0] === 13);
          q.consume(nl + 1);
          if (empty) this.complete(t);
          continue;
        }
        case Mode.BodyUntilClose: {
          if (q.length === 0) return;
          this.body(q.view());
          q.consume(q.length);
          return;
        }
        case Mode.Resync: {
          if (!this.resync()) return;
          this.mode = Mode.Head;
          // The search for the head's end starts at this request, not where it got to in a head that was lost.
          this.scan = 0;
          continue;
        }
        case Mode.Upgraded: {
          // After a switch the client speaks the new protocol (WebSocket frames, the h2 preface `PRI * HTTP/2.0`,
          // TLS through a tunnel), which never starts with an HTTP/1 request line.
          const v = q.view();
          if (v.length === 0) return;
          const nl = v.indexOf(10);
          if (nl < 0 && v.length <= MAX_UPGRADED_LINE) return;
          const line = nl < 0 ? "" : LATIN1.decode(v.subarray(0, nl)).replace(/\r$/, "");
          this.mode = REQUEST_LINE.test(line) ? Mode.Head : Mode.Opaque;
          continue;
        }
        case Mode.Opaque:
          q.clear();
          return;
      }
    }
  }

  /** Starts a message after its head; false when the head's framing is unusable. */
  private begin(head: HttpHead, t: bigint): boolean {
    this.head = head;
    this.discard = false;
    this.bodyBytes = 0;
    this.parts.reset();
    this.collect = head.kind === "request" || this.responses;
    const h = head.headers;
    this.upgrade = (head.kind === "request" && (head.method === "CONNECT" || h.has("upgrade"))) ||
      (head.kind === "response" && head.status === 101);
    // A 1xx other than 101 is interim: the final response to the same request follows.
    const method = head.kind === "request"
      ? (this.conn?.requested(head.method), undefined)
      : head.status >= 200 || head.status === 101
      ? this.conn?.answered()
      : undefined;
    if (method === "CONNECT" && head.status < 300) this.upgrade = true;
    if (
      head.kind === "response" &&
      (head.status < 200 || head.status === 204 || head.status === 304 || method === "HEAD" || this.upgrade)
    ) {
      // No body, whatever the headers say (a HEAD's response announces the GET's Content-Length).
      this.complete(t);
      return true;
    }
    const te = h.get("transfer-encoding");
    if (te !== undefined && /(?:^|,)\s*chunked\s*$/i.test(te)) {
      this.mode = Mode.ChunkSize;
      return true;
    }
    const cl = h.get("content-length");
    if (cl !== undefined) {
      const values = new Set(cl.split(",").map((s) => s.trim()));
      const only = values.size === 1 ? [...values][0]! : "";
      if (!/^[0-9]{1,15}$/.test(only)) {
        this.skips.add("http_bad_message");
        this.head = undefined;
        this.lostSync();
        return false;
      }
      this.remaining = Number(only);
      if (this.remaining === 0) this.complete(t);
      else this.mode = Mode.BodyLength;
      return true;
    }
    if (head.kind === "response" && !this.upgrade) {
      this.mode = Mode.BodyUntilClose;
      return true;
    }
    this.complete(t);
    return true;
  }

  private body(b: Uint8Array): void {
    this.bodyBytes += b.length;
    if (this.discard || !this.collect) return;
    if (this.parts.bytes + b.length > this.max) {
      this.skips.add("message_too_large");
      this.discard = true;
      this.parts.reset();
      return;
    }
    if (!this.parts.add(b)) {
      this.skips.add("tcp_buffer_overflow");
      this.discard = true;
      this.parts.reset();
    }
  }

  private badFraming(): void {
    this.skips.add("http_bad_message");
    this.head = undefined;
    this.discard = false;
    this.parts.reset();
    this.lostSync();
  }

  private complete(t: bigint): void {
    const head = this.head;
    // A 101 is the switch itself; an upgrade request is followed by the switch or by more HTTP/1.1.
    this.mode = !this.upgrade ? Mode.Head : head?.kind === "request" ? Mode.Upgraded : Mode.Opaque;
    this.head = undefined;
    if (head === undefined) return;
    if (this.discard || this.bodyBytes === 0) {
      this.parts.reset();
      this.discard = false;
      return;
    }
    if (!this.collect) {
      this.skips.add("http_response");
      return;
    }
    let payload = decodeContent(this.parts.take(), head.headers.get("content-encoding"), this.max);
    if (payload === undefined) {
      this.skips.add("http_encoding_error");
      return;
    }
    // Stirling URL-decodes exactly this content type's request bodies (stitcher.cc PreProcessReqMessage): a base64
    // field in a form reads the same from packets as from Pixie.
    if (head.kind === "request" && head.headers.get("content-type") === "application/x-www-form-urlencoded") {
      payload = formUrlDecode(payload);
    }
    const meta: Record<string, string> = head.kind === "request"
      ? { method: head.method, path: head.path }
      : { status: String(head.status) };
    const ct = head.headers.get("content-type");
    if (ct !== undefined) meta.content_type = ct;
    this.emit({ protocol: "http", timeNs: t, flow: this.flow, stream: this.stream, payload, meta });
  }

  /** Finds the next request or status line; true when the queue now starts with one. */
  private resync(): boolean {
    const q = this.q;
    const v = q.view();
    if (v.length === 0) return false;
    const text = LATIN1.decode(v);
    const m = RESYNC_TARGET.exec(text);
    if (m === null) {
      // Keep a tail that may be the beginning of a start line.
      if (v.length > 256) q.consume(v.length - 256);
      return false;
    }
    q.consume(m.index);
    return true;
  }
}
