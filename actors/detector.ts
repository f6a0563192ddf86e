/**
 * Detector: one per measurement. Turns the source tap's rows into signatures (through the audio engine's
 * SourcePipeline, one per source stream), announces new source streams to the Matcher, hands signatures to the
 * Exporter and publishes them on the bus.
 *
 * Streams end when idle for `idleNs` of event time (an {@link EventClock}, so a row from the future does not end
 * them all) or, past `maxStreams`, least recently active first (counted). A row seen twice on a stream (same
 * time, same payload) is skipped and counted.
 * @module
 */
import type { ActorFactory, ActorRef } from "./runtime.ts";
import {
  type DetectorMsg,
  type ExporterMsg,
  type MatcherMsg,
  NO_COUNTERS,
  type NodeCounters,
} from "./messages.ts";
import type { Bus } from "../bus/bus.ts";
import type { Measurement } from "../config/schema.ts";
import { cellBytes, cellText, type Row, SOURCE_STREAM } from "../pixie/row.ts";
import { SourcePipeline } from "../audio/pipeline.ts";
import { encodeSignature } from "../audio/fingerprint/signature.ts";
import { StreamKeyer } from "../audio/decode/stream_key.ts";
import { PayloadEnvelope } from "../audio/decode/payload.ts";
import { extractIds } from "../audio/decode/context_ids.ts";
import type { Signature } from "../audio/types.ts";
import { StreamTable } from "./stream_table.ts";
import { EventClock } from "./event_clock.ts";
import { RecentRows } from "./row_dedupe.ts";
import { DecodeReporter } from "./decode_reporter.ts";
import {
  payloadColumn,
  podColumn,
  StickyIds,
  streamFormat,
  tapMessage,
  textOnBinaryTap,
} from "./tap_intake.ts";

/** What a Detector talks to. */
export interface DetectorDeps {
  measurement: Measurement;
  node: string;
  bus: Bus;
  matcher: ActorRef<MatcherMsg>;
  exporter: ActorRef<ExporterMsg>;
  /** Event time without audio after which a stream is finished and forgotten. */
  idleNs: bigint;
  /** Most source streams followed at once (engine.max_streams). Default: no limit. */
  maxStreams?: number;
  /** engine.clock_window_seconds, ns. Default 30 s. */
  clockWindowNs?: bigint;
  counters?: NodeCounters;
}

interface Source {
  pipeline: SourcePipeline;
  recent: RecentRows;
}

/** Builds the Detector's behaviour (fresh state at every restart). */
export function detector(deps: DetectorDeps): ActorFactory<DetectorMsg> {
  const m = deps.measurement;
  const rules = m.signature_rules;
  const query = `${m.name}/${SOURCE_STREAM}`;
  const patterns = m.metadata_extraction.id_patterns.map((p) => ({ idType: p.id_type, regex: p.regex }));

  const counters = deps.counters ?? NO_COUNTERS;
  return () => {
    const streams = new StreamTable<Source>(deps.idleNs, deps.maxStreams);
    const decode = new DecodeReporter(m.name, SOURCE_STREAM, query);
    const keyer = new StreamKeyer(rules.stream_key);
    const ids = new StickyIds();
    const clock = new EventClock({ windowNs: deps.clockWindowNs ?? 30_000_000_000n });
    let nowNs = 0n;

    const emit = async (sigs: Signature[]) => {
      for (const sig of sigs) {
        await deps.exporter.tell({ kind: "signature", sig, bytes: encodeSignature(sig).length });
        await deps.bus.publishSignature(sig);
      }
    };
    const report = async () => {
      // Counters are read here, once per second of event time, not per row.
      for (const [key, s] of streams.entries()) decode.observe(key, s.pipeline.stats());
      for (const delta of decode.deltas()) await deps.exporter.tell({ kind: "decode", delta });
    };
    const end = async (key: string, p: SourcePipeline) => {
      await emit(p.finish());
      decode.forget(key, p.stats());
      ids.forget(key);
    };
    const onRow = async (row: Row) => {
      if (clock.observe(row.time) === "advanced") {
        const t = clock.nowNs;
        if (t - nowNs > 1_000_000_000n) {
          for (const [key, s] of streams.sweep(t)) await end(key, s.pipeline);
          await report();
        }
        nowNs = t;
      }
      const payload = cellBytes(row, payloadColumn(rules));
      if (payload === undefined) {
        decode.count("missing_payload_column");
        return;
      }
      if (textOnBinaryTap(rules, row)) {
        decode.count("not_audio");
        return;
      }
      // One envelope per message: the stream key, the ids and the decoder share its parsed views.
      const env = new PayloadEnvelope(payload);
      const key = keyer.keyOf(row.columns, env);
      const touched = streams.touch(key, row.time, () => ({
        pipeline: new SourcePipeline({
          measurement: m.name,
          node: deps.node,
          pod: cellText(row, podColumn(rules)),
          stream: key,
          format: streamFormat(rules, row),
          criteria: rules.audio_criteria,
        }),
        recent: new RecentRows(),
      }));
      if (touched.evicted) {
        counters.streamsEvicted(m.name, SOURCE_STREAM);
        await end(touched.evicted[0], touched.evicted[1].pipeline);
      }
      const { pipeline, recent } = touched.value;
      if (recent.seen(row.time, payload)) {
        counters.rowsSkipped(query, "duplicate");
        return;
      }
      if (touched.created) {
        await deps.matcher.tell({ kind: "source-stream", measurement: m.name, stream: key });
      }
      await emit(pipeline.push(tapMessage(rules, row, env), ids.merge(key, extractIds(env, patterns))));
    };

    return {
      async receive(msg) {
        if (msg.kind === "row") return await onRow(msg.row);
        if (msg.kind === "rows") {
          for (const row of msg.rows) await onRow(row);
          return;
        }
        for (const [key, { pipeline: p }] of streams.entries()) {
          await emit(p.finish());
          decode.observe(key, p.stats());
        }
        await report();
        msg.reply(true);
      },
    };
  };
}
