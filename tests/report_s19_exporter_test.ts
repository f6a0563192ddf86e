import { deepEqual, equal } from "node:assert/strict";
import { exporter } from "../actors/exporter.ts";
import { ActorSystem } from "../actors/runtime.ts";
import { InProcessBus } from "../bus/in_process.ts";
import { FsmMetrics } from "../http/metrics.ts";
import type { ExporterMsg } from "../actors/messages.ts";
import type { Match } from "../audio/types.ts";
import type { MatchRecord } from "../report/records.ts";
import { setLogSink } from "../util/log.ts";

const logs: { msg: string }[] = [];
setLogSink((l) => void logs.push(JSON.parse(l)));

const T0 = 1_763_910_000_000_000_000n;

function match(id: string): Match {
  const tap = (node: string, stream: string, timeNs: bigint) => ({
    node,
    pod: "p",
    stream,
    timeNs,
    offsetMs: 0,
  });
  return {
    measurement: "m",
    stage: "relay",
    signatureId: id,
    ids: { interval_id: "i" },
    source: tap("node-a", "call", T0),
    target: tap("node-b", "relay", T0 + 150_000_000n),
    latencyS: 0.15,
    ber: 0.05,
  };
}

Deno.test("exporter: a sink that throws loses no record for the bus or the other sinks, and does not crash the exporter", async () => {
  const bus = new InProcessBus();
  const published: string[] = [];
  bus.subscribeMatches((m) => void published.push(m.signature_id));
  const system = new ActorSystem();
  const got: string[] = [];
  const ref = system.spawn<ExporterMsg>(
    "exporter",
    exporter({
      metrics: new FsmMetrics({ rss: () => 0 }),
      bus,
      sinks: [
        {
          match: () => {
            throw new Error("sink failed");
          },
        },
        { match: (r: MatchRecord) => void got.push(r.signature_id) },
      ],
    }),
    { capacity: 16, overflow: "backpressure" },
  );
  try {
    const ids = Array.from({ length: 8 }, (_, i) => `s${i}`);
    for (const id of ids) await ref.tell({ kind: "match", match: match(id) });
    await ref.ask((reply) => ({ kind: "finish", reply }), 5000);
    await bus.flush(1000);
    // Before the fix the first sink's throw skipped the record for every sink after it, and crashed the
    // exporter: restarts with a growing backoff, then escalation (the sensor exits).
    deepEqual(got, ids);
    deepEqual(published, ids);
    const [st] = system.stats();
    equal(st!.restarts, 0);
    equal(st!.poison, 0);
    equal(logs.filter((l) => l.msg === "record sink failed").length, 1, "logged once, not per record");
  } finally {
    await system.shutdown({ deadlineMs: 2000 });
  }
});
