/**
 * The sensor's HTTP endpoints: `/metrics` (Prometheus text, or OpenMetrics when the scraper asks for it),
 * `/healthz` (the process and its actors are alive) and `/readyz` (ready to measure: e.g. Pixie reachable).
 *
 * A small HTTP/1.1 server on a raw listener rather than `Deno.serve`, because the sensor must survive whatever
 * connects to it (issue 15: 258 idle connections at a 256 open-file limit ended the process with "Too many open
 * files"), and `Deno.serve` has no connection limit and no header timeout. Here:
 * - at most {@link HttpLimits.maxConnections} connections are open; when full, the oldest connection still
 *   waiting for a request is closed to make room (so a probe gets in during a flood of idle sockets), or the
 *   new one when every connection is busy;
 * - a request head must arrive within `headerTimeoutMs` and fit in `maxHeaderBytes`; a keep-alive connection
 *   idle for `idleTimeoutMs` is closed; a response the peer does not read within `writeTimeoutMs` closes it;
 * - only GET and HEAD on `/metrics`, `/healthz`, `/readyz` are answered (405 with `Allow` for other methods,
 *   404 for other paths); request bodies are never read (a request with one is answered and the connection
 *   closed);
 * - an accept error (EMFILE, ENFILE, ...) is counted, logged at most once a minute and retried after a pause:
 *   it never ends the process.
 * What was refused is counted in `fsmpx_http_connections_dropped_total{reason}` and `fsmpx_http_accept_errors_total`,
 * open connections in `fsmpx_http_connections_open`.
 *
 * {@link startBoundedServer} is the same server with any routes, and answers whose body comes as it is produced
 * (server-sent events): the web UI's server (http/ui_server.ts) runs on it, for the same reasons.
 * @module
 */
import * as client from "./prom.ts";
import type { FsmMetrics } from "./metrics.ts";
import { logger } from "../util/log.ts";

/** A probe result: ok plus a short reason shown in the response body. */
export interface ProbeResult {
  ok: boolean;
  detail: string;
}

/** Bounds on what a peer may hold of the server. */
export interface HttpLimits {
  /** Connections open at once; more are closed on accept. */
  maxConnections: number;
  /** Time from the connection's (or the request's) first byte to the end of the request head. */
  headerTimeoutMs: number;
  /** Time a keep-alive connection may wait for its next request. Also the wait for a new connection's first byte. */
  idleTimeoutMs: number;
  /** Time a response may take to be written (a peer that does not read). */
  writeTimeoutMs: number;
  /** Largest request head (request line and headers). */
  maxHeaderBytes: number;
}

/** The defaults: enough for Prometheus, the kubelet's probes and a person with curl; little for a flood. */
export const DEFAULT_HTTP_LIMITS: Readonly<HttpLimits> = {
  maxConnections: 64,
  headerTimeoutMs: 5_000,
  idleTimeoutMs: 30_000,
  writeTimeoutMs: 10_000,
  maxHeaderBytes: 8 * 1024,
};

/** What the server needs from the node. */
export interface HttpOptions {
  /** `host:port`; port 0 picks a free port. */
  listen: string;
  metrics: FsmMetrics;
  healthz: () => ProbeResult;
  readyz: () => ProbeResult;
  /** Overrides of {@link DEFAULT_HTTP_LIMITS}. */
  limits?: Partial<HttpLimits>;
}

/** A running HTTP server. */
export interface HttpServer {
  /** The bound address, e.g. `127.0.0.1:9464` or `[::1]:9464`. */
  readonly addr: string;
  readonly port: number;
  /** Connections open now. */
  readonly connections: number;
  /**
   * Sockets whose write timed out and is still pending (their slot freed; Deno cannot cancel the write, so the
   * socket stays until the peer reads or goes away).
   */
  readonly stuckWrites: number;
  close(): Promise<void>;
}

/** Why a connection was closed by the server rather than by its peer. */
export type DropReason = "limit" | "header_timeout" | "idle_timeout" | "write_timeout" | "bad_request";
const DROP_REASONS: readonly DropReason[] = [
  "limit",
  "header_timeout",
  "idle_timeout",
  "write_timeout",
  "bad_request",
];

const OPENMETRICS = "application/openmetrics-text; version=1.0.0; charset=utf-8";
const PROM_TEXT = "text/plain; version=0.0.4; charset=utf-8";
const PATHS = new Set(["/metrics", "/healthz", "/readyz"]);
/** How long {@link HttpServer.close} waits for its connections to end, ms. */
const CLOSE_WAIT_MS = 1000;
/** Pause after an accept error, doubled up to the maximum while errors go on (no busy loop on EMFILE). */
const ACCEPT_BACKOFF_MS = [10, 1000] as const;

const log = logger("http");
const enc = new TextEncoder();
const dec = new TextDecoder("latin1");

/**
 * The server could not listen where it was told: the message names the address and why in words a user can act
 * on (the commands add which setting or option gave the address).
 */
export class ListenError extends Error {
  override name = "ListenError";
  /** The `host:port` the server was given. */
  readonly listen: string;
  /** Why, e.g. "the port is in use (another process listens there)". */
  readonly reason: string;
  /** The address is right but taken (another port would do), rather than not this host's or not permitted. */
  readonly inUse: boolean;

  /** Wraps what `Deno.listen` threw for `listen`. */
  constructor(listen: string, cause: unknown) {
    const reason = cause instanceof Deno.errors.AddrInUse
      ? "the port is in use (another process listens there)"
      : cause instanceof Deno.errors.AddrNotAvailable
      ? "no interface of this host has that address"
      : cause instanceof Deno.errors.PermissionDenied
      ? "permission denied (ports below 1024 need root or CAP_NET_BIND_SERVICE)"
      : cause instanceof Error
      ? cause.message
      : String(cause);
    super(`cannot listen on ${listen}: ${reason}`, { cause });
    this.listen = listen;
    this.reason = reason;
    this.inUse = cause instanceof Deno.errors.AddrInUse;
  }
}

/** Splits `host:port` (IPv6 in brackets allowed). */
export function parseListen(listen: string): { hostname: string; port: number } {
  const m = /^\[?([^\]]*)\]?:(\d+)$/.exec(listen);
  if (!m) throw new Error(`listen address must be host:port, got "${listen}"`);
  return { hostname: m[1] || "0.0.0.0", port: Number(m[2]) };
}

/**
 * `host:port` of a bound address, an IPv6 host in brackets (`[::1]:9464`): without them the address logged and
 * made into URLs (`http://::1:9464/metrics`) was no valid URL, and {@link parseListen} read it back wrong.
 */
export function formatHostPort(a: { hostname: string; port: number }): string {
  return a.hostname.includes(":") ? `[${a.hostname}]:${a.port}` : `${a.hostname}:${a.port}`;
}

/** The server's own metrics, registered once per metrics set. */
interface ServerMetrics {
  dropped: client.Counter<"reason">;
  acceptErrors: client.Counter;
  open: client.Gauge;
}

function serverMetrics(registry: client.Registry): ServerMetrics {
  const existing = registry.getSingleMetric("fsmpx_http_connections_dropped_total");
  if (existing) {
    return {
      dropped: existing as client.Counter<"reason">,
      acceptErrors: registry.getSingleMetric("fsmpx_http_accept_errors_total") as client.Counter,
      open: registry.getSingleMetric("fsmpx_http_connections_open") as client.Gauge,
    };
  }
  const registers = [registry];
  const dropped = new client.Counter({
    name: "fsmpx_http_connections_dropped_total",
    help: "Connections to the metrics server closed by it, by reason: limit (over the connection limit), " +
      "header_timeout, idle_timeout (keep-alive), write_timeout, bad_request.",
    labelNames: ["reason"],
    registers,
  });
  for (const reason of DROP_REASONS) dropped.inc({ reason }, 0);
  return {
    dropped,
    acceptErrors: new client.Counter({
      name: "fsmpx_http_accept_errors_total",
      help: "Errors accepting a connection to the metrics server (e.g. too many open files); retried.",
      registers,
    }),
    open: new client.Gauge({
      name: "fsmpx_http_connections_open",
      help: "Connections to the metrics server open now.",
      registers,
    }),
  };
}

/** Starts the HTTP server. */
export function startHttpServer(opts: HttpOptions): HttpServer {
  const metrics = serverMetrics(opts.metrics.registry);
  return startBoundedServer({
    listen: opts.listen,
    limits: opts.limits,
    answer: (head, keepAlive) => answer(head, opts, keepAlive),
    dropped: (reason) => metrics.dropped.inc({ reason }),
    acceptError: () => metrics.acceptErrors.inc(),
    connections: (n) => metrics.open.set(n),
  });
}

/** Starts a bounded HTTP/1.1 server (see the module's description) that answers with `opts.answer`. */
export function startBoundedServer(opts: BoundedServerOptions): HttpServer {
  const limits: HttpLimits = { ...DEFAULT_HTTP_LIMITS, ...opts.limits };
  const { hostname, port } = parseListen(opts.listen);
  let listener: Deno.Listener;
  try {
    listener = Deno.listen({ hostname, port, transport: "tcp" });
  } catch (e) {
    // Deno's own message ("Address already in use (os error 98)") names neither the address nor what to do.
    throw new ListenError(opts.listen, e);
  }
  const drop = (reason: DropReason) => opts.dropped?.(reason);
  /** Open connections, oldest first. */
  const open = new Map<Deno.Conn, ConnState>();
  const opened = () => opts.connections?.(open.size);
  /** Each connection's task, until it has ended. */
  const tasks = new Set<Promise<void>>();
  /** Timed-out writes still pending: their sockets count against the limit until they end. */
  const stuck = { n: 0 };
  let closed = false;
  let lastAcceptLog = -Infinity;

  const accepting = (async () => {
    let backoff: number = ACCEPT_BACKOFF_MS[0];
    while (!closed) {
      let conn: Deno.Conn;
      try {
        conn = await listener.accept();
      } catch (e) {
        if (closed || e instanceof Deno.errors.BadResource) break;
        opts.acceptError?.();
        if (performance.now() - lastAcceptLog > 60_000) {
          lastAcceptLog = performance.now();
          log.warn("accept failed; retrying", { error: e instanceof Error ? e.message : String(e) });
        }
        await new Promise((r) => setTimeout(r, backoff));
        backoff = Math.min(backoff * 2, ACCEPT_BACKOFF_MS[1]);
        continue;
      }
      backoff = ACCEPT_BACKOFF_MS[0];
      if (stuck.n >= limits.maxConnections) {
        // As many sockets stuck in a write as the limit allows connections: a client that never reads would
        // otherwise add one open socket (and file descriptor) per connection, without bound (issue 15).
        drop("limit");
        closeQuietly(conn);
        continue;
      }
      if (open.size >= limits.maxConnections) {
        // Full: make room by closing the oldest connection still waiting for a request (a flood's idle sockets
        // are the oldest waiting ones), so a probe still gets in; refuse the new one only if all are busy.
        const victim = [...open.values()].find((c) => c.waiting);
        drop("limit");
        if (!victim) {
          closeQuietly(conn);
          continue;
        }
        victim.evicted = true;
        closeQuietly(victim.conn);
        open.delete(victim.conn);
      }
      const state: ConnState = {
        conn,
        waiting: true,
        evicted: false,
        stuck,
        release: () => {
          if (open.get(conn) === state) open.delete(conn);
          opened();
        },
      };
      open.set(conn, state);
      opened();
      const task: Promise<void> = serveConnection(state, opts, limits, drop)
        .catch(() => {}) // a peer's error (or an eviction) ends its connection only
        .finally(() => {
          state.release();
          closeQuietly(conn);
          tasks.delete(task);
        });
      tasks.add(task);
    }
  })();

  const bound = listener.addr as Deno.NetAddr;
  return {
    addr: formatHostPort(bound),
    port: bound.port,
    get connections() {
      return open.size;
    },
    get stuckWrites() {
      return stuck.n;
    },
    async close() {
      if (closed) return;
      closed = true;
      closeQuietly(listener);
      for (const c of open.keys()) closeQuietly(c);
      await accepting;
      // The connections' tasks end once their sockets are closed (a write stuck on a peer that does not read
      // may not: not waited for longer than a moment).
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        Promise.allSettled([...tasks]),
        new Promise((r) => timer = setTimeout(r, CLOSE_WAIT_MS)),
      ]);
      clearTimeout(timer);
    },
  };
}

function closeQuietly(c: { close(): void }): void {
  try {
    c.close();
  } catch {
    // already closed
  }
}

/** One open connection. */
interface ConnState {
  conn: Deno.Conn;
  /** No request in progress: waiting for one (a new or a keep-alive connection). */
  waiting: boolean;
  /** Closed by the server to make room. */
  evicted: boolean;
  /** Frees the connection's slot (at its end, or when its write is stuck). */
  release: () => void;
  /** The server's count of sockets whose write timed out and is still pending. */
  stuck: { n: number };
}

/** A request head: what routing needs. */
export interface RequestHead {
  method: string;
  path: string;
  /** What follows the path's `?` (without it; "" when none). */
  query: string;
  keepAlive: boolean;
  hasBody: boolean;
  accept: string;
}

/**
 * An answer whose body comes as it is produced (server-sent events): `head` (a head without `content-length`,
 * see {@link streamHead}), then each chunk of `body` as it comes, each written within the write timeout; the
 * connection closes when the body ends, the peer closes its end, or a write times out (the body is cancelled).
 */
export interface StreamedAnswer {
  head: Uint8Array;
  body: ReadableStream<Uint8Array>;
}

/** A whole answer (head and body bytes) or a streamed one. */
export type Answer = Uint8Array | StreamedAnswer;

/** Options of {@link startBoundedServer}. */
export interface BoundedServerOptions {
  /** `host:port`; port 0 picks a free port. */
  listen: string;
  /** Overrides of {@link DEFAULT_HTTP_LIMITS}. */
  limits?: Partial<HttpLimits>;
  /** Answers one request (`keepAlive`: whether the connection stays open after it); a throw closes the connection. */
  answer: (head: RequestHead, keepAlive: boolean) => Promise<Answer>;
  /** A connection the server closed, by reason. */
  dropped?: (reason: DropReason) => void;
  /** An error accepting a connection (retried). */
  acceptError?: () => void;
  /** Connections open now, after each change. */
  connections?: (open: number) => void;
}

/** Reads and answers requests on one connection until it closes, a limit ends it, or the peer asks to close. */
async function serveConnection(
  state: ConnState,
  opts: BoundedServerOptions,
  limits: HttpLimits,
  drop: (reason: DropReason) => void,
): Promise<void> {
  const conn = state.conn;
  const buf = new Uint8Array(limits.maxHeaderBytes + 1);
  let have = 0;
  let first = true;
  for (;;) {
    // Waiting for a request: the idle timeout; once its first byte is here, the rest of the head gets the header
    // timeout. A new connection is in the header phase from the start (slowloris sends a byte at a time).
    let phase: "idle" | "header" = first || have > 0 ? "header" : "idle";
    let timedOut: DropReason | undefined;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const arm = (ms: number, reason: DropReason) => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        timedOut = reason;
        closeQuietly(conn);
      }, ms);
    };
    if (phase === "idle") arm(limits.idleTimeoutMs, "idle_timeout");
    else arm(limits.headerTimeoutMs, "header_timeout");
    let headEnd = indexOfHeadEnd(buf, have);
    try {
      while (headEnd < 0) {
        if (have > limits.maxHeaderBytes) {
          clearTimeout(timer);
          drop("bad_request");
          await writeAll(state, response(431, "request header too large\n", false), limits, drop);
          return;
        }
        const n = await conn.read(buf.subarray(have));
        if (n === null) return; // the peer closed
        if (phase === "idle") {
          phase = "header";
          arm(limits.headerTimeoutMs, "header_timeout");
        }
        // Only the new bytes and the 3 before them can complete the blank line: a head sent a byte at a time was
        // scanned from its start at every byte (quadratic in its length).
        headEnd = indexOfHeadEnd(buf, have + n, Math.max(0, have - 3));
        have += n;
      }
    } catch (e) {
      if (timedOut) {
        drop(timedOut);
        return;
      }
      if (state.evicted) return; // closed to make room, already counted
      throw e;
    } finally {
      clearTimeout(timer);
    }
    first = false;
    state.waiting = false;
    const head = parseHead(dec.decode(buf.subarray(0, headEnd)));
    const rest = buf.slice(headEnd + 4, have);
    buf.set(rest);
    have = rest.length;
    if (!head) {
      drop("bad_request");
      await writeAll(state, response(400, "bad request\n", false), limits, drop);
      return;
    }
    // Bodies are never read: answering and closing keeps the byte stream in step.
    const keepAlive = head.keepAlive && !head.hasBody;
    const res = await opts.answer(head, keepAlive);
    if (!(res instanceof Uint8Array)) {
      await writeStream(state, res, limits, drop);
      return;
    }
    if (!await writeAll(state, res, limits, drop) || !keepAlive) return;
    state.waiting = true;
  }
}

/** Where the head's blank line (CRLF CRLF) starts among the first `n` bytes, looking from `from` on; -1: none. */
export function indexOfHeadEnd(b: Uint8Array, n: number, from = 0): number {
  for (let i = from + 3; i < n; i++) {
    if (b[i] === 10 && b[i - 1] === 13 && b[i - 2] === 10 && b[i - 3] === 13) return i - 3;
  }
  return -1;
}

function parseHead(text: string): RequestHead | undefined {
  const lines = text.split("\r\n");
  const m = /^([A-Z]+) (\S+) HTTP\/1\.([01])$/.exec(lines[0] ?? "");
  if (!m) return undefined;
  const headers = new Map<string, string>();
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(":");
    if (colon <= 0) return undefined;
    headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
  }
  const connection = (headers.get("connection") ?? "").toLowerCase();
  const keepAlive = m[3] === "1" ? !connection.includes("close") : connection.includes("keep-alive");
  const length = headers.get("content-length");
  const hasBody = headers.has("transfer-encoding") || (length !== undefined && length !== "0");
  let target = m[2]!;
  if (!target.startsWith("/")) {
    try {
      target = new URL(target).pathname;
    } catch {
      return undefined;
    }
  }
  const q = target.indexOf("?");
  return {
    method: m[1]!,
    path: q >= 0 ? target.slice(0, q) : target,
    query: q >= 0 ? target.slice(q + 1) : "",
    keepAlive,
    hasBody,
    accept: headers.get("accept") ?? "",
  };
}

async function answer(head: RequestHead, opts: HttpOptions, keepAlive: boolean): Promise<Uint8Array> {
  if (!PATHS.has(head.path)) {
    return response(404, "not found\n", keepAlive, undefined, head.method === "HEAD");
  }
  if (head.method !== "GET" && head.method !== "HEAD") {
    return response(405, "method not allowed\n", keepAlive, undefined, false, { allow: "GET, HEAD" });
  }
  const headOnly = head.method === "HEAD";
  switch (head.path) {
    case "/metrics":
      if (head.accept.includes("application/openmetrics-text")) {
        return response(200, await opts.metrics.openMetrics(), keepAlive, OPENMETRICS, headOnly);
      }
      return response(200, await opts.metrics.text(), keepAlive, PROM_TEXT, headOnly);
    case "/healthz":
      return probe(opts.healthz(), keepAlive, headOnly);
    default:
      return probe(opts.readyz(), keepAlive, headOnly);
  }
}

function probe(r: ProbeResult, keepAlive: boolean, headOnly: boolean): Uint8Array {
  return response(
    r.ok ? 200 : 503,
    `${r.ok ? "ok" : "not ok"}: ${r.detail}\n`,
    keepAlive,
    undefined,
    headOnly,
  );
}

const REASONS: Record<number, string> = {
  200: "OK",
  400: "Bad Request",
  404: "Not Found",
  405: "Method Not Allowed",
  431: "Request Header Fields Too Large",
  500: "Internal Server Error",
  503: "Service Unavailable",
};

/** A whole answer's bytes: head (with `content-length`) and, unless `headOnly`, the body. */
export function response(
  status: number,
  body: string | Uint8Array,
  keepAlive: boolean,
  contentType = "text/plain; charset=utf-8",
  headOnly = false,
  extra: Record<string, string> = {},
): Uint8Array {
  const bytes = typeof body === "string" ? enc.encode(body) : body;
  const head = [
    `HTTP/1.1 ${status} ${REASONS[status] ?? ""}`,
    `content-type: ${contentType}`,
    `content-length: ${bytes.length}`,
    `connection: ${keepAlive ? "keep-alive" : "close"}`,
    ...Object.entries(extra).map(([k, v]) => `${k}: ${v}`),
    "",
    "",
  ].join("\r\n");
  const h = enc.encode(head);
  if (headOnly) return h;
  const out = new Uint8Array(h.length + bytes.length);
  out.set(h);
  out.set(bytes, h.length);
  return out;
}

/**
 * Writes all of `data`; false when the connection ended first. A peer that does not take the response within
 * the write timeout loses its slot at once (counted); Deno cannot cancel a pending socket write, so the socket
 * itself is freed when that write ends (the peer reads or goes away).
 */
async function writeAll(
  state: ConnState,
  data: Uint8Array,
  limits: HttpLimits,
  drop: (reason: DropReason) => void,
): Promise<boolean> {
  const conn = state.conn;
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    state.stuck.n++;
    drop("write_timeout");
    state.release();
    closeQuietly(conn);
  }, limits.writeTimeoutMs);
  try {
    let off = 0;
    while (off < data.length) off += await conn.write(data.subarray(off));
    return !timedOut;
  } catch (e) {
    if (timedOut || state.evicted) return false;
    if (e instanceof Deno.errors.BrokenPipe || e instanceof Deno.errors.ConnectionReset) return false;
    throw e;
  } finally {
    clearTimeout(timer);
    // The pending write ended (the peer read or went away): its socket is gone.
    if (timedOut) state.stuck.n--;
  }
}

/** The head of a {@link StreamedAnswer}: no `content-length`, the body ends with the connection. */
export function streamHead(status: number, headers: Record<string, string>): Uint8Array {
  return enc.encode(
    [
      `HTTP/1.1 ${status} ${REASONS[status] ?? ""}`,
      ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`),
      "connection: close",
      "",
      "",
    ].join("\r\n"),
  );
}

/**
 * Writes a streamed answer until its body ends, the peer closes its end (noticed while no chunk is due, so an
 * event stream to a page that went away does not hold its slot until the next event), or a write fails or times
 * out. The body is cancelled in every case, so its producer stops.
 */
async function writeStream(
  state: ConnState,
  res: StreamedAnswer,
  limits: HttpLimits,
  drop: (reason: DropReason) => void,
): Promise<void> {
  const reader = res.body.getReader();
  // Nothing the peer sends is read as a request any more: its end (or an error) ends the stream.
  void (async () => {
    const scratch = new Uint8Array(512);
    try {
      while (await state.conn.read(scratch) !== null) { /* ignored */ }
    } catch {
      // closed under the read
    }
    reader.cancel().catch(() => {});
  })();
  try {
    if (!await writeAll(state, res.head, limits, drop)) return;
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      if (!await writeAll(state, value, limits, drop)) return;
    }
  } finally {
    reader.cancel().catch(() => {});
  }
}
