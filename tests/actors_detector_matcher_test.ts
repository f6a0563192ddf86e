/**
 * The Detector and the Matcher as actors on the virtual clock, with recording neighbours, on the e2e captures:
 * what each one sends where (their intake is tested in actors_tap_intake_test.ts).
 */
import { deepEqual, equal, ok } from "node:assert/strict";
import { ActorSystem } from "../actors/runtime.ts";
import { VirtualClock } from "../actors/clock.ts";
import type { DetectorMsg, ExporterMsg, MatcherMsg } from "../actors/messages.ts";
import { detector } from "../actors/detector.ts";
import { matcher } from "../actors/matcher.ts";
import type { Bus } from "../bus/bus.ts";
import { encodeSignature } from "../audio/fingerprint/signature.ts";
import { initAudioEngine } from "../audio/pipeline.ts";
import type { Signature } from "../audio/types.ts";
import { setLogSink } from "../util/log.ts";
import { e2eConfig, e2eRows, recorder, sec } from "./support/actor_fixtures.ts";

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

/** The Detector of node-a's source rows, run to the end; what it sent. */
async function runDetector() {
  await initAudioEngine();
  const config = await e2eConfig();
  const system = new ActorSystem({ clock: new VirtualClock() });
  const toMatcher: MatcherMsg[] = [];
  const toExporter: ExporterMsg[] = [];
  const published: { sig: Signature; encoded?: Uint8Array }[] = [];
  const d = system.spawn(
    "detector",
    detector({
      measurement: config.measurements[0]!,
      node: "node-a",
      bus: recordingBus(published),
      matcher: system.spawn("matcher", recorder(toMatcher), OPTS),
      exporter: system.spawn("exporter", recorder(toExporter), OPTS),
      idleNs: sec(60),
      tickNs: sec(1),
      clockWindowNs: sec(30),
    }),
    OPTS,
  );
  const rows = await e2eRows("node-a");
  await d.tell({ kind: "rows", rows: rows.slice(0, 100) });
  for (const row of rows.slice(100)) await d.tell({ kind: "row", row });
  await d.ask((reply): DetectorMsg => ({ kind: "finish", reply }), 60_000);
  await system.shutdown({ deadlineMs: 1000 });
  return { rows, toMatcher, toExporter, published };
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
