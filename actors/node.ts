/**
 * One node's supervision tree, as in the architecture diagram:
 *
 *   PixieReader ─► Detector (one per measurement) ─► Bus ─► SignatureRegistry ─► Matcher ─► Exporter
 *        └──────────────────── target rows ─────────────────────────────────────┘
 *
 * Spawn order is the pipeline order, so a graceful stop drains the reader first and the exporter last.
 * @module
 */
import {
  actorBusyFraction,
  type ActorFactory,
  type ActorRef,
  ActorSystem,
  type Clock,
  type OverflowPolicy,
  type Termination,
} from "./runtime.ts";
import {
  type DetectorMsg,
  EXPIRE_REASONS,
  type ExporterMsg,
  type MatcherMsg,
  OTHER_QUERY,
  type ReaderMsg,
  type RegistryMsg,
  type RowSkipReason,
  rowWeight,
} from "./messages.ts";
import { DroppedRows, pixieReader, type RowSource } from "./pixie_reader.ts";
import { detector } from "./detector.ts";
import { sourceTap, stageTaps } from "./tap_intake.ts";
import { signatureRegistry } from "./signature_registry.ts";
import { matcher } from "./matcher.ts";
import { exporter, type MatchFeed, type RecordSink } from "./exporter.ts";
import { stagePaths } from "../report/hops.ts";
import type { Bus, Subscription } from "../bus/bus.ts";
import type { Config } from "../config/schema.ts";
import type { FsmMetrics } from "../http/metrics.ts";
import type { Row } from "../pixie/row.ts";
import { wallClockNs } from "./event_clock.ts";
import { initAudioEngine } from "../audio/pipeline.ts";
import { initOpus } from "../audio/decode/opus.ts";
import { liveMemoryLimit, planStreams, type StreamPlan } from "./stream_budget.ts";
import { logger } from "../util/log.ts";
import { DrainStop } from "../util/drain_stop.ts";

/** Whether any packet tap maps a payload type to Opus. */
function mapsOpus(config: Config): boolean {
  const taps = config.measurements.flatMap((
    m,
  ) => [m.signature_rules.packets, ...m.match_rules.map((r) => r.packets)]);
  return taps.some((p) => p && Object.values(p.payload_types).some((c) => /^opus\//i.test(c)));
}

/** How a node is built. */
export interface NodeOptions {
  config: Config;
  /** This node's name (rows and signatures carry it). */
  node: string;
  bus: Bus;
  metrics: FsmMetrics;
  sinks?: readonly RecordSink[];
  clock?: Clock;
  /**
   * `live`: under overload the reader drops the oldest rows (counted) so a Pixie query is never stalled;
   * `replay`: back-pressure end to end, so a capture is analysed without loss.
   */
  mode: "live" | "replay";
  /** A live row source run under the reader's supervision. */
  source?: RowSource;
  /** Other nodes' match records, so this node's records carry hops from stages seen elsewhere. */
  matchFeed?: MatchFeed;
  /** Where the signature subscription starts (JetStream: wall ms; recovers signatures still live). */
  subscribeFromMs?: number;
  /** Told the node of each signature from the bus (e.g. so the clock-skew estimator probes that node). */
  onSignatureFrom?: (node: string) => void;
  /**
   * Wall clock in ms for a live node (default `Date.now`): rows and signatures further ahead of it than
   * engine.clock_window_seconds are not trusted. Not used in `replay` mode (captures are from the past).
   */
  wallMs?: () => number;
  /**
   * The monotonic local clock (ms since the epoch) late rows are judged by on a live node (default: the process's
   * time origin plus performance.now).
   */
  lateClockMs?: () => number;
  /**
   * Called with rows nothing of this node reads any more: those the Detector or Matcher has taken (once its
   * receive of them settled; the intake copies what it keeps), and those the reader routes nowhere. A paced
   * capture replay hands their batches back to the reader this way (cli/capture_run.ts). A row lost to a
   * failing actor is never reported.
   */
  onRowsDone?: (rows: readonly Row[]) => void;
  /** Test seam (fault injection): wraps the Matcher's behaviour factory. */
  wrapMatcher?: (factory: ActorFactory<MatcherMsg>) => ActorFactory<MatcherMsg>;
  /**
   * A live node's memory limit, bytes (default: `engine.memory_limit_mib`, else the container's; see
   * stream_budget.ts). Not used in `replay` mode.
   */
  memoryLimitBytes?: number;
}

/** Event time without audio after which a stream's pipeline is finished and dropped. */
const STREAM_IDLE_NS = 60_000_000_000n;
/**
 * The event-time tick of the node's periodic work: registry ticks and row counts (reader, every tick), sweeps of
 * idle streams and decode reports (Detectors, Matcher: when rows step over a tick; see tap_intake.ts).
 */
const TICK_NS = 1_000_000_000n;
/** A live reader's check, on the runtime's clock, for event time to carry on while no rows come (ms). */
const QUIET_TICK_MS = 1_000;
const ASK_MS = 600_000;

/**
 * Rows the row actors' mailboxes hold at most: a live node's. A Pixie push larger than the reader's is held back
 * at its source (pixie_reader.ts SOURCE_ROOM_WAIT_MS), not dropped.
 */
const LIVE_ROWS_IN_FLIGHT = { reader: 4096, detector: 1024, matcher: 2048 };
/**
 * A replay's: nothing to ride out (the capture waits), and a row queued behind thousands of others outlives two
 * scavenges of V8's young generation (~13 ms at 1,000 streams) and is promoted: with the live sizes, `run
 * --capture` of 1,000 streams promoted ~27 MB/s of rows and their messages (a full GC every ~0.4 s), with these
 * ~1.4 MB/s (with deno.json's run task's `--no-allocation-site-pretenuring`, without which V8 allocates rows in
 * old space anyway).
 */
const REPLAY_ROWS_IN_FLIGHT = { reader: 64, detector: 64, matcher: 64 };

/**
 * The streams a node follows: the config's, or on a live node whose config would not fit its memory limit,
 * a shorter target lookback and then fewer streams (stream_budget.ts), logged once.
 */
function nodeStreamPlan(opts: NodeOptions): StreamPlan {
  const engine = opts.config.engine;
  const demand = {
    lookbackSeconds: engine.lookback_seconds,
    maxStreams: engine.max_streams,
    measurements: opts.config.measurements.length,
    maxActiveSignatures: engine.max_active_signatures,
  };
  if (opts.mode !== "live") return planStreams(demand, undefined);
  const limit = opts.memoryLimitBytes ?? liveMemoryLimit(engine.memory_limit_mib);
  const plan = planStreams(demand, limit);
  if (plan.limited !== "none") {
    logger("node").warn("memory limit: following less than the config asks", {
      limitMiB: Math.round((limit ?? 0) / 1048576),
      lookbackSeconds: plan.lookbackSeconds,
      configuredLookbackSeconds: engine.lookback_seconds,
      maxSourceStreams: plan.maxSourceStreams,
      maxTargetStreams: plan.maxTargetStreams,
      configuredMaxStreams: engine.max_streams,
      plannedMB: Math.round(plan.plannedBytes / 1e6),
    });
  }
  return plan;
}

/** The row messages of the row actors (and others, passed through by {@link reportingRows}). */
type RowMsg = { kind: string; row?: Row; rows?: readonly Row[] };

/** The rows a message carries (none for other messages). */
function rowsOf(msg: RowMsg): readonly Row[] | undefined {
  if (msg.kind === "rows") return msg.rows;
  return msg.kind === "row" && msg.row !== undefined ? [msg.row] : undefined;
}

/** `f`'s behaviour, telling `done` of each message's rows once its receive of them settled without failing. */
function reportingRows<M extends RowMsg>(
  f: ActorFactory<M>,
  done: (rows: readonly Row[]) => void,
): ActorFactory<M> {
  return (ctx) => {
    const b = f(ctx);
    return {
      onStart: b.onStart?.bind(b),
      onStop: b.onStop?.bind(b),
      receive(msg, c) {
        const r = b.receive(msg, c);
        const rows = rowsOf(msg);
        if (rows === undefined) return r;
        if (r === undefined) return void done(rows);
        return r.then(() => done(rows));
      },
    };
  };
}

/** Reports to `done` the rows of a reader message whose query is not in `queries` (the reader routes them nowhere). */
function unrouted(
  queries: ReadonlySet<string>,
  done: (rows: readonly Row[]) => void,
): (rows: readonly Row[]) => void {
  return (rows) => {
    const skipped = rows.filter((r) => !queries.has(r.query));
    if (skipped.length > 0) done(skipped);
  };
}

/**
 * A live source the node can stop before the actor system's shutdown begins: a live stop first finishes the streams
 * in progress ({@link finishNodes} with `stopSources`), from the rows the source has handed on, and the source must
 * hand on none after. The stop asks for a drain (its signal aborts with a {@link DrainStop}, see RowSource): what the
 * source still holds (a packet capture's reorder windows, TCP holes, the kernel's last block) is handed on before
 * {@link StoppableSource.stop} resolves, so it is finished too. A reader restarted once it is stopped finds a source
 * that waits for the reader's own stop (a live source that ends by itself is taken for a failure, see
 * pixie_reader.ts).
 */
class StoppableSource implements RowSource {
  readonly #inner: RowSource;
  readonly #stop = new AbortController();
  readonly #running = new Set<Promise<void>>();
  readonly runBatches?: RowSource["runBatches"];
  readonly skipTo?: RowSource["skipTo"];
  readonly inputBusy?: RowSource["inputBusy"];
  readonly responses?: RowSource["responses"];

  constructor(inner: RowSource) {
    this.#inner = inner;
    if (inner.runBatches) {
      this.runBatches = (emit, signal) => this.#run(signal, (s) => inner.runBatches!(emit, s));
    }
    if (inner.skipTo) this.skipTo = (t) => inner.skipTo!(t);
    if (inner.inputBusy) this.inputBusy = () => inner.inputBusy!();
    if (inner.responses) this.responses = () => inner.responses!();
  }

  run(emit: (row: Row) => Promise<void>, signal: AbortSignal): Promise<void> {
    return this.#run(signal, (s) => this.#inner.run(emit, s));
  }

  async #run(signal: AbortSignal, run: (signal: AbortSignal) => Promise<void>): Promise<void> {
    const stopped = this.#stop.signal;
    if (!stopped.aborted) {
      const p = run(AbortSignal.any([signal, stopped]));
      this.#running.add(p);
      try {
        await p;
      } catch (e) {
        // A failure while it stops for a finish is no reason to restart it.
        if (!stopped.aborted || signal.aborted) throw e;
      } finally {
        this.#running.delete(p);
      }
      if (!stopped.aborted || signal.aborted) return;
    }
    if (signal.aborted) return;
    await new Promise<void>((resolve) => signal.addEventListener("abort", () => resolve(), { once: true }));
  }

  /**
   * Stops the source with a drain; resolves once every run of it has returned, having handed on what it held (so
   * it hands on nothing more).
   */
  async stop(): Promise<void> {
    this.#stop.abort(new DrainStop());
    await Promise.allSettled([...this.#running]);
  }
}

/** An actor reference resolved when first used, so actors can name ones spawned after them. */
function late<M>(get: () => ActorRef<M>): ActorRef<M> {
  return {
    get name() {
      return get().name;
    },
    tell: (m) => get().tell(m),
    tryTell: (m) => get().tryTell(m),
    ask: (make, t) => get().ask(make, t),
  };
}

/** A running node. */
export class SensorNode {
  readonly name: string;
  readonly system: ActorSystem;
  readonly #reader: ActorRef<ReaderMsg>;
  readonly #detectors: ActorRef<DetectorMsg>[];
  readonly #registry: ActorRef<RegistryMsg>;
  readonly #matcher: ActorRef<MatcherMsg>;
  readonly #exporter: ActorRef<ExporterMsg>;
  readonly #ingress: ActorRef<ReaderMsg>;
  readonly #matcherIngress: ActorRef<MatcherMsg>;
  readonly #source: StoppableSource | undefined;
  #subscription: Subscription | undefined;
  #aheadNs = 0n;
  readonly #queries: ReadonlySet<string>;
  readonly #metrics: FsmMetrics;
  /** The streams and lookback this node follows (a live node's memory budget may lower the config's). */
  readonly streamPlan: StreamPlan;

  private constructor(opts: NodeOptions) {
    const { node, bus, metrics } = opts;
    const plan = this.streamPlan = nodeStreamPlan(opts);
    const config = plan.limited === "none" ? opts.config : {
      ...opts.config,
      engine: {
        ...opts.config.engine,
        lookback_seconds: plan.lookbackSeconds,
        max_streams: plan.maxTargetStreams,
      },
    };
    this.name = node;
    this.system = new ActorSystem({
      clock: opts.clock,
      metrics: {
        mailboxDepth: () => {},
        dropped: (actor, reason, n) => metrics.dropped(actor, reason, n),
        restarted: (actor) => metrics.restarted(actor),
        poison: (actor) => metrics.poison(actor),
        escalated: () => {},
      },
    });
    metrics.watchMailboxes(() => this.system.stats());
    const rowPolicy: OverflowPolicy = opts.mode === "live" ? "drop-oldest" : "backpressure";
    const rowsIn = opts.mode === "live" ? LIVE_ROWS_IN_FLIGHT : REPLAY_ROWS_IN_FLIGHT;
    const refs: {
      registry?: ActorRef<RegistryMsg>;
      matcher?: ActorRef<MatcherMsg>;
      exporter?: ActorRef<ExporterMsg>;
    } = {};
    const matcherRef = late(() => refs.matcher!);
    const exporterRef = late(() => refs.exporter!);
    const registryRef = late(() => refs.registry!);

    const engine = config.engine;
    const clockWindowNs = BigInt(Math.round(engine.clock_window_seconds * 1e9));
    const wallNs = opts.mode === "live" ? wallClockNs(opts.wallMs) : undefined;
    const queries = new Set<string>();
    for (const m of config.measurements) {
      // Every series a node may bump exists from the start, at 0 (no "missing" series in PromQL).
      for (const reason of EXPIRE_REASONS) metrics.signaturesExpired(m.name, reason, 0);
      for (const tap of [sourceTap(m), ...stageTaps([m])]) {
        queries.add(tap.query);
        metrics.streamsEvicted(m.name, tap.name, 0);
      }
    }
    this.#queries = queries;
    // Both ways a live reader sheds rows exist from the start, at 0.
    if (opts.mode === "live") { for (const r of ["overflow", "late"]) metrics.dropped("pixie_reader", r, 0); }
    this.#metrics = metrics;
    const detectors = new Map<string, ActorRef<DetectorMsg>>();
    const done = opts.onRowsDone;
    /** `f`, reporting the rows it takes to `onRowsDone` (those `which` picks; default: every one). */
    const rowsDone = <M extends RowMsg>(
      f: ActorFactory<M>,
      which?: (done: (rows: readonly Row[]) => void) => (rows: readonly Row[]) => void,
    ): ActorFactory<M> => done === undefined ? f : reportingRows(f, which ? which(done) : done);
    // A live reader's mailbox drops its oldest rows when the actors behind it are stuck: a gap in every stream.
    const dropped = opts.mode === "live" ? new DroppedRows() : undefined;
    const source = this.#source = opts.source && new StoppableSource(opts.source);
    this.#reader = this.system.spawn(
      "pixie_reader",
      rowsDone(
        pixieReader({
          dropped,
          detectors,
          matcher: matcherRef,
          registry: registryRef,
          exporter: exporterRef,
          source,
          tickNs: TICK_NS,
          quietTickMs: opts.mode === "live" ? QUIET_TICK_MS : undefined,
          queries,
          clockWindowNs,
          wallNs,
          counters: metrics,
          late: opts.mode === "live"
            ? {
              boundMs: engine.late_row_seconds * 1000,
              nowMs: opts.lateClockMs,
              // Saturated: the actors were busy 80% of the last second or two (see actorBusyFraction).
              saturated: () => actorBusyFraction() >= 0.8,
              onLate: (n) => metrics.dropped("pixie_reader", "late", n),
            }
            : undefined,
        }),
        (d) => unrouted(queries, d),
      ),
      {
        capacity: rowsIn.reader,
        overflow: rowPolicy,
        weigh: rowWeight,
        onDrop: dropped && ((msg, reason) => {
          if (reason === "overflow") dropped.note(msg);
        }),
      },
    );
    for (const m of config.measurements) {
      detectors.set(
        m.name,
        this.system.spawn(
          `detector/${m.name}`,
          rowsDone(detector({
            measurement: m,
            node,
            bus,
            matcher: matcherRef,
            exporter: exporterRef,
            idleNs: STREAM_IDLE_NS,
            tickNs: TICK_NS,
            groupStreams: opts.mode === "live",
            maxStreams: plan.maxSourceStreams,
            clockWindowNs,
            counters: metrics,
          })),
          { capacity: rowsIn.detector, overflow: "backpressure", weigh: rowWeight },
        ),
      );
    }
    this.#detectors = [...detectors.values()];
    this.#registry = refs.registry = this.system.spawn(
      "signature_registry",
      signatureRegistry({ config, matcher: matcherRef, exporter: exporterRef, counters: metrics, wallNs }),
      { capacity: 8192, overflow: "backpressure" },
    );
    this.#matcher = refs.matcher = this.system.spawn(
      "matcher",
      rowsDone((opts.wrapMatcher ?? ((f) => f))(matcher({
        config,
        node,
        exporter: exporterRef,
        registry: registryRef,
        idleNs: STREAM_IDLE_NS,
        tickNs: TICK_NS,
        groupStreams: opts.mode === "live",
        counters: metrics,
        configuredLookbackSeconds: opts.config.engine.lookback_seconds,
      }))),
      { capacity: rowsIn.matcher, overflow: "backpressure", weigh: rowWeight },
    );
    this.#exporter = refs.exporter = this.system.spawn(
      "exporter",
      exporter({
        metrics,
        bus,
        sinks: opts.sinks ?? [],
        paths: stagePaths(config),
        traceIds: config.otlp.endpoint !== "",
        matchFeed: opts.matchFeed,
      }),
      { capacity: 8192, overflow: "backpressure" },
    );
    this.#ingress = this.system.ingress(this.#reader);
    this.#matcherIngress = this.system.ingress(this.#matcher);
    this.system.onFlush((budgetMs) => bus.flush(budgetMs));
  }

  /** Builds and starts a node, subscribed to every signature of its measurements. */
  static async start(opts: NodeOptions): Promise<SensorNode> {
    // The WebRTC VAD only when a measurement asks for it (its WebAssembly holds ~6 MB).
    await initAudioEngine({
      webrtcVad: opts.config.measurements.some((m) => m.signature_rules.audio_criteria.vad_mode === "webrtc"),
    });
    // Opus decoders start asynchronously (WebAssembly): have some ready before the first RTP Opus packet.
    if (mapsOpus(opts.config)) await initOpus(48000, 1);
    const n = new SensorNode(opts);
    const registry = n.system.ingress(n.#registry);
    n.#subscription = await opts.bus.subscribeSignatures(
      opts.config.measurements.map((m) => m.name),
      async (sig) => {
        opts.onSignatureFrom?.(sig.source.node);
        await registry.tell({ kind: "signature", sig });
      },
      { startTimeMs: opts.subscribeFromMs },
    );
    return n;
  }

  /**
   * The clock-skew estimator's view (peer clock minus this node's, seconds, per peer): target audio is then
   * searched as much further before a signature's instant as the furthest-ahead peer (within the clock window),
   * so a node whose clock is behind still matches. Only changes are sent.
   */
  noteClockOffsets(peerOffsetsSeconds: Iterable<number>): void {
    let ahead = 0;
    for (const s of peerOffsetsSeconds) if (Number.isFinite(s) && s > ahead) ahead = s;
    // Rounded up to 100 ms with 100 ms to spare: estimates jitter, and each change touches every stream.
    const ns = ahead > 0 ? BigInt(Math.ceil(ahead * 10) + 1) * 100_000_000n : 0n;
    if (ns === this.#aheadNs) return;
    this.#aheadNs = ns;
    void this.#matcherIngress.tell({ kind: "clock-ahead", aheadNs: ns });
  }

  /** Counts a row skipped before the node (e.g. by the replay: no usable time), labelled like the reader's. */
  countSkipped(query: string, reason: RowSkipReason): void {
    this.#metrics.rowsSkipped(this.#queries.has(query) ? query : OTHER_QUERY, reason);
  }

  /** Feeds one row (capture replay); waits for mailbox room, so a replay is back-pressured. */
  ingest(row: Row): Promise<boolean> {
    return this.#ingress.tell({ kind: "row", row });
  }

  /** Feeds rows in order as one message (capture replay); back-pressured like {@link SensorNode.ingest}. */
  ingestBatch(rows: readonly Row[]): Promise<boolean> {
    return this.#ingress.tell({ kind: "rows", rows });
  }

  /**
   * Phase 0 of a live stop's finish: the live source stops reading and hands on what it still holds (a drain, see
   * RowSource); those rows and the ones it already handed on are finished, none come after. Resolves once it has
   * returned.
   */
  stopSources(): Promise<void> {
    return this.#source?.stop() ?? Promise.resolve();
  }

  /** Phase 1 of a finish: every row handed to the reader has been routed. */
  finishReader(timeoutMs = ASK_MS): Promise<true> {
    return this.#reader.ask((reply) => ({ kind: "finish", reply }), timeoutMs);
  }

  /** Phase 2: every detector has flushed its streams and published their signatures. */
  async finishDetectors(timeoutMs = ASK_MS): Promise<void> {
    await Promise.all(this.#detectors.map((d) => d.ask((reply) => ({ kind: "finish", reply }), timeoutMs)));
  }

  /** Phase 3: the registry has handled every signature delivered so far. */
  syncRegistry(timeoutMs = ASK_MS): Promise<true> {
    return this.#registry.ask((reply) => ({ kind: "finish", reply }), timeoutMs);
  }

  /** Phase 4: the matcher has flushed its target streams. */
  finishMatcher(timeoutMs = ASK_MS): Promise<true> {
    return this.#matcher.ask((reply) => ({ kind: "finish", reply }), timeoutMs);
  }

  /** Phase 5: the exporter has handled every signature and match. */
  syncExporter(timeoutMs = ASK_MS): Promise<true> {
    return this.#exporter.ask((reply) => ({ kind: "finish", reply }), timeoutMs);
  }

  /** Graceful stop: intake closed, mailboxes drained in pipeline order, bus flushed. */
  async shutdown(deadlineMs: number, reason = "shutdown"): Promise<Termination> {
    await this.#subscription?.unsubscribe();
    return await this.system.shutdown({ deadlineMs, reason });
  }
}

/** The phases of a finish, in their order (see {@link finishNodes}). */
export type FinishPhase = "sources" | "reader" | "detectors" | "bus" | "registry" | "matcher" | "exporter";

/**
 * The most of a finish's deadline its bus phase may take. Healthy, it takes milliseconds (a flush, the node's own
 * signatures back through the server); a bus that cannot deliver took all of it before, and the phases after it,
 * which need no bus (the Matcher's verification of what is here, the exporter's records), timed out unfinished.
 */
export const BUS_FINISH_SHARE = 0.25;

/** Options of {@link finishNodes}. */
export interface FinishOptions {
  /**
   * A live stop: the nodes' live sources stop reading first (phase `sources`), handing on what they hold, so that
   * the rows finished are all there will be. (A capture's end needs none: its rows have ended.)
   */
  readonly stopSources?: boolean;
  /**
   * Time the whole finish may take, ms: each phase's asks and the bus's flush wait for what is left of it, so a
   * phase that does not answer fails the finish by then (default: 10 minutes an ask).
   */
  readonly deadlineMs?: number;
  /** Told of each phase as it begins (a finish cut short can then say where). */
  readonly onPhase?: (phase: FinishPhase) => void;
}

/**
 * Finishes several nodes that share a bus (end of a capture replay, or a live stop): each phase runs on every node
 * before the next, because one node's last signatures may be matched on another. Every source stream's pending
 * signatures are published; once they have reached the registries (their own node's too, which JetStream delivers
 * back through the server), every target stream is verified with the frames it has; then the exporters have
 * handled every signature and match.
 */
export async function finishNodes(
  nodes: readonly SensorNode[],
  bus: Bus,
  opts: FinishOptions = {},
): Promise<void> {
  const clock = nodes[0]?.system.clock;
  const start = clock?.now() ?? 0;
  const deadline = opts.deadlineMs;
  const left = () => deadline === undefined ? ASK_MS : Math.max(0, deadline - ((clock?.now() ?? 0) - start));
  const phase = async (name: FinishPhase, run: (ms: number) => Promise<unknown>) => {
    opts.onPhase?.(name);
    await run(left());
  };
  if (opts.stopSources) await phase("sources", () => Promise.all(nodes.map((n) => n.stopSources())));
  await phase("reader", (ms) => Promise.all(nodes.map((n) => n.finishReader(ms))));
  await phase("detectors", (ms) => Promise.all(nodes.map((n) => n.finishDetectors(ms))));
  await phase("bus", async (ms) => {
    // A bus that cannot deliver (NATS down at the stop) waits out what it is given: at most a share of the
    // deadline, so the registry, the Matcher and the exporter still finish with what is here.
    const until = (clock?.now() ?? 0) +
      (deadline === undefined ? ms : Math.min(ms, deadline * BUS_FINISH_SHARE));
    await bus.flush(Math.max(0, until - (clock?.now() ?? 0)));
    await bus.delivered?.(Math.max(0, until - (clock?.now() ?? 0)));
  });
  await phase("registry", (ms) => Promise.all(nodes.map((n) => n.syncRegistry(ms))));
  await phase("matcher", (ms) => Promise.all(nodes.map((n) => n.finishMatcher(ms))));
  await phase("exporter", (ms) => Promise.all(nodes.map((n) => n.syncExporter(ms))));
}
