/**
 * SignatureRegistry on the virtual clock: TTL expiry in event time, eviction at max_active_signatures (per
 * measurement), refusal of signatures past their TTL or beyond the clock window (issue 15), the resync a
 * restarted Matcher asks for, and the count of everything expired or refused.
 */
import { deepEqual, equal } from "node:assert/strict";
import { ActorSystem } from "../actors/runtime.ts";
import { VirtualClock } from "../actors/clock.ts";
import type { ExporterMsg, MatcherMsg, RegistryMsg } from "../actors/messages.ts";
import { signatureRegistry } from "../actors/signature_registry.ts";
import type { Config } from "../config/schema.ts";
import { setLogSink } from "../util/log.ts";
import {
  CountingCounters,
  e2eConfig,
  fakeSignature,
  recorder,
  sec,
  settleAll,
} from "./support/actor_fixtures.ts";

setLogSink(() => {});

const T0 = sec(1_763_900_000);
const OPTS = { capacity: 100_000, overflow: "backpressure" } as const;

function setup(config: Config, wallNs?: () => bigint) {
  const clock = new VirtualClock();
  const system = new ActorSystem({ clock });
  const toMatcher: MatcherMsg[] = [];
  const toExporter: ExporterMsg[] = [];
  const counters = new CountingCounters();
  const matcher = system.spawn("matcher", recorder(toMatcher), {
    capacity: 100_000,
    overflow: "backpressure",
  });
  const exporter = system.spawn("exporter", recorder(toExporter), {
    capacity: 100_000,
    overflow: "backpressure",
  });
  const registry = system.spawn(
    "signature_registry",
    signatureRegistry({ config, matcher, exporter, counters, wallNs }),
    { capacity: 100_000, overflow: "backpressure" },
  );
  const send = async (msg: RegistryMsg) => {
    await registry.tell(msg);
    await clock.settle();
  };
  const active = () => {
    const ids = new Set<string>();
    for (const m of toMatcher) {
      if (m.kind === "activate") ids.add(m.sig.id);
      if (m.kind === "deactivate") ids.delete(m.id);
    }
    return [...ids].sort();
  };
  return { clock, system, registry, toMatcher, toExporter, counters, send, active };
}

Deno.test("registry: a signature is active until its TTL passes in event time, then deactivated and counted", async () => {
  const config = await e2eConfig((d) => {
    (d["measurements"] as Record<string, unknown>[])[0]!["ttl_seconds"] = 10;
  });
  const r = setup(config);
  await r.send({ kind: "tick", nowNs: T0 });
  await r.send({ kind: "signature", sig: fakeSignature("a", T0 + sec(1)) });
  deepEqual(r.active(), ["a"]);
  await r.send({ kind: "tick", nowNs: T0 + sec(10.9) });
  deepEqual(r.active(), ["a"], "10.9 s after the source instant is within a 10 s TTL measured from t0+1");
  await r.send({ kind: "tick", nowNs: T0 + sec(11.1) });
  deepEqual(r.active(), []);
  equal(r.counters.expired.get("call_audio/ttl"), 1);
  const last = r.toExporter.filter((m) => m.kind === "active").at(-1);
  deepEqual(last, { kind: "active", measurement: "call_audio", count: 0 });
  await r.system.shutdown({ deadlineMs: 1000 });
});

Deno.test("registry: past max_active_signatures the oldest is evicted (counted); another measurement is untouched", async () => {
  const config = await e2eConfig((d) => {
    d["engine"] = { max_active_signatures: 3 };
    const ms = d["measurements"] as Record<string, unknown>[];
    ms.push({ ...ms[0]!, name: "other" });
  });
  const r = setup(config);
  await r.send({ kind: "signature", sig: fakeSignature("o1", T0, "other") });
  for (let i = 1; i <= 5; i++) await r.send({ kind: "signature", sig: fakeSignature(`s${i}`, T0 + sec(i)) });
  deepEqual(r.active(), ["o1", "s3", "s4", "s5"]);
  equal(r.counters.expired.get("call_audio/evicted"), 2);
  equal(r.counters.expired.get("other/evicted"), undefined);
  await r.system.shutdown({ deadlineMs: 1000 });
});

Deno.test("registry: a signature already past its TTL on arrival is refused (late)", async () => {
  const r = setup(await e2eConfig());
  await r.send({ kind: "tick", nowNs: T0 + sec(500) });
  await r.send({ kind: "signature", sig: fakeSignature("old", T0) }); // ttl 120 s
  deepEqual(r.active(), []);
  equal(r.counters.expired.get("call_audio/late"), 1);
  await r.system.shutdown({ deadlineMs: 1000 });
});

Deno.test("registry: after a tick that says the rows' clock stepped back, fresh signatures are judged by it", async () => {
  // NTP stepped the rows' clock back 10 minutes: before, the watermark stayed ahead and every fresh signature was
  // refused as already past its TTL until real time caught up.
  const r = setup(await e2eConfig());
  await r.send({ kind: "tick", nowNs: T0 + sec(600) });
  await r.send({ kind: "signature", sig: fakeSignature("before", T0 + sec(1)) }); // ttl 120 s: late
  await r.send({ kind: "tick", nowNs: T0, back: true });
  await r.send({ kind: "signature", sig: fakeSignature("after", T0 + sec(1)) });
  deepEqual(r.active(), ["after"]);
  equal(r.counters.expired.get("call_audio/late"), 1);
  // A plain tick lower than the watermark still changes nothing (ticks only go forward otherwise).
  await r.send({ kind: "tick", nowNs: T0 - sec(600) });
  await r.send({ kind: "tick", nowNs: T0 + sec(100) });
  deepEqual(r.active(), ["after"]);
  await r.system.shutdown({ deadlineMs: 1000 });
});

Deno.test("registry: a signature far ahead of the node's clock does not stay (replay: at the next tick; live: on arrival)", async () => {
  // Replay: the node's event clock may lag (a quiet node), so the check waits for the next tick.
  const r = setup(await e2eConfig());
  await r.send({ kind: "tick", nowNs: T0 });
  await r.send({ kind: "signature", sig: fakeSignature("near", T0 + sec(20)) });
  await r.send({ kind: "signature", sig: fakeSignature("forged", T0 + sec(86_400 * 365)) });
  deepEqual(r.active(), ["forged", "near"]);
  await r.send({ kind: "tick", nowNs: T0 + sec(1) });
  deepEqual(r.active(), ["near"], "within the 30 s clock window: kept; a year ahead: dropped");
  equal(r.counters.expired.get("call_audio/future"), 1);
  // The forged one would otherwise never expire: a long time later the real one expired, and nothing is left.
  await r.send({ kind: "tick", nowNs: T0 + sec(1000) });
  deepEqual(r.active(), []);
  await r.system.shutdown({ deadlineMs: 1000 });

  // Live: judged against the wall clock at once.
  const live = setup(await e2eConfig(), () => T0);
  await live.send({ kind: "signature", sig: fakeSignature("forged", T0 + sec(3600)) });
  await live.send({ kind: "signature", sig: fakeSignature("ancient", 1n) });
  await live.send({ kind: "signature", sig: fakeSignature("ok", T0 - sec(5)) });
  deepEqual(live.active(), ["ok"]);
  equal(live.counters.expired.get("call_audio/future"), 1);
  equal(live.counters.expired.get("call_audio/late"), 1);
  await live.system.shutdown({ deadlineMs: 1000 });
});

Deno.test("registry: forged signatures with plausible times can only push out their own measurement's", async () => {
  const config = await e2eConfig((d) => {
    d["engine"] = { max_active_signatures: 100 };
    const ms = d["measurements"] as Record<string, unknown>[];
    ms.push({ ...ms[0]!, name: "other" });
  });
  const r = setup(config);
  await r.send({ kind: "signature", sig: fakeSignature("real", T0, "other") });
  for (let i = 0; i < 1000; i++) {
    await r.registry.tell({ kind: "signature", sig: fakeSignature(`f${i}`, T0 + BigInt(i), "call_audio") });
  }
  await r.clock.settle();
  const act = r.active();
  equal(act.length, 101);
  equal(act.includes("real"), true);
  await r.system.shutdown({ deadlineMs: 1000 });
});

Deno.test("registry: a signature the index could not hold is refused (invalid), never sent to the Matcher", async () => {
  const r = setup(await e2eConfig());
  const bad = { ...fakeSignature("bad", T0), fingerprint: new Uint32Array(0) };
  await r.send({ kind: "signature", sig: bad });
  deepEqual(r.toMatcher, []);
  equal(r.counters.expired.get("call_audio/invalid"), 1);
  await r.system.shutdown({ deadlineMs: 1000 });
});

Deno.test("registry: resync sends every active signature again (what a restarted Matcher asks for)", async () => {
  const r = setup(await e2eConfig());
  for (const id of ["a", "b", "c"]) await r.send({ kind: "signature", sig: fakeSignature(id, T0) });
  await r.send({ kind: "tick", nowNs: T0 });
  r.toMatcher.length = 0;
  await r.send({ kind: "resync" });
  deepEqual(r.toMatcher.map((m) => m.kind === "activate" ? m.sig.id : m.kind).sort(), ["a", "b", "c"]);
  await r.system.shutdown({ deadlineMs: 1000 });
});

Deno.test("registry: a restarted registry's resync and the ticks it takes meanwhile reach the Matcher in order", async () => {
  // The resync after a crash runs beside the messages the new incarnation takes (onStart does not wait for it, so
  // that a Matcher with a full mailbox cannot hold up the registry's start). A tick that expires the signatures
  // meanwhile must not overtake it: a deactivation before the resync's activation of the same signature would
  // leave the Matcher searching for it for good. Their sends wait for room in the Matcher's mailbox first come,
  // first served, and both walk the set in the same order, so the resync stays ahead.
  const config = await e2eConfig((d) => {
    (d["measurements"] as Record<string, unknown>[])[0]!["ttl_seconds"] = 10;
  });
  const clock = new VirtualClock();
  const system = new ActorSystem({ clock });
  const toMatcher: MatcherMsg[] = [];
  let release = () => {};
  let gate: Promise<void> = Promise.resolve();
  const matcher = system.spawn<MatcherMsg>("matcher", () => ({
    async receive(msg) {
      toMatcher.push(msg);
      await gate;
    },
  }), { capacity: 1, overflow: "backpressure" });
  const exporter = system.spawn("exporter", recorder<ExporterMsg>([]), OPTS);
  const registry = system.spawn(
    "signature_registry",
    signatureRegistry({ config, matcher, exporter, counters: new CountingCounters() }),
    OPTS,
  );
  const ids = ["a", "b", "c", "d", "e", "f"];
  await registry.tell({ kind: "tick", nowNs: T0 });
  for (const id of ids) await registry.tell({ kind: "signature", sig: fakeSignature(id, T0 + sec(1)) });
  await settleAll(clock, system);
  gate = new Promise<void>((r) => release = r);
  // A message that crashes it: the supervisor restarts it, and the new incarnation resyncs the Matcher.
  await registry.tell({ kind: "signature", sig: null } as unknown as RegistryMsg);
  await clock.advance(5_000); // the restart's backoff
  await settleAll(clock, system);
  equal(system.stats().find((a) => a.name === "signature_registry")!.restarts, 1);
  await registry.tell({ kind: "tick", nowNs: T0 + sec(20) });
  for (let i = 0; i < 20; i++) await settleAll(clock, system);
  release();
  for (let i = 0; i < 50; i++) await settleAll(clock, system);
  const active = new Set<string>();
  for (const m of toMatcher) {
    if (m.kind === "activate") active.add(m.sig.id);
    if (m.kind === "deactivate") active.delete(m.id);
  }
  deepEqual(
    [...active],
    [],
    toMatcher.map((m) =>
      m.kind === "activate" ? `+${m.sig.id}` : m.kind === "deactivate" ? `-${m.id}` : m.kind
    ).join(" "),
  );
  await system.shutdown({ deadlineMs: 1000 });
});

Deno.test("registry: a slow exporter holds back the registry, one count waiting at most, not a pile of them", async () => {
  // The registry awaits each tell to the exporter (its `active` count) before taking its next message, like the
  // other actors: with the exporter stuck, at most one of its sends waits for room; the rest wait in the
  // registry's own bounded mailbox (back-pressure up to the bus), and nothing is lost once the exporter moves.
  const clock = new VirtualClock();
  const system = new ActorSystem({ clock });
  const toExporter: ExporterMsg[] = [];
  let release = () => {};
  const stuck = new Promise<void>((r) => release = r);
  const exporter = system.spawn<ExporterMsg>("exporter", () => ({
    async receive(msg) {
      await stuck;
      toExporter.push(msg);
    },
  }), { capacity: 1, overflow: "backpressure" });
  const config = await e2eConfig((d) => {
    d["engine"] = { max_active_signatures: 1000 };
  });
  const registry = system.spawn(
    "signature_registry",
    signatureRegistry({ config, matcher: system.spawn("matcher", recorder([]), OPTS), exporter }),
    { capacity: 1000, overflow: "backpressure" },
  );
  for (let i = 0; i < 500; i++) {
    void registry.tell({ kind: "signature", sig: fakeSignature(`s${i}`, T0 + sec(i)) });
  }
  await settleAll(clock, system);
  const stats = (name: string) => system.stats().find((s) => s.name === name)!;
  // One count in the exporter's hands, one in its mailbox, one waiting for room; the other 497 signatures queued.
  equal(stats("exporter").waitingSenders, 1);
  equal(stats("signature_registry").processed, 2);
  equal(stats("signature_registry").depth, 497);
  release();
  await settleAll(clock, system);
  equal(stats("signature_registry").processed, 500);
  deepEqual(toExporter.at(-1), { kind: "active", measurement: "call_audio", count: 500 });
  equal(toExporter.length, 500);
  await system.shutdown({ deadlineMs: 1000 });
});
