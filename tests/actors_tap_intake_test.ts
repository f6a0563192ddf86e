/**
 * The tap intake on its own, with pipelines that record what they are given: how rows become messages (Pixie and
 * packet rows alike), stream keys per tap, idle streams, the stream cap, duplicate rows, sticky ids, excluded
 * source streams and decode counters. Event time only: nothing here waits.
 */
import { deepEqual, equal, notDeepEqual, ok } from "node:assert/strict";
import {
  type NewStream,
  sourceTap,
  stageTaps,
  type Tap,
  TapIntake,
  type TapPipeline,
} from "../actors/tap_intake.ts";
import type { TapRule } from "../actors/tap_message.ts";
import { StickyIds } from "../actors/sticky_ids.ts";
import type { DecodeDelta } from "../actors/messages.ts";
import type { MessageIn } from "../audio/pipeline.ts";
import { PayloadEnvelope } from "../audio/decode/payload.ts";
import { parseConfigText } from "../config/load.ts";
import type { Config } from "../config/schema.ts";
import type { Cell, Row } from "../pixie/row.ts";
import { CountingCounters, e2eConfig, sec } from "./support/actor_fixtures.ts";
import { ROOT } from "./support/sensor_process.ts";

const T0 = sec(1_763_900_000);
const utf8 = new TextEncoder();

/** A pipeline that keeps what it is given and answers with names of what it "completed". */
class RecordingPipeline implements TapPipeline<string> {
  readonly msgs: MessageIn[] = [];
  readonly ids: (Record<string, string> | undefined)[] = [];
  finished = 0;
  constructor(readonly opened: NewStream<TapRule>) {}
  push(msg: MessageIn, ids?: Record<string, string>): string[] {
    this.msgs.push(msg);
    this.ids.push(ids);
    return [`${this.opened.tap.name} ${this.opened.stream} #${this.msgs.length}`];
  }
  finish(): string[] {
    this.finished++;
    return [`${this.opened.tap.name} ${this.opened.stream} end`];
  }
  stats() {
    return { markers: {}, errors: { decoded_nothing: this.msgs.length } };
  }
}

function harness(
  taps: readonly Tap[],
  opts: { maxStreams?: number; groupStreams?: boolean; stickyIds?: StickyIds } = {},
) {
  const out: string[] = [];
  const deltas: DecodeDelta[] = [];
  const events: string[] = [];
  const pipes: RecordingPipeline[] = [];
  const closed: RecordingPipeline[] = [];
  const counters = new CountingCounters();
  const intake = new TapIntake({
    taps,
    idleNs: sec(60),
    maxStreams: opts.maxStreams,
    groupStreams: opts.groupStreams,
    stickyIds: opts.stickyIds,
    // Wide: the idle test steps a minute ahead at once (EventClock's outlier rule is tested on its own).
    clockWindowNs: sec(300),
    tickNs: sec(1),
    counters,
    open: (s) => {
      const p = new RecordingPipeline(s);
      pipes.push(p);
      events.push(`open ${s.tap.name} ${s.stream}`);
      return p;
    },
    emit: (o: string[]) => Promise.resolve(void out.push(...o)),
    report: (d) => Promise.resolve(void deltas.push(d)),
    opened: (tap, stream) => Promise.resolve(void events.push(`opened ${tap.name} ${stream}`)),
    closed: (p) => void closed.push(p),
  });
  const pipe = (tap: string, stream: string) =>
    pipes.filter((p) => p.opened.tap.name === tap && p.opened.stream === stream);
  return { intake, out, deltas, events, pipes, pipe, counters, closed };
}

/** A row of the e2e source tap (Twilio media on `pod`), `at` seconds after T0. */
function sourceRow(
  at: number,
  streamSid: string,
  extra: Record<string, string> = {},
  pod = "voice/telephony-0",
): Row {
  const body = { event: "media", media: { payload: "AAAA" }, streamSid, ...extra };
  return {
    query: "call_audio/source",
    node: "node-a",
    time: T0 + sec(at),
    columns: { time_: T0 + sec(at), pod, req_body: utf8.encode(JSON.stringify(body)) },
  };
}

/** A row of a stage tap keyed by pod, remote_addr and remote_port (the e2e relay's key). */
function relayRow(query: string, at: number, port: number, columns: Record<string, Cell> = {}): Row {
  return {
    query,
    node: "node-b",
    time: T0 + sec(at),
    columns: {
      time_: T0 + sec(at),
      pod: "media/relay-0",
      remote_addr: "10.0.0.7",
      remote_port: BigInt(port),
      req_body: utf8.encode(JSON.stringify({ payload: "AAAA" })),
      ...columns,
    },
  };
}

/** The decode errors reported for a tap, over every report. */
function errorsOf(deltas: readonly DecodeDelta[], tap: string): Record<string, number> {
  const sum: Record<string, number> = {};
  for (const d of deltas.filter((d) => d.tap === tap)) {
    for (const [k, n] of Object.entries(d.errors)) sum[k] = (sum[k] ?? 0) + n;
  }
  return sum;
}

async function pushAll(intake: { push(row: Row): Promise<void> }, rows: readonly Row[]) {
  for (const r of rows) await intake.push(r);
}

Deno.test("tap intake: a row is one message for its stream's pipeline, which its first row opens", async () => {
  const config = await e2eConfig();
  const h = harness([sourceTap(config.measurements[0]!)]);
  await pushAll(h.intake, [
    sourceRow(0, "MZ1"),
    sourceRow(0.02, "MZ2", {}, "voice/telephony-1"),
    sourceRow(0.04, "MZ1"),
  ]);
  equal(h.pipes.length, 2, "two streams (the stream key: pod and $.streamSid)");
  const [a, b] = h.pipes;
  equal(a!.opened.pod, "voice/telephony-0");
  equal(b!.opened.pod, "voice/telephony-1");
  equal(a!.opened.format.codec, "mulaw", "the rule's audio format");
  deepEqual(a!.msgs.map((m) => m.timeNs), [T0, T0 + sec(0.04)]);
  ok(
    a!.msgs[0]!.payload instanceof PayloadEnvelope,
    "the envelope read for the key is handed on, not parsed again",
  );
  deepEqual(h.out, [
    `source ${a!.opened.stream} #1`,
    `source ${b!.opened.stream} #1`,
    `source ${a!.opened.stream} #2`,
  ]);
  deepEqual(h.events, [
    `open source ${a!.opened.stream}`,
    `opened source ${a!.opened.stream}`,
    `open source ${b!.opened.stream}`,
    `opened source ${b!.opened.stream}`,
  ]);
});

Deno.test("tap intake: the same stream key on two taps is two streams", async () => {
  const config = await e2eConfig();
  const relay = stageTaps(config.measurements).find((t) => t.name === "relay")!;
  const twin: Tap = { ...relay, name: "relay_copy", query: "call_audio/relay_copy" };
  const h = harness([relay, twin]);
  await pushAll(h.intake, [
    relayRow(relay.query, 0, 5000),
    relayRow(twin.query, 0.01, 5000),
    relayRow(relay.query, 0.02, 5000),
  ]);
  equal(h.pipes.length, 2);
  equal(h.pipes[0]!.opened.stream, h.pipes[1]!.opened.stream, "one key");
  deepEqual(h.pipes.map((p) => [p.opened.tap.name, p.msgs.length]), [["relay", 2], ["relay_copy", 1]]);
  deepEqual([...h.intake.streams()].map((s) => s.tap.name), ["relay", "relay_copy"]);
});

Deno.test("tap intake: a row seen twice on a stream is skipped, counted under its tap's query", async () => {
  const config = await e2eConfig();
  const h = harness([sourceTap(config.measurements[0]!)]);
  const r = sourceRow(0, "MZ1");
  await pushAll(h.intake, [r, { ...r }, sourceRow(0.02, "MZ1")]);
  equal(h.pipes[0]!.msgs.length, 2);
  deepEqual([...h.counters.skipped], [["call_audio/source:duplicate", 1]]);
});

Deno.test("tap intake: a row's carried payload hash counts for the very cell it was computed on only", async () => {
  const config = await e2eConfig();
  const h = harness([sourceTap(config.measurements[0]!)]);
  const r = sourceRow(0, "MZ1");
  const payload = r.columns.req_body as Uint8Array;
  // A hash carried for another cell (equal bytes, other array) is not taken: the second row is the first again.
  const other = { ...r, hashedPayload: payload.slice(), payloadHash: 12345 };
  // The first row's own cell with a hash that is not its bytes': taken as given, so not the first row again.
  const own = { ...r, time: r.time, hashedPayload: payload, payloadHash: 12345 };
  await pushAll(h.intake, [r, other, own]);
  equal(h.pipes[0]!.msgs.length, 2);
  deepEqual([...h.counters.skipped], [["call_audio/source:duplicate", 1]]);
});

Deno.test("tap intake: a stream idle longer than idleNs ends at the next sweep (a step of event time over a tick)", async () => {
  const config = await e2eConfig();
  const h = harness([sourceTap(config.measurements[0]!)]);
  // Three rows before the event clock trusts them; MZ2 last fed at 2 s, MZ1 at 0.04 s.
  await pushAll(h.intake, [
    sourceRow(0, "MZ1"),
    sourceRow(0.02, "MZ1"),
    sourceRow(0.04, "MZ1"),
    sourceRow(2, "MZ2"),
  ]);
  equal(h.out.filter((o) => o.endsWith("end")).length, 0);
  await h.intake.push(sourceRow(61, "MZ3"));
  const [mz1, mz2] = h.pipes;
  equal(mz1!.finished, 1, "idle for 60.96 s: finished");
  equal(mz2!.finished, 0, "idle for 59 s: still followed");
  ok(h.out.includes(`source ${mz1!.opened.stream} end`), "what the finish completed is emitted");
  deepEqual([...h.intake.streams()].map((s) => s.pipeline), [mz2, h.pipes[2]]);
  deepEqual(h.closed, [mz1], "the Matcher is told (it searches only the streams still followed)");
  // Sweeps report the counters of every stream fed before them: MZ1's three rows and MZ2's one.
  deepEqual(errorsOf(h.deltas, "source"), { decoded_nothing: 4 });
  // The same key later is a new stream, with a new pipeline.
  await h.intake.push(sourceRow(61.02, "MZ1"));
  equal(h.pipes.length, 4);
});

Deno.test("tap intake: past maxStreams the least recently fed stream ends early once quiet, counted under its tap", async () => {
  const config = await e2eConfig();
  const h = harness([sourceTap(config.measurements[0]!)], { maxStreams: 2 });
  await pushAll(h.intake, [
    sourceRow(0, "A"),
    sourceRow(0.02, "B"),
    sourceRow(0.04, "A"),
    // A and B are active: C is not followed, its row counted.
    sourceRow(0.06, "C"),
    sourceRow(2.03, "A"),
    // B has been quiet for 2 s: C takes its place.
    sourceRow(2.06, "C"),
  ]);
  deepEqual(h.pipes.map((p) => p.finished), [0, 1, 0], "B was fed least recently");
  deepEqual([...h.counters.evicted], [["call_audio/source", 1]]);
  deepEqual([...h.counters.skipped].filter(([k]) => k.includes("stream_limit")).map(([, n]) => n), [1]);
  deepEqual([...h.intake.streams()].map((s) => s.pipeline), [h.pipes[0], h.pipes[2]], "creation order");
  deepEqual(h.closed, [h.pipes[1]], "an evicted stream is closed");
});

Deno.test("tap intake: a stage that fills maxStreams first leaves the other stage its share; counted per stage", async () => {
  const config = await e2eConfig();
  const relay = stageTaps(config.measurements).find((t) => t.name === "relay")!;
  const asr: Tap = { ...relay, name: "asr", query: "call_audio/asr" };
  const h = harness([relay, asr], { maxStreams: 4 });
  // Four calls, every 20 ms on both stages; the ASR carries each call 0.8 s after the relay (the live bench's).
  const rows: Row[] = [];
  for (let tick = 0; tick < 150; tick++) {
    for (let c = 0; c < 4; c++) rows.push(relayRow(relay.query, tick * 0.02, 5000 + c));
    if (tick >= 40) {
      for (let c = 0; c < 4; c++) rows.push(relayRow(asr.query, tick * 0.02 + 0.001, 5000 + c));
    }
  }
  await pushAll(h.intake, rows);
  deepEqual([...h.intake.streams()].map((s) => s.tap.name), ["relay", "relay", "asr", "asr"], "2 and 2");
  deepEqual(h.pipes.map((p) => [p.opened.tap.name, p.finished]), [
    ["relay", 1],
    ["relay", 1],
    ["relay", 0],
    ["relay", 0],
    ["asr", 0],
    ["asr", 0],
  ], "the relay's two least recently fed streams made room, once: they were not begun again");
  deepEqual([...h.counters.evicted], [["call_audio/relay", 2]]);
  deepEqual(Object.fromEntries(h.counters.skipped), {
    "call_audio/relay:stream_limit": 2 * 109,
    "call_audio/asr:stream_limit": 2 * 110,
  });
});

Deno.test("tap intake: context ids stick to their stream until it ends; other streams do not see them", async () => {
  const config = await e2eConfig();
  const h = harness([sourceTap(config.measurements[0]!)], { maxStreams: 2 });
  const id1 = "11111111-1111-1111-1111-111111111111";
  const id2 = "22222222-2222-2222-2222-222222222222";
  await pushAll(h.intake, [
    sourceRow(0, "A", { interval_id: id1 }),
    sourceRow(0.02, "A"),
    sourceRow(0.04, "B"),
    sourceRow(0.06, "A", { interval_id: id2 }),
    sourceRow(0.08, "A"),
  ]);
  const [a, b] = h.pipes;
  deepEqual(a!.ids, [{ interval_id: id1 }, { interval_id: id1 }, { interval_id: id2 }, { interval_id: id2 }]);
  deepEqual(b!.ids, [{}]);
  // A ends (evicted by C and D once quiet), then comes back: its ids went with it.
  await pushAll(h.intake, [sourceRow(2.1, "C"), sourceRow(4.2, "D"), sourceRow(6.3, "A")]);
  equal(a!.finished, 1);
  deepEqual(h.pipes.at(-1)!.ids, [{}]);
});

Deno.test("tap intake: a new intake on the same StickyIds (a restarted Detector) keeps the ids of the streams that come back, until they end", async () => {
  const config = await e2eConfig();
  const tap = sourceTap(config.measurements[0]!);
  const store = new StickyIds();
  const id = "11111111-1111-1111-1111-111111111111";
  const first = harness([tap], { stickyIds: store });
  await pushAll(first.intake, [
    sourceRow(0, "A", { interval_id: id }),
    sourceRow(0.02, "B", { interval_id: id }),
    sourceRow(0.04, "A"),
  ]);
  equal(store.size, 2);
  // The first intake is dropped mid-call (its owner crashed); the next one is built on the same store.
  const next = harness([tap], { stickyIds: store });
  await pushAll(next.intake, [sourceRow(0.06, "A"), sourceRow(0.08, "A"), sourceRow(0.1, "C")]);
  const [a, c] = next.pipes;
  deepEqual(a!.ids, [{ interval_id: id }, { interval_id: id }], "A's ids, sent once");
  deepEqual(c!.ids, [{}], "not another stream's");
  // B never comes back: its ids end a stream's idle time after the new intake's first sweep, as B would have.
  await pushAll(next.intake, [sourceRow(30, "A"), sourceRow(60.05, "A")]);
  equal(store.size, 2, "A's, and B's until its idle time is up");
  await pushAll(next.intake, [sourceRow(61.1, "A")]);
  equal(store.size, 1, "A's only");
  // A ends (idle): its ids go with it.
  await pushAll(next.intake, [sourceRow(125, "C")]);
  equal(a!.finished, 1);
  equal(store.size, 0);
});

Deno.test("tap intake: a source tap without id patterns hands its pipeline no ids (no empty set made per row)", async () => {
  const config = await e2eConfig();
  const m = config.measurements[0]!;
  const h = harness([sourceTap({ ...m, metadata_extraction: { id_patterns: [] } })]);
  await pushAll(h.intake, [sourceRow(0, "A", { interval_id: "11111111-1111-1111-1111-111111111111" })]);
  await pushAll(h.intake, [sourceRow(0.02, "A")]);
  deepEqual(h.pipes[0]!.ids, [undefined, undefined]);
});

Deno.test("tap intake: a source stream is dropped and skipped by taps that exclude source streams, only by them", async () => {
  const config = await e2eConfig();
  const relay = stageTaps(config.measurements).find((t) => t.name === "relay")!;
  const loop: Tap = {
    ...relay,
    name: "loop",
    query: "call_audio/loop",
    rule: { ...relay.rule, exclude_source_streams: true },
  };
  const h = harness([relay, loop]);
  await pushAll(h.intake, [
    relayRow(relay.query, 0, 5000),
    relayRow(loop.query, 0.01, 5000),
    relayRow(loop.query, 0.02, 6000),
  ]);
  const key = h.pipes[0]!.opened.stream;
  h.intake.excludeSourceStream("other_measurement", key);
  equal([...h.intake.streams()].length, 3, "another measurement's source stream changes nothing");
  h.intake.excludeSourceStream("call_audio", key);
  deepEqual([...h.intake.streams()].map((s) => `${s.tap.name} ${s.stream === key}`), [
    "relay true",
    "loop false",
  ]);
  equal(h.pipes[1]!.finished, 0, "dropped, not finished: it is not the stage's audio");
  deepEqual(h.closed, [h.pipes[1]], "but closed");
  await pushAll(h.intake, [relayRow(loop.query, 0.03, 5000), relayRow(relay.query, 0.04, 5000)]);
  equal(h.pipes.length, 3, "no new loop stream for the source's key");
  equal(h.pipes[0]!.msgs.length, 2, "the relay tap still follows it");
  // The dropped stream's counters are still reported.
  await h.intake.finish();
  deepEqual(errorsOf(h.deltas, "loop"), { decoded_nothing: 2 });
});

Deno.test("tap intake: rows of other queries are counted and skipped; rows without audio are decode errors of their tap", async () => {
  const config = await e2eConfig();
  const h = harness([sourceTap(config.measurements[0]!)]);
  const noPayload = sourceRow(0.02, "A");
  await pushAll(h.intake, [
    { ...sourceRow(0, "A"), query: "call_audio/asr" },
    { ...noPayload, columns: { time_: noPayload.time, pod: "voice/telephony-0" } },
    sourceRow(0.04, "A"),
  ]);
  equal(h.pipes.length, 1);
  deepEqual([...h.counters.skipped], [["(other):unknown_stage", 1]]);
  await h.intake.finish();
  equal(h.pipes[0]!.finished, 1);
  deepEqual([...h.intake.streams()].length, 1, "a finish ends the input, the streams stay (late signatures)");
  ok(
    h.deltas.every((d) =>
      d.measurement === "call_audio" && d.tap === "source" && d.query === "call_audio/source"
    ),
  );
  deepEqual(errorsOf(h.deltas, "source"), { missing_payload_column: 1, decoded_nothing: 1 });
});

Deno.test("tap intake: packet rows take the same path; RTP's payload type and timestamp shape the stream and message", async () => {
  const config: Config = parseConfigText(
    await Deno.readTextFile(`${ROOT}fixtures/demo_packets/config.yaml`),
    "demo_packets.yaml",
    {},
  ).config;
  const rtp = config.measurements.find((m) => m.name === "rtp_call")!;
  const ws = config.measurements.find((m) => m.name === "ws_call")!;
  const h = harness([sourceTap(rtp), ...stageTaps([ws])]);
  const rtpRow = (at: number, ts: number): Row => ({
    query: "rtp_call/source",
    node: "node-rtp",
    time: T0 + sec(at),
    columns: {
      time_: T0 + sec(at),
      pod: "10.0.0.5:24000",
      payload: new Uint8Array(160),
      stream: "udp 10.0.0.4:5000>10.0.0.5:24000 ssrc=0x1",
      rtp_pt: 8n,
      rtp_ts: BigInt(ts),
      rtp_codec: "PCMA/8000",
    },
  });
  const wsRow = (at: number, text: boolean): Row => ({
    query: "ws_call/asr",
    node: "node-ws",
    time: T0 + sec(at),
    columns: {
      time_: T0 + sec(at),
      pod: "10.0.0.9:28090",
      payload: utf8.encode(text ? '{"event":"mark"}' : "\u0000\u0001"),
      stream: "tcp 10.0.0.8:41000>10.0.0.9:28090",
      ws_text: text,
    },
  });
  await pushAll(h.intake, [rtpRow(0, 1000), rtpRow(0.02, 1160), wsRow(0.03, false), wsRow(0.04, true)]);
  const [r, w] = h.pipes;
  equal(r!.opened.stream, "udp 10.0.0.4:5000>10.0.0.5:24000 ssrc=0x1");
  equal(r!.opened.pod, "10.0.0.5:24000", "the packet rows' pod column");
  equal(r!.opened.format.codec, "alaw", "from the payload type, not the rule's audio section");
  deepEqual(r!.msgs.map((m) => m.mediaClock), [{ ts: 1000, clockRate: 8000 }, { ts: 1160, clockRate: 8000 }]);
  deepEqual(r!.msgs[0]!.codec, { codec: "alaw", sampleRate: 8000, channels: 1 });
  equal(w!.msgs.length, 1, "the text frame on the binary tap is not decoded");
  await h.intake.finish();
  deepEqual(errorsOf(h.deltas, "asr"), { not_audio: 1, decoded_nothing: 1 });
});

Deno.test("tap intake: under continuous traffic a sweep still runs every tick, so an idle stream ends", async () => {
  const config = await e2eConfig();
  const h = harness([sourceTap(config.measurements[0]!)]);
  // MZ1 speaks for 0.1 s then stops; MZ2 sends a message every 20 ms for 62 s: no step of event time between two
  // rows is ever longer than a tick, yet MZ1 is idle for more than idleNs (60 s) long before the end.
  const rows = [sourceRow(0, "MZ1"), sourceRow(0.02, "MZ1"), sourceRow(0.04, "MZ1")];
  for (let i = 0; i <= 3100; i++) rows.push(sourceRow(0.06 + i * 0.02, "MZ2"));
  await pushAll(h.intake, rows);
  const [mz1, mz2] = h.pipes;
  equal(mz1!.finished, 1, "MZ1, idle for a minute among MZ2's rows: finished");
  equal(mz2!.finished, 0);
  // Counters are reported while traffic flows, not only after a pause: once per tick.
  ok(h.deltas.length >= 60, `reports: ${h.deltas.length}`);
});

Deno.test("tap intake: a batch whose rows open no stream and complete nothing is taken without a promise", async () => {
  const config = await e2eConfig();
  const got: MessageIn[] = [];
  let emitted = 0;
  const intake = new TapIntake({
    taps: [sourceTap(config.measurements[0]!)],
    idleNs: sec(60),
    clockWindowNs: sec(300),
    tickNs: sec(1),
    open: () => ({
      push: (msg: MessageIn) => {
        got.push(msg);
        return msg.timeNs === T0 + sec(0.1) ? ["done"] : [];
      },
      finish: () => [],
      stats: () => ({ markers: {}, errors: {} }),
    }),
    emit: (o: string[]) => Promise.resolve(void (emitted += o.length)),
    report: () => Promise.resolve(),
    opened: () => Promise.resolve(),
  });
  // The first rows open the stream and sweep (the first sweep is due once the event clock has three rows).
  const first = intake.pushAll([sourceRow(0, "MZ1")]);
  ok(first instanceof Promise);
  await first;
  await intake.pushAll([sourceRow(0.02, "MZ1"), sourceRow(0.04, "MZ1")]);
  // Rows of a known stream within the tick: nothing to wait for, no promise per row or batch.
  equal(intake.pushAll([sourceRow(0.06, "MZ1"), sourceRow(0.08, "MZ1")]), undefined);
  // A row whose message completes something: the rest of the batch waits for its emit, in order.
  const p = intake.pushAll([sourceRow(0.1, "MZ1"), sourceRow(0.12, "MZ1")]);
  ok(p instanceof Promise);
  await p;
  equal(emitted, 1);
  deepEqual(got.map((m) => Number((m.timeNs - T0) / 1_000_000n)), [0, 20, 40, 60, 80, 100, 120]);
});

/** `h.out` with each stream key shortened to its `$.streamSid` (the rows below are all on one pod). */
function bySid(h: { out: string[]; pipes: RecordingPipeline[] }): string[] {
  const sids = new Map(
    h.pipes.map((p) => [p.opened.stream, /MZ\w+|[A-Z]\b/.exec(p.opened.stream)?.[0] ?? "?"]),
  );
  return h.out.map((o) =>
    o.replace(/^(\S+) (.+?) (#\d+|end)$/, (_, tap, key, what) => `${tap} ${sids.get(key)} ${what}`)
  );
}

Deno.test("tap intake, grouped: a batch's rows reach the pipelines stream by stream, each stream's in order", async () => {
  const config = await e2eConfig();
  const tap = sourceTap(config.measurements[0]!);
  // The clock moves from the third row on: a first batch starts it, so no sweep falls inside the second.
  const start = [sourceRow(-0.3, "MZC"), sourceRow(-0.2, "MZC"), sourceRow(-0.1, "MZC")];
  const batch = [0, 0.02, 0.04].flatMap((t) =>
    ["MZA", "MZB", "MZC"].map((s, i) => sourceRow(t + i * 0.001, s))
  );
  const grouped = harness([tap], { groupStreams: true });
  const inOrder = harness([tap]);
  for (const h of [grouped, inOrder]) {
    await h.intake.pushAll(start);
    h.out.length = 0;
    await h.intake.pushAll(batch);
  }
  deepEqual(bySid(grouped), [
    "source MZA #1",
    "source MZA #2",
    "source MZA #3",
    "source MZB #1",
    "source MZB #2",
    "source MZB #3",
    "source MZC #4",
    "source MZC #5",
    "source MZC #6",
  ]);
  deepEqual(
    bySid(inOrder).slice(0, 3),
    ["source MZA #1", "source MZB #1", "source MZC #4"],
    "off: the batch's order",
  );
  deepEqual(
    grouped.pipes.map((p) => p.msgs.map((m) => m.timeNs)),
    inOrder.pipes.map((p) => p.msgs.map((m) => m.timeNs)),
    "every stream gets the same messages in the same order",
  );
});

Deno.test("tap intake, grouped: a sweep due inside a batch runs after the rows before it, before those after it", async () => {
  const config = await e2eConfig();
  const h = harness([sourceTap(config.measurements[0]!)], { groupStreams: true });
  await h.intake.pushAll([sourceRow(-0.3, "MZC"), sourceRow(-0.2, "MZC"), sourceRow(-0.1, "MZC")]);
  h.out.length = 0;
  const deltasBefore = h.deltas.length;
  // Sweeps fall due at 30 s (nothing idle) and at 60.5 s, when MZC, last fed at -0.1 s, has been idle over 60 s.
  await h.intake.pushAll([
    sourceRow(30, "MZA"),
    sourceRow(30.01, "MZB"),
    sourceRow(30.02, "MZA"),
    sourceRow(30.03, "MZB"),
    sourceRow(60.5, "MZA"),
    sourceRow(60.6, "MZC"),
    sourceRow(60.7, "MZA"),
    sourceRow(60.8, "MZB"),
  ]);
  deepEqual(bySid(h), [
    "source MZA #1",
    "source MZA #2",
    "source MZB #1",
    "source MZB #2",
    "source MZC end",
    "source MZA #3",
    "source MZA #4",
    "source MZC #1",
    "source MZB #3",
  ]);
  equal(h.closed.length, 1, "the idle stream ended at the sweep its event time called for");
  equal(h.pipe("source", h.closed[0]!.opened.stream).length, 2, "and its later row began it again");
  ok(h.deltas.length > deltasBefore, "counters reported at the sweeps");
});

Deno.test("tap intake, grouped: the same rows skipped and counted, the same records, in another order", async () => {
  const config = await e2eConfig();
  const tap = sourceTap(config.measurements[0]!);
  const noPayload = sourceRow(0.05, "MZB");
  const rows = [
    sourceRow(-0.3, "MZC"),
    sourceRow(-0.2, "MZC"),
    sourceRow(0, "MZA"),
    sourceRow(0.01, "MZB"),
    { ...sourceRow(0.02, "MZA"), query: "call_audio/asr" },
    sourceRow(0, "MZA"),
    { ...noPayload, columns: { time_: noPayload.time, pod: "voice/telephony-0" } },
    sourceRow(0.03, "MZA"),
    sourceRow(0.04, "MZC"),
    sourceRow(0.06, "MZB"),
    sourceRow(0.01, "MZB"),
    sourceRow(1.5, "MZC"),
    sourceRow(1.51, "MZA"),
    sourceRow(1.52, "MZD"),
    sourceRow(1.53, "MZC"),
  ];
  const grouped = harness([tap], { groupStreams: true, maxStreams: 3 });
  const inOrder = harness([tap], { maxStreams: 3 });
  for (const h of [grouped, inOrder]) {
    await h.intake.pushAll(rows);
    await h.intake.finish();
  }
  notDeepEqual(grouped.out, inOrder.out, "another order");
  deepEqual(grouped.out.toSorted(), inOrder.out.toSorted());
  deepEqual([...grouped.counters.skipped].sort(), [...inOrder.counters.skipped].sort());
  deepEqual(grouped.counters.skipped.get("call_audio/source:duplicate"), 2);
  deepEqual(
    grouped.counters.skipped.get("call_audio/source:stream_limit"),
    1,
    "MZD: three streams, none quiet",
  );
  deepEqual(errorsOf(grouped.deltas, "source"), errorsOf(inOrder.deltas, "source"));
  deepEqual(errorsOf(grouped.deltas, "source").missing_payload_column, 1);
});

Deno.test("tap intake: ids in a text message of a binary-audio source connection stick to the audio that follows", async () => {
  // A Vonage-style connection says which call it carries in a first text message, then sends binary audio: the
  // text message is not audio, but its ids are the call's (they used to be dropped with it).
  const config: Config = parseConfigText(
    `
measurements:
  - name: ws_call
    signature_rules:
      packets: { protocol: websocket, port: 28080 }
      audio: { envelope: raw, encoding: binary, codec: pcm16le, sample_rate: 16000 }
    match_rules:
      - stage: asr
        packets: { protocol: websocket, port: 28090 }
    metadata_extraction:
      id_patterns:
        - pattern: '"callSid":"(CA[0-9a-f]+)"'
          id_type: call_sid
`,
    "vonage.yaml",
    {},
  ).config;
  const row = (at: number, stream: string, text?: string): Row => ({
    query: "ws_call/source",
    node: "node-ws",
    time: T0 + sec(at),
    columns: {
      time_: T0 + sec(at),
      pod: "10.0.0.9:28080",
      payload: text === undefined ? new Uint8Array(640) : utf8.encode(text),
      stream,
      ws_text: text !== undefined,
    },
  });
  const A = "tcp 10.0.0.8:41000>10.0.0.9:28080", B = "tcp 10.0.0.8:41002>10.0.0.9:28080";
  for (const groupStreams of [false, true]) {
    const h = harness([sourceTap(config.measurements[0]!)], { groupStreams });
    await pushAll(h.intake, [
      row(0, A, '{"event":"websocket:connected","callSid":"CA01"}'),
      row(0.02, A),
      row(0.03, B), // another connection: not A's ids
      row(0.04, A, '{"event":"mark"}'), // a text message without ids changes nothing
      row(0.06, A),
      row(0.07, B, '{"event":"update","callSid":"CA02"}'), // B learns its ids after its first audio
      row(0.08, B),
    ]);
    await h.intake.finish();
    deepEqual(
      h.pipe("source", A)[0]!.ids,
      [{ call_sid: "CA01" }, { call_sid: "CA01" }],
      `grouped: ${groupStreams}`,
    );
    deepEqual(h.pipe("source", B)[0]!.ids, [{}, { call_sid: "CA02" }], `grouped: ${groupStreams}`);
    equal(h.pipe("source", A)[0]!.msgs.length, 2, "text messages are not decoded");
    deepEqual(errorsOf(h.deltas, "source"), { not_audio: 3, decoded_nothing: 4 });
  }
});

Deno.test("tap intake: ids of a text message whose connection never sends audio end like any unclaimed ids", () => {
  const store = new StickyIds();
  store.note("m/source", "A", { call_sid: "CA01" });
  store.note("m/source", "A", { leg: "1" });
  equal(store.size, 1);
  store.sweep(T0, sec(60));
  store.sweep(T0 + sec(59), sec(60));
  equal(store.size, 1, "kept while the stream may still open");
  deepEqual(store.claim("m/source", "A")?.ids, { call_sid: "CA01", leg: "1" });
  store.note("m/source", "B", { call_sid: "CA02" });
  store.sweep(T0 + sec(60), sec(60));
  store.sweep(T0 + sec(121), sec(60));
  equal(
    store.size,
    1,
    "B's ids ended a stream's idle time after the sweep that found them; A's stream holds its own",
  );
});
