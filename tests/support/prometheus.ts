/**
 * A real Prometheus (Debian's /usr/bin/prometheus) on loopback for end-to-end tests: a temp config with static
 * targets scraped every second, a temp TSDB, exemplar storage on, and the HTTP API (/api/v1/query, targets,
 * exemplars) for the assertions. Stopped by PID; the temp dir is removed.
 * @module
 */
import { freePort } from "./nats_server.ts";

const CANDIDATES = ["/usr/bin/prometheus", "prometheus"];

/** A group of scrape targets sharing labels (a `static_configs` entry). */
export interface TargetGroup {
  /** `host:port` of each target. */
  targets: string[];
  labels?: Record<string, string>;
}

/** Options of {@link PrometheusServer.start}. */
export interface PrometheusOptions {
  groups: TargetGroup[];
  /** Job name. Default `fsmpx`. */
  job?: string;
  /** Scrape interval, seconds. Default 1. */
  scrapeIntervalS?: number;
  /** How long to wait for /-/ready. Default 30 s. */
  readyTimeoutMs?: number;
}

/** One series of an instant vector. */
export interface VectorSample {
  metric: Record<string, string>;
  value: number;
}

/** One scrape target as /api/v1/targets reports it. */
export interface ScrapeTarget {
  labels: Record<string, string>;
  health: string;
  lastError: string;
  lastScrape: string;
}

/** Exemplars of one series (/api/v1/query_exemplars). */
export interface SeriesExemplars {
  seriesLabels: Record<string, string>;
  exemplars: { labels: Record<string, string>; value: number; timestamp: number }[];
}

async function binary(): Promise<string> {
  for (const c of CANDIDATES) {
    try {
      const out = await new Deno.Command(c, { args: ["--version"], stdout: "null", stderr: "null" }).output();
      if (out.success) return c;
    } catch {
      // not there; try the next one
    }
  }
  throw new Error("prometheus not found (apt-get install prometheus)");
}

/** The YAML of a scrape config (JSON is YAML; no quoting questions). */
export function scrapeConfig(opts: PrometheusOptions): string {
  const interval = `${opts.scrapeIntervalS ?? 1}s`;
  return JSON.stringify(
    {
      global: { scrape_interval: interval, evaluation_interval: interval },
      scrape_configs: [{
        job_name: opts.job ?? "fsmpx",
        scrape_interval: interval,
        scrape_timeout: interval,
        static_configs: opts.groups.map((g) => ({ targets: g.targets, labels: g.labels ?? {} })),
      }],
    },
    null,
    2,
  );
}

interface ApiResponse<T> {
  status: string;
  data?: T;
  error?: string;
}

/** One Prometheus process. */
export class PrometheusServer {
  readonly port: number;
  readonly dir: string;
  readonly #child: Deno.ChildProcess;
  readonly #status: Promise<Deno.CommandStatus>;
  #exited = false;
  #logCopy: Promise<void> = Promise.resolve();

  private constructor(port: number, dir: string, child: Deno.ChildProcess) {
    this.port = port;
    this.dir = dir;
    this.#child = child;
    this.#status = child.status.then((s) => {
      this.#exited = true;
      return s;
    });
  }

  /** Writes the config, starts Prometheus and waits for /-/ready. */
  static async start(opts: PrometheusOptions): Promise<PrometheusServer> {
    const bin = await binary();
    const dir = await Deno.makeTempDir({ prefix: "fsmpx-prom-" });
    const config = `${dir}/prometheus.yml`;
    await Deno.writeTextFile(config, scrapeConfig(opts));
    const port = freePort();
    const log = await Deno.open(`${dir}/prometheus.log`, { write: true, create: true });
    let child: Deno.ChildProcess;
    try {
      child = new Deno.Command(bin, {
        args: [
          `--config.file=${config}`,
          `--storage.tsdb.path=${dir}/data`,
          `--web.listen-address=127.0.0.1:${port}`,
          "--enable-feature=exemplar-storage",
          "--log.level=warn",
        ],
        stdin: "null",
        stdout: "null",
        stderr: "piped",
      }).spawn();
    } catch (e) {
      log.close();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
      throw e;
    }
    // Prometheus logs on stderr; kept in the temp dir for a failing test's message.
    const copy = child.stderr.pipeTo(log.writable).catch(() => {});
    const p = new PrometheusServer(port, dir, child);
    p.#logCopy = copy;
    try {
      await p.#waitReady(opts.readyTimeoutMs ?? 30_000);
    } catch (e) {
      const text = await p.log();
      await p.stop();
      throw new Error(`${(e as Error).message}\n${text}`);
    }
    return p;
  }

  /** Base URL of the HTTP API. */
  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async #waitReady(timeoutMs: number): Promise<void> {
    const end = Date.now() + timeoutMs;
    while (Date.now() < end) {
      if (this.#exited) throw new Error("prometheus exited during start-up");
      try {
        const res = await fetch(`${this.url}/-/ready`, { signal: AbortSignal.timeout(2000) });
        await res.body?.cancel();
        if (res.status === 200) return;
      } catch {
        // not listening yet
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`prometheus not ready within ${timeoutMs} ms`);
  }

  async #api<T>(path: string, params: Record<string, string> = {}): Promise<T> {
    const q = new URLSearchParams(params).toString();
    const res = await fetch(`${this.url}${path}${q ? `?${q}` : ""}`, { signal: AbortSignal.timeout(10_000) });
    const body = await res.json() as ApiResponse<T>;
    if (body.status !== "success" || body.data === undefined) {
      throw new Error(`prometheus ${path} ${JSON.stringify(params)}: ${body.error ?? res.status}`);
    }
    return body.data;
  }

  /** An instant query (/api/v1/query) that must return a vector. */
  async query(expr: string): Promise<VectorSample[]> {
    const data = await this.#api<
      { resultType: string; result: { metric: Record<string, string>; value: [number, string] }[] }
    >(
      "/api/v1/query",
      { query: expr },
    );
    if (data.resultType !== "vector") throw new Error(`${expr}: expected a vector, got ${data.resultType}`);
    return data.result.map((r) => ({ metric: r.metric, value: Number(r.value[1]) }));
  }

  /** Active scrape targets. */
  async targets(): Promise<ScrapeTarget[]> {
    const data = await this.#api<{ activeTargets: ScrapeTarget[] }>("/api/v1/targets", { state: "active" });
    return data.activeTargets;
  }

  /**
   * Waits until every active target has been scraped successfully after `afterMs` (wall clock), so that an
   * instant query sees values at least as recent as that moment.
   */
  async waitScrapedAfter(afterMs: number, expectedTargets: number, timeoutMs = 30_000): Promise<void> {
    const end = Date.now() + timeoutMs;
    let last: ScrapeTarget[] = [];
    while (Date.now() < end) {
      last = await this.targets();
      const fresh = last.filter((t) => t.health === "up" && Date.parse(t.lastScrape) > afterMs);
      if (last.length === expectedTargets && fresh.length === expectedTargets) return;
      await new Promise((r) => setTimeout(r, 200));
    }
    throw new Error(
      `targets not all scraped since ${new Date(afterMs).toISOString()}: ${JSON.stringify(last)}`,
    );
  }

  /** Exemplars of the series selected by `expr` over the last `seconds`. */
  async exemplars(expr: string, seconds: number): Promise<SeriesExemplars[]> {
    const now = Date.now() / 1000;
    const data = await this.#api<
      {
        seriesLabels: Record<string, string>;
        exemplars: { labels: Record<string, string>; value: string; timestamp: number }[];
      }[]
    >("/api/v1/query_exemplars", { query: expr, start: String(now - seconds), end: String(now + 1) });
    return data.map((s) => ({
      seriesLabels: s.seriesLabels,
      exemplars: s.exemplars.map((e) => ({
        labels: e.labels,
        value: Number(e.value),
        timestamp: e.timestamp,
      })),
    }));
  }

  /** Prometheus's own log so far. */
  async log(): Promise<string> {
    return await Deno.readTextFile(`${this.dir}/prometheus.log`).catch(() => "");
  }

  /** SIGTERM (SIGKILL after 10 s), then removes the temp dir. */
  async stop(): Promise<void> {
    if (!this.#exited) {
      try {
        this.#child.kill("SIGTERM");
      } catch {
        // already gone
      }
    }
    const timer = setTimeout(() => {
      try {
        this.#child.kill("SIGKILL");
      } catch {
        // already gone
      }
    }, 10_000);
    await this.#status;
    clearTimeout(timer);
    await this.#logCopy;
    await Deno.remove(this.dir, { recursive: true }).catch(() => {});
  }
}
