/**
 * A live node's stop in process (cli/run_cmd.ts wires the same): the first signal finishes the node before the
 * drain (actors/node.ts finishNodes with `stopSources`), bounded by the stop's deadline. A real SensorNode on the
 * e2e telephony capture, its rows handed on by a live-style source (it ends only when stopped), over the
 * in-process bus.
 */
import { deepEqual, equal, ok } from "node:assert/strict";
import { finishNodes, SensorNode } from "../actors/node.ts";
import type { RowSource } from "../actors/pixie_reader.ts";
import type { ActorFactory } from "../actors/runtime.ts";
import type { MatcherMsg } from "../actors/messages.ts";
import { InProcessBus } from "../bus/in_process.ts";
import { FsmMetrics } from "../http/metrics.ts";
import type { Row } from "../pixie/row.ts";
import { e2eConfig, e2eRows } from "./support/actor_fixtures.ts";
import { captureLogs } from "./fixtures_actors/helpers.ts";
import { stopHandler } from "./support/live_stop.ts";
import { sleep } from "./support/sensor_process.ts";
import { setLogSink } from "../util/log.ts";

// Quiet; the test reads the shutdown's lines with captureLogs.
setLogSink(() => {});

/** Hands on `rows`, then waits to be stopped, as a live source does; notes what happened. */
function liveSource(rows: readonly Row[]) {
  const state = { emitted: 0, stopped: false, runs: 0 };
  const source: RowSource = {
    async run(emit, signal) {
      state.runs++;
      for (const r of rows) {
        if (signal.aborted) break;
        await emit(r);
        state.emitted++;
      }
      if (!signal.aborted) await new Promise((r) => signal.addEventListener("abort", r, { once: true }));
      state.stopped = true;
    },
  };
  return { source, state };
}

/** A Matcher that never answers its finish (stuck in a long verification, say). */
const stuckFinish = (f: ActorFactory<MatcherMsg>): ActorFactory<MatcherMsg> => (ctx) => {
  const b = f(ctx);
  return {
    ...b,
    receive(msg, c) {
      if (msg.kind === "finish") return new Promise<void>(() => {});
      return b.receive(msg, c);
    },
  };
};

/** The signatures a capture's end gives on `rows` (what `analyze` does: replay, then finishNodes). */
async function atCaptureEnd(rows: readonly Row[]): Promise<string[]> {
  const bus = new InProcessBus();
  const node = await SensorNode.start({
    config: await e2eConfig(),
    node: "node-a",
    bus,
    metrics: new FsmMetrics(),
    mode: "replay",
  });
  const ids: string[] = [];
  await bus.subscribeSignatures([], (s) => void ids.push(s.id));
  for (const r of rows) await node.ingest(r);
  await finishNodes([node], bus);
  await node.shutdown(5000);
  return ids.sort();
}

/** A live node on the first 12.5 s of the e2e call (speaking then), its rows all handed on by a live source. */
async function liveNode(bus: InProcessBus, wrapMatcher?: typeof stuckFinish) {
  const all = await e2eRows("node-a");
  const rows = all.filter((r) => r.time < all[0]!.time + 12_500_000_000n);
  const { source, state } = liveSource(rows);
  const node = await SensorNode.start({
    config: await e2eConfig(),
    node: "node-a",
    bus,
    metrics: new FsmMetrics(),
    mode: "replay",
    source,
    wrapMatcher,
  });
  const signatures: string[] = [];
  await bus.subscribeSignatures([], (s) => void signatures.push(s.id));
  for (let i = 0; i < 600 && state.emitted < rows.length; i++) await sleep(50);
  equal(state.emitted, rows.length, "the source handed on every row");
  await node.system.settled();
  return { node, rows, state, signatures };
}

Deno.test("live stop: a finish phase that never answers does not hold the stop beyond the deadline", async () => {
  // The call's first 12.5 s: it is speaking then, and its utterances at 11.2 s and 11.5 s have no complete 2 s
  // block yet (their signatures are pending at the stop).
  const bus = new InProcessBus();
  const { node, rows, state, signatures } = await liveNode(bus, stuckFinish);
  const want = await atCaptureEnd(rows);
  const before = signatures.length;
  const deadlineMs = 1000;
  const { h, codes, phases } = stopHandler(node, bus, deadlineMs, 1000);
  const t0 = performance.now();
  const { lines } = await captureLogs(async () => {
    h.handle("SIGTERM");
    equal(await h.exited, 0);
  });
  const tookMs = performance.now() - t0;
  deepEqual(codes, [0]);
  // The deadline (the finish and the drain share it), the flush of an in-process bus, and slack for a busy host.
  ok(tookMs >= deadlineMs - 50 && tookMs < deadlineMs + 1500, `stopped in ${tookMs.toFixed(0)} ms`);
  deepEqual(phases, ["sources", "reader", "detectors", "bus", "registry", "matcher"]);
  ok(state.stopped, "the source was stopped");
  equal(state.runs, 1);
  const warn = lines.filter((l) => l["level"] === "warn" && l["component"] === "shutdown");
  deepEqual(warn.map((l) => l["phase"]), ["matcher"], JSON.stringify(lines));
  // The phases before the stuck one did their work: the signatures pending at the stop were published, and the
  // node's signatures are those of a capture's end on the same rows.
  ok(before < want.length, `signatures ${before} before the stop, ${want.length} at a capture's end`);
  deepEqual(signatures.toSorted(), want);
});

/** An in-process bus that cannot deliver (NATS down at the stop): its flush waits out the time it is given. */
class DownBus extends InProcessBus {
  flushWaitedMs = 0;
  override async flush(deadlineMs: number): Promise<void> {
    const t0 = performance.now();
    await sleep(deadlineMs);
    this.flushWaitedMs += performance.now() - t0;
  }
}

Deno.test("live stop: a bus that cannot deliver takes a share of the deadline, and the phases after it finish", async () => {
  const bus = new DownBus();
  const { node } = await liveNode(bus);
  const deadlineMs = 2000;
  const { h, phases } = stopHandler(node, bus, deadlineMs, 200);
  const { lines } = await captureLogs(async () => {
    h.handle("SIGTERM");
    equal(await h.exited, 0);
  });
  // Before, the flush took the whole deadline and the stop went on with the registry's phase cut short.
  ok(bus.flushWaitedMs < deadlineMs * 0.5, `the bus phase waited ${bus.flushWaitedMs.toFixed(0)} ms`);
  deepEqual(phases, ["sources", "reader", "detectors", "bus", "registry", "matcher", "exporter"]);
  const unfinished = lines.filter((l) =>
    l["msg"] === "streams in progress not finished; draining without the rest"
  );
  deepEqual(unfinished, [], JSON.stringify(lines));
  ok(lines.some((l) => l["msg"] === "streams in progress finished"), JSON.stringify(lines));
});
