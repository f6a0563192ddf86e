/**
 * node-a's signatures of the e2e captures, as its Detector publishes them (actor tests of the Matcher).
 * @module
 */
import { ActorSystem } from "../../actors/runtime.ts";
import { VirtualClock } from "../../actors/clock.ts";
import type { ExporterMsg, MatcherMsg } from "../../actors/messages.ts";
import { detector } from "../../actors/detector.ts";
import type { Bus } from "../../bus/bus.ts";
import type { Signature } from "../../audio/types.ts";
import { e2eConfig, e2eRows, recorder, sec } from "./actor_fixtures.ts";

const OPTS = { capacity: 100_000, overflow: "backpressure" } as const;

/** node-a's signatures, in the order its Detector publishes them. */
export async function e2eSignatures(): Promise<Signature[]> {
  const config = await e2eConfig();
  const system = new ActorSystem({ clock: new VirtualClock() });
  const out: Signature[] = [];
  const done = Promise.resolve();
  const bus: Bus = {
    publishSignature: (sig) => {
      out.push(sig);
      return done;
    },
    publishMatch: () => done,
    subscribeSignatures: () => Promise.resolve({ unsubscribe: () => done }),
    flush: () => done,
    close: () => done,
  };
  const d = system.spawn(
    "detector",
    detector({
      measurement: config.measurements[0]!,
      node: "node-a",
      bus,
      matcher: system.spawn("m", recorder<MatcherMsg>([]), OPTS),
      exporter: system.spawn("e", recorder<ExporterMsg>([]), OPTS),
      idleNs: sec(60),
      tickNs: sec(1),
      clockWindowNs: sec(30),
    }),
    OPTS,
  );
  await d.tell({ kind: "rows", rows: await e2eRows("node-a") });
  await d.ask((reply) => ({ kind: "finish", reply }), 60_000);
  await system.shutdown({ deadlineMs: 1000 });
  return out;
}
