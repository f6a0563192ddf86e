/**
 * Matcher: one per node. Fingerprints the target streams of every stage (a TargetPipeline per stream) and finds
 * active signatures in them, in both orders: new target audio against the active signatures, and each newly
 * activated signature against the lookback of every target stream of its measurement.
 *
 * It starts empty (also after a crash) and asks the registry for the active signatures. Target streams end when
 * idle (event time, robust to rows from the future) or, past `engine.max_streams`, least recently active first
 * (counted); duplicate rows are skipped (counted). Target audio is searched `engine.search_before_source_seconds`
 * before a signature's instant, more when other nodes' clocks are measured ahead (up to the clock window).
 * @module
 */
import type { ActorFactory, ActorRef } from "./runtime.ts";
import {
  type ExporterMsg,
  type MatcherMsg,
  NO_COUNTERS,
  type NodeCounters,
  OTHER_QUERY,
  type RegistryMsg,
} from "./messages.ts";
import type { Config, MatchRule, Measurement } from "../config/schema.ts";
import { cellBytes, cellText, parseQueryName, type Row } from "../pixie/row.ts";
import { SignatureIndex, TargetPipeline } from "../audio/pipeline.ts";
import { StreamKeyer } from "../audio/decode/stream_key.ts";
import { PayloadEnvelope } from "../audio/decode/payload.ts";
import type { Match, Signature } from "../audio/types.ts";
import { StreamTable } from "./stream_table.ts";
import { EventClock } from "./event_clock.ts";
import { RecentRows } from "./row_dedupe.ts";
import { DecodeReporter } from "./decode_reporter.ts";
import { payloadColumn, podColumn, streamFormat, tapMessage, textOnBinaryTap } from "./tap_intake.ts";

/** What the Matcher talks to. */
export interface MatcherDeps {
  config: Config;
  node: string;
  exporter: ActorRef<ExporterMsg>;
  /** Asked for every active signature when the Matcher (re)starts; absent: nothing to restore (tests). */
  registry?: ActorRef<RegistryMsg>;
  idleNs: bigint;
  counters?: NodeCounters;
}

interface Target {
  measurement: string;
  stage: string;
  pipeline: TargetPipeline;
  recent: RecentRows;
}

const NS = 1_000_000_000;

/** Builds the Matcher's behaviour (fresh state at every restart: the registry re-activates signatures). */
export function matcher(deps: MatcherDeps): ActorFactory<MatcherMsg> {
  const rules = new Map<string, { m: Measurement; rule: MatchRule }>();
  for (const m of deps.config.measurements) {
    for (const rule of m.match_rules) rules.set(`${m.name}/${rule.stage}`, { m, rule });
  }
  const engine = deps.config.engine;
  const counters = deps.counters ?? NO_COUNTERS;
  const windowNs = BigInt(Math.round(engine.clock_window_seconds * NS));
  const baseBeforeNs = BigInt(Math.round(engine.search_before_source_seconds * NS));
  // Outside the factory: what the skew estimator said still holds after a restart.
  let aheadNs = 0n;

  return (ctx) => {
    const indexes = new Map<string, SignatureIndex>();
    const targets = new StreamTable<Target>(deps.idleNs, engine.max_streams);
    // Bounded like the streams: a source stream seen long ago no longer has a target twin to exclude.
    const sourceStreams = new Map<string, Set<string>>();
    const reporters = new Map<string, DecodeReporter>();
    const keyers = new Map<string, StreamKeyer>();
    const clock = new EventClock({ windowNs });
    let nowNs = 0n;
    /** The search before the source instant: configured, widened by the measured skew, within the window. */
    const searchBeforeNs = () => {
      const widened = baseBeforeNs + aheadNs;
      const cap = baseBeforeNs > windowNs ? baseBeforeNs : windowNs;
      return widened < cap ? widened : cap;
    };
    /** After a finish (end of a capture), late signatures are verified with the audio there is. */
    let finished = false;

    const indexOf = (measurement: string) => {
      let idx = indexes.get(measurement);
      if (!idx) {
        idx = new SignatureIndex({ maxActive: engine.max_active_signatures });
        indexes.set(measurement, idx);
      }
      return idx;
    };
    const reporterOf = (query: string, measurement: string, stage: string) => {
      let r = reporters.get(query);
      if (!r) {
        r = new DecodeReporter(measurement, stage, query);
        reporters.set(query, r);
      }
      return r;
    };
    const emit = async (matches: Match[]) => {
      for (const match of matches) await deps.exporter.tell({ kind: "match", match });
    };
    const report = async () => {
      // Counters are read here, once per second of event time, not per row (a stats() snapshot per row cost
      // more than the row's routing).
      for (const [key, t] of targets.entries()) {
        reporterOf(`${t.measurement}/${t.stage}`, t.measurement, t.stage).observe(key, t.pipeline.stats());
      }
      for (const r of reporters.values()) {
        for (const delta of r.deltas()) await deps.exporter.tell({ kind: "decode", delta });
      }
    };
    const finishTarget = async (key: string, t: Target) => {
      await emit(t.pipeline.finish());
      reporterOf(`${t.measurement}/${t.stage}`, t.measurement, t.stage).forget(key, t.pipeline.stats());
    };

    const onRow = async (row: Row) => {
      if (clock.observe(row.time) === "advanced") {
        const now = clock.nowNs;
        if (now - nowNs > 1_000_000_000n) {
          for (const [key, t] of targets.sweep(now)) await finishTarget(key, t);
          await report();
        }
        nowNs = now;
      }
      const q = parseQueryName(row.query);
      const found = rules.get(row.query);
      if (!q || !found) {
        counters.rowsSkipped(OTHER_QUERY, "unknown_stage");
        return;
      }
      const { m, rule } = found;
      const reporter = reporterOf(row.query, m.name, rule.stage);
      const payload = cellBytes(row, payloadColumn(rule));
      if (payload === undefined) {
        reporter.count("missing_payload_column");
        return;
      }
      if (textOnBinaryTap(rule, row)) {
        reporter.count("not_audio");
        return;
      }
      let keyer = keyers.get(row.query);
      if (!keyer) keyers.set(row.query, keyer = new StreamKeyer(rule.stream_key));
      const env = new PayloadEnvelope(payload);
      const stream = keyer.keyOf(row.columns, env);
      if (rule.exclude_source_streams && sourceStreams.get(m.name)?.has(stream)) return;
      const key = `${row.query}\u0000${stream}`;
      const touched = targets.touch(key, row.time, () => ({
        measurement: m.name,
        stage: rule.stage,
        recent: new RecentRows(),
        pipeline: new TargetPipeline({
          measurement: m.name,
          stage: rule.stage,
          node: deps.node,
          pod: cellText(row, podColumn(rule)),
          stream,
          format: streamFormat(rule, row),
          index: indexOf(m.name),
          lookbackSeconds: engine.lookback_seconds,
          thresholdBer: engine.match_threshold_ber,
          margin: engine.match_margin,
          searchBeforeNs: searchBeforeNs(),
        }),
      }));
      if (touched.evicted) {
        const [k, old] = touched.evicted;
        counters.streamsEvicted(old.measurement, old.stage);
        await finishTarget(k, old);
      }
      const t = touched.value;
      if (t.recent.seen(row.time, payload)) {
        counters.rowsSkipped(row.query, "duplicate");
        return;
      }
      await emit(t.pipeline.push(tapMessage(rule, row, env)));
    };

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
      for (const [, t] of targets.entries()) {
        if (t.measurement !== sig.measurement) continue;
        await emit(t.pipeline.searchSignature(sig));
        // No more audio will come: a candidate waiting for the rest of its block is decided now.
        if (finished) await emit(t.pipeline.finish());
      }
    };

    return {
      onStart() {
        // Not awaited: the registry may be waiting for room in this mailbox, which drains only once started.
        if (deps.registry) void deps.registry.tell({ kind: "resync" });
      },
      async receive(msg) {
        switch (msg.kind) {
          case "row":
            return await onRow(msg.row);
          case "rows":
            for (const row of msg.rows) await onRow(row);
            return;
          case "activate":
            return await activate(msg.sig);
          case "clock-ahead": {
            aheadNs = msg.aheadNs > 0n ? msg.aheadNs : 0n;
            const before = searchBeforeNs();
            for (const [, t] of targets.entries()) t.pipeline.searchBeforeNs = before;
            return;
          }
          case "deactivate":
            indexes.get(msg.measurement)?.remove(msg.id);
            return;
          case "source-stream": {
            let set = sourceStreams.get(msg.measurement);
            if (!set) sourceStreams.set(msg.measurement, set = new Set());
            set.add(msg.stream);
            if (set.size > 2 * engine.max_streams) {
              const oldest = set.values().next().value;
              if (oldest !== undefined) set.delete(oldest);
            }
            // A target stream that turns out to be a source stream is dropped for rules that exclude them.
            for (const [key, t] of [...targets.entries()]) {
              const rule = rules.get(`${t.measurement}/${t.stage}`)?.rule;
              if (
                t.measurement === msg.measurement && rule?.exclude_source_streams &&
                key.endsWith(`\u0000${msg.stream}`)
              ) {
                reporterOf(`${t.measurement}/${t.stage}`, t.measurement, t.stage).forget(
                  key,
                  t.pipeline.stats(),
                );
                targets.delete(key);
              }
            }
            return;
          }
          case "finish": {
            finished = true;
            for (const [key, t] of [...targets.entries()]) {
              await emit(t.pipeline.finish());
              reporterOf(`${t.measurement}/${t.stage}`, t.measurement, t.stage).observe(
                key,
                t.pipeline.stats(),
              );
            }
            await report();
            msg.reply(true);
            return;
          }
        }
      },
    };
  };
}
