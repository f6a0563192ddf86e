/**
 * The Matcher holds each match until event time has passed its target instant by the search before the source
 * plus the signatures' arrival allowance (audio/match/repeats.ts), so that a nearer repeat found later can still
 * replace it; a live node's quiet ticks release what is held once the rows stop, and a finish releases the rest.
 */
import { ok } from "node:assert/strict";
import { ActorSystem } from "../actors/runtime.ts";
import { VirtualClock } from "../actors/clock.ts";
import type { ExporterMsg, MatcherMsg } from "../actors/messages.ts";
import { matcher } from "../actors/matcher.ts";
import { initAudioEngine } from "../audio/pipeline.ts";
import type { Signature } from "../audio/types.ts";
import { ARRIVAL_FLOOR_NS } from "../audio/match/arrival_delay.ts";
import { setLogSink } from "../util/log.ts";
import { e2eSignatures } from "./support/e2e_signatures.ts";
import { e2eConfig, e2eRows, recorder, sec, settleAll } from "./support/actor_fixtures.ts";

setLogSink(() => {});

const OPTS = { capacity: 100_000, overflow: "backpressure" } as const;

/** A Matcher of node-b on the virtual clock with every signature active; what it reports. */
async function startMatcher(sigs: Signature[]) {
  const config = await e2eConfig();
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
  // Every signature first: the forward search finds each as its audio comes.
  for (const sig of sigs) await m.tell({ kind: "activate", sig });
  const matches = () => toExporter.flatMap((x) => x.kind === "match" ? [x.match] : []);
  const holdNs = BigInt(Math.round(config.engine.search_before_source_seconds * 1e9)) + ARRIVAL_FLOOR_NS;
  return { m, clock, system, matches, holdNs };
}

Deno.test("s31 matcher: a match is reported only once event time has passed its target instant by the hold", async () => {
  await initAudioEngine();
  const { m, clock, system, matches, holdNs } = await startMatcher(await e2eSignatures());
  let seen = 0, newest = 0n;
  for (const row of await e2eRows("node-b")) {
    await m.tell({ kind: "row", row });
    await settleAll(clock, system);
    if (row.time > newest) newest = row.time;
    for (const x of matches().slice(seen)) {
      ok(x.target.timeNs + holdNs <= newest, `released ${newest - x.target.timeNs} ns past its instant`);
    }
    seen = matches().length;
  }
  ok(seen >= 5, `${seen} matches while the rows came`);
  await m.ask((reply): MatcherMsg => ({ kind: "finish", reply }), 60_000);
  await system.shutdown({ deadlineMs: 1000 });
});

Deno.test("s31 matcher: when the rows stop, a live node's quiet ticks release the matches held", async () => {
  await initAudioEngine();
  const sigs = await e2eSignatures();
  const rows = await e2eRows("node-b");
  // Where the fifth match is, from a whole run.
  const whole = await startMatcher(sigs);
  await whole.m.tell({ kind: "rows", rows });
  await whole.m.ask((reply): MatcherMsg => ({ kind: "finish", reply }), 60_000);
  await whole.system.shutdown({ deadlineMs: 1000 });
  const fifth = whole.matches().map((x) => x.target.timeNs).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))[4]!;
  // The rows stop 3 s after it: found (its block is there), not yet due.
  const { m, clock, system, matches } = await startMatcher(sigs);
  for (const row of rows.filter((r) => r.time <= fifth + sec(3))) await m.tell({ kind: "row", row });
  // The last row taken and settled: a finish would tell, but would also release everything.
  await m.tell({ kind: "time", nowNs: fifth + sec(3) });
  await settleAll(clock, system);
  ok(matches().length >= 3, `${matches().length} reported before the fifth`);
  ok(!matches().some((x) => x.target.timeNs === fifth), "the fifth is held");
  await m.tell({ kind: "time", nowNs: fifth + sec(10) });
  for (let i = 0; i < 100 && !matches().some((x) => x.target.timeNs === fifth); i++) {
    await settleAll(clock, system);
  }
  ok(matches().some((x) => x.target.timeNs === fifth), "released by the quiet tick");
  await m.ask((reply): MatcherMsg => ({ kind: "finish", reply }), 60_000);
  await system.shutdown({ deadlineMs: 1000 });
});
