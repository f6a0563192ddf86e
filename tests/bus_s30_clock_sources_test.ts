/**
 * Clock skew against the nodes signatures come from (review of session 30). The estimator probed only the first 16
 * nodes it heard say hello: in a cluster of more than 17 nodes most source nodes were never measured, so a target
 * node did not widen its search before the signature instant of a source whose clock was ahead, and lost its
 * matches once the skew passed the latency plus the search's margin. Now each signature's node is probed as a
 * source peer, besides the hello peers, within a bound of its own.
 */
import { deepEqual, equal, ok } from "node:assert/strict";
import { SensorNode } from "../actors/node.ts";
import { ClockSkewEstimator } from "../bus/clock_skew.ts";
import { connectNats } from "../bus/connection.ts";
import { InProcessBus } from "../bus/in_process.ts";
import { FsmMetrics } from "../http/metrics.ts";
import { mergeByTime } from "../pixie/replay.ts";
import { waitFor, withClockPeers } from "./support/bus_fixtures.ts";
import { e2eConfig, e2eRows } from "./support/actor_fixtures.ts";
import { gatedTest } from "./support/tools.ts";

const natsTest = await gatedTest(import.meta.url, ["nats-server"]);

natsTest("clock skew: a source node past the 16 hello peers is probed once its signatures come", async () => {
  await withClockPeers(async ({ srv, conns, estimators }) => {
    const make = async (i: number, aheadMs = 0) => {
      const nc = await connectNats({ url: srv.url });
      conns.push(nc);
      const e = new ClockSkewEstimator({
        nc,
        node: `node-${i}`,
        samples: 2,
        timeoutMs: 500,
        now: () => Date.now() + aheadMs,
      });
      estimators.push(e);
      await e.start(false);
      await nc.flush();
      return e;
    };
    const target = await make(0);
    for (let i = 1; i <= 18; i++) await make(i);
    await make(19, 5_000); // the telephony node, its clock 5 s ahead, heard from last
    await waitFor(() => target.peers().length === 16, 5000, "16 hello peers");
    ok(!target.peers().includes("node-19"), "the hello peers are the first 16 heard from");
    await target.round();
    ok(Math.max(...target.offsets().values()) < 0.1, "before: no peer ahead by 5 s is seen");

    target.addSource("node-19");
    equal(target.peers()[0], "node-19", "probed first");
    equal(target.peers().length, 17, "besides the hello peers");
    await target.round();
    const ahead = target.offsets().get("node-19");
    ok(ahead !== undefined && Math.abs(ahead - 5) < 0.1, `node-19's offset ${ahead}`);
  });
});

natsTest("clock skew: source peers are bounded, the one heard from longest ago makes room", async () => {
  await withClockPeers(async ({ srv, conns, estimators }) => {
    const nc = await connectNats({ url: srv.url });
    conns.push(nc);
    let now = 0;
    const forgotten: string[] = [];
    const e = new ClockSkewEstimator({
      nc,
      node: "me",
      maxPeers: 1,
      maxSourcePeers: 2,
      now: () => now,
      onForget: (p) => void forgotten.push(p),
    });
    estimators.push(e);
    e.addPeer("hello-1");
    e.addPeer("hello-2"); // past maxPeers
    deepEqual(e.peers(), ["hello-1"]);
    // A hello peer that sends signatures moves over to the sources and leaves its place to another.
    now = 1;
    e.addSource("hello-1");
    e.addPeer("hello-2");
    deepEqual(e.peers(), ["hello-1", "hello-2"]);
    now = 2;
    e.addSource("src-a");
    now = 3;
    e.addSource("hello-1"); // heard from again: now the newest
    now = 4;
    e.addSource("src-b"); // full: src-a, heard from longest ago, goes
    deepEqual(e.peers(), ["hello-1", "src-b", "hello-2"]);
    deepEqual(forgotten, ["src-a"]);
    e.addSource("me");
    e.addSource("");
    e.addPeer("src-b"); // a source says hello: stays a source, not counted twice
    deepEqual(e.peers(), ["hello-1", "src-b", "hello-2"]);
  });
});

Deno.test("node: each signature from the bus tells the node it came from (the clock-skew estimator's sources)", async () => {
  const config = await e2eConfig();
  const bus = new InProcessBus();
  const heard = new Map<string, Set<string>>();
  const nodes = new Map<string, SensorNode>();
  for (const name of ["node-a", "node-b"] as const) {
    heard.set(name, new Set());
    nodes.set(
      name,
      await SensorNode.start({
        config,
        node: name,
        bus,
        metrics: new FsmMetrics(),
        mode: "replay",
        onSignatureFrom: (n) => void heard.get(name)!.add(n),
      }),
    );
  }
  const rows = [{ node: "node-a", rows: await e2eRows("node-a") }, {
    node: "node-b",
    rows: await e2eRows("node-b"),
  }];
  for (const { node, row } of mergeByTime(rows)) await nodes.get(node)!.ingest(row);
  for (const n of nodes.values()) await n.shutdown(30_000);
  // The e2e capture's source tap is on node-a: every node hears its signatures, node-a's own included.
  deepEqual([...heard.get("node-b")!], ["node-a"]);
  deepEqual([...heard.get("node-a")!], ["node-a"]);
});
