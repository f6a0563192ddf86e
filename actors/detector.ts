/**
 * Detector: one per measurement. Turns the source tap's rows into signatures (through the audio engine's
 * SourcePipeline, one per source stream), announces new source streams to the Matcher, hands signatures to the
 * Exporter and publishes them on the bus.
 * @module
 */
import type { ActorFactory, ActorRef } from "./runtime.ts";
import type { DetectorMsg, ExporterMsg, MatcherMsg } from "./messages.ts";
import type { Bus } from "../bus/bus.ts";
import type { Measurement } from "../config/schema.ts";
import { cellBytes, cellText, type Row, SOURCE_STREAM } from "../pixie/row.ts";
import { SourcePipeline } from "../audio/pipeline.ts";
import { encodeSignature } from "../audio/signature.ts";
import { StreamKeyer } from "../audio/stream_key.ts";
import { PayloadEnvelope } from "../audio/envelope.ts";
import { extractIds } from "../audio/context_ids.ts";
import type { Signature } from "../audio/types.ts";
import { StreamTable } from "./stream_table.ts";
import { DecodeReporter } from "./decode_reporter.ts";
import { payloadColumn, podColumn, StickyIds, streamFormat, tapMessage } from "./tap_intake.ts";

/** What a Detector talks to. */
export interface DetectorDeps {
  measurement: Measurement;
  node: string;
  bus: Bus;
  matcher: ActorRef<MatcherMsg>;
  exporter: ActorRef<ExporterMsg>;
  /** Event time without audio after which a stream is finished and forgotten. */
  idleNs: bigint;
}

/** Builds the Detector's behaviour (fresh state at every restart). */
export function detector(deps: DetectorDeps): ActorFactory<DetectorMsg> {
  const m = deps.measurement;
  const rules = m.signature_rules;
  const query = `${m.name}/${SOURCE_STREAM}`;
  const patterns = m.metadata_extraction.id_patterns.map((p) => ({ idType: p.id_type, regex: p.regex }));

  return () => {
    const streams = new StreamTable<SourcePipeline>(deps.idleNs);
    const decode = new DecodeReporter(m.name, SOURCE_STREAM, query);
    const keyer = new StreamKeyer(rules.stream_key);
    const ids = new StickyIds();
    let nowNs = 0n;

    const emit = async (sigs: Signature[]) => {
      for (const sig of sigs) {
        await deps.exporter.tell({ kind: "signature", sig, bytes: encodeSignature(sig).length });
        await deps.bus.publishSignature(sig);
      }
    };
    const report = async () => {
      for (const delta of decode.deltas()) await deps.exporter.tell({ kind: "decode", delta });
    };
    const onRow = async (row: Row) => {
      if (row.time > nowNs) {
        if (row.time - nowNs > 1_000_000_000n) {
          for (const [key, p] of streams.sweep(row.time)) {
            await emit(p.finish());
            decode.forget(key, p.stats());
            ids.forget(key);
          }
          await report();
        }
        nowNs = row.time;
      }
      const payload = cellBytes(row, payloadColumn(rules));
      if (payload === undefined) {
        decode.count("missing_payload_column");
        return;
      }
      // One envelope per message: the stream key, the ids and the decoder share its parsed views.
      const env = new PayloadEnvelope(payload);
      const key = keyer.keyOf(row.columns, env);
      const { value: pipeline, created } = streams.touch(key, row.time, () =>
        new SourcePipeline({
          measurement: m.name,
          node: deps.node,
          pod: cellText(row, podColumn(rules)),
          stream: key,
          format: streamFormat(rules, row),
          criteria: rules.audio_criteria,
        }));
      if (created) await deps.matcher.tell({ kind: "source-stream", measurement: m.name, stream: key });
      const sigs = pipeline.push(tapMessage(rules, row, env), ids.merge(key, extractIds(env, patterns)));
      decode.observe(key, pipeline.stats());
      await emit(sigs);
    };

    return {
      async receive(msg) {
        if (msg.kind === "row") return await onRow(msg.row);
        for (const [key, p] of streams.entries()) {
          await emit(p.finish());
          decode.observe(key, p.stats());
        }
        await report();
        msg.reply(true);
      },
    };
  };
}
