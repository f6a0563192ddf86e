/**
 * Detector: one per measurement. Its source tap's rows go through the tap intake (tap_intake.ts: a
 * SourcePipeline per source stream, idle and capped streams, duplicate rows, sticky context ids, decode
 * counters); it announces each new source stream to the Matcher and hands the signatures to the Exporter and
 * the bus, each encoded once.
 *
 * A restart builds the intake and its pipelines afresh, but the context ids in force on each source stream outlive
 * it (sticky_ids.ts): a call sends its ids once, and its signatures after the restart still carry them.
 * @module
 */
import type { ActorFactory, ActorRef } from "./runtime.ts";
import type { DetectorMsg, ExporterMsg, MatcherMsg, NodeCounters } from "./messages.ts";
import type { Bus } from "../bus/bus.ts";
import type { Measurement } from "../config/schema.ts";
import { SourcePipeline } from "../audio/pipeline.ts";
import { encodeSignature } from "../audio/fingerprint/signature.ts";
import type { Signature } from "../audio/types.ts";
import { sourceTap, TapIntake } from "./tap_intake.ts";
import { StickyIds } from "./sticky_ids.ts";

/** What a Detector talks to. */
export interface DetectorDeps {
  measurement: Measurement;
  node: string;
  bus: Bus;
  matcher: ActorRef<MatcherMsg>;
  exporter: ActorRef<ExporterMsg>;
  /** Event time without audio after which a stream is finished and forgotten. */
  idleNs: bigint;
  /** Event time between sweeps of idle streams and reports of decode counters. */
  tickNs: bigint;
  /** Most source streams followed at once (engine.max_streams). Default: no limit. */
  maxStreams?: number;
  /** engine.clock_window_seconds, ns. */
  clockWindowNs: bigint;
  counters?: NodeCounters;
  /** Live nodes: a batch's rows are taken stream by stream (TapIntakeOptions.groupStreams). */
  groupStreams?: boolean;
}

/** Builds the Detector's behaviour (fresh state at every restart, but for the streams' context ids). */
export function detector(deps: DetectorDeps): ActorFactory<DetectorMsg> {
  const m = deps.measurement;
  const tap = sourceTap(m);
  // Outside the factory: a restarted Detector's streams keep the ids their calls sent before the crash.
  const stickyIds = new StickyIds();
  return () => {
    const publish = async (sigs: Signature[]) => {
      for (const sig of sigs) {
        // Encoded once: its size goes in the signature record, its bytes on the bus.
        const encoded = encodeSignature(sig);
        await deps.exporter.tell({ kind: "signature", sig, bytes: encoded.length });
        await deps.bus.publishSignature(sig, encoded);
      }
    };
    const intake = new TapIntake({
      taps: [tap],
      idleNs: deps.idleNs,
      maxStreams: deps.maxStreams,
      clockWindowNs: deps.clockWindowNs,
      tickNs: deps.tickNs,
      groupStreams: deps.groupStreams,
      counters: deps.counters,
      stickyIds,
      open: (s) =>
        new SourcePipeline({
          measurement: m.name,
          node: deps.node,
          pod: s.pod,
          stream: s.stream,
          format: s.format,
          criteria: m.signature_rules.audio_criteria,
        }),
      emit: publish,
      report: (delta) => deps.exporter.tell({ kind: "decode", delta }),
      opened: (_, stream) => deps.matcher.tell({ kind: "source-stream", measurement: m.name, stream }),
    });

    const finish = async (reply: (ok: true) => void) => {
      await intake.finish();
      reply(true);
    };
    return {
      // The next incarnation builds its own pipelines: these free their WebRTC VADs (a crash left them allocated).
      onStop: () => intake.close(),
      // Not async: a batch of rows with nothing to wait for is taken without a promise (see TapIntake.pushAll).
      receive(msg) {
        switch (msg.kind) {
          case "row":
            return intake.push(msg.row);
          case "rows":
            return intake.pushAll(msg.rows);
          case "shed":
            return intake.shed(msg.fromNs);
          case "time":
            return intake.idle(msg.nowNs);
          case "finish":
            return finish(msg.reply);
        }
      },
    };
  };
}
