import { deepEqual, equal, ok } from "node:assert/strict";
import { addHops, HopTracker, MAX_MATCHES_PER_SIGNATURE, stagePaths } from "../report/hops.ts";
import {
  fromBase64,
  type MatchRecord,
  matchRecord,
  parseRecord,
  type SignatureRecord,
  signatureRecord,
} from "../report/records.ts";
import {
  renderSummaryCsv,
  renderSummaryTable,
  selectRecords,
  sparkline,
  summarize,
} from "../report/summary.ts";
import { exemplarLabels, spanIdOf, traceIdOf } from "../report/trace_ids.ts";
import { exporter, inProcessMatchFeed } from "../actors/exporter.ts";
import { ActorSystem } from "../actors/runtime.ts";
import { VirtualClock } from "../actors/clock.ts";
import { settleAll } from "./support/actor_fixtures.ts";
import { setLogSink } from "../util/log.ts";
import { InProcessBus } from "../bus/in_process.ts";
import { FsmMetrics } from "../http/metrics.ts";
import type { Match } from "../audio/types.ts";
import { signatureOf } from "../audio/fingerprint/signature.ts";
import type { ExporterMsg } from "../actors/messages.ts";

setLogSink(() => {});

const T0 = 1_763_910_000_000_000_000n;
const MS = 1_000_000n;
/** telephony -> relay (+150 ms) -> asr (+800 ms). */
const PATHS = stagePaths({
  measurements: [{
    name: "m",
    match_rules: [{ stage: "relay" }, { stage: "asr", after: "relay" }],
  }],
});

function sig(id: string, interval: string, t: bigint, stream = "call-1"): SignatureRecord {
  return {
    kind: "signature",
    measurement: "m",
    signature_id: id,
    node: "node-a",
    pod: "voice/telephony-0",
    stream,
    time_ns: t.toString(),
    offset_ms: 0,
    ids: { interval_id: interval },
    bytes: 600,
  };
}

function match(
  id: string,
  interval: string,
  stage: string,
  src: bigint,
  dst: bigint,
  stream = "call-1",
): Match {
  return {
    measurement: "m",
    stage,
    signatureId: id,
    ids: { interval_id: interval },
    source: { node: "node-a", pod: "voice/telephony-0", stream, timeNs: src, offsetMs: 0 },
    target: {
      node: stage === "relay" ? "node-b" : "node-c",
      pod: `voice/${stage}-0`,
      stream: `${stage}-${stream}`,
      timeNs: dst,
      offsetMs: 0,
    },
    latencyS: Number(dst - src) / 1e9,
    ber: 0.05,
  };
}

/** One signature through relay (+150 ms) and ASR (+800 ms after the relay). */
function journey(id: string, interval: string, src: bigint, asrAdds = 800n): MatchRecord[] {
  return [
    matchRecord(match(id, interval, "relay", src, src + 150n * MS)),
    matchRecord(match(id, interval, "asr", src, src + 150n * MS + asrAdds * MS)),
  ];
}

Deno.test("hops: a relay adding 150 ms and an ASR adding 800 ms", () => {
  const out = addHops(journey("s1", "i1", T0), PATHS);
  deepEqual(out.map((m) => [m.stage, m.latency_s, m.hop]), [
    ["relay", 0.15, { from_stage: "source", latency_s: 0.15 }],
    ["asr", 0.95, { from_stage: "relay", latency_s: 0.8, from_node: "node-b", from_stream: "relay-call-1" }],
  ]);
});

Deno.test("hops: in any order; none when the previous stage was not found; default path is the source", () => {
  const [relay, asr] = journey("s1", "i1", T0);
  deepEqual(addHops([asr!, relay!], PATHS).map((m) => m.hop?.latency_s), [0.8, 0.15]);
  equal(addHops([asr!], PATHS)[0]!.hop, undefined);
  // Without `after`, the ASR is measured from the source: its hop is its latency.
  deepEqual(addHops([asr!], {})[0]!.hop, { from_stage: "source", latency_s: 0.95 });
});

Deno.test("hops: of two relay matches, the one captured before the ASR's", () => {
  const [relay, asr] = journey("s1", "i1", T0);
  const later = {
    ...relay!,
    target: { ...relay!.target, stream: "other", time_ns: (T0 + 5000n * MS).toString() },
  };
  const out = addHops([later, relay!, asr!], PATHS);
  // It names that match: a trace parents the ASR's span on it (report/otlp.ts).
  deepEqual(out[2]!.hop, {
    from_stage: "relay",
    latency_s: 0.8,
    from_node: "node-b",
    from_stream: "relay-call-1",
  });
});

Deno.test("hop tracker: a signature's matches are bounded (a peer publishing thousands for one signature)", () => {
  // Each later match scanned them all: 4,000 ASR records for one signature, then a relay one, took ~90 ms each.
  const t = new HopTracker(PATHS);
  for (let i = 0; i < 4_000; i++) {
    t.observe(matchRecord(match("s1", "i1", "asr", T0, T0 + 950n * MS, `call-${i}`)));
  }
  const r = t.observe(matchRecord(match("s1", "i1", "relay", T0, T0 + 150n * MS)));
  equal(r.resolved.length, MAX_MATCHES_PER_SIGNATURE);
  // Beyond the bound a match is not remembered: a later ASR match finds no relay match to hop from.
  deepEqual(t.observe(matchRecord(match("s1", "i1", "asr", T0, T0 + 950n * MS, "call-x"))).hop, undefined);
});

Deno.test("hop tracker: live, both orders, duplicates once, bounded", () => {
  const [relay, asr] = journey("s1", "i1", T0);
  const t = new HopTracker(PATHS);
  deepEqual(t.observe(relay!), { hop: { from_stage: "source", latency_s: 0.15 }, resolved: [] });
  deepEqual(t.observe(asr!), {
    hop: { from_stage: "relay", latency_s: 0.8, from_node: "node-b", from_stream: "relay-call-1" },
    resolved: [],
  });
  deepEqual(t.observe(asr!), { resolved: [] });

  const late = new HopTracker(PATHS);
  deepEqual(late.observe(asr!), { resolved: [] }); // the relay's match is not known yet
  const r = late.observe(relay!);
  deepEqual(r.hop, { from_stage: "source", latency_s: 0.15 });
  deepEqual(r.resolved.map((x) => [x.match.stage, x.hop]), [["asr", {
    from_stage: "relay",
    latency_s: 0.8,
    from_node: "node-b",
    from_stream: "relay-call-1",
  }]]);

  const small = new HopTracker(PATHS, { maxSignatures: 2 });
  for (const id of ["a", "b", "c"]) small.observe(journey(id, "i", T0)[0]!);
  equal(small.size, 2);
  deepEqual(small.observe(journey("a", "i", T0)[1]!), { resolved: [] }); // "a" was forgotten
});

Deno.test("hop tracker: keeps a few words per match, not the records", async () => {
  // At 1,000 calls a live node sees ~60 signatures a second; the tracker's 50,000 were reached after ~14 min and
  // their whole records (level envelopes, time strings) held ~140 MB of a 768 MiB pod (2,546 bytes a signature
  // here before).
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-read",
      "--v8-flags=--expose-gc",
      new URL("./support/hop_tracker_memory.ts", import.meta.url).pathname,
      "20000",
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  equal(out.code, 0, new TextDecoder().decode(out.stderr));
  const r = JSON.parse(new TextDecoder().decode(out.stdout)) as { bytesPerSignature: number; size: number };
  equal(r.size, 20_000);
  ok(r.bytesPerSignature < 1000, `${r.bytesPerSignature} bytes a signature`);
});

Deno.test("summary: per-hop column, waterfall hops, per-call timeline that shows growth", () => {
  const sigs: SignatureRecord[] = [];
  const ms: MatchRecord[] = [];
  // One call whose ASR falls behind: 645, 1285, 2005, 2599 ms, each its own interval.
  [645n, 1285n, 2005n, 2599n].forEach((asrMs, i) => {
    const src = T0 + BigInt(i) * 5000n * MS;
    sigs.push(sig(`s${i}`, `i${i}`, src));
    ms.push(...journey(`s${i}`, `i${i}`, src, asrMs - 150n));
  });
  const [s] = summarize(sigs, ms, { m: ["relay", "asr"] }, { paths: PATHS });
  ok(s);
  deepEqual(s.hops.map((h) => [h.stage, h.from_stage, h.matches]), [["relay", "source", 4], [
    "asr",
    "relay",
    4,
  ]]);
  equal(s.hops[1]!.latency_s!.p50, (1.135 + 1.855) / 2);
  deepEqual(s.waterfall[0]!.hop_s_by_stage, { relay: 0.15, asr: 0.495 });
  equal(s.calls.length, 1);
  deepEqual(s.calls[0]!.points["asr"]!.map((p) => [p.t_s, p.latency_s]), [
    [0, 0.645],
    [5, 1.285],
    [10, 2.005],
    [
      15,
      2.599,
    ],
  ]);
  deepEqual(s.calls[0]!.ids, ["i0", "i1", "i2", "i3"]);
  const text = renderSummaryTable([s]);
  ok(/asr\s+4\s+100\.0%.*relay\s+\+1495\.0/.test(text), text);
  ok(text.includes("645→2599"), text);
  ok(text.includes("▂▄▇█"), text);
  ok(/i0\s+150\.0 \(\+150\.0\)\s+645\.0 \(\+495\.0\)/.test(text), text);
  ok(renderSummaryCsv([s]).includes("m,asr,4,4,1.0000,1.645,"), renderSummaryCsv([s]));
  ok(renderSummaryCsv([s]).split("\n")[2]!.includes(",relay,1.495,"));
});

Deno.test("sparkline: scaled from zero, one cell per time slice, dots where nothing fell", () => {
  equal(
    sparkline([{ t_s: 0, latency_s: 1 }, { t_s: 1, latency_s: 2 }, { t_s: 2, latency_s: 4 }, {
      t_s: 3,
      latency_s: 8,
    }]),
    "▁▂▄█",
  );
  equal(
    sparkline(
      [{ t_s: 0, latency_s: 1 }, { t_s: 10, latency_s: 1 }, { t_s: 1, latency_s: 1 }].sort((a, b) =>
        a.t_s - b.t_s
      ),
      3,
    ),
    "█·█",
  );
  equal(sparkline([]), "");
});

Deno.test("selection: --interval and --id (value, TYPE=VALUE, signature id, source stream)", () => {
  const sigs = [sig("s1", "i1", T0, "call-1"), sig("s2", "i2", T0, "call-2")];
  const ms = [...journey("s1", "i1", T0), ...journey("s2", "i2", T0)];
  ms[2] = { ...ms[2]!, source: { ...ms[2]!.source, stream: "call-2" } };
  ms[3] = { ...ms[3]!, source: { ...ms[3]!.source, stream: "call-2" } };
  const count = (sel: Parameters<typeof selectRecords>[2]) => {
    const r = selectRecords(sigs, ms, sel);
    return [r.signatures.length, r.matches.length];
  };
  deepEqual(count({}), [2, 4]);
  deepEqual(count({ interval: "i2" }), [1, 2]);
  deepEqual(count({ id: "i1" }), [1, 2]);
  deepEqual(count({ id: "interval_id=i1" }), [1, 2]);
  deepEqual(count({ id: "other_id=i1" }), [0, 0]);
  deepEqual(count({ id: "s2" }), [1, 2]);
  deepEqual(count({ id: "call-2" }), [1, 2]);
  deepEqual(count({ id: "nope" }), [0, 0]);
  // Hops are computed before the selection: ASR-only still knows what the ASR added after the relay.
  const [s] = summarize(sigs, ms.filter((m) => m.stage === "asr"), {}, { paths: PATHS });
  equal(s!.hops[0]!.matches, 0);
  const [t] = summarize(sigs, ms, {}, { paths: PATHS, select: { id: "s1" } });
  equal(t!.signatures, 1);
  deepEqual(t!.waterfall.map((r) => r.hop_s_by_stage), [{ relay: 0.15, asr: 0.8 }]);
});

Deno.test("records: hop and fingerprint fields extend the contract; old records still parse", () => {
  const m = match("s1", "i1", "asr", T0, T0 + 950n * MS);
  const rec = matchRecord({ ...m, hop: { from_stage: "relay", latency_s: 0.8 } });
  deepEqual(rec.hop, { from_stage: "relay", latency_s: 0.8 });
  deepEqual(Object.keys(rec).at(-1), "hop");
  deepEqual(parseRecord(JSON.parse(JSON.stringify(rec))), rec);
  equal(matchRecord(m).hop, undefined);
  ok(typeof parseRecord({ ...rec, hop: { from_stage: "relay" } }) === "string");
  ok(typeof parseRecord({ ...rec, hop: 1 }) === "string");

  const fp = new Uint32Array([0xdeadbeef, 1, 0x80000000]);
  const envelope = new Uint8Array(256).map((_, i) => i % 8);
  const srec = signatureRecord(
    signatureOf({
      id: "00ff00ff00ff00ff",
      measurement: "m",
      source: { node: "a", pod: "p", stream: "s", timeNs: T0, offsetMs: 1.5 },
      fingerprint: fp,
      levelEnvelope: envelope,
      ids: {},
    }),
    600,
  );
  const back = fromBase64(srec.fingerprint_b64!)!;
  const view = new DataView(back.buffer);
  deepEqual([0, 1, 2].map((i) => view.getUint32(i * 4, true)), [...fp]);
  deepEqual(fromBase64(srec.envelope_b64!), envelope);
  equal(srec.mask_b64, undefined);
  deepEqual(parseRecord(JSON.parse(JSON.stringify(srec))), srec);
  const { fingerprint_b64: _f, envelope_b64: _e, ...old } = srec;
  deepEqual(parseRecord(old), old);
  ok(typeof parseRecord({ ...srec, envelope_b64: 5 }) === "string");
});

Deno.test("trace ids: stable, distinct per signature, 128/64 bits; exemplars within 128 characters", () => {
  const a = traceIdOf("m", "00ff00ff00ff00ff", "i1");
  equal(a, traceIdOf("m", "00ff00ff00ff00ff", "i1"));
  ok(/^[0-9a-f]{32}$/.test(a));
  ok(a !== traceIdOf("m", "00ff00ff00ff00fe", "i1"));
  ok(a !== traceIdOf("m", "00ff00ff00ff00ff", "i2"));
  ok(/^[0-9a-f]{16}$/.test(spanIdOf(a, "relay")));
  ok(spanIdOf(a, "relay") !== spanIdOf(a, "asr"));
  const labels = exemplarLabels("00ff00ff00ff00ff", "x".repeat(200), a);
  const chars = Object.entries(labels).reduce((n, [k, v]) => n + k.length + v.length, 0);
  equal(chars, 128);
  deepEqual(Object.keys(labels), ["trace_id", "signature_id", "interval_id"]);
  deepEqual(exemplarLabels("00ff00ff00ff00ff", undefined, undefined), { signature_id: "00ff00ff00ff00ff" });
  // Characters outside the BMP are two UTF-16 units, as prom-client counts the limit: 48 letters and 4 emoji
  // (52 code points) made 129 units, prom-client threw, and the exporter crashed on every match of it.
  const wide = exemplarLabels("00ff00ff00ff00ff", "x".repeat(48) + "😀".repeat(4), a);
  const units = Object.entries(wide).reduce((n, [k, v]) => n + k.length + v.length, 0);
  ok(units <= 128, `${units} UTF-16 units`);
  equal(wide["interval_id"], "x".repeat(48), "whole characters: one unit of room left, no half surrogate");
  // Through prom-client's own check (it threw a RangeError here).
  const metrics = new FsmMetrics({ rss: () => 0, exemplars: true });
  metrics.match(match("00ff00ff00ff00ff", "x".repeat(48) + "😀".repeat(4), "relay", 1n, 2n), a);
});

Deno.test("exporter: two nodes on one bus see each other's matches; hop in records, bus and metric", async () => {
  const bus = new InProcessBus();
  const system = new ActorSystem();
  const records: MatchRecord[] = [];
  const published: MatchRecord[] = [];
  bus.subscribeMatches((m) => void published.push(m));
  const nodes = ["node-b", "node-c"].map((name) => {
    const metrics = new FsmMetrics({ rss: () => 0 });
    const ref = system.spawn<ExporterMsg>(
      `exporter/${name}`,
      exporter({
        metrics,
        bus,
        sinks: [{ match: (r) => void records.push(r) }],
        paths: PATHS,
        matchFeed: inProcessMatchFeed(bus),
        traceIds: true,
      }),
      { capacity: 16, overflow: "backpressure" },
    );
    return { ref, metrics };
  });
  const [b, c] = nodes;
  // The ASR's match first (node-c), then the relay's (node-b): the ASR's hop is counted when the relay's arrives.
  const send = async (n: typeof b, m: Match) => {
    await n!.ref.tell({ kind: "match", match: m });
    await n!.ref.ask((reply) => ({ kind: "finish", reply }), 5000);
    await bus.flush(1000);
  };
  await send(c, match("s1", "i1", "asr", T0, T0 + 950n * MS));
  await send(b, match("s1", "i1", "relay", T0, T0 + 150n * MS));
  // Then a second signature in pipeline order: its ASR record carries the hop.
  await send(b, match("s2", "i1", "relay", T0, T0 + 150n * MS));
  await send(c, match("s2", "i1", "asr", T0, T0 + 950n * MS));
  await system.shutdown({ deadlineMs: 5000 });

  deepEqual(records.map((r) => [r.signature_id, r.stage, r.hop?.latency_s]), [
    ["s1", "asr", undefined],
    ["s1", "relay", 0.15],
    ["s2", "relay", 0.15],
    ["s2", "asr", 0.8],
  ]);
  deepEqual(published.map((m) => m.hop !== undefined), [
    false,
    true,
    true,
    true,
  ]);
  const text = await c!.metrics.text();
  ok(
    text.includes('audio_hop_latency_seconds_count{measurement="m",stage="asr",from_stage="relay"} 2'),
    text,
  );
  ok(!text.includes('stage="relay",from_stage'), "node-c holds no relay match");
  ok(
    (await b!.metrics.text()).includes(
      'audio_hop_latency_seconds_count{measurement="m",stage="relay",from_stage="source"} 2',
    ),
  );
  const om = await c!.metrics.openMetrics();
  ok(om.includes(`trace_id="${traceIdOf("m", "s2", "i1")}"`), om);
});

Deno.test("exporter: a match feed that cannot subscribe is retried in the background; matches flow meanwhile", async () => {
  // Only hops from other nodes need the feed: before, a subscribe failing at start crashed the exporter six
  // times in ~3 s and the sensor exited.
  const clock = new VirtualClock();
  const system = new ActorSystem({ clock });
  const logs = setLogSink(() => {});
  const bus = new InProcessBus();
  const records: MatchRecord[] = [];
  let attempts = 0;
  const real = inProcessMatchFeed(bus);
  const feed = {
    subscribe: (ms: readonly string[], h: (r: MatchRecord) => void) =>
      ++attempts < 4 ? Promise.reject(new Error("no JetStream yet")) : real.subscribe(ms, h),
  };
  const ref = system.spawn<ExporterMsg>(
    "exporter",
    exporter({
      metrics: new FsmMetrics({ rss: () => 0 }),
      bus,
      sinks: [{ match: (r) => void records.push(r) }],
      paths: PATHS,
      matchFeed: feed,
    }),
    { capacity: 16, overflow: "backpressure" },
  );
  await settleAll(clock, system);
  await ref.tell({ kind: "match", match: match("s1", "i1", "relay", T0, T0 + 150n * MS) });
  await settleAll(clock, system);
  equal(records.length, 1, "handled while the feed is down");
  for (let i = 0; i < 10 && attempts < 4; i++) await clock.advance(2_000);
  equal(attempts, 4);
  const stats = system.stats().find((s) => s.name === "exporter")!;
  equal(stats.restarts, 0);
  equal(stats.state, "running");
  await system.shutdown({ deadlineMs: 1000 });
  setLogSink(logs);
});
