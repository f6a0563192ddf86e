/**
 * The live row source: the node's composed PxL streaming from Pixie, re-run by PixieQueryStream after drops.
 *
 * With `pixie.scope: pods` the queries are scoped to this node's pods (`df.ctx['pod'] == ...`), which Pixie's
 * planner prunes agents on, so the query runs on this node's PEM only instead of on every PEM of the cluster.
 * {@link PodScope} turns the pod watch's changes into scopes: pod churn re-runs the query at most once per
 * `minIntervalMs`, a removed pod stays in the scope for `lingerMs` (its last rows reach Pixie's tables late), and
 * a node without pods keeps a query that matches nothing ({@link NO_POD}), never an unscoped one. A new scope
 * re-runs the stream the way a drop does (PixieQueryStream.setQueries: from the newest `time_` seen minus the
 * overlap, rows already delivered dropped by fingerprint), so no row is lost or doubled.
 *
 * Why a new pod's rows are not missed: its traffic starts after it was bound to this node, which is when the pod
 * watch hears of it (give or take the watch's latency). The re-run starts at the newest `time_` seen minus the
 * overlap, and the newest `time_` is at most the re-run's wall-clock time, at most `minIntervalMs` after the pod
 * was heard of (the first change after a quiet spell re-runs at once). With the overlap at least `minIntervalMs`
 * the re-run therefore starts before the pod's first row.
 * @module
 */
import { logger } from "../util/log.ts";
import {
  backoffDelay,
  DEFAULT_BACKOFF,
  type PixieExecutor,
  PixieQueryStream,
  type PixieQueryStreamOptions,
  type PixieStreamMetrics,
  systemClock,
} from "./stream.ts";
import type { ComposedQueryInput } from "./pxl.ts";
import type { Row } from "./row.ts";
import { InputMeter } from "../util/input_meter.ts";

const log = logger("pixie");

/**
 * The one pod of an empty scope: no Kubernetes pod can have this name (names are lowercase DNS labels, no spaces
 * or parentheses), so the query matches nothing, and Pixie, finding it on no PEM, runs it nowhere.
 */
export const NO_POD = "fsm-px/(no pod on this node)";

/** `queries` scoped to `pods` (to {@link NO_POD} when there are none). */
export function scopeToPods(
  queries: readonly ComposedQueryInput[],
  pods: readonly string[],
): ComposedQueryInput[] {
  const list = pods.length > 0 ? [...pods] : [NO_POD];
  return queries.map((q) => ({ ...q, scope: { kind: "pods", pods: list } }));
}

/** Time and timers of a {@link PodScope}; tests inject a manual one. */
export interface ScopeTimers {
  nowMs(): number;
  /** Calls `fn` after `ms`; returns a cancel function. */
  setTimer(fn: () => void, ms: number): () => void;
}

const realTimers: ScopeTimers = {
  nowMs: () => Date.now(),
  setTimer: (fn, ms) => {
    const t = setTimeout(fn, ms);
    return () => clearTimeout(t);
  },
};

/** Options of {@link PodScope}. */
export interface PodScopeOptions {
  /** This node's pods now, as `namespace/name` (e.g. `PodWatch.pods(true)`). */
  pods: () => readonly string[];
  /**
   * Least time between two scopes (ms; default 5,000): pod churn re-runs the query at most this often. The first
   * change after a quiet spell is published at once.
   */
  minIntervalMs?: number;
  /** A pod that left stays in the scope this long (ms; default 30,000), for its rows that reach Pixie late. */
  lingerMs?: number;
  timers?: ScopeTimers;
}

/** This node's pods as a query scope that changes at a bounded rate; {@link update} on every pod change. */
export class PodScope {
  readonly #opts: PodScopeOptions;
  readonly #timers: ScopeTimers;
  readonly #listeners = new Set<(pods: readonly string[]) => void>();
  /** The scope last published, sorted. */
  #active: readonly string[];
  /** Pods seen at the last update. */
  #seen = new Set<string>();
  /** Pods that left, and when that was noticed. */
  readonly #leftAt = new Map<string, number>();
  #publishedAt = -Infinity;
  #cancel: (() => void) | undefined;
  #timerAt = Infinity;
  #closed = false;
  /** How many scopes were published after the first. */
  changes = 0;

  /** Creates the scope from the pods known now. */
  constructor(opts: PodScopeOptions) {
    this.#opts = opts;
    this.#timers = opts.timers ?? realTimers;
    this.#seen = new Set(opts.pods());
    this.#active = [...this.#seen].sort();
  }

  /** Least time between two scopes, ms. */
  get minIntervalMs(): number {
    return this.#opts.minIntervalMs ?? 5_000;
  }

  /** The current scope, sorted (may be empty). */
  get pods(): readonly string[] {
    return this.#active;
  }

  /** Calls `listener` with every new scope; returns the unsubscribe function. */
  onChange(listener: (pods: readonly string[]) => void): () => void {
    this.#listeners.add(listener);
    return () => void this.#listeners.delete(listener);
  }

  /** The pods may have changed: publish a new scope now, or schedule it (rate limit, lingering pods). */
  update(): void {
    if (this.#closed) return;
    const now = this.#timers.nowMs();
    const linger = this.#opts.lingerMs ?? 30_000;
    const live = new Set(this.#opts.pods());
    // Pods that were in the scope, or seen since, and are gone now linger; pods that came back stop lingering.
    for (const p of [...this.#active, ...this.#seen]) {
      if (!live.has(p) && !this.#leftAt.has(p)) this.#leftAt.set(p, now);
    }
    for (const [p, at] of this.#leftAt) if (live.has(p) || now - at >= linger) this.#leftAt.delete(p);
    this.#seen = live;
    const desired = [...new Set([...live, ...this.#leftAt.keys()])].sort();
    let next = Infinity;
    if (!sameList(desired, this.#active)) {
      const due = this.#publishedAt + this.minIntervalMs;
      if (now >= due) this.#publish(desired, now);
      else next = due;
    }
    for (const at of this.#leftAt.values()) next = Math.min(next, at + linger);
    this.#schedule(next, now);
  }

  /** Stops the timers; no more scopes are published. */
  close(): void {
    this.#closed = true;
    this.#cancel?.();
    this.#listeners.clear();
  }

  #publish(pods: readonly string[], now: number): void {
    const before = new Set(this.#active);
    this.#active = pods;
    this.#publishedAt = now;
    this.changes++;
    log.info("this node's pods changed; re-scoping the pixie query", {
      pods: pods.length,
      added: pods.filter((p) => !before.has(p)).length,
      removed: [...before].filter((p) => !pods.includes(p)).length,
    });
    for (const l of this.#listeners) l(pods);
  }

  #schedule(at: number, now: number): void {
    if (at === Infinity || at >= this.#timerAt) return;
    this.#cancel?.();
    this.#timerAt = at;
    this.#cancel = this.#timers.setTimer(() => {
      this.#cancel = undefined;
      this.#timerAt = Infinity;
      this.update();
    }, Math.max(0, at - now));
  }
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** Options of {@link PixieRowSource}. */
export interface PixieRowSourceOptions {
  client: PixieExecutor;
  clusterId: string;
  /** The configured queries (their scope is replaced when `podScope` is set). */
  queries: readonly ComposedQueryInput[];
  encryption: boolean;
  metrics?: PixieStreamMetrics;
  /** `pixie.scope: pods`: scope the queries to these pods, and re-scope when they change. */
  podScope?: PodScope;
  /** Stream timing (tests); the re-run overlap is raised to the scope's `minIntervalMs` when lower. */
  stream?: Partial<Pick<PixieQueryStreamOptions, "rerunOverlapMs" | "idleTimeoutMs" | "backoff">>;
}

/** Streams rows from Pixie until aborted; a fatal error (compile error, bad key) rejects. */
export class PixieRowSource {
  readonly #opts: PixieRowSourceOptions;
  #stream: PixieQueryStream | undefined;
  /** The last run's stream: the next run (a restarted reader's) goes on from where it stopped. */
  #last: PixieQueryStream | undefined;
  readonly #meter = new InputMeter();
  /** Responses from Pixie so far (rows, metadata, keep-alives). */
  #responses = 0;

  /** Creates the source; {@link run} streams. */
  constructor(opts: PixieRowSourceOptions) {
    this.#opts = opts;
  }

  /** Runs the stream, handing each row to `emit` (which may apply back-pressure or drop). */
  run(emit: (row: Row) => Promise<void>, signal: AbortSignal): Promise<void> {
    return this.runBatches(async (rows) => {
      for (const row of rows) await emit(row);
    }, signal);
  }

  /**
   * {@link run}, handing on each response's rows as one batch (never empty). Ends only when `signal` aborts: a
   * query that Pixie ends as done (every table's eos, which a streaming query never sends; a peer that ends it
   * anyway) is run again after a backoff, from where it stopped, instead of leaving the sensor without rows.
   */
  async runBatches(emit: (rows: readonly Row[]) => Promise<void>, signal: AbortSignal): Promise<void> {
    const backoff = { ...DEFAULT_BACKOFF, ...this.#opts.stream?.backoff };
    let attempt = 0;
    while (!signal.aborted) {
      const startedAt = performance.now();
      await this.#runOnce(emit, signal);
      if (signal.aborted) return;
      if (performance.now() - startedAt >= backoff.stableMs) attempt = 0;
      const delayMs = backoffDelay(attempt++, backoff, Math.random);
      log.warn("pixie query ended as if done; running it again", { delay_ms: delayMs });
      for (const q of this.#opts.queries) this.#opts.metrics?.restarts?.(q.name, "rerun");
      await systemClock.sleep(delayMs, signal);
    }
  }

  /** One stream of the queries, from where the last one stopped, until it ends or `signal` aborts. */
  async #runOnce(emit: (rows: readonly Row[]) => Promise<void>, signal: AbortSignal): Promise<void> {
    const o = this.#opts;
    const scope = o.podScope;
    const queries = (pods: readonly string[] | undefined) =>
      pods === undefined ? o.queries : scopeToPods(o.queries, pods);
    // See the module doc: the overlap must cover the scope's rate limit for a new pod's first rows.
    const overlap = o.stream?.rerunOverlapMs;
    const stream = new PixieQueryStream({
      ...o.stream,
      client: o.client,
      clusterId: o.clusterId,
      queries: queries(scope?.pods),
      encryption: o.encryption,
      metrics: {
        ...o.metrics,
        responded: () => {
          this.#responses++;
          o.metrics?.responded?.();
        },
      },
      signal,
      inputMeter: this.#meter,
      resumeFrom: this.#last,
      ...(scope ? { rerunOverlapMs: Math.max(overlap ?? 5_000, scope.minIntervalMs) } : {}),
    });
    this.#stream = stream;
    this.#last = stream;
    const unsubscribe = scope?.onChange((pods) => {
      try {
        stream.setQueries(queries(pods));
      } catch (e) {
        // Only the scope changed, and pod names are quoted: the same queries composed before. Keep the old one.
        log.error("cannot re-scope the pixie query; keeping the previous scope", { error: String(e) });
      }
    });
    try {
      for await (const rows of stream) {
        if (rows.length > 0) await emit(rows);
        if (signal.aborted) break;
      }
    } finally {
      unsubscribe?.();
      stream.close();
      if (this.#stream === stream) this.#stream = undefined;
    }
  }

  /** The fraction of the last second or so the reader found Pixie's responses waiting for it (input_meter.ts). */
  inputBusy(): number {
    return this.#meter.busyFraction();
  }

  /** Responses from Pixie so far, rows or keep-alives (every 2 s): a quiet query still answers, a lost one not. */
  responses(): number {
    return this.#responses;
  }

  /** Skips the running stream ahead to `timeNs` (PixieQueryStream.skipTo); nothing when none runs. */
  skipTo(timeNs: bigint): void {
    this.#stream?.skipTo(timeNs);
  }
}
