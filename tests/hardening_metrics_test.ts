/**
 * Issue 15: counters labelled by a measurement exist at 0 for every configured measurement (and stage) on every
 * node from the start, so a rate or an alert sees a series instead of a missing one.
 */
import { equal } from "node:assert/strict";
import { FsmMetrics } from "../http/metrics.ts";
import { parseMetricsText } from "./support/sensor_process.ts";

Deno.test("initMeasurements: every measurement and stage has its series at 0 before anything happens", async () => {
  const m = new FsmMetrics({ rss: () => 0 });
  m.initMeasurements([
    { name: "call_audio", match_rules: [{ stage: "relay" }, { stage: "asr" }] },
    { name: "tts", match_rules: [{ stage: "default" }] },
  ]);
  const samples = parseMetricsText(await m.text());
  const value = (name: string, labels: Record<string, string>) => {
    const s = samples.filter((x) =>
      x.name === name && Object.entries(labels).every(([k, v]) => x.labels[k] === v) &&
      Object.keys(x.labels).length === Object.keys(labels).length
    );
    equal(s.length, 1, `${name}${JSON.stringify(labels)}`);
    return s[0]!.value;
  };
  for (const measurement of ["call_audio", "tts"]) {
    equal(value("signatures_detected_total", { measurement }), 0);
    equal(value("fsmpx_signatures_expired_total", { measurement, reason: "ttl" }), 0);
    equal(value("fsmpx_rows_read_total", { query: `${measurement}/source` }), 0);
  }
  for (const stage of ["relay", "asr"]) {
    equal(value("signatures_matched_total", { measurement: "call_audio", stage }), 0);
    equal(value("fsmpx_streams_evicted_total", { measurement: "call_audio", stream: stage }), 0);
  }
  equal(value("signatures_matched_total", { measurement: "tts", stage: "default" }), 0);
});
