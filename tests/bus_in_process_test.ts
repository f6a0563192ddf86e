import { deepEqual, equal } from "node:assert/strict";
import { InProcessBus } from "../bus/in_process.ts";
import type { Signature } from "../audio/types.ts";
import { signatureOf } from "../audio/fingerprint/signature.ts";
import { type MatchRecord, matchRecord } from "../report/records.ts";

const tap = { node: "a", pod: "p", stream: "s", timeNs: 1n, offsetMs: 0 };
const sig = (id: string, measurement = "m"): Signature =>
  signatureOf({
    id,
    measurement,
    source: tap,
    fingerprint: new Uint32Array(4),
    ids: {},
  });

Deno.test("in-process bus: signatures reach every subscriber once, filtered by measurement", async () => {
  const bus = new InProcessBus();
  const a: string[] = [], b: string[] = [];
  await bus.subscribeSignatures([], (s) => void a.push(s.id));
  await bus.subscribeSignatures(["other"], (s) => void b.push(s.id));
  await bus.publishSignature(sig("1"));
  await bus.publishSignature(sig("1")); // duplicate id: dropped like JetStream's dedupe
  await bus.publishSignature(sig("2", "other"));
  deepEqual(a, ["1", "2"]);
  deepEqual(b, ["2"]);
});

Deno.test("in-process bus: a failing subscriber is counted and does not stop delivery", async () => {
  const bus = new InProcessBus();
  const got: string[] = [];
  await bus.subscribeSignatures([], () => {
    throw new Error("boom");
  });
  await bus.subscribeSignatures([], (s) => void got.push(s.id));
  await bus.publishSignature(sig("x"));
  await bus.flush(1000);
  equal(bus.handlerErrors, 1);
  deepEqual(got, ["x"]);
});

Deno.test("in-process bus: match records dedupe on signature, stage and target stream", async () => {
  const bus = new InProcessBus();
  const got: MatchRecord[] = [];
  bus.subscribeMatches((m) => void got.push(m));
  const m = matchRecord({
    measurement: "m",
    stage: "asr",
    signatureId: "1",
    ids: {},
    source: tap,
    target: { ...tap, stream: "t" },
    latencyS: 1,
    ber: 0,
  });
  await bus.publishMatch(m);
  await bus.publishMatch({ ...m });
  await bus.publishMatch({ ...m, target: { ...m.target, stream: "t2" } });
  equal(got.length, 2);
});
