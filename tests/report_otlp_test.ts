import { deepEqual, equal, ok } from "node:assert/strict";
import { OtlpExporter, tracesUrl } from "../report/otlp.ts";
import { addHops, stagePaths } from "../report/hops.ts";
import type { MatchRecord, SignatureRecord } from "../report/records.ts";
import { spanIdOf, traceIdOf } from "../report/trace_ids.ts";
import { startOtlpReceiver } from "./support/otlp_receiver.ts";
import { setLogSink } from "../util/log.ts";

setLogSink(() => {});

const T0 = 1_763_910_000_123_456_789n;
const MS = 1_000_000n;
const PATHS = stagePaths({
  measurements: [{ name: "m", match_rules: [{ stage: "relay" }, { stage: "asr", after: "relay" }] }],
});

function sig(id: string, interval: string): SignatureRecord {
  return {
    kind: "signature",
    measurement: "m",
    signature_id: id,
    node: "node-a",
    pod: "voice/telephony-0",
    stream: "call-1",
    time_ns: T0.toString(),
    offset_ms: 5,
    ids: { interval_id: interval },
    bytes: 600,
  };
}

function match(id: string, interval: string, stage: string, targetNs: bigint, node: string): MatchRecord {
  return {
    kind: "match",
    measurement: "m",
    stage,
    signature_id: id,
    ids: { interval_id: interval },
    source: {
      node: "node-a",
      pod: "voice/telephony-0",
      stream: "call-1",
      time_ns: T0.toString(),
      offset_ms: 5,
    },
    target: {
      node,
      pod: `voice/${stage}-0`,
      stream: `${stage}-1`,
      time_ns: targetNs.toString(),
      offset_ms: 1,
    },
    latency_s: Number(targetNs - T0) / 1e9,
    ber: 0.0125,
  };
}

Deno.test("OTLP/HTTP: a trace per signature, a span per hop at the taps' capture times, decoded by the official protos", async () => {
  const rx = await startOtlpReceiver();
  try {
    const exp = new OtlpExporter({
      endpoint: rx.endpoint,
      serviceName: "fsm-px-test",
      flushMs: 50,
      batch: 2,
    });
    const relayNs = T0 + 150n * MS, asrNs = relayNs + 800n * MS;
    const ms = addHops([
      match("00ff00ff00ff00ff", "i-1", "relay", relayNs, "node-b"),
      match("00ff00ff00ff00ff", "i-1", "asr", asrNs, "node-c"),
    ], PATHS);
    exp.signature(sig("00ff00ff00ff00ff", "i-1"));
    for (const m of ms) exp.match(m);
    await exp.close();
    deepEqual(exp.stats(), { sent: 3, failed: 0, dropped: 0, requests: 2 });
    ok(rx.requests.every((r) => r.path === "/v1/traces" && r.contentType === "application/x-protobuf"));

    equal(rx.spans.length, 3);
    const traceId = traceIdOf("m", "00ff00ff00ff00ff", "i-1");
    ok(rx.spans.every((s) => s.traceId === traceId), "one trace");
    const [root, relay, asr] = ["source", "relay", "asr"].map((st) =>
      rx.spans.find((s) => s.attributes["fsmpx.stage"] === st)!
    );
    ok(root && relay && asr);
    deepEqual([root.spanId, root.parentSpanId, root.startNs, root.endNs], [
      spanIdOf(traceId, "source"),
      "",
      T0,
      T0,
    ]);
    // relay: source -> relay; asr: relay -> asr, parented on the previous tap's span.
    deepEqual([relay.name, relay.parentSpanId, relay.startNs, relay.endNs], [
      "source → relay",
      root.spanId,
      T0,
      relayNs,
    ]);
    deepEqual([asr.name, asr.parentSpanId, asr.startNs, asr.endNs], [
      "relay → asr",
      relay.spanId,
      relayNs,
      asrNs,
    ]);
    equal(asr.kind, 1); // SPAN_KIND_INTERNAL
    equal(asr.attributes["fsmpx.node"], "node-c");
    equal(asr.attributes["k8s.pod.name"], "voice/asr-0");
    equal(asr.attributes["fsmpx.ber"], 0.0125);
    equal(asr.attributes["fsmpx.hop_latency_s"], 0.8);
    equal(asr.attributes["fsmpx.id.interval_id"], "i-1");
    equal(asr.resource["service.name"], "fsm-px-test");
  } finally {
    await rx.close();
  }
});

Deno.test("OTLP: a hop whose previous stage is unknown spans from the source and says so; failures are counted", async () => {
  const rx = await startOtlpReceiver();
  try {
    const exp = new OtlpExporter({ endpoint: rx.endpoint + "/v1/traces/", flushMs: 10 });
    exp.match(match("00ff00ff00ff0001", "i-2", "asr", T0 + 950n * MS, "node-c"));
    await exp.close();
    equal(rx.spans.length, 1);
    equal(rx.spans[0]!.startNs, T0);
    equal(rx.spans[0]!.attributes["fsmpx.hop_known"], false);
  } finally {
    await rx.close();
  }
  const down = new OtlpExporter({ endpoint: "http://127.0.0.1:9", flushMs: 10, timeoutMs: 2000 });
  down.match(match("00ff00ff00ff0002", "i-3", "relay", T0 + 150n * MS, "node-b"));
  await down.close();
  deepEqual(down.stats(), { sent: 0, failed: 1, dropped: 0, requests: 1 });
  equal(tracesUrl("http://tempo:4318"), "http://tempo:4318/v1/traces");
  equal(tracesUrl("http://tempo:4318/v1/traces"), "http://tempo:4318/v1/traces");
});

Deno.test("OTLP: a signature found on several streams of a stage gets a span for each, parented on the match its hop followed", async () => {
  // One span id per stage made the two relay matches (and their asr children) share ids: Tempo's trace combiner
  // keeps one span per id, so all but one of them vanished from the trace.
  const rx = await startOtlpReceiver();
  try {
    const exp = new OtlpExporter({ endpoint: rx.endpoint, flushMs: 10 });
    const id = "00ff00ff00ff0003";
    const onStream = (m: MatchRecord, stream: string): MatchRecord => ({
      ...m,
      target: { ...m.target, stream },
    });
    const relayA = onStream(match(id, "i-4", "relay", T0 + 150n * MS, "node-b"), "relay-a");
    const relayB = onStream(match(id, "i-4", "relay", T0 + 400n * MS, "node-b"), "relay-b");
    // asr-a follows relay-a (the latest relay match before it), asr-b relay-b.
    const asrA = onStream(match(id, "i-4", "asr", T0 + 300n * MS, "node-c"), "asr-a");
    const asrB = onStream(match(id, "i-4", "asr", T0 + 900n * MS, "node-c"), "asr-b");
    const ms = addHops([relayA, relayB, asrA, asrB], PATHS);
    exp.signature(sig(id, "i-4"));
    for (const m of ms) exp.match(m);
    // A record written before hops named their match: parented on the root, never on a span no one sends.
    const old = addHops([relayA, asrB], PATHS)[1]!;
    const { from_node: _n, from_stream: _s, ...oldHop } = old.hop!;
    exp.match({ ...old, signature_id: "00ff00ff00ff0004", hop: oldHop });
    exp.signature(sig("00ff00ff00ff0004", "i-4"));
    await exp.close();

    const traceId = traceIdOf("m", id, "i-4");
    const spans = rx.spans.filter((s) => s.traceId === traceId);
    equal(spans.length, 5);
    equal(new Set(spans.map((s) => s.spanId)).size, 5, "every span has an id of its own");
    const byStream = (stream: string) => spans.find((s) => s.attributes["fsmpx.stream"] === stream)!;
    const root = spans.find((s) => s.attributes["fsmpx.stage"] === "source")!;
    equal(byStream("relay-a").parentSpanId, root.spanId);
    equal(byStream("relay-b").parentSpanId, root.spanId);
    deepEqual([byStream("asr-a").parentSpanId, byStream("asr-a").startNs], [
      byStream("relay-a").spanId,
      T0 + 150n * MS,
    ]);
    deepEqual([byStream("asr-b").parentSpanId, byStream("asr-b").startNs], [
      byStream("relay-b").spanId,
      T0 + 400n * MS,
    ]);

    const oldTrace = traceIdOf("m", "00ff00ff00ff0004", "i-4");
    const oldSpan = rx.spans.find((s) => s.traceId === oldTrace && s.attributes["fsmpx.stage"] === "asr")!;
    equal(oldSpan.parentSpanId, spanIdOf(oldTrace, "source"));
    equal(oldSpan.startNs, T0 + 150n * MS, "still drawn from the previous tap's time");
  } finally {
    await rx.close();
  }
});
