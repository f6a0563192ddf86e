import { deepEqual, equal, ok } from "node:assert/strict";
import { quantile, renderSummaryCsv, renderSummaryTable, summarize } from "../report/summary.ts";
import {
  latencySeconds,
  type MatchRecord,
  matchRecord,
  parseRecord,
  type SignatureRecord,
} from "../report/records.ts";

function sig(id: string, interval: string, t: bigint): SignatureRecord {
  return {
    kind: "signature",
    measurement: "m",
    signature_id: id,
    node: "a",
    pod: "p",
    stream: "s",
    time_ns: t.toString(),
    offset_ms: 0,
    ids: { interval_id: interval },
    bytes: 600,
  };
}

function match(id: string, interval: string, stage: string, lat: number, t: bigint): MatchRecord {
  const tap = { node: "a", pod: "p", stream: "s", time_ns: t.toString(), offset_ms: 0 };
  return {
    kind: "match",
    measurement: "m",
    stage,
    signature_id: id,
    ids: { interval_id: interval },
    source: tap,
    target: { ...tap, node: "b" },
    latency_s: lat,
    ber: 0.1,
  };
}

Deno.test("quantile interpolates linearly", () => {
  equal(quantile([1, 2, 3, 4], 0.5), 2.5);
  equal(quantile([5], 0.99), 5);
  equal(quantile([0, 10], 0.9), 9);
  ok(Number.isNaN(quantile([], 0.5)));
});

Deno.test("summary: recall, percentiles, stage order and waterfall", () => {
  const sigs = [sig("s1", "i1", 10n), sig("s2", "i1", 20n), sig("s3", "i2", 5n), sig("s4", "i2", 30n)];
  const ms = [
    match("s1", "i1", "asr", 1.0, 10n),
    match("s2", "i1", "asr", 2.0, 20n),
    match("s3", "i2", "asr", 3.0, 5n),
    match("s1", "i1", "relay", 0.1, 10n),
    match("s3", "i2", "relay", 0.3, 5n),
  ];
  const [s] = summarize(sigs, ms, { m: ["relay", "asr"] });
  ok(s);
  equal(s.signatures, 4);
  deepEqual(s.stages.map((x) => [x.stage, x.matches, x.recall]), [["relay", 2, 0.5], ["asr", 3, 0.75]]);
  deepEqual(s.stages[1]!.latency_s, { p50: 2, p90: 2.8, p99: 2.98, max: 3 });
  equal(s.id_type, "interval_id");
  deepEqual(s.waterfall.map((r) => r.id), ["i2", "i1"]); // by first source time
  deepEqual(s.waterfall[1]!.latency_s_by_stage, { relay: 0.1, asr: 1.5 });
  const text = renderSummaryTable([s]);
  ok(text.includes("measurement m: 4 signatures"));
  ok(/asr\s+3\s+75\.0%\s+2000\.0/.test(text), text);
  ok(text.includes("waterfall by interval_id"));
  ok(renderSummaryCsv([s]).includes("m,asr,3,4,0.7500,2,"));
});

Deno.test("records: latency from bigint ns, match record shape, validation", () => {
  equal(latencySeconds(1_700_000_000_000_000_000n, 1_700_000_001_234_000_000n), 1.234);
  const rec = matchRecord({
    measurement: "m",
    stage: "asr",
    signatureId: "00ff00ff00ff00ff",
    ids: { interval_id: "x" },
    source: { node: "a", pod: "p", stream: "s", timeNs: 1n, offsetMs: 12.50000001 },
    target: { node: "b", pod: "q", stream: "t", timeNs: 2n, offsetMs: 3.25 },
    latencyS: 1e-9,
    ber: 0.123456,
  });
  deepEqual(Object.keys(rec), [
    "kind",
    "measurement",
    "stage",
    "signature_id",
    "ids",
    "source",
    "target",
    "latency_s",
    "ber",
  ]);
  equal(rec.source.offset_ms, 12.5);
  equal(rec.source.time_ns, "1");
  equal(rec.ber, 0.1235);
  deepEqual(parseRecord(JSON.parse(JSON.stringify(rec))), rec);
  ok(typeof parseRecord({ kind: "match" }) === "string");
  ok(typeof parseRecord({ kind: "other" }) === "string");
});

Deno.test("summary table: a negative hop (clocks that disagree) keeps its own sign, never '+-'", () => {
  // An ASR whose node's clock is 50 ms behind the relay's: its hop from the relay is -50 ms.
  const t0 = 1_763_910_000_000_000_000n, ms = 1_000_000n;
  const relay = match("s1", "i1", "relay", 0.2, t0);
  const asr = match("s1", "i1", "asr", 0.15, t0);
  relay.target = { ...relay.target, time_ns: (t0 + 200n * ms).toString() };
  asr.target = { ...asr.target, node: "c", stream: "t2", time_ns: (t0 + 150n * ms).toString() };
  const s = summarize([sig("s1", "i1", t0)], [relay, asr], { m: ["relay", "asr"] }, {
    paths: { m: { relay: "source", asr: "relay" } },
  });
  equal(s[0]!.hops[1]!.latency_s!.p50, -0.05);
  const text = renderSummaryTable(s);
  ok(!text.includes("+-"), text);
  ok(/asr\s+1\s+100\.0%(\s+150\.0){4}\s+relay\s+-50\.0\s+-50\.0/.test(text), text);
  ok(/relay\s+1\s+100\.0%(\s+200\.0){4}\s+source\s+\+200\.0\s+\+200\.0/.test(text), text);
  ok(/i1\s+200\.0 \(\+200\.0\)\s+150\.0 \(-50\.0\)/.test(text), text);
});

Deno.test("summary: recall counts only signatures of the record set (a range holding matches of earlier ones)", () => {
  // replay --start (or the UI's window) between a signature's storing and its matches': s0 is not in the range,
  // its matches are. Recall was 3/2 = 150% at relay.
  const sigs = [sig("s1", "i1", 10n), sig("s2", "i1", 20n)];
  const ms = [
    match("s0", "i1", "relay", 0.1, 5n),
    match("s1", "i1", "relay", 0.1, 10n),
    match("s2", "i1", "relay", 0.1, 20n),
    match("s0", "i1", "asr", 1.0, 5n),
    match("s1", "i1", "asr", 1.0, 10n),
  ];
  const [s] = summarize(sigs, ms, { m: ["relay", "asr"] });
  ok(s);
  deepEqual(
    s.stages.map((x) => [x.stage, x.matches, x.matched_signatures, x.recall]),
    [["relay", 3, 2, 1], ["asr", 2, 1, 0.5]],
  );
});
