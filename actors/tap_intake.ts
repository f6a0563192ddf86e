/**
 * The tap intake, one for both sides: the Detector's (source taps, {@link SourcePipeline}s) and the Matcher's
 * (stage taps, {@link TargetPipeline}s). It turns each row of a tap into a message for its audio stream's
 * pipeline, once, the same way for Pixie rows and packet-capture rows (tap_message.ts reads either), and owns
 * what every stream needs around its pipeline:
 *
 * - the stream key (a {@link StreamKeyer} per tap) and the stream's state in a {@link StreamTable}: streams idle
 *   for `idleNs` of event time end at the next sweep ({@link EventClock}, so a row from the future does not end
 *   them all), and past `maxStreams` the least recently fed one ends early (counted) when it has been quiet for
 *   {@link STREAM_CAP_QUIET_NS}; while every stream is active a new one is not followed, its rows counted as
 *   skipped (`stream_limit`), unless its tap holds less than an equal share of the cap: then the largest tap's
 *   least recently fed stream ends early (counted) to make room, so every stage stays followed (the table's
 *   fair share);
 * - duplicate rows (same time, same payload on a stream: skipped and counted);
 * - context ids that stick to a stream (source taps: a call's ids come once, e.g. in a Twilio `start` event), kept in
 *   a {@link StickyIds} that its owner may keep across restarts;
 * - source streams that taps with `exclude_source_streams` must not follow;
 * - decode counters, reported per tap ({@link DecodeReporter}) at each sweep and at the end.
 *
 * A sweep runs once per `tickNs` of event time, under continuous traffic as after a break in it: at the first
 * row, then at the first row at least a tick after the last sweep. (Before, a sweep ran only when event time
 * jumped by a tick between two rows, so a busy node never ended idle streams: they stayed until the stream cap
 * evicted them, and decode counters reached the metrics only after a pause in traffic.)
 *
 * On a live node a batch's rows are taken stream by stream ({@link TapIntakeOptions.groupStreams}): a Pixie
 * response carries each connection's messages of a push period (Stirling pushes ~200 ms of a table at a time,
 * sorted by time, so every stream's rows interleave with every other's), and a row's cost is mostly cache misses
 * on its stream's cold state (pipeline, ring, dedupe window): taking a stream's rows one after another pays them
 * once per run, not once per row (session 15: a pipeline's CPU 0.66-0.87x for runs of 5 rows). Event time is kept
 * as in order: the clock sees the rows in the batch's order, and a sweep that falls due inside the batch runs
 * after the rows before it and before those after it, as row by row; only the order within the rows between two
 * sweeps changes (records come out in another order; the least recently fed stream at the cap is chosen by that
 * order).
 *
 * What the pipelines produce (signatures, matches) and the counters go to callbacks: the actors around it only
 * pass messages.
 * @module
 */
import type { MatchRule, Measurement, SignatureRules } from "../config/schema.ts";
import { cellBytes, cellText, type Row } from "../pixie/row.ts";
import { PacketColumn } from "../packets/rows.ts";
import type { MessageIn } from "../audio/pipeline.ts";
import { PayloadEnvelope } from "../audio/decode/payload.ts";
import { StreamKeyer } from "../audio/decode/stream_key.ts";
import { extractIds, type IdPattern } from "../audio/decode/context_ids.ts";
import type { AudioFormat } from "../audio/types.ts";
import { queryName, SOURCE_TAP } from "../util/query_name.ts";
import { type DecodeDelta, NO_COUNTERS, type NodeCounters, OTHER_QUERY } from "./messages.ts";
import { StreamTable } from "./stream_table.ts";
import { EventClock } from "./event_clock.ts";
import { RecentRows } from "./row_dedupe.ts";
import { type StickyEntry, StickyIds } from "./sticky_ids.ts";
import { type DecodeCounters, DecodeReporter } from "./decode_reporter.ts";
import {
  payloadColumn,
  podColumn,
  streamFormat,
  tapMessage,
  type TapRule,
  textOnBinaryTap,
} from "./tap_message.ts";

/** A tap: a measurement's source or one of its stages, as configured. */
export interface Tap<R extends TapRule = TapRule> {
  measurement: string;
  /** `source` or the stage name. */
  name: string;
  /** `<measurement>/<name>`: the query whose rows are this tap's. */
  query: string;
  rule: R;
  /** Source taps: the context ids to read from each message (`metadata_extraction.id_patterns`). */
  idPatterns?: readonly IdPattern[];
}

/** The source tap of a measurement. */
export function sourceTap(m: Measurement): Tap<SignatureRules> {
  return {
    measurement: m.name,
    name: SOURCE_TAP,
    query: queryName(m.name, SOURCE_TAP),
    rule: m.signature_rules,
    idPatterns: m.metadata_extraction.id_patterns.map((p) => ({ idType: p.id_type, regex: p.regex })),
  };
}

/** The stage taps of measurements, in config order. */
export function stageTaps(measurements: readonly Measurement[]): Tap<MatchRule>[] {
  return measurements.flatMap((m) =>
    m.match_rules.map((rule) => ({
      measurement: m.name,
      name: rule.stage,
      query: queryName(m.name, rule.stage),
      rule,
    }))
  );
}

/** What a stream's audio pipeline does for the intake ({@link SourcePipeline}, {@link TargetPipeline}). */
export interface TapPipeline<Out> {
  /** One message; `ids`: the context ids in force (source taps). Returns what it completed. */
  push(msg: MessageIn, ids?: Record<string, string>): Out[];
  /** End of the stream. */
  finish(): Out[];
  /** Releases what the stream holds outside the JavaScript heap, unfinished (see {@link TapIntake.close}). */
  close?(): void;
  stats(): DecodeCounters;
}

/** A new audio stream of a tap, as its first row describes it. */
export interface NewStream<R extends TapRule> {
  tap: Tap<R>;
  /** The stream key. */
  stream: string;
  pod: string;
  format: AudioFormat;
}

/** One live audio stream. */
export interface TapStream<R extends TapRule, P> {
  readonly tap: Tap<R>;
  readonly stream: string;
  readonly pipeline: P;
}

/** How a {@link TapIntake} is built. */
export interface TapIntakeOptions<R extends TapRule, P extends TapPipeline<Out>, Out> {
  taps: readonly Tap<R>[];
  /** Event time without a row after which a stream is finished and forgotten. */
  idleNs: bigint;
  /**
   * Most streams followed at once over all taps (engine.max_streams, or the memory plan's), each tap owed an
   * equal share ({@link StreamTable}). Default: no limit.
   */
  maxStreams?: number;
  /** engine.clock_window_seconds, ns: rows further ahead than this do not move the intake's event clock. */
  clockWindowNs: bigint;
  /** Event time between sweeps (idle streams ended, counters reported), under continuous traffic too. */
  tickNs: bigint;
  /**
   * Live nodes: {@link TapIntake.pushAll} takes a batch's rows stream by stream (see the module doc), not in
   * the batch's order. Off (capture replay): rows are taken in order, so records come out in the same order.
   */
  groupStreams?: boolean;
  counters?: NodeCounters;
  /** The pipeline of a new stream. */
  open(s: NewStream<R>): P;
  /** Where what pipelines complete goes. */
  emit(out: Out[]): Promise<unknown>;
  /** Where decode counters go. */
  report(delta: DecodeDelta): Promise<unknown>;
  /** Told of every new stream, before its first message is decoded. */
  opened?(tap: Tap<R>, stream: string): Promise<unknown>;
  /** Told of every stream that leaves (ended, evicted or dropped), its pipeline no longer fed or searched. */
  closed?(pipeline: P): void;
  /**
   * Where the source streams of {@link TapIntake.excludeSourceStream} are kept (default: the intake's own). A source
   * stream is told once, when it opens: an owner that builds a new intake (a restarted Matcher) passes one that
   * outlives it, or the new intake would follow the source's own streams again.
   */
  sourceStreams?: Map<string, Set<string>>;
  /**
   * Where the context ids that stick to the source streams are kept (default: the intake's own). An owner that
   * builds a new intake after a crash (a restarted Detector) passes one that outlives it, or the calls in progress
   * would lose the ids they sent once; the new intake takes its entries over ({@link StickyIds.adopt}).
   */
  stickyIds?: StickyIds;
}

/** A live stream and what the intake keeps beside its pipeline. */
interface Live<R extends TapRule, P> extends TapStream<R, P> {
  /** Its tap's reporter. */
  readonly reporter: DecodeReporter;
  readonly recent: RecentRows;
  /** Its rows come from packets, and may share a capture time with identical ones (see placeInPacket). */
  readonly packetRows: boolean;
  /** The context ids in force on the stream (source taps), kept in the intake's {@link StickyIds}. */
  sticky?: StickyEntry;
}

/** A tap and its per-tap state. */
interface TapState<R extends TapRule> {
  tap: Tap<R>;
  keyer: StreamKeyer;
  reporter: DecodeReporter;
  /** While a batch is grouped: the tap's streams in it so far, by key, to their group's number. */
  groups: Map<string, number>;
}

/**
 * Why a row is not routed to a stream (grouped batches: counted when its turn comes); TEXT_IDS: a text message on
 * a binary-audio tap with id patterns, counted as not audio but read for ids, in its stream's group.
 */
const ROUTED = 0, UNKNOWN_STAGE = 1, MISSING_PAYLOAD = 2, NOT_AUDIO = 3, TEXT_IDS = 4;

/** Whether a tap reads context ids (a source tap with `metadata_extraction.id_patterns`). */
function readsIds(tap: Tap): boolean {
  return tap.idPatterns !== undefined && tap.idPatterns.length > 0;
}

/**
 * A batch as a live node takes it ({@link TapIntakeOptions.groupStreams}): its rows keyed, and the order they are
 * taken in, with the sweeps that fall due inside it.
 */
interface GroupedBatch<R extends TapRule> {
  readonly rows: readonly Row[];
  /** Per row of the batch: {@link ROUTED} or why not. */
  readonly why: Uint8Array;
  /** Per row: its tap (none: not a configured query), payload, envelope and stream key when routed. */
  readonly states: (TapState<R> | undefined)[];
  readonly payloads: (Uint8Array | undefined)[];
  readonly envs: (PayloadEnvelope | undefined)[];
  readonly streams: (string | undefined)[];
  /** The rows by index, in the order they are taken. */
  readonly order: Int32Array;
  /** Sweeps in order: the position in {@link order} each runs before, and the event time it sweeps at. */
  readonly sweepAt: number[];
  readonly sweepNs: bigint[];
}

/**
 * At `engine.max_streams`, the least recently fed stream makes room for a new one only once it has gone this long
 * (event time) without a message: far longer than a live stream's spacing (20 ms) and its capture jitter; a stream
 * quiet that long (ended, or in a long silence-suppressed pause) is the one to give up. (A new stream of a tap
 * below its share of the cap does not wait: the largest tap gives a stream up.)
 */
export const STREAM_CAP_QUIET_NS = 2_000_000_000n;

/** The intake of a set of taps; rows of other queries are counted (`unknown_stage`) and skipped. */
export class TapIntake<R extends TapRule, P extends TapPipeline<Out>, Out> {
  readonly #o: TapIntakeOptions<R, P, Out>;
  readonly #counters: NodeCounters;
  readonly #byQuery = new Map<string, TapState<R>>();
  readonly #streams: StreamTable<Live<R, P>, TapState<R>>;
  readonly #clock: EventClock;
  #lastNs = 0n;
  /** Event time of the last sweep; none yet before the first row. */
  #sweptNs: bigint | undefined;
  /** Source streams by measurement; bounded like the streams (one seen long ago has no twin left to skip). */
  readonly #sourceStreams: Map<string, Set<string>>;
  readonly #maxStreams: number;
  readonly #sticky: StickyIds;

  /** An intake with no streams yet. */
  constructor(opts: TapIntakeOptions<R, P, Out>) {
    this.#o = opts;
    this.#counters = opts.counters ?? NO_COUNTERS;
    this.#maxStreams = opts.maxStreams ?? Infinity;
    this.#sourceStreams = opts.sourceStreams ?? new Map();
    this.#sticky = opts.stickyIds ?? new StickyIds();
    this.#sticky.adopt();
    for (const tap of opts.taps) {
      this.#byQuery.set(tap.query, {
        tap,
        keyer: new StreamKeyer(tap.rule.stream_key),
        reporter: new DecodeReporter(tap),
        groups: new Map(),
      });
    }
    this.#streams = new StreamTable(opts.idleNs, this.#maxStreams, STREAM_CAP_QUIET_NS);
    this.#clock = new EventClock({ windowNs: opts.clockWindowNs });
  }

  /**
   * Takes a batch of rows in order, as {@link TapIntake.push} takes each (with
   * {@link TapIntakeOptions.groupStreams}: stream by stream, see the module doc). Returns a promise only when a row
   * had something to wait for (a sweep, an evicted or new stream, signatures or matches to hand on): most rows are
   * taken without one, and a promise and an await per row cost more than routing the row.
   */
  pushAll(rows: readonly Row[]): Promise<void> | undefined {
    if (this.#o.groupStreams && rows.length > 1) return this.#pushGrouped(this.#group(rows));
    for (let i = 0; i < rows.length; i++) {
      const pending = this.#take(rows[i]!);
      if (pending !== undefined) return this.#finishAll(pending, rows, i + 1);
    }
    return undefined;
  }

  async #finishAll(pending: Promise<void>, rows: readonly Row[], from: number): Promise<void> {
    await pending;
    for (let i = from; i < rows.length; i++) {
      const p = this.#take(rows[i]!);
      if (p !== undefined) await p;
    }
  }

  /** Takes one row: its stream's pipeline gets it as a message, and what that completes is emitted. */
  async push(row: Row): Promise<void> {
    const pending = this.#take(row);
    if (pending !== undefined) await pending;
  }

  /** {@link push}: undefined when the row was taken in full, else the promise of the rest of its work. */
  #take(row: Row): Promise<void> | undefined {
    if (this.#tickDue(row.time)) return this.#sweepThen(row);
    return this.#route(row);
  }

  async #sweepThen(row: Row): Promise<void> {
    await this.#sweep(this.#lastNs);
    const rest = this.#route(row);
    if (rest !== undefined) await rest;
  }

  /** Ends the streams idle at `nowNs` and reports the counters. */
  async #sweep(nowNs: bigint): Promise<void> {
    for (const s of this.#streams.sweep(nowNs)) await this.#end(s);
    this.#sticky.sweep(nowNs, this.#o.idleNs);
    await this.#report();
  }

  /**
   * Keys a batch's rows and orders them stream by stream between sweeps: the clock observes every row in the
   * batch's order first (a sweep due at a row is recorded with the event time it would have swept at), and the
   * rows before it are grouped apart from the rows after it.
   */
  #group(rows: readonly Row[]): GroupedBatch<R> {
    const n = rows.length;
    const b: GroupedBatch<R> = {
      rows,
      why: new Uint8Array(n),
      states: new Array<TapState<R> | undefined>(n),
      payloads: new Array<Uint8Array | undefined>(n),
      envs: new Array<PayloadEnvelope | undefined>(n),
      streams: new Array<string | undefined>(n),
      order: new Int32Array(n),
      sweepAt: [],
      sweepNs: [],
    };
    // Groups of the rows since the last sweep: first and last row of each, and each row's next in its group.
    const next = new Int32Array(n).fill(-1);
    const first: number[] = [], last: number[] = [];
    let placed = 0;
    for (let i = 0; i < n; i++) {
      const row = rows[i]!;
      if (this.#tickDue(row.time)) {
        placed = this.#place(b.order, placed, first, last, next);
        b.sweepAt.push(placed);
        b.sweepNs.push(this.#lastNs);
      }
      const state = this.#byQuery.get(row.query);
      b.states[i] = state;
      let g: number | undefined;
      if (state === undefined) b.why[i] = UNKNOWN_STAGE;
      else {
        const rule = state.tap.rule;
        const payload = cellBytes(row, payloadColumn(rule));
        const text = payload !== undefined && textOnBinaryTap(rule, row);
        if (payload === undefined) b.why[i] = MISSING_PAYLOAD;
        else if (text && !readsIds(state.tap)) b.why[i] = NOT_AUDIO;
        else {
          const env = new PayloadEnvelope(payload);
          const stream = state.keyer.keyOf(row.columns, env);
          if (text) b.why[i] = TEXT_IDS;
          b.payloads[i] = payload;
          b.envs[i] = env;
          b.streams[i] = stream;
          g = state.groups.get(stream);
          if (g === undefined) state.groups.set(stream, first.length);
        }
      }
      // A skipped row is a group of its own: counted in its turn.
      if (g === undefined) {
        first.push(i);
        last.push(i);
      } else {
        next[last[g]!] = i;
        last[g] = i;
      }
    }
    this.#place(b.order, placed, first, last, next);
    return b;
  }

  /** Appends the rows of `first`'s groups to `order` from `at`, group by group; returns the new end. */
  #place(order: Int32Array, at: number, first: number[], last: number[], next: Int32Array): number {
    for (let g = 0; g < first.length; g++) {
      for (let i = first[g]!; i >= 0; i = next[i]!) order[at++] = i;
    }
    first.length = 0;
    last.length = 0;
    for (const state of this.#byQuery.values()) state.groups.clear();
    return at;
  }

  /** Takes a grouped batch from `k` in its order (sweep `s` next): synchronous until a row has to wait. */
  #pushGrouped(b: GroupedBatch<R>, k = 0, s = 0): Promise<void> | undefined {
    const { order, sweepAt } = b;
    while (k < order.length) {
      if (s < sweepAt.length && sweepAt[s] === k) return this.#finishGrouped(b, k, s);
      const pending = this.#routeAt(b, order[k++]!);
      if (pending !== undefined) return this.#finishGrouped(b, k, s, pending);
    }
    return s < sweepAt.length ? this.#finishGrouped(b, k, s) : undefined;
  }

  async #finishGrouped(b: GroupedBatch<R>, k: number, s: number, pending?: Promise<void>): Promise<void> {
    if (pending !== undefined) await pending;
    const { order, sweepAt, sweepNs } = b;
    while (k < order.length || s < sweepAt.length) {
      if (s < sweepAt.length && sweepAt[s] === k) {
        await this.#sweep(sweepNs[s++]!);
        continue;
      }
      const p = this.#routeAt(b, order[k++]!);
      if (p !== undefined) await p;
    }
  }

  /** Row `i` of a grouped batch, as {@link #route} takes a row, from its key. */
  #routeAt(b: GroupedBatch<R>, i: number): Promise<void> | undefined {
    const state = b.states[i];
    switch (b.why[i]) {
      case ROUTED:
        return this.#routeTo(b.rows[i]!, state!, b.streams[i]!, b.envs[i]!, b.payloads[i]!);
      case UNKNOWN_STAGE:
        this.#counters.rowsSkipped(OTHER_QUERY, "unknown_stage");
        return undefined;
      case MISSING_PAYLOAD:
        state!.reporter.count("missing_payload_column");
        return undefined;
      case TEXT_IDS:
        this.#textIds(state!, b.streams[i]!, b.envs[i]!);
        return undefined;
      default:
        state!.reporter.count("not_audio");
        return undefined;
    }
  }

  /** The row after any sweep: synchronous unless a stream ended or began or its pipeline completed something. */
  #route(row: Row): Promise<void> | undefined {
    const state = this.#byQuery.get(row.query);
    if (!state) {
      this.#counters.rowsSkipped(OTHER_QUERY, "unknown_stage");
      return undefined;
    }
    const { tap, keyer, reporter } = state;
    const rule = tap.rule;
    const payload = cellBytes(row, payloadColumn(rule));
    if (payload === undefined) {
      reporter.count("missing_payload_column");
      return undefined;
    }
    if (textOnBinaryTap(rule, row)) {
      if (readsIds(tap)) {
        const env = new PayloadEnvelope(payload);
        this.#textIds(state, keyer.keyOf(row.columns, env), env);
      } else reporter.count("not_audio");
      return undefined;
    }
    // One envelope per message: the stream key, the ids and the decoder share its parsed views.
    const env = new PayloadEnvelope(payload);
    return this.#routeTo(row, state, keyer.keyOf(row.columns, env), env, payload);
  }

  /**
   * A text message on a binary-audio tap that reads ids: not audio (counted so), but where such a connection says
   * which call it carries (a Vonage-style first message of metadata before binary audio), its ids stick to the
   * stream for the audio that follows, whether the stream is followed yet or not.
   */
  #textIds(state: TapState<R>, stream: string, env: PayloadEnvelope): void {
    const tap = state.tap;
    state.reporter.count("not_audio");
    if (tap.rule.exclude_source_streams && this.#sourceStreams.get(tap.measurement)?.has(stream)) return;
    const fresh = extractIds(env, tap.idPatterns!);
    if (Object.keys(fresh).length === 0) return;
    const s = this.#streams.get(state, stream);
    if (s !== undefined) this.#stickIds(s, fresh);
    else this.#sticky.note(tap.query, stream, fresh);
  }

  /** {@link #route} once the row's tap and stream are known. */
  #routeTo(
    row: Row,
    state: TapState<R>,
    stream: string,
    env: PayloadEnvelope,
    payload: Uint8Array,
  ): Promise<void> | undefined {
    const tap = state.tap;
    if (tap.rule.exclude_source_streams && this.#sourceStreams.get(tap.measurement)?.has(stream)) {
      return undefined;
    }
    this.#opening = row;
    this.#openingState = state;
    this.#openingStream = stream;
    const touched = this.#streams.touch(state, stream, row.time, this.#make);
    this.#opening = undefined;
    this.#openingState = undefined;
    if (touched === undefined) {
      this.#counters.rowsSkipped(tap.query, "stream_limit");
      return undefined;
    }
    const s = touched.value;
    if (touched.evicted || (touched.created && this.#o.opened)) {
      return this.#routeOpened(row, s, stream, env, payload, touched.evicted, touched.created);
    }
    if (s.recent.seen(row.time, payload, payloadHash(row, payload), s.packetRows ? placeInPacket(row) : 0)) {
      this.#counters.rowsSkipped(tap.query, "duplicate");
      return undefined;
    }
    return this.#feed(s, row, env);
  }

  /** {@link #route} for a row that evicted a stream or began one that must be announced first. */
  async #routeOpened(
    row: Row,
    s: Live<R, P>,
    stream: string,
    env: PayloadEnvelope,
    payload: Uint8Array,
    evicted: Live<R, P> | undefined,
    created: boolean,
  ): Promise<void> {
    const tap = s.tap;
    if (evicted) {
      this.#counters.streamsEvicted(evicted.tap.measurement, evicted.tap.name);
      await this.#end(evicted);
    }
    if (s.recent.seen(row.time, payload, payloadHash(row, payload), s.packetRows ? placeInPacket(row) : 0)) {
      this.#counters.rowsSkipped(tap.query, "duplicate");
      return;
    }
    if (created && this.#o.opened) await this.#o.opened(tap, stream);
    const rest = this.#feed(s, row, env);
    if (rest !== undefined) await rest;
  }

  /** The row's message to its stream's pipeline; what that completes is emitted (the only wait). */
  #feed(s: Live<R, P>, row: Row, env: PayloadEnvelope): Promise<void> | undefined {
    const tap = s.tap;
    const msg = tapMessage(tap.rule, row, env);
    // No patterns, no ids: an empty set of them per row was two objects made for the pipeline to ignore.
    const out = tap.idPatterns !== undefined && tap.idPatterns.length > 0
      ? s.pipeline.push(msg, this.#stickIds(s, extractIds(env, tap.idPatterns)))
      : s.pipeline.push(msg);
    if (out.length === 0) return undefined;
    return this.#emit(out);
  }

  async #emit(out: Out[]): Promise<void> {
    await this.#o.emit(out);
  }

  /** The row whose new stream {@link #make} builds (set around {@link StreamTable.touch}: no closure per row). */
  #opening: Row | undefined;
  #openingState: TapState<R> | undefined;
  #openingStream = "";
  readonly #make = (): Live<R, P> => {
    const row = this.#opening!, state = this.#openingState!, stream = this.#openingStream;
    const { tap, reporter } = state;
    const rule = tap.rule;
    return {
      tap,
      stream,
      pipeline: this.#o.open({
        tap,
        stream,
        pod: cellText(row, podColumn(rule)),
        format: streamFormat(rule, row),
      }),
      reporter,
      recent: new RecentRows(),
      packetRows: rule.packets !== undefined,
      // A stream of this tap followed before the owner's restart: the ids it sent then are still in force.
      sticky: readsIds(tap) ? this.#sticky.claim(tap.query, stream) : undefined,
    };
  };

  /** The ids of a message on stream `s`: those it carries, over those seen before on the stream (which keeps them). */
  #stickIds(s: Live<R, P>, fresh: Record<string, string>): Record<string, string> {
    const e = s.sticky;
    if (Object.keys(fresh).length === 0) return e?.ids ?? fresh;
    if (e === undefined) return (s.sticky = this.#sticky.put(s.tap.query, s.stream, fresh)).ids;
    e.ids = { ...e.ids, ...fresh };
    return e.ids;
  }

  /**
   * Event time moved on to `nowNs` without rows (a quiet live node): the sweep a row at that time would bring when
   * one is due, idle streams ended (their pipelines finished: a call's last signatures and pending matches) and
   * counters reported. The rows' own clock is left as it is: a row behind `nowNs` is taken as before.
   */
  idle(nowNs: bigint): Promise<void> | undefined {
    if (nowNs <= this.#lastNs || (this.#sweptNs !== undefined && nowNs - this.#sweptNs < this.#o.tickNs)) {
      return undefined;
    }
    this.#sweptNs = nowNs;
    return this.#sweep(nowNs);
  }

  /** Event time of the rows taken so far (the clock's: a row far ahead does not move it); 0 before any. */
  get nowNs(): bigint {
    return this.#lastNs;
  }

  /** The reader shed rows of every stream from `fromNs` on, before the next rows (see StreamTable.shed). */
  shed(fromNs: bigint): void {
    this.#streams.shed(fromNs);
  }

  /** Every live stream, in the order they appeared. */
  streams(): IterableIterator<TapStream<R, P>> {
    return this.#streams.values();
  }

  /**
   * A source stream of `measurement` (the Detector saw it): taps that exclude source streams drop it if they
   * follow it (uncounted, unfinished: it is not theirs) and skip its rows from now on.
   */
  excludeSourceStream(measurement: string, stream: string): void {
    let set = this.#sourceStreams.get(measurement);
    if (!set) this.#sourceStreams.set(measurement, set = new Set());
    set.add(stream);
    if (set.size > 2 * this.#maxStreams) {
      const oldest = set.values().next().value;
      if (oldest !== undefined) set.delete(oldest);
    }
    for (const state of this.#byQuery.values()) {
      if (state.tap.measurement !== measurement || !state.tap.rule.exclude_source_streams) continue;
      const dropped = this.#streams.delete(state, stream);
      if (!dropped) continue;
      this.#o.closed?.(dropped.pipeline);
      state.reporter.forget(stream, dropped.pipeline.stats());
    }
  }

  /** End of input: every stream's pipeline is finished (the streams stay), and the counters reported. */
  async finish(): Promise<void> {
    for (const s of [...this.#streams.values()]) {
      await this.#o.emit(s.pipeline.finish());
      s.reporter.observe(s.stream, s.pipeline.stats());
    }
    await this.#report();
  }

  /**
   * The owner drops this intake (its actor crashed or stopped): every stream's pipeline releases what it holds
   * outside the JavaScript heap (a WebRTC VAD in fvad's heap, which never shrinks), unfinished and without output.
   * A restarted actor builds a new intake, so without this each crash leaked the VAD of every stream it followed.
   */
  close(): void {
    for (const s of this.#streams.values()) s.pipeline.close?.();
  }

  /** Whether event time has moved on by a tick since the last sweep (or this is the first row): a sweep is due. */
  #tickDue(timeNs: bigint): boolean {
    const o = this.#clock.observe(timeNs);
    if (o === "stepped-back") {
      // The rows' clock stepped back: sweep now and count ticks from here (else none until time caught up).
      this.#lastNs = this.#sweptNs = this.#clock.nowNs;
      return true;
    }
    if (o !== "advanced") return false;
    this.#lastNs = this.#clock.nowNs;
    if (this.#sweptNs !== undefined && this.#lastNs - this.#sweptNs < this.#o.tickNs) return false;
    this.#sweptNs = this.#lastNs;
    return true;
  }

  async #end(s: Live<R, P>): Promise<void> {
    if (s.sticky !== undefined) this.#sticky.end(s.sticky);
    this.#o.closed?.(s.pipeline);
    await this.#o.emit(s.pipeline.finish());
    s.reporter.forget(s.stream, s.pipeline.stats());
  }

  /**
   * Reads every stream's counters and hands on what changed, per tap: at sweeps and at the end, not per row (a
   * stats() snapshot per row cost more than the row's routing).
   */
  async #report(): Promise<void> {
    for (const s of this.#streams.values()) s.reporter.observe(s.stream, s.pipeline.stats());
    for (const { reporter } of this.#byQuery.values()) {
      for (const delta of reporter.deltas()) await this.#o.report(delta);
    }
  }
}

/**
 * A packet row's place among the messages its packet completed (`msg_index`, absent for the first): two identical
 * silent frames sent in one write share the packet's time and bytes, and are still two frames of audio.
 */
function placeInPacket(row: Row): number {
  const c = row.columns[PacketColumn.msgIndex];
  return typeof c === "number" ? c : typeof c === "bigint" ? Number(c) : 0;
}

/** The hash of the row's payload when the row came with it (Pixie's rows: see pixie/row.ts), for this very cell. */
function payloadHash(row: Row, payload: Uint8Array): number | undefined {
  return row.hashedPayload === payload ? row.payloadHash : undefined;
}
