/**
 * The sensor's HTTP endpoints: `/metrics` (Prometheus text, or OpenMetrics when the scraper asks for it),
 * `/healthz` (the process and its actors are alive) and `/readyz` (ready to measure: e.g. Pixie reachable).
 * @module
 */
import type { FsmMetrics } from "./metrics.ts";

/** A probe result: ok plus a short reason shown in the response body. */
export interface ProbeResult {
  ok: boolean;
  detail: string;
}

/** What the server needs from the node. */
export interface HttpOptions {
  /** `host:port`; port 0 picks a free port. */
  listen: string;
  metrics: FsmMetrics;
  healthz: () => ProbeResult;
  readyz: () => ProbeResult;
}

/** A running HTTP server. */
export interface HttpServer {
  /** The bound address, e.g. `127.0.0.1:9464`. */
  readonly addr: string;
  readonly port: number;
  close(): Promise<void>;
}

const OPENMETRICS = "application/openmetrics-text; version=1.0.0; charset=utf-8";
const PROM_TEXT = "text/plain; version=0.0.4; charset=utf-8";

/** Splits `host:port` (IPv6 in brackets allowed). */
export function parseListen(listen: string): { hostname: string; port: number } {
  const m = /^\[?([^\]]*)\]?:(\d+)$/.exec(listen);
  if (!m) throw new Error(`listen address must be host:port, got "${listen}"`);
  return { hostname: m[1] || "0.0.0.0", port: Number(m[2]) };
}

/** Starts the HTTP server. */
export function startHttpServer(opts: HttpOptions): HttpServer {
  const { hostname, port } = parseListen(opts.listen);
  const server = Deno.serve({ hostname, port, onListen: () => {} }, async (req) => {
    const url = new URL(req.url);
    switch (url.pathname) {
      case "/metrics": {
        const accept = req.headers.get("accept") ?? "";
        if (accept.includes("application/openmetrics-text")) {
          return new Response(await opts.metrics.openMetrics(), { headers: { "content-type": OPENMETRICS } });
        }
        return new Response(await opts.metrics.text(), { headers: { "content-type": PROM_TEXT } });
      }
      case "/healthz":
        return probe(opts.healthz());
      case "/readyz":
        return probe(opts.readyz());
      case "/":
        return new Response("fsm-px sensor: /metrics /healthz /readyz\n");
      default:
        return new Response("not found\n", { status: 404 });
    }
  });
  const bound = server.addr as Deno.NetAddr;
  return {
    addr: `${bound.hostname}:${bound.port}`,
    port: bound.port,
    close: () => server.shutdown(),
  };
}

function probe(r: ProbeResult): Response {
  return new Response(`${r.ok ? "ok" : "not ok"}: ${r.detail}\n`, { status: r.ok ? 200 : 503 });
}
