/**
 * A live node whose target rows stop while its source rows go on (an ASR used by some calls only, next to a
 * source that keeps talking): the Matcher's held matches (audio/match/repeats.ts) must still be released as the
 * node's event time goes on. Quiet ticks do not come (rows move the clock), so the reader's own ticks tell it.
 */
import { ok } from "node:assert/strict";
import { type ActorRef, ActorSystem } from "../actors/runtime.ts";
import { VirtualClock } from "../actors/clock.ts";
import type { DetectorMsg, ExporterMsg, MatcherMsg, ReaderMsg, RegistryMsg } from "../actors/messages.ts";
import { matcher } from "../actors/matcher.ts";
import { pixieReader, type RowSource } from "../actors/pixie_reader.ts";
import { initAudioEngine } from "../audio/pipeline.ts";
import type { Row } from "../pixie/row.ts";
import { setLogSink } from "../util/log.ts";
import { e2eSignatures } from "./support/e2e_signatures.ts";
import { e2eConfig, e2eRows, recorder, sec, settleAll } from "./support/actor_fixtures.ts";

setLogSink(() => {});

const OPTS = { capacity: 100_000, overflow: "backpressure" } as const;

/**
 * Runs a live reader over `all` (then its source stays open, as a live one does) until every row is handed on and
 * the system settles; the virtual clock does not move, as on a node whose rows keep event time moving: no quiet
 * tick comes.
 */
async function readLive(
  clock: VirtualClock,
  system: ActorSystem,
  all: readonly Row[],
  to: { detector: ActorRef<DetectorMsg>; matcher: ActorRef<MatcherMsg> },
): Promise<void> {
  let delivered!: () => void;
  const allDelivered = new Promise<void>((r) => delivered = r);
  const rows: RowSource = {
    async run(emit, signal) {
      for (const r of all) await emit(r);
      delivered();
      await new Promise<void>((r) => signal.addEventListener("abort", () => r()));
    },
  };
  system.spawn<ReaderMsg>(
    "pixie_reader",
    pixieReader({
      detectors: new Map([["call_audio", to.detector]]),
      matcher: to.matcher,
      registry: system.spawn<RegistryMsg>("registry", recorder([]), OPTS),
      exporter: system.spawn<ExporterMsg>("exporter-r", recorder([]), OPTS),
      source: rows,
      queries: new Set(["call_audio/source", "call_audio/relay"]),
      clockWindowNs: sec(30),
      tickNs: sec(1),
      quietTickMs: 1000,
    }),
    OPTS,
  );
  await allDelivered;
  await settleAll(clock, system);
}

Deno.test("s31 matcher: on a live node whose target rows stopped and source rows go on, held matches are released", async () => {
  await initAudioEngine();
  const config = await e2eConfig();
  const sigs = await e2eSignatures();
  // The relay's rows stop 3 s after its last match's instant: found (its block is there), not yet due.
  const whole = await e2eRows("node-b");
  const cut = whole.at(-1)!.time - 2_600_000_000n;
  const relay = whole.filter((r) => r.time <= cut);
  const last = relay.at(-1)!.time;
  // A minute of this node's source rows after its last target row (their content is the Detector's business).
  const source: Row[] = Array.from({ length: 3000 }, (_, i) => ({
    query: "call_audio/source",
    node: "node-b",
    time: last + BigInt(i + 1) * 20_000_000n,
    columns: {},
  }));
  const clock = new VirtualClock();
  const system = new ActorSystem({ clock });
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
  for (const sig of sigs) await m.tell({ kind: "activate", sig });
  await readLive(clock, system, [...relay, ...source], {
    detector: system.spawn<DetectorMsg>("detector", recorder([]), OPTS),
    matcher: m,
  });
  const matches = toExporter.flatMap((x) => x.kind === "match" ? [x.match] : []);
  // A minute after the last target row, none may be held: what the finish releases was still held.
  const finished = await m.ask((reply): MatcherMsg => ({ kind: "finish", reply }), 60_000);
  ok(finished);
  await settleAll(clock, system);
  const all = toExporter.flatMap((x) => x.kind === "match" ? [x.match] : []);
  await system.shutdown({ deadlineMs: 1000 });
  const tail = all.filter((x) => x.target.timeNs > last - sec(5));
  ok(tail.length > 0, "a match in the relay's last 5 s");
  ok(
    all.length === matches.length,
    `${
      all.length - matches.length
    } of ${all.length} matches were still held a minute after the last target row`,
  );
});

Deno.test("s31 reader: on a live node whose source rows stopped and target rows go on, the Detectors are told the time", async () => {
  // Without it a call's source stream that ended was finished (its last signature made) only at the next source
  // row: on a node whose other calls' target rows keep event time moving, no quiet tick comes.
  const source = (await e2eRows("node-a")).slice(0, 150);
  const lastSource = source.at(-1)!.time;
  // 90 s of target rows after it.
  const target: Row[] = Array.from({ length: 4500 }, (_, i) => ({
    query: "call_audio/relay",
    node: "node-a",
    time: lastSource + BigInt(i + 1) * 20_000_000n,
    columns: {},
  }));
  const clock = new VirtualClock();
  const system = new ActorSystem({ clock });
  const toDetector: DetectorMsg[] = [];
  await readLive(clock, system, [...source, ...target], {
    detector: system.spawn<DetectorMsg>("detector", recorder(toDetector), OPTS),
    matcher: system.spawn<MatcherMsg>("matcher", recorder([]), OPTS),
  });
  await system.shutdown({ deadlineMs: 1000 });
  const told = toDetector.flatMap((m) => m.kind === "time" ? [m.nowNs] : []);
  ok(told.some((t) => t >= lastSource + sec(60)), `told ${told.length} times, up to ${told.at(-1)}`);
});
