/**
 * Matcher: one per node. Fingerprints the target streams of every stage (a TargetPipeline per stream) and finds
 * active signatures in them, in both orders: new target audio against the active signatures, and each newly
 * activated signature against the lookback of every target stream of its measurement.
 * @module
 */
import type { ActorFactory, ActorRef } from "./runtime.ts";
import type { ExporterMsg, MatcherMsg } from "./messages.ts";
import type { Config, MatchRule, Measurement } from "../config/schema.ts";
import { cellBytes, cellText, parseQueryName, type Row } from "../pixie/row.ts";
import { SignatureIndex, TargetPipeline } from "../audio/pipeline.ts";
import { StreamKeyer } from "../audio/stream_key.ts";
import { PayloadEnvelope } from "../audio/envelope.ts";
import type { Match } from "../audio/types.ts";
import { StreamTable } from "./stream_table.ts";
import { DecodeReporter } from "./decode_reporter.ts";
import { payloadColumn, podColumn, streamFormat, tapMessage } from "./tap_intake.ts";

/** What the Matcher talks to. */
export interface MatcherDeps {
  config: Config;
  node: string;
  exporter: ActorRef<ExporterMsg>;
  idleNs: bigint;
}

interface Target {
  measurement: string;
  stage: string;
  pipeline: TargetPipeline;
}

/** Builds the Matcher's behaviour (fresh state at every restart: the registry re-activates signatures). */
export function matcher(deps: MatcherDeps): ActorFactory<MatcherMsg> {
  const rules = new Map<string, { m: Measurement; rule: MatchRule }>();
  for (const m of deps.config.measurements) {
    for (const rule of m.match_rules) rules.set(`${m.name}/${rule.stage}`, { m, rule });
  }
  const engine = deps.config.engine;

  return () => {
    const indexes = new Map<string, SignatureIndex>();
    const targets = new StreamTable<Target>(deps.idleNs);
    const sourceStreams = new Map<string, Set<string>>();
    const reporters = new Map<string, DecodeReporter>();
    const keyers = new Map<string, StreamKeyer>();
    let nowNs = 0n;
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
      for (const r of reporters.values()) {
        for (const delta of r.deltas()) await deps.exporter.tell({ kind: "decode", delta });
      }
    };
    const finishTarget = async (key: string, t: Target) => {
      await emit(t.pipeline.finish());
      reporterOf(`${t.measurement}/${t.stage}`, t.measurement, t.stage).forget(key, t.pipeline.stats());
    };

    const onRow = async (row: Row) => {
      if (row.time > nowNs) {
        if (row.time - nowNs > 1_000_000_000n) {
          for (const [key, t] of targets.sweep(row.time)) await finishTarget(key, t);
          await report();
        }
        nowNs = row.time;
      }
      const q = parseQueryName(row.query);
      const found = rules.get(row.query);
      if (!q || !found) return;
      const { m, rule } = found;
      const reporter = reporterOf(row.query, m.name, rule.stage);
      const payload = cellBytes(row, payloadColumn(rule));
      if (payload === undefined) {
        reporter.count("missing_payload_column");
        return;
      }
      let keyer = keyers.get(row.query);
      if (!keyer) keyers.set(row.query, keyer = new StreamKeyer(rule.stream_key));
      const env = new PayloadEnvelope(payload);
      const stream = keyer.keyOf(row.columns, env);
      if (rule.exclude_source_streams && sourceStreams.get(m.name)?.has(stream)) return;
      const key = `${row.query}\u0000${stream}`;
      const { value: t } = targets.touch(key, row.time, () => ({
        measurement: m.name,
        stage: rule.stage,
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
        }),
      }));
      const matches = t.pipeline.push(tapMessage(rule, row, env));
      reporter.observe(key, t.pipeline.stats());
      await emit(matches);
    };

    return {
      async receive(msg) {
        switch (msg.kind) {
          case "row":
            return await onRow(msg.row);
          case "activate": {
            indexOf(msg.sig.measurement).add(msg.sig);
            for (const [, t] of targets.entries()) {
              if (t.measurement !== msg.sig.measurement) continue;
              await emit(t.pipeline.searchSignature(msg.sig));
              // No more audio will come: a candidate waiting for the rest of its block is decided now.
              if (finished) await emit(t.pipeline.finish());
            }
            return;
          }
          case "deactivate":
            indexes.get(msg.measurement)?.remove(msg.id);
            return;
          case "source-stream": {
            let set = sourceStreams.get(msg.measurement);
            if (!set) sourceStreams.set(msg.measurement, set = new Set());
            set.add(msg.stream);
            // A target stream that turns out to be a source stream is dropped for rules that exclude them.
            for (const [key, t] of [...targets.entries()]) {
              const rule = rules.get(`${t.measurement}/${t.stage}`)?.rule;
              if (
                t.measurement === msg.measurement && rule?.exclude_source_streams &&
                key.endsWith(`\u0000${msg.stream}`)
              ) {
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
