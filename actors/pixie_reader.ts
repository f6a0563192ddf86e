/**
 * PixieReader: the node's eyes. Routes each row of its queries to the measurement's Detector (`<m>/source`) or to
 * the Matcher (`<m>/<stage>`), advances the node's event clock for the registry, and counts rows per query.
 * Rows come from a live Pixie query (a {@link RowSource} run under this actor's supervision) or from a capture
 * replay feeding the actor's mailbox.
 *
 * The event clock ignores rows too far ahead of the others (see event_clock.ts), so one wrong `time_` cannot
 * expire every signature. Row counts are labelled by configured query names; rows of other queries are counted
 * and skipped, their names kept as labels for the first few only, so input cannot create series without end.
 * @module
 */
import type { ActorContext, ActorFactory, ActorRef } from "./runtime.ts";
import {
  type DetectorMsg,
  type ExporterMsg,
  type MatcherMsg,
  NO_COUNTERS,
  type NodeCounters,
  OTHER_QUERY,
  type ReaderMsg,
  type RegistryMsg,
} from "./messages.ts";
import { parseQueryName, type Row, SOURCE_TAP } from "../pixie/row.ts";
import { GAP_START_UNKNOWN } from "./stream_table.ts";
import { EventClock } from "./event_clock.ts";
import { LateRows, type LateRowsOptions } from "./late_rows.ts";
import { mainThreadDemand } from "./thread_demand.ts";

/** Names of queries no measurement names that keep their own label (the end-of-run diagnosis quotes them). */
export const UNKNOWN_QUERY_LABELS = 8;

/**
 * A producer of rows run inside the reader (e.g. the live Pixie stream); it ends when `signal` aborts.
 *
 * Drain on stop: `signal` aborting with a `DrainStop` reason (util/drain_stop.ts; a live stop that finishes the
 * streams in progress, actors/node.ts StoppableSource) asks the source to hand on through `emit`, before `run`
 * returns, what it still holds that a clean end of its input would complete (packets/live_source.ts: the reorder
 * windows, TCP bytes behind holes, the kernel's last block of packets), within a short bound of its own. The
 * reader takes those rows as any others. Any other reason (the reader restarting, the actor system's shutdown) means
 * stop at once; a source that holds nothing treats both alike.
 */
export interface RowSource {
  run(emit: (row: Row) => Promise<void>, signal: AbortSignal): Promise<void>;
  /**
   * {@link run}, handing on the rows in the batches they came in (a Pixie response: one mailbox message, one
   * routing pass and one message per destination for all its rows, instead of each per row). Preferred when given.
   */
  runBatches?(emit: (rows: readonly Row[]) => Promise<void>, signal: AbortSignal): Promise<void>;
  /** Skips ahead to a `time_` (ns): rows before it not yet read are never read (see late_rows.ts). */
  skipTo?(timeNs: bigint): void;
  /**
   * The fraction (0..1) of the last second or so the source found its input waiting to be read (util/input_meter.ts):
   * near 1 when reading is behind its peer, low when the source waits for input.
   */
  inputBusy?(): number;
  /**
   * How many responses the source has had from its peer so far, with rows or without (Pixie's keep-alives, every
   * 2 s): while it goes on answering without rows its input is quiet, not lost. Absent: a source whose quiet is
   * always real (a packet capture: time passes on this host's clock, and no packet of the quiet comes later).
   */
  responses?(): number;
}

/** What the reader talks to. */
export interface ReaderDeps {
  detectors: ReadonlyMap<string, ActorRef<DetectorMsg>>;
  matcher: ActorRef<MatcherMsg>;
  registry: ActorRef<RegistryMsg>;
  exporter: ActorRef<ExporterMsg>;
  /** Live source, if any. */
  source?: RowSource;
  /** Event time between two registry ticks and row-count reports. */
  tickNs?: bigint;
  /** The configured query names (`<measurement>/source`, `<measurement>/<stage>`). */
  queries: ReadonlySet<string>;
  /** engine.clock_window_seconds, ns. */
  clockWindowNs: bigint;
  /**
   * Live nodes: every this many ms of the runtime's clock without a row moving event time, event time is carried
   * on by that clock from the last row that did (see {@link QUIET_ALIVE_MS}), and the registry, the Detectors and
   * the Matcher are told (ticks, `time`), so a node whose rows stop expires signatures and ends idle streams.
   * Absent (capture replay): event time moves with the rows only.
   */
  quietTickMs?: number;
  /** Wall clock, ns (live nodes: rows further ahead of it than the window do not move the event clock). */
  wallNs?: () => bigint;
  counters?: NodeCounters;
  /**
   * Live nodes: rows read too long after their `time_` are dropped here, before routing, and counted with
   * `onLate` (see late_rows.ts). Absent (capture replay): every row is routed.
   */
  late?: LateRowsOptions & {
    onLate(n: number): void;
    /**
     * The main thread's demand for CPU, 0..1 (default: thread_demand.ts's, from /proc; NaN where unknown), for a
     * source without {@link RowSource.inputBusy}. At {@link SATURATED_DEMAND} or more (of this, or of the source's
     * inputBusy) the sensor counts as saturated whatever `saturated` says: reading (gRPC, protobuf, rows) runs
     * outside the actors, which idle, starved of rows, when reading is the bottleneck.
     */
    demand?: () => number;
  };
  /**
   * Rows the reader's own mailbox dropped (overflow: the actors behind it were stuck), noted by the runtime
   * (SpawnOptions.onDrop): a gap in every stream as late rows are, announced the same way.
   */
  dropped?: DroppedRows;
}

/** The earliest time of the rows a reader's mailbox dropped since the reader last took it. */
export class DroppedRows {
  #fromNs: bigint | undefined;

  /** Notes the rows of a dropped message (a batch, or one row). */
  note(msg: ReaderMsg): void {
    if (msg.kind === "row") this.#noteTime(msg.row.time);
    else if (msg.kind === "rows") { for (const r of msg.rows) this.#noteTime(r.time); }
  }

  #noteTime(t: bigint): void {
    if (this.#fromNs === undefined || t < this.#fromNs) this.#fromNs = t;
  }

  /** Whether rows were dropped since the last {@link take}. */
  get pending(): boolean {
    return this.#fromNs !== undefined;
  }

  /** The earliest time of the rows dropped since the last call (undefined: none). */
  take(): bigint | undefined {
    const t = this.#fromNs;
    this.#fromNs = undefined;
    return t;
  }
}

/**
 * While no row comes, event time is carried on only while the source has answered within this long (runtime ms;
 * Pixie sends keep-alives every 2 s): a Pixie stream that dropped is re-run from where it stopped, and the rows of
 * the outage come then, so the outage is no quiet.
 */
export const QUIET_ALIVE_MS = 5_000;

/**
 * How far behind the Detectors' the Matcher's event time is carried on while no rows come (ns): the time a call's
 * last signature has to reach the Matcher (through the bus and the registry) before the call's target streams end
 * at the same idle time as its source stream. Told at the same time, the target streams ended first and the
 * signature found none to match.
 */
export const QUIET_MATCHER_LAG_NS = 5_000_000_000n;

/** Reading busy this much of the time (input waiting, or the main thread running or runnable) has no time to spare. */
export const SATURATED_DEMAND = 0.8;

/**
 * `opts` saturated also while reading is: the source finds its input waiting for it (RowSource.inputBusy), or,
 * for a source that cannot tell, the main thread runs or waits for a CPU (ReaderDeps.late.demand).
 */
function withDemand(opts: NonNullable<ReaderDeps["late"]>, source: RowSource | undefined): LateRowsOptions {
  const saturated = opts.saturated;
  if (!saturated) return opts; // always saturated already
  const input = source?.inputBusy ? () => source.inputBusy!() : undefined;
  const demand = opts.demand ?? mainThreadDemand;
  const reading = input ?? demand;
  return { ...opts, saturated: () => saturated() || reading() >= SATURATED_DEMAND };
}

/**
 * Longest a live source waits for room in the reader's mailbox before handing its rows on anyway (the oldest
 * queued then make room, counted as overflow), ms. A Pixie response is read only once the rows before it have
 * room: a push (Stirling's ~200 ms of every connection, 30,000 rows at 1,000 calls) comes in back to back, read
 * faster than the pipelines take it, and a 4,096-row mailbox that never made its source wait dropped rows of a
 * load the sensor carried on average. Waiting holds the rest of the push in Pixie (HTTP/2 flow control); a
 * sensor behind for longer sheds rows as late (late_rows.ts), and one whose pipelines are stuck still drops.
 */
export const SOURCE_ROOM_WAIT_MS = 1_000;

/** An aborted signal: {@link ActorContext.room} with it only tells whether there is room, and waits for none. */
const ASKED = AbortSignal.abort();

/** Waits until the reader's mailbox has room for `weight` rows, at most {@link SOURCE_ROOM_WAIT_MS}. */
function roomFor(
  ctx: ActorContext<ReaderMsg>,
  stop: AbortSignal,
): (weight: number) => Promise<void> | undefined {
  // Each wait's own signal, aborted when it gives up (timed out or stopped) so the wait leaves the mailbox's list (a
  // mailbox full for long would otherwise keep one per response). Unused while there is room, so kept for the next.
  let next = new AbortController();
  return (weight) => {
    const room = ctx.room(weight, next.signal);
    // No timer when there is room (nearly always): a timer per response cost more than its rows (stream.ts).
    if (room === undefined) return undefined;
    const gaveUp = next;
    next = new AbortController();
    return new Promise<void>((resolve) => {
      const done = () => {
        ctx.clock.clearTimer(timer);
        stop.removeEventListener("abort", done);
        gaveUp.abort();
        resolve();
      };
      const timer = ctx.clock.setTimer(SOURCE_ROOM_WAIT_MS, done);
      stop.addEventListener("abort", done, { once: true });
      room.then(done);
    });
  };
}

/** Builds the reader's behaviour. */
export function pixieReader(deps: ReaderDeps): ActorFactory<ReaderMsg> {
  const tickNs = deps.tickNs ?? 1_000_000_000n;
  const counters = deps.counters ?? NO_COUNTERS;
  // Outside the factory: a restarted reader keeps the labels it gave (a bounded set either way).
  const unknown = new Set<string>();
  return (ctx) => {
    const clock = new EventClock({ windowNs: deps.clockWindowNs, wallNs: deps.wallNs });
    let lastTick = 0n;
    let outliers = 0;
    const rows = new Map<string, number>();
    // A restarted reader starts a new baseline: its source re-runs the query from where it stopped.
    const source = deps.source;
    const skip = source?.skipTo ? (toNs: bigint) => source.skipTo!(toNs) : undefined;
    const late = deps.late
      ? new LateRows({
        ...withDemand(deps.late, source),
        skip,
        onSkipped: (n) => ctx.log.warn("too far behind its Pixie rows; skipped ahead", { rows_estimate: n }),
        // The event clock's bound (the wall clock plus the window): a row beyond it sets no baseline either.
        horizonNs: () => clock.horizonNs(),
      })
      : undefined;
    const one: Row[] = [];
    /** Rows were shed as late since rows were last routed: the actors are told before the next ones. */
    let shed = false;
    /** The rows of a message that are not late (counted when some are). */
    const fresh = (rs: readonly Row[]): readonly Row[] => {
      const before = late!.dropped;
      const kept = late!.filter(rs);
      if (late!.dropped > before) {
        deps.late!.onLate(late!.dropped - before);
        shed = true;
      }
      return kept;
    };
    /**
     * Tells every actor that follows streams that rows of every stream were shed: their first rows after the gap
     * come in turn, and a stream not followed must not take the place of one that has not had its turn yet.
     */
    const announceShed = async () => {
      shed = false;
      // The earliest row lost, to lateness or to the mailbox (both taken, so neither is announced again).
      let fromNs = late?.takeGapFrom();
      const dropped = deps.dropped?.take();
      if (dropped !== undefined && (fromNs === undefined || dropped < fromNs)) fromNs = dropped;
      fromNs ??= GAP_START_UNKNOWN;
      for (const d of deps.detectors.values()) await d.tell({ kind: "shed", fromNs });
      await deps.matcher.tell({ kind: "shed", fromNs });
    };

    const flushCounts = async () => {
      for (const [query, n] of rows) await deps.exporter.tell({ kind: "rows", query, n });
      rows.clear();
      if (clock.outliers > outliers) {
        counters.clockOutliers(clock.outliers - outliers);
        outliers = clock.outliers;
      }
    };
    /** The label of a query: its name if configured or among the first few unknown ones, else `(other)`. */
    const labelOf = (query: string): string => {
      if (deps.queries.has(query) || unknown.has(query)) return query;
      if (unknown.size < UNKNOWN_QUERY_LABELS) {
        unknown.add(query);
        ctx.log.warn("rows of a query no measurement names; counted and skipped", { query });
        return query;
      }
      return OTHER_QUERY;
    };
    /** Where a query's rows go: its measurement's Detector, the Matcher, or nowhere (not configured). */
    const destinations = new Map<string, ActorRef<DetectorMsg> | "matcher" | undefined>();
    const destOf = (query: string) => {
      if (destinations.has(query)) return destinations.get(query);
      let d: ActorRef<DetectorMsg> | "matcher" | undefined;
      if (deps.queries.has(query)) {
        const q = parseQueryName(query);
        d = (q && q.tap === SOURCE_TAP ? deps.detectors.get(q.measurement) : undefined) ?? "matcher";
      }
      // Bounded: configured queries and at most a few unknown ones are remembered.
      if (d !== undefined || destinations.size < 64) destinations.set(query, d);
      return d;
    };
    /** The event clock followed a step of the rows' clock back: the next tick tells the registry so. */
    let steppedBack = false;
    /** Counts a row and moves the event clock; true when a registry tick is due first. */
    const observe = (row: Row, known: boolean): boolean => {
      const label = known ? row.query : labelOf(row.query);
      rows.set(label, (rows.get(label) ?? 0) + 1);
      if (!known) counters.rowsSkipped(label, "unknown_query");
      const o = clock.observe(row.time);
      if (o === "stepped-back") {
        steppedBack = true;
        return true;
      }
      return o === "advanced" && clock.nowNs - lastTick >= tickNs;
    };
    const tick = async () => {
      lastTick = clock.nowNs;
      const back = steppedBack;
      steppedBack = false;
      await deps.registry.tell(
        back ? { kind: "tick", nowNs: lastTick, back } : { kind: "tick", nowNs: lastTick },
      );
      await flushCounts();
      // Live: the Detectors take only source rows and the Matcher only target rows, and no quiet tick comes while
      // other rows move event time. A call's source stream that ended while other calls' target rows went on was
      // not finished (its last signature not made) until the next source row; a node's target streams that ended
      // while its source talked kept their held matches (the repeat guard). Told as a quiet tick tells them, the
      // Matcher with the same lag (a call's last signature reaches it before its target streams end).
      if (deps.quietTickMs !== undefined && !back) {
        for (const d of deps.detectors.values()) await d.tell({ kind: "time", nowNs: lastTick });
        if (lastTick - QUIET_MATCHER_LAG_NS > 0n) {
          await deps.matcher.tell({ kind: "time", nowNs: lastTick - QUIET_MATCHER_LAG_NS });
        }
      }
    };
    /**
     * Quiet ticks (live nodes, {@link ReaderDeps.quietTickMs}): `quietBaseNs` is the event clock when a quiet tick
     * last found it moved, `carriedMs` the runtime's ms since then during which the source was answering, so event
     * time carried on is `quietBaseNs + carriedMs`. It trails the rows' time by their delivery delay and up to a
     * tick (the tick that finds the clock moved counts from itself), never ahead of it. Before, only rows moved
     * event time: on a node whose rows stopped (a night, the last call of a scaled-down deployment) no signature
     * expired (`active_signatures` held for good), and a call's last signatures and pending matches waited for the
     * next call's rows, then came too late to match (refused as `late` after a TTL's quiet).
     */
    let quietBaseNs = 0n, carriedMs = 0, quietAtMs = ctx.clock.now();
    let seenResponses = -1, answeredAtMs = quietAtMs;
    /** Whether rows came since the last quiet tick of the runtime's clock (no `quiet` message is needed then). */
    let rowsSinceQuiet = false;
    const quiet = async () => {
      const now = ctx.clock.now();
      const elapsedMs = now - quietAtMs;
      quietAtMs = now;
      if (clock.nowNs !== quietBaseNs) {
        quietBaseNs = clock.nowNs;
        carriedMs = 0;
        return;
      }
      if (quietBaseNs === 0n || steppedBack) return;
      const responses = deps.source?.responses?.();
      if (responses !== undefined) {
        if (responses !== seenResponses) {
          seenResponses = responses;
          answeredAtMs = now;
        } else if (now - answeredAtMs > QUIET_ALIVE_MS) return;
      }
      carriedMs += elapsedMs;
      const t = quietBaseNs + BigInt(Math.round(carriedMs)) * 1_000_000n;
      if (t - lastTick < tickNs) return;
      lastTick = t;
      await deps.registry.tell({ kind: "tick", nowNs: t });
      await flushCounts();
      for (const d of deps.detectors.values()) await d.tell({ kind: "time", nowNs: t });
      // The Matcher's streams end a little later than the Detectors' at the same idle time: a call's last signature,
      // published as its source stream ends, crosses the bus and the registry before its target streams end.
      if (t - QUIET_MATCHER_LAG_NS > 0n) {
        await deps.matcher.tell({ kind: "time", nowNs: t - QUIET_MATCHER_LAG_NS });
      }
    };
    /** Runs the quiet ticks until this incarnation ends; a tick is offered only when the mailbox has room for it. */
    const startQuietTicks = (everyMs: number) => {
      let timer: number | undefined;
      const fire = () => {
        timer = undefined;
        if (ctx.signal.aborted || ctx.stopping.aborted) return;
        // Never into a full mailbox: a live reader's drops its oldest rows to make room.
        if (!rowsSinceQuiet && ctx.room(1, ASKED) === undefined) ctx.self.tryTell({ kind: "quiet" });
        rowsSinceQuiet = false;
        timer = ctx.clock.setTimer(everyMs, fire);
      };
      timer = ctx.clock.setTimer(everyMs, fire);
      const stop = () => {
        if (timer !== undefined) ctx.clock.clearTimer(timer);
      };
      ctx.signal.addEventListener("abort", stop, { once: true });
    };
    const route = async (row: Row) => {
      const known = deps.queries.has(row.query);
      if (observe(row, known)) await tick();
      if (!known) return;
      const d = destOf(row.query);
      if (d === "matcher" || d === undefined) await deps.matcher.tell({ kind: "row", row });
      else await d.tell({ kind: "row", row });
    };
    /**
     * A batch of rows: each destination gets its rows as one message, in order; a registry tick that falls
     * inside the batch is sent after the rows before it, as row by row.
     */
    const routeBatch = async (batch: readonly Row[]) => {
      const toDetector = new Map<ActorRef<DetectorMsg>, Row[]>();
      let toMatcher: Row[] = [];
      const flush = async () => {
        for (const [d, rs] of toDetector) await d.tell({ kind: "rows", rows: rs });
        toDetector.clear();
        if (toMatcher.length > 0) await deps.matcher.tell({ kind: "rows", rows: toMatcher });
        toMatcher = [];
      };
      // By index: a for-of across the awaits below made an iterator result per row (~18 MB an analyze).
      for (let i = 0; i < batch.length; i++) {
        const row = batch[i]!;
        const known = deps.queries.has(row.query);
        if (observe(row, known)) {
          await flush();
          await tick();
        }
        if (!known) continue;
        const d = destOf(row.query);
        if (d === "matcher" || d === undefined) toMatcher.push(row);
        else {
          let list = toDetector.get(d);
          if (!list) toDetector.set(d, list = []);
          list.push(row);
        }
      }
      await flush();
    };

    return {
      onStart() {
        if (deps.quietTickMs !== undefined) startQuietTicks(deps.quietTickMs);
        if (!deps.source) return;
        // The source runs beside the mailbox; its rows go through the mailbox like replayed ones, so a failure
        // crashes this actor through the ordinary path and the supervisor restarts the source.
        // Stop producing as soon as shutdown begins, so the reader's own mailbox can drain.
        const stop = AbortSignal.any([ctx.signal, ctx.stopping]);
        const source = deps.source;
        const room = roomFor(ctx, stop);
        const running = source.runBatches
          ? source.runBatches(async (rows) => {
            const wait = room(rows.length);
            if (wait) await wait;
            await ctx.self.tell({ kind: "rows", rows });
          }, stop)
          : source.run(async (row) => {
            const wait = room(1);
            if (wait) await wait;
            await ctx.self.tell({ kind: "row", row });
          }, stop);
        const failed = (error: string) => {
          if (!stop.aborted) void ctx.self.tell({ kind: "source-failed", error });
        };
        // A live source ends only when stopped: one that ends on its own (a peer that ended the query) would
        // leave the sensor without rows for good, so that is a failure too.
        running.then(
          () => failed("it ended without being stopped"),
          (e) => failed((e as Error)?.message ?? String(e)),
        );
      },
      async receive(msg) {
        if (msg.kind === "quiet") return await quiet();
        rowsSinceQuiet = true;
        if (msg.kind === "row") {
          if (late) {
            one[0] = msg.row;
            if (fresh(one).length === 0) return;
          }
          if (deps.dropped?.pending) shed = true;
          if (shed) await announceShed();
          return await route(msg.row);
        }
        if (msg.kind === "rows") {
          const rs = late ? fresh(msg.rows) : msg.rows;
          if (rs.length === 0) return;
          if (deps.dropped?.pending) shed = true;
          if (shed) await announceShed();
          return await routeBatch(rs);
        }
        if (msg.kind === "source-failed") throw new Error(`row source failed: ${msg.error}`);
        await flushCounts();
        msg.reply(true);
      },
    };
  };
}
