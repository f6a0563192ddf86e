import { deepEqual, equal, ok } from "node:assert/strict";
import { ClockSkewEstimator } from "../bus/clock_skew.ts";
import { connectNats } from "../bus/connection.ts";
import { setLogSink } from "../util/log.ts";
import { waitFor, withClockPeers } from "./support/bus_fixtures.ts";
import { gatedTest } from "./support/tools.ts";

const natsTest = await gatedTest(import.meta.url, ["nats-server"]);

const SKEW_MS = 250;

natsTest(
  "clock skew: a peer whose clock is 250 ms ahead is estimated within a few ms, both ways",
  async () => {
    const lines: string[] = [];
    const prev = setLogSink((l) => void lines.push(l));
    try {
      await withClockPeers(async ({ srv, conns, estimators }) => {
        const ncA = await connectNats({ url: srv.url }), ncB = await connectNats({ url: srv.url });
        conns.push(ncA, ncB);
        const seen: [string, number][] = [];
        const a = new ClockSkewEstimator({
          nc: ncA,
          node: "node-a",
          onOffset: (p, s) => void seen.push([p, s]),
        });
        const b = new ClockSkewEstimator({
          nc: ncB,
          node: "node-b.example",
          now: () => Date.now() + SKEW_MS,
        });
        estimators.push(a, b);
        await a.start(false);
        await b.start(false); // b's hello reaches a; a learns of b
        await waitFor(() => a.peers().includes("node-b.example"), 5000, "peer discovery");
        await a.round(); // a's hello in this round reaches b
        await waitFor(() => b.peers().includes("node-a"), 5000, "peer discovery back");
        await b.round();

        const ab = a.offsets().get("node-b.example")!;
        const ba = b.offsets().get("node-a")!;
        ok(Math.abs(ab - SKEW_MS / 1000) < 0.005, `a sees b ahead by ${ab} s`);
        ok(Math.abs(ba + SKEW_MS / 1000) < 0.005, `b sees a behind by ${ba} s`);
        equal(seen.length, 1);
        equal(seen[0]![0], "node-b.example");
        // b is the one ahead: relative to its peers' median its own clock is +0.25 s, and it says so.
        ok(Math.abs(b.nodeOffsetSeconds()! - SKEW_MS / 1000) < 0.005);
        ok(lines.some((l) => l.includes("clock differs") && l.includes('"warn_ms":50')));
      });
    } finally {
      setLogSink(prev);
    }
  },
);

natsTest("clock skew: periodic rounds report the node offset; a silent peer is dropped", async () => {
  await withClockPeers(async ({ srv, conns, estimators }) => {
    const ncA = await connectNats({ url: srv.url }), ncB = await connectNats({ url: srv.url });
    conns.push(ncA, ncB);
    const nodeOffsets: number[] = [];
    const forgotten: string[] = [];
    const a = new ClockSkewEstimator({
      nc: ncA,
      node: "a",
      intervalMs: 100,
      samples: 3,
      timeoutMs: 200,
      warnMs: 1000,
      onNodeOffset: (s) => void nodeOffsets.push(s),
      onForget: (p) => void forgotten.push(p),
    });
    const b = new ClockSkewEstimator({ nc: ncB, node: "b", now: () => Date.now() - 40, intervalMs: 100 });
    estimators.push(a, b);
    await b.start();
    await a.start();
    a.addPeer("ghost"); // never answers
    await waitFor(() => nodeOffsets.length >= 2 && !a.peers().includes("ghost"), 8000, "rounds");
    ok(a.peers().includes("b"));
    // b is 40 ms behind, so a is 40 ms ahead of its only peer.
    ok(Math.abs(nodeOffsets.at(-1)! - 0.04) < 0.005, `node offset ${nodeOffsets.at(-1)}`);
    equal(a.offsets().has("ghost"), false);
    // Told, so its gauge series goes (FsmMetrics.clockOffsetGone).
    ok(forgotten.includes("ghost") && !forgotten.includes("b"), `${forgotten}`);
  });
});

natsTest(
  "clock skew: after churn, a dead peer holding the last place gives it up to a new node",
  async () => {
    // The audit's worry: peers never forgotten, capped, so new nodes never measured. round() forgets a peer none of
    // whose exchanges was answered, so the place goes to the next node heard from (every node says hello each round).
    await withClockPeers(async ({ srv, conns, estimators }) => {
      const ncA = await connectNats({ url: srv.url }), ncB = await connectNats({ url: srv.url });
      conns.push(ncA, ncB);
      const a = new ClockSkewEstimator({ nc: ncA, node: "a", maxPeers: 1, samples: 2, timeoutMs: 200 });
      const b = new ClockSkewEstimator({ nc: ncB, node: "new", now: () => Date.now() - 40 });
      estimators.push(a, b);
      await a.start(false);
      a.addPeer("dead"); // a node that left: its subject has no responder any more
      await b.start(false); // its hello finds a full
      // Through the server, then to a: its PONG comes after the hello.
      await ncB.flush();
      await ncA.flush();
      deepEqual(a.peers(), ["dead"]);
      await a.round();
      deepEqual(a.peers(), []);
      await b.round(); // says hello again
      await waitFor(() => a.peers().includes("new"), 5000, "the new node heard from");
      await a.round();
      ok(
        Math.abs(a.offsets().get("new")! + 0.04) < 0.005,
        `offset of the new node ${a.offsets().get("new")}`,
      );
    });
  },
);
