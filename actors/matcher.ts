/**
 * Matcher: one per node. Its stage taps' rows go through the tap intake (tap_intake.ts: a TargetPipeline per
 * target stream, idle and capped streams, duplicate rows, decode counters); it finds active signatures in them,
 * in both orders: new target audio against the active signatures, and each newly activated signature against
 * the lookback of every target stream of its measurement.
 *
 * It starts empty (also after a crash) and asks the registry for the active signatures; the source streams the
 * Detectors announced (exclude_source_streams) outlive a crash. Target audio is searched
 * `engine.search_before_source_seconds` before a signature's instant, more when other nodes' clocks are measured
 * ahead (up to the clock window).
 *
 * Matches are held by the repeat guard (audio/match/repeats.ts) until event time is past their target instant by
 * the search before the source plus the signatures' arrival delay, so that where the source repeats a sound the
 * nearest earlier repeat is credited; a finish releases what is held.
 * @module
 */
import type { ActorFactory, ActorRef } from "./runtime.ts";
import type { ExporterMsg, MatcherMsg, NodeCounters, RegistryMsg } from "./messages.ts";
import { NO_COUNTERS } from "./messages.ts";
import type { Config } from "../config/schema.ts";
import { RecentFrames, SignatureIndex, TargetPipeline } from "../audio/pipeline.ts";
import { recentFramesOf } from "../audio/match/recent_frames.ts";
import { RepeatGuard, type RepeatPrint } from "../audio/match/repeats.ts";
import { ArrivalDelay } from "../audio/match/arrival_delay.ts";
import { CLOCK_SKEW_NS } from "../audio/match/thresholds.ts";
import type { Match, Signature } from "../audio/types.ts";
import type { Row } from "../pixie/row.ts";
import { stageTaps, TapIntake } from "./tap_intake.ts";

/** What the Matcher talks to. */
export interface MatcherDeps {
  config: Config;
  node: string;
  exporter: ActorRef<ExporterMsg>;
  /** Asked for every active signature when the Matcher (re)starts; absent: nothing to restore (tests). */
  registry?: ActorRef<RegistryMsg>;
  idleNs: bigint;
  /** Event time between sweeps of idle streams and reports of decode counters. */
  tickNs: bigint;
  counters?: NodeCounters;
  /** Live nodes: a batch's rows are taken stream by stream (TapIntakeOptions.groupStreams). */
  groupStreams?: boolean;
  /**
   * engine.lookback_seconds as configured, when a live node's memory plan gave the Matcher a shorter one in
   * `config` (stream_budget.ts): signatures that reach between the two are counted (lookbackShort).
   */
  configuredLookbackSeconds?: number;
}

const NS = 1_000_000_000;
/** A match whose signature left the index before it was found (decided at a stream's end): compared with none. */
const NO_PRINT: RepeatPrint = { fingerprint: new Uint32Array(0), mask: undefined };

/** Builds the Matcher's behaviour (fresh state at every restart: the registry re-activates signatures). */
export function matcher(deps: MatcherDeps): ActorFactory<MatcherMsg> {
  const taps = stageTaps(deps.config.measurements);
  const engine = deps.config.engine;
  const counters = deps.counters ?? NO_COUNTERS;
  const windowNs = BigInt(Math.round(engine.clock_window_seconds * NS));
  const baseBeforeNs = BigInt(Math.round(engine.search_before_source_seconds * NS));
  // Outside the factory: what the skew estimator said still holds after a restart.
  let aheadNs = 0n;
  // Outside the factory too: the Detectors announce a source stream once, when it opens, so a restarted Matcher
  // must still know the ones announced before (rules with exclude_source_streams would match them again).
  const sourceStreams = new Map<string, Set<string>>();
  const lookbackNs = BigInt(Math.round(engine.lookback_seconds * NS));
  const configuredNs = BigInt(Math.round((deps.configuredLookbackSeconds ?? engine.lookback_seconds) * NS));

  return (ctx) => {
    const indexes = new Map<string, SignatureIndex>();
    /** The search before the source instant: configured, widened by the measured skew, within the window. */
    const searchBeforeNs = () => {
      const widened = baseBeforeNs + aheadNs;
      const cap = baseBeforeNs > windowNs ? baseBeforeNs : windowNs;
      return widened < cap ? widened : cap;
    };
    /** After a finish (end of a capture), late signatures are verified with the audio there is. */
    let finished = false;
    /** Newest target row time seen (only kept when the lookback was shortened: see {@link countShort}). */
    let newestNs = 0n;
    const noteRows = (rows: readonly Row[]) => {
      const t = rows[rows.length - 1]?.time;
      if (t !== undefined && t > newestNs) newestNs = t;
    };
    /** Counts a signature whose search starts in audio the configured lookback keeps and the planned one not. */
    const countShort = (sig: Signature) => {
      const reach = newestNs - (sig.source.timeNs - searchBeforeNs());
      if (reach > lookbackNs && reach <= configuredNs) counters.lookbackShort?.(sig.measurement);
    };

    /** Each measurement's recent target frames (shared by its pipelines), by measurement. */
    const recents = new Map<string, RecentFrames>();
    const indexOf = (measurement: string) => {
      let idx = indexes.get(measurement);
      if (!idx) {
        idx = new SignatureIndex({ maxActive: engine.max_active_signatures });
        indexes.set(measurement, idx);
        recents.set(measurement, recentFramesOf(idx));
      }
      return idx;
    };
    // Every stage's index (and recent frames) from the start: each clock noted below reaches them all.
    for (const tap of taps) indexOf(tap.measurement);
    /**
     * Tells the recent frames how far capture time has gone before `rows` are taken (the newest row's time: a
     * bound for every row, in order or not), for {@link activate}'s search of only the streams with hits.
     */
    const noteClock = (rows: readonly Row[]) => {
      let t = rows[0]?.time;
      if (t === undefined) return;
      for (let i = 1; i < rows.length; i++) if (rows[i]!.time > t) t = rows[i]!.time;
      noteTime(t);
    };
    const noteTime = (t: bigint) => {
      for (const recent of recents.values()) recent.noteClock(t);
    };
    /** Live target pipelines (and their stream's order of appearance: the order every stream is searched in). */
    const live = new Map<object, { seq: number; pipeline: TargetPipeline }>();
    let opened = 0;
    /** The active signature a match was made with (its sub-fingerprints), for the repeat guard. */
    const printOf = (match: Match): RepeatPrint => {
      const idx = indexes.get(match.measurement);
      const sig = idx?.signatureAt(idx.slotOf(match.signatureId));
      return sig?.id === match.signatureId ? sig : NO_PRINT;
    };
    const arrival = new ArrivalDelay();
    const guard = new RepeatGuard({
      holdNs: () => searchBeforeNs() + arrival.allowanceNs(lookbackNs),
      keepNs: lookbackNs,
      onRepeat: (m, outcome) => counters.matchesRepeated?.(m.measurement, m.stage, outcome),
      aheadNs: () => aheadNs,
    });
    /** Event time of the repeat guard: the target rows' clock, or the quiet ticks' while no rows come. */
    let guardNs = 0n;
    const tell = async (matches: Match[]) => {
      for (const match of matches) await deps.exporter.tell({ kind: "match", match });
    };
    /** Releases the matches held long enough (undefined: none, nothing to wait for). */
    const releaseDue = (): Promise<void> | undefined => {
      if (guard.held === 0) return undefined;
      const out = finished ? guard.flush() : guard.advance(guardNs);
      return out.length === 0 ? undefined : tell(out);
    };
    /** Matches found: held by the repeat guard, and what is due released. */
    const emit = (matches: Match[]): Promise<void> => {
      // The intake's clock moves row by row inside a batch of rows; guardNs only after it.
      if (intake.nowNs > guardNs) guardNs = intake.nowNs;
      for (const match of matches) guard.offer(match, printOf(match), guardNs);
      return releaseDue() ?? Promise.resolve();
    };
    const intake = new TapIntake({
      taps,
      idleNs: deps.idleNs,
      maxStreams: engine.max_streams,
      clockWindowNs: windowNs,
      tickNs: deps.tickNs,
      groupStreams: deps.groupStreams,
      counters,
      sourceStreams,
      open: (s) => {
        const pipeline = new TargetPipeline({
          measurement: s.tap.measurement,
          stage: s.tap.name,
          node: deps.node,
          pod: s.pod,
          stream: s.stream,
          format: s.format,
          index: indexOf(s.tap.measurement),
          lookbackSeconds: engine.lookback_seconds,
          thresholdBer: engine.match_threshold_ber,
          margin: engine.match_margin,
          searchBeforeNs: searchBeforeNs(),
        });
        live.set(pipeline, { seq: opened++, pipeline });
        return pipeline;
      },
      closed: (pipeline) => live.delete(pipeline),
      emit,
      report: (delta) => deps.exporter.tell({ kind: "decode", delta }),
    });

    const activate = async (sig: Signature) => {
      const idx = indexOf(sig.measurement);
      if (idx.has(sig.id)) return; // sent again (a resync after a restart): already searched
      try {
        idx.add(sig);
      } catch (e) {
        // The registry checks shapes; anything else the index refuses must not crash the Matcher (a restart would
        // bring the same signature back through the resync).
        counters.signaturesExpired(sig.measurement, "invalid");
        ctx.log.warn("signature refused by the index; skipped", { error: (e as Error).message });
        return;
      }
      if (configuredNs > lookbackNs) countShort(sig);
      if (guardNs > 0n) arrival.observe(guardNs - sig.source.timeNs);
      const searched = finished ? undefined : streamsWithHits(sig);
      if (searched !== undefined) {
        for (const pipeline of searched) await emit(pipeline.searchSignature(sig));
        return;
      }
      for (const { tap, pipeline } of intake.streams()) {
        if (tap.measurement !== sig.measurement) continue;
        await emit(pipeline.searchSignature(sig));
        // No more audio will come: a candidate waiting for the rest of its block is decided now.
        if (finished) await emit(pipeline.finish());
      }
    };

    /**
     * The streams of `sig`'s measurement whose recent frames hold a lookup hit of it since its search begins, in
     * the order the streams appeared: every other stream's search would find nothing (recent_frames.ts), so that a
     * signature costs its walk and its streams with hits, not a search of every stream. Undefined when the recent
     * frames cannot tell: then every stream is searched.
     */
    const streamsWithHits = (sig: Signature): TargetPipeline[] | undefined => {
      const before = searchBeforeNs();
      const since = sig.source.timeNs - (before > CLOCK_SKEW_NS ? before : CLOCK_SKEW_NS);
      const owners = recents.get(sig.measurement)?.ownersWithHits(sig, since);
      if (owners === undefined) return undefined;
      const found: { seq: number; pipeline: TargetPipeline }[] = [];
      for (const o of owners) {
        const s = o.tag === undefined ? undefined : live.get(o.tag);
        // Several owners of one stream (its frame grid restarted) name it once; a stream that left, not at all.
        if (s !== undefined && !found.includes(s)) found.push(s);
      }
      return found.sort((a, b) => a.seq - b.seq).map((s) => s.pipeline);
    };

    const finish = async (reply: (ok: true) => void) => {
      await intake.finish();
      await releaseDue();
      reply(true);
    };
    /** After rows: event time went on, and held matches may be due. */
    const afterRows = (taken: Promise<void> | undefined): Promise<void> | undefined => {
      if (taken !== undefined) return taken.then(() => afterRows(undefined));
      if (intake.nowNs > guardNs) guardNs = intake.nowNs;
      return releaseDue();
    };

    return {
      onStart() {
        // Not awaited: the registry may be waiting for room in this mailbox, which drains only once started.
        if (deps.registry) void deps.registry.tell({ kind: "resync" });
      },
      // Not async: a batch of rows with nothing to wait for is taken without a promise (see TapIntake.pushAll).
      receive(msg) {
        switch (msg.kind) {
          case "row":
            noteTime(msg.row.time);
            if (configuredNs > lookbackNs) noteRows([msg.row]);
            return afterRows(intake.push(msg.row));
          case "rows":
            noteClock(msg.rows);
            if (configuredNs > lookbackNs) noteRows(msg.rows);
            return afterRows(intake.pushAll(msg.rows));
          case "shed":
            return intake.shed(msg.fromNs);
          case "time":
            if (msg.nowNs > guardNs) guardNs = msg.nowNs;
            return afterRows(intake.idle(msg.nowNs));
          case "activate":
            return activate(msg.sig);
          case "clock-ahead": {
            aheadNs = msg.aheadNs > 0n ? msg.aheadNs : 0n;
            const before = searchBeforeNs();
            for (const { pipeline } of intake.streams()) pipeline.searchBeforeNs = before;
            return;
          }
          case "deactivate":
            indexes.get(msg.measurement)?.remove(msg.id);
            return;
          case "source-stream":
            // A target stream that turns out to be a source stream is dropped for rules that exclude them.
            return intake.excludeSourceStream(msg.measurement, msg.stream);
          case "finish":
            finished = true;
            return finish(msg.reply);
        }
      },
    };
  };
}
