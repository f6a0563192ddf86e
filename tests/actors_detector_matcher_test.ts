/**
 * The Detector and the Matcher as actors on the virtual clock, with recording neighbours, on the e2e captures:
 * what each one sends where (their intake is tested in actors_tap_intake_test.ts).
 */
import { deepEqual, equal, ok } from "node:assert/strict";
import { type ActorFactory, ActorSystem } from "../actors/runtime.ts";
import { VirtualClock } from "../actors/clock.ts";
import type { DetectorMsg, ExporterMsg, MatcherMsg } from "../actors/messages.ts";
import { detector } from "../actors/detector.ts";
import { matcher } from "../actors/matcher.ts";
import type { Bus } from "../bus/bus.ts";
import { encodeSignature } from "../audio/fingerprint/signature.ts";
import { initAudioEngine } from "../audio/pipeline.ts";
import type { Signature } from "../audio/types.ts";
import { setLogSink } from "../util/log.ts";
import { openWebRtcVads } from "../audio/detect/vad.ts";
import type { Config } from "../config/schema.ts";
import type { Row } from "../pixie/row.ts";
import { e2eConfig, e2eRows, recorder, sec, settleAll } from "./support/actor_fixtures.ts";

setLogSink(() => {});

/** A bus that keeps what is published on it. */
function recordingBus(into: { sig: Signature; encoded?: Uint8Array }[]): Bus {
  const done = Promise.resolve();
  return {
    publishSignature: (sig, encoded) => {
      into.push({ sig, encoded });
      return done;
    },
    publishMatch: () => done,
    subscribeSignatures: () => Promise.resolve({ unsubscribe: () => done }),
    flush: () => done,
    close: () => done,
  };
}

const OPTS = { capacity: 100_000, overflow: "backpressure" } as const;

/**
 * The Detector of node-a's source rows (or `opts.rows` under `opts.config`), run to the end; what it sent. With
 * `opts.crashAt`, its behaviour throws once on that row (before taking it): a crash its supervisor restarts from.
 */
async function runDetector(opts: { config?: Config; rows?: Row[]; crashAt?: Row } = {}) {
  await initAudioEngine();
  const config = opts.config ?? await e2eConfig();
  const clock = new VirtualClock();
  const system = new ActorSystem({ clock });
  const toMatcher: MatcherMsg[] = [];
  const toExporter: ExporterMsg[] = [];
  const published: { sig: Signature; encoded?: Uint8Array }[] = [];
  let publishedBeforeCrash: number | undefined;
  const factory = detector({
    measurement: config.measurements[0]!,
    node: "node-a",
    bus: recordingBus(published),
    matcher: system.spawn("matcher", recorder(toMatcher), OPTS),
    exporter: system.spawn("exporter", recorder(toExporter), OPTS),
    idleNs: sec(60),
    tickNs: sec(1),
    clockWindowNs: sec(30),
  });
  const crashing: ActorFactory<DetectorMsg> = (ctx) => {
    const b = factory(ctx);
    return {
      receive(msg, c) {
        if (msg.kind === "row" && msg.row === opts.crashAt && publishedBeforeCrash === undefined) {
          publishedBeforeCrash = published.length;
          throw new Error("injected detector crash");
        }
        return b.receive(msg, c);
      },
    };
  };
  const d = system.spawn("detector", crashing, { ...OPTS, restart: { backoffInitialMs: 0 } });
  const stats = () => system.stats().find((s) => s.name === "detector")!;
  const rows = opts.rows ?? await e2eRows("node-a");
  await d.tell({ kind: "rows", rows: rows.slice(0, 100) });
  for (const row of rows.slice(100)) {
    await d.tell({ kind: "row", row });
    // The supervisor's restart is a timer on the virtual clock: moved on until the Detector is back.
    while (row === opts.crashAt && stats().restarts < 1) await clock.advance(1);
  }
  await d.ask((reply): DetectorMsg => ({ kind: "finish", reply }), 60_000);
  const restarts = stats().restarts;
  await system.shutdown({ deadlineMs: 1000 });
  return { rows, toMatcher, toExporter, published, publishedBeforeCrash, restarts };
}

Deno.test("detector: each new source stream is announced to the Matcher once; each signature encoded once for both the record and the bus", async () => {
  const r = await runDetector();
  const streams = new Set(r.rows.map((row) => `${row.columns["pod"]}`));
  const announced = r.toMatcher.flatMap((m) => m.kind === "source-stream" ? [m.stream] : []);
  equal(announced.length, new Set(announced).size, "once each");
  ok(announced.length >= streams.size, `${announced.length} source streams (pods: ${streams.size})`);
  const sigMsgs = r.toExporter.flatMap((m) => m.kind === "signature" ? [m] : []);
  ok(sigMsgs.length >= 10);
  deepEqual(r.published.map((p) => p.sig), sigMsgs.map((m) => m.sig), "the same signatures, in order");
  for (let i = 0; i < sigMsgs.length; i++) {
    const encoded = r.published[i]!.encoded;
    ok(encoded, "the bus is handed the bytes (it does not encode again)");
    equal(sigMsgs[i]!.bytes, encoded.length, "the record's size is the size on the wire");
    deepEqual(encoded, encodeSignature(sigMsgs[i]!.sig));
  }
});

Deno.test("detector: after a crash and restart, a call's later signatures still carry the ids its start event sent once", async () => {
  const config = await e2eConfig((doc) => {
    const m = (doc["measurements"] as Record<string, unknown>[])[0]!;
    m["metadata_extraction"] = {
      id_patterns: [{ pattern: 'callSid":"(CA[0-9a-f]{32})', id_type: "call_sid" }],
    };
  });
  // Twilio: a `start` event with the call's ids before each stream's first media message, and never again.
  const utf8 = new TextEncoder(), text = new TextDecoder();
  const callSid = (streamSid: string) => `CA${streamSid.slice(2, 34).padEnd(32, "0")}`;
  const rows: Row[] = [];
  const started = new Set<string>();
  for (const row of await e2eRows("node-a")) {
    const body = JSON.parse(text.decode(row.columns["req_body"] as Uint8Array));
    const streamSid = String(body.streamSid);
    if (!started.has(streamSid)) {
      started.add(streamSid);
      const start = { event: "start", start: { streamSid, callSid: callSid(streamSid) }, streamSid };
      const t = row.time - 1_000_000n;
      rows.push({
        ...row,
        time: t,
        columns: { ...row.columns, time_: t, req_body: utf8.encode(JSON.stringify(start)) },
      });
    }
    rows.push(row);
  }
  ok(started.size >= 1);
  const r = await runDetector({ config, rows, crashAt: rows[rows.length >> 1] });
  equal(r.restarts, 1);
  const after = r.published.slice(r.publishedBeforeCrash);
  ok(
    r.publishedBeforeCrash! >= 3 && after.length >= 3,
    `${r.publishedBeforeCrash} signatures before the crash, ${after.length} after`,
  );
  for (const { sig } of r.published) {
    const streamSid = /MZ[0-9a-f]{32}/.exec(sig.source.stream)![0];
    deepEqual(sig.ids, { call_sid: callSid(streamSid) }, `${sig.id} at ${sig.source.timeNs}`);
  }
});

Deno.test("detector: a crash frees the WebRTC VADs of the streams it abandons (vad_mode webrtc)", async () => {
  await initAudioEngine({ webrtcVad: true });
  const config = await e2eConfig((doc) => {
    const m = (doc["measurements"] as Record<string, unknown>[])[0]!;
    const rules = m["signature_rules"] as Record<string, unknown>;
    rules["audio_criteria"] = { ...(rules["audio_criteria"] as object), vad_mode: "webrtc" };
  });
  const clock = new VirtualClock();
  const system = new ActorSystem({ clock });
  const factory = detector({
    measurement: config.measurements[0]!,
    node: "node-a",
    bus: recordingBus([]),
    matcher: system.spawn("matcher", recorder<MatcherMsg>([]), OPTS),
    exporter: system.spawn("exporter", recorder<ExporterMsg>([]), OPTS),
    idleNs: sec(60),
    tickNs: sec(1),
    clockWindowNs: sec(30),
  });
  // A poison message: the Detector's own behaviour, onStop included, around a receive that throws on it.
  const poison: DetectorMsg = { kind: "rows", rows: [] };
  const crashing: ActorFactory<DetectorMsg> = (ctx) => {
    const b = factory(ctx);
    return {
      onStop: b.onStop?.bind(b),
      receive: (msg, c) => {
        if (msg === poison) throw new Error("injected detector crash");
        return b.receive(msg, c);
      },
    };
  };
  const d = system.spawn("detector", crashing, { ...OPTS, restart: { backoffInitialMs: 0 } });
  const before = openWebRtcVads();
  const rows = await e2eRows("node-a");
  const streams = new Set(rows.map((row) => `${row.columns["pod"]}`)).size;
  await d.tell({ kind: "rows", rows });
  await settleAll(clock, system);
  ok(openWebRtcVads() - before >= streams, `${openWebRtcVads() - before} VADs open for ${streams} streams`);
  await d.tell(poison);
  await settleAll(clock, system);
  await clock.advance(1);
  equal(system.stats().find((s) => s.name === "detector")!.restarts, 1);
  equal(openWebRtcVads() - before, 0, "the restarted Detector follows no stream yet: none left open");
  await system.shutdown({ deadlineMs: 1000 });
});

Deno.test("matcher: a signature activated after its target audio is found in it (backward), audio after it too (forward)", async () => {
  const d = await runDetector();
  const config = await e2eConfig();
  const system = new ActorSystem({ clock: new VirtualClock() });
  const toExporter: ExporterMsg[] = [];
  const m = system.spawn(
    "matcher",
    matcher({
      config,
      node: "node-b",
      exporter: system.spawn("exporter", recorder(toExporter), OPTS),
      idleNs: sec(60),
      tickNs: sec(1),
    }),
    OPTS,
  );
  const rows = await e2eRows("node-b");
  const half = rows.length >> 1;
  const cut = rows[half]!.time;
  // Half the target audio first, then every signature, then the rest.
  await m.tell({ kind: "rows", rows: rows.slice(0, half) });
  for (const { sig } of d.published) await m.tell({ kind: "activate", sig });
  for (const row of rows.slice(half)) await m.tell({ kind: "row", row });
  await m.ask((reply): MatcherMsg => ({ kind: "finish", reply }), 60_000);
  await system.shutdown({ deadlineMs: 1000 });
  const matches = toExporter.flatMap((x) => x.kind === "match" ? [x.match] : []);
  ok(matches.every((x) => x.stage === "relay" && x.target.node === "node-b"));
  const before = matches.filter((x) => x.target.timeNs < cut).length;
  const after = matches.length - before;
  ok(before >= 3 && after >= 3, `${before} matches in audio before the signatures came, ${after} after`);
});
