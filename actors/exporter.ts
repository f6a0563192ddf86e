/**
 * Exporter: one per node. Turns signatures and matches into Prometheus metrics, publishes match records on the
 * bus, and hands records to local sinks (`analyze --out`, the demo's live printout).
 * @module
 */
import type { ActorFactory } from "./runtime.ts";
import type { ExporterMsg } from "./messages.ts";
import type { Bus } from "../bus/bus.ts";
import type { FsmMetrics } from "../http/metrics.ts";
import { type MatchRecord, matchRecord, type SignatureRecord, signatureRecord } from "../report/records.ts";

/** Where records go besides the bus. */
export interface RecordSink {
  signature?(rec: SignatureRecord): void | Promise<void>;
  match?(rec: MatchRecord): void | Promise<void>;
}

/** What the Exporter talks to. */
export interface ExporterDeps {
  metrics: FsmMetrics;
  bus: Bus;
  sinks: readonly RecordSink[];
}

/** Builds the Exporter's behaviour. */
export function exporter(deps: ExporterDeps): ActorFactory<ExporterMsg> {
  const { metrics, bus, sinks } = deps;
  return () => ({
    async receive(msg) {
      switch (msg.kind) {
        case "signature": {
          metrics.signatureDetected(msg.sig.measurement);
          const rec = signatureRecord(msg.sig, msg.bytes);
          for (const s of sinks) await s.signature?.(rec);
          return;
        }
        case "match": {
          metrics.match(msg.match);
          await bus.publishMatch(msg.match);
          const rec = matchRecord(msg.match);
          for (const s of sinks) await s.match?.(rec);
          return;
        }
        case "active":
          return metrics.activeSignatures(msg.measurement, msg.count);
        case "rows":
          return metrics.rowsRead(msg.query, msg.n);
        case "decode": {
          const d = msg.delta;
          for (const [reason, n] of Object.entries(d.errors)) {
            metrics.decodeErrors(d.measurement, d.stream, reason, n);
          }
          const cut = Object.values(d.markers).reduce((a, b) => a + b, 0);
          if (cut > 0) metrics.truncated(d.query, cut);
          return;
        }
        case "finish":
          msg.reply(true);
      }
    },
  });
}
