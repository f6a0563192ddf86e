/**
 * The web UI's HTTP server: static pages (plain JS, uPlot vendored under http/ui/vendor: no CDN, no internet)
 * and a small JSON API over a {@link RecordStore}, aggregated here so a page never loads every record; plus
 * `/api/events` (server-sent events) that tells open pages when new records arrived (live tail).
 *
 * It runs on the metrics server's bounded HTTP/1.1 server (http/server.ts), not `Deno.serve`, which holds every
 * connection as long as its peer keeps it (an idle one, or one sending a head a byte a minute, for ever) and ends
 * the process when accepting fails: ~230 idle connections under a 256 open-file limit ended `ui` ("Too many open
 * files", an uncaught error in Deno's server). Event streams take at most half the connections, so pages'
 * requests always find room.
 * @module
 */
import {
  type Answer,
  type HttpLimits,
  type RequestHead,
  response,
  startBoundedServer,
  streamHead,
} from "./server.ts";
import type { RecordStore, WaterfallQuery } from "./ui/store.ts";
import { parseRecord } from "../report/records.ts";
import { logger } from "../util/log.ts";

const log = logger("ui");

/** A running UI server. */
export interface UiServer {
  /** The bound address, e.g. `127.0.0.1:8080` or `[::1]:8080`. */
  readonly addr: string;
  /** `http://addr/`. */
  readonly url: string;
  close(): Promise<void>;
}

/** Options of {@link startUiServer}. */
export interface UiServerOptions {
  /** `host:port`; port 0 picks a free port. */
  listen: string;
  store: RecordStore;
  /** Shown in the page header (e.g. the config file, or "demo"). */
  title?: string;
  /** Least time between two update events on one connection, ms (default 1000). */
  eventIntervalMs?: number;
  /** Overrides of {@link UI_HTTP_LIMITS}. */
  limits?: Partial<HttpLimits>;
}

/**
 * The UI server's bounds: the metrics server's, with room for a browser's cookies in a request head (cookies are
 * per host, not per port: `localhost` carries every local app's) and time for a large answer on a slow link.
 */
export const UI_HTTP_LIMITS: Readonly<HttpLimits> = {
  maxConnections: 64,
  headerTimeoutMs: 5_000,
  idleTimeoutMs: 30_000,
  writeTimeoutMs: 30_000,
  maxHeaderBytes: 32 * 1024,
};

/** How long a page refused an event stream (all taken) waits before it asks again, ms (the `retry` it is sent). */
const EVENTS_RETRY_MS = 10_000;

const STATIC: Record<string, { file: string; type: string }> = {
  "/": { file: "static/index.html", type: "text/html; charset=utf-8" },
  "/app.js": { file: "static/app.js", type: "text/javascript; charset=utf-8" },
  "/app.css": { file: "static/app.css", type: "text/css; charset=utf-8" },
  "/vendor/uPlot.iife.min.js": { file: "vendor/uPlot.iife.min.js", type: "text/javascript; charset=utf-8" },
  "/vendor/uPlot.min.css": { file: "vendor/uPlot.min.css", type: "text/css; charset=utf-8" },
  "/vendor/uPlot.LICENSE": { file: "vendor/uPlot.LICENSE", type: "text/plain; charset=utf-8" },
};

const UI_DIR = new URL("./ui/", import.meta.url);

/** Pages only talk to their own origin: a policy the browser enforces (and the UI test checks). */
const SECURITY_HEADERS = {
  "content-security-policy":
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; connect-src 'self'",
  "x-content-type-options": "nosniff",
};

function json(v: unknown, status = 200): Response {
  return new Response(JSON.stringify(v), {
    status,
    headers: {
      "content-type": "application/json; charset=utf-8",
      "cache-control": "no-store",
      ...SECURITY_HEADERS,
    },
  });
}

function waterfallQuery(p: URLSearchParams): WaterfallQuery {
  const num = (k: string) => {
    const v = Number(p.get(k));
    return p.has(k) && Number.isFinite(v) ? v : undefined;
  };
  const sort = p.get("sort");
  return {
    measurement: p.get("measurement") || undefined,
    sort: sort === "total" ? "total" : "time",
    stage: p.get("stage") || undefined,
    pod: p.get("pod") || undefined,
    id: p.get("id") || undefined,
    offset: num("offset"),
    limit: num("limit"),
  };
}

/** Starts the UI server. */
export function startUiServer(opts: UiServerOptions): UiServer {
  const { store } = opts;
  const files = new Map<string, Uint8Array<ArrayBuffer>>();
  const eventMs = opts.eventIntervalMs ?? 1000;
  const closers = new Set<() => void>();
  const limits: HttpLimits = { ...UI_HTTP_LIMITS, ...opts.limits };
  const maxEventStreams = Math.max(1, Math.floor(limits.maxConnections / 2));

  const route = async (method: string, url: URL): Promise<Response> => {
    const p = url.searchParams;
    // HEAD as GET (the head only): uptime checks and `curl -I` use it, and HTTP requires a server to support
    // both; a 405 must say what is allowed.
    const headOnly = method === "HEAD";
    if (method !== "GET" && !headOnly) {
      return new Response("method not allowed\n", { status: 405, headers: { allow: "GET, HEAD" } });
    }
    const st = STATIC[url.pathname];
    if (st) {
      let body = files.get(st.file);
      if (!body) {
        body = await Deno.readFile(new URL(st.file, UI_DIR));
        files.set(st.file, body);
      }
      return new Response(body, { headers: { "content-type": st.type, ...SECURITY_HEADERS } });
    }
    switch (url.pathname) {
      case "/api/info":
        return json({ title: opts.title ?? "fsm-px", ...store.counts, version: store.version });
      case "/api/overview":
        return json(store.overview());
      case "/api/waterfall":
        return json(store.waterfall(waterfallQuery(p)));
      case "/api/interval": {
        const r = store.interval(p.get("id") ?? "");
        return r ? json(r) : json({ error: "no such interval or call" }, 404);
      }
      case "/api/signature": {
        const r = store.signature(p.get("id") ?? "");
        return r ? json(r) : json({ error: "no such signature" }, 404);
      }
      case "/api/health":
        return json(await store.healthReport());
      case "/api/events":
        // The head of the stream only: an event stream opened for a HEAD would never be read.
        if (headOnly) return eventsHead();
        // All taken (as many streams as half the connections): the page is told to ask again later, which an
        // EventSource does after `retry` (an error status would end its stream for good).
        if (closers.size >= maxEventStreams) return eventsLater();
        return events(store, eventMs, closers);
      default:
        return new Response("not found\n", { status: 404 });
    }
  };

  const answer = async (head: RequestHead, keepAlive: boolean): Promise<Answer> => {
    let res: Response;
    try {
      // The path as a URL's (not resolved against a base: `//host/x` is a path here, not another host).
      res = await route(head.method, new URL(`http://ui${head.path}${head.query ? `?${head.query}` : ""}`));
    } catch (e) {
      // A view that fails answers 500 (as Deno.serve did); the connection and the server go on.
      log.warn("request failed", { path: head.path, error: (e as Error).message });
      res = new Response("internal error\n", { status: 500 });
    }
    const headers: Record<string, string> = {};
    res.headers.forEach((v, k) => {
      if (k !== "content-type" && k !== "content-length") headers[k] = v;
    });
    const type = res.headers.get("content-type") ?? "text/plain; charset=utf-8";
    if (res.body !== null && type === EVENTS_HEADERS["content-type"]) {
      return { head: streamHead(res.status, { "content-type": type, ...headers }), body: res.body };
    }
    const body = new Uint8Array(await res.arrayBuffer());
    return response(res.status, body, keepAlive, type, head.method === "HEAD", headers);
  };

  const server = startBoundedServer({ listen: opts.listen, limits, answer });
  const addr = server.addr;
  return {
    addr,
    url: `http://${addr}/`,
    close: async () => {
      for (const c of closers) c();
      await server.close();
    },
  };
}

const EVENTS_HEADERS = {
  "content-type": "text/event-stream",
  "cache-control": "no-store",
  ...SECURITY_HEADERS,
};

/** The answer to a HEAD of `/api/events`: the stream's headers, no stream. */
function eventsHead(): Response {
  return new Response(null, { headers: EVENTS_HEADERS });
}

/** An event stream that only says when to ask again, and ends. */
function eventsLater(): Response {
  return new Response(`retry: ${EVENTS_RETRY_MS}\n\n`, { headers: EVENTS_HEADERS });
}

/** Chunks of an event stream queued for a page before further updates wait for it to read. */
const EVENTS_QUEUED = 4;

/**
 * Server-sent events: `update` with the record counts, at most once per `intervalMs`, when records changed. An
 * update is the whole current state, so one the page has not taken yet is not followed by another: the next waits
 * (retried every `intervalMs`) until it is, and a page that stops reading (a laptop asleep with its connection
 * open) holds one update, not one a second for as long as its connection lives.
 */
export function events(
  store: RecordStore,
  intervalMs: number,
  closers: Set<() => void>,
): Response {
  const enc = new TextEncoder();
  let timer: ReturnType<typeof setTimeout> | undefined;
  let off: (() => void) | undefined;
  let close: (() => void) | undefined;
  const body = new ReadableStream<Uint8Array>({
    start(ctrl) {
      let sent = -1;
      const send = () => {
        timer = undefined;
        if (store.version === sent) return;
        if ((ctrl.desiredSize ?? 1) <= 0) {
          timer = setTimeout(send, intervalMs);
          return;
        }
        sent = store.version;
        try {
          ctrl.enqueue(
            enc.encode(`event: update\ndata: ${JSON.stringify({ ...store.counts, version: sent })}\n\n`),
          );
        } catch {
          close?.();
        }
      };
      off = store.onChange(() => {
        if (timer === undefined) timer = setTimeout(send, intervalMs);
      });
      close = () => {
        off?.();
        if (timer !== undefined) clearTimeout(timer);
        closers.delete(close!);
        try {
          ctrl.close();
        } catch {
          // already closed
        }
      };
      closers.add(close);
      // A comment first, so the browser's EventSource opens at once; then the current counts.
      ctrl.enqueue(enc.encode(": fsm-px\n\n"));
      send();
    },
    // The browser went away (a closed connection cancels the body stream).
    cancel() {
      close?.();
    },
  }, { highWaterMark: EVENTS_QUEUED });
  return new Response(body, { headers: EVENTS_HEADERS });
}

/**
 * Reads record files (JSON Lines as `analyze --out` writes them) into a store; lines that are not records
 * are counted in `store.skipped` and skipped. Returns the number of records read.
 */
export async function loadRecordFiles(store: RecordStore, paths: readonly string[]): Promise<number> {
  let n = 0;
  for (const path of paths) {
    const text = await Deno.readTextFile(path);
    for (const line of text.split("\n")) {
      if (line.trim() === "") continue;
      let v: unknown;
      try {
        v = JSON.parse(line);
      } catch {
        store.skipped++;
        continue;
      }
      const r = parseRecord(v);
      if (typeof r === "string") {
        store.skipped++;
        continue;
      }
      store.add(r);
      n++;
    }
  }
  return n;
}
