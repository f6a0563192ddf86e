/**
 * Match records for the OTLP exporter's tests: a relay match 150 ms after its source, one signature per `i`.
 * @module
 */
import type { MatchRecord } from "../../report/records.ts";

/** The source capture time of every {@link relayMatch}. */
export const OTLP_T0 = 1_763_910_000_123_456_789n;

/** The `i`-th relay match (signature id and interval id from `i`). */
export function relayMatch(i: number): MatchRecord {
  const tap = (stream: string, ns: bigint) => ({
    node: "node-a",
    pod: "voice/p-0",
    stream,
    time_ns: ns.toString(),
    offset_ms: 0,
  });
  return {
    kind: "match",
    measurement: "m",
    stage: "relay",
    signature_id: i.toString(16).padStart(16, "0"),
    ids: { interval_id: `i-${i}` },
    source: tap("call", OTLP_T0),
    target: tap("relay", OTLP_T0 + 150_000_000n),
    latency_s: 0.15,
    ber: 0.01,
  };
}
