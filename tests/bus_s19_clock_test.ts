/**
 * What a peer can send the clock-skew estimator: hellos are read from a subject every sensor may publish on, so a
 * garbled or hostile one must not reach the connection the node's bus shares.
 * @module
 */
import { deepEqual, equal, ok } from "node:assert/strict";
import { ClockSkewEstimator } from "../bus/clock_skew.ts";
import { connectNats } from "../bus/connection.ts";
import { CLOCK_HELLO_SUBJECT } from "../bus/subjects.ts";
import { waitFor, withClockPeers } from "./support/bus_fixtures.ts";
import { gatedTest } from "./support/tools.ts";

const natsTest = await gatedTest(import.meta.url, ["nats-server"]);

natsTest(
  "clock skew: a hello with a name too long for a subject is ignored; the node's connection is not dropped",
  async () => {
    await withClockPeers(async ({ srv, conns, estimators }) => {
      const ncA = await connectNats({ url: srv.url }), ncB = await connectNats({ url: srv.url });
      const other = await connectNats({ url: srv.url });
      conns.push(ncA, ncB, other);
      const drops: string[] = [];
      (async () => {
        for await (const s of ncA.status()) if (s.type === "disconnect") drops.push(s.type);
      })().catch(() => {});
      const a = new ClockSkewEstimator({ nc: ncA, node: "node-a", samples: 2, timeoutMs: 500 });
      const b = new ClockSkewEstimator({ nc: ncB, node: "node-b" });
      estimators.push(a, b);
      await a.start(false);
      // A request to `fsmpx.clock.n.<5,000 bytes>` is a protocol line past the server's 4 KiB limit: the
      // server closed node-a's connection (its bus's too) on each of the round's exchanges.
      other.publish(CLOCK_HELLO_SUBJECT, new TextEncoder().encode("x".repeat(5000)));
      await other.flush();
      await b.start(false);
      await waitFor(() => a.peers().includes("node-b"), 5000, "the real peer's hello");
      await a.round();
      deepEqual(a.peers(), ["node-b"]);
      equal(a.offsets().size, 1);
      deepEqual(drops, []);
    });
  },
);

natsTest(
  "clock skew: a round while the node's own connection is down keeps its peers and their offsets",
  async () => {
    await withClockPeers(async ({ srv, conns, estimators }) => {
      const ncA = await connectNats({ url: srv.url }), ncB = await connectNats({ url: srv.url });
      conns.push(ncA, ncB);
      const heard: number[][] = [];
      const forgotten: string[] = [];
      const a = new ClockSkewEstimator({
        nc: ncA,
        node: "node-a",
        samples: 2,
        timeoutMs: 200,
        onForget: (p) => void forgotten.push(p),
      });
      a.addListener((offsets) => void heard.push([...offsets.values()]));
      const b = new ClockSkewEstimator({ nc: ncB, node: "node-b", now: () => Date.now() + 300 });
      estimators.push(a, b);
      await a.start(false);
      await b.start(false);
      await waitFor(() => a.peers().includes("node-b"), 5000, "the peer's hello");
      await a.round();
      ok(Math.abs(a.offsets().get("node-b")! - 0.3) < 0.01, `offset ${a.offsets().get("node-b")}`);
      // The server goes away for a round: node-a cannot tell anything about node-b, which has not left. It forgot
      // every peer and told its listener there were none (the matcher's search then lost its widening for the
      // 300 ms node-b is ahead) until the peers' next hellos and the round after them, a minute later.
      await srv.stopProcess();
      await a.round();
      await srv.startProcess();
      deepEqual(a.peers(), ["node-b"]);
      deepEqual(forgotten, []);
      equal(heard.length, 2);
      ok(heard[1]!.length === 1 && Math.abs(heard[1]![0]! - 0.3) < 0.01, `listener heard ${heard[1]}`);
    });
  },
);

natsTest(
  "clock skew: started while the connection is down, the estimator does not fail and measures once it is back",
  async () => {
    await withClockPeers(async ({ srv, conns, estimators }) => {
      const ncA = await connectNats({ url: srv.url }), ncB = await connectNats({ url: srv.url });
      conns.push(ncA, ncB);
      const b = new ClockSkewEstimator({ nc: ncB, node: "node-b", now: () => Date.now() + 300 });
      estimators.push(b);
      await b.start(false);
      // `run` starts the estimator without awaiting it, right after the bus connected: a connection lost in
      // between rejected start() (its flush), an unhandled rejection that ended the process, and the
      // estimator had not scheduled a single round.
      await srv.stopProcess();
      const a = new ClockSkewEstimator({
        nc: ncA,
        node: "node-a",
        intervalMs: 200,
        samples: 2,
        timeoutMs: 300,
      });
      estimators.push(a);
      await a.start();
      await srv.startProcess();
      a.addPeer("node-b");
      await waitFor(() => a.offsets().has("node-b"), 10_000, "an estimate once the server is back");
      ok(Math.abs(a.offsets().get("node-b")! - 0.3) < 0.01, `offset ${a.offsets().get("node-b")}`);
    });
  },
);
